"""Trustworthy under faults, threads and other users (issue 9, items 1-8): nothing is
left on the machine, nothing freezes the labs, no wrong answer without an error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

import netteach as nt
from netteach import state
from tests.conftest import needs_root, netteach_leftovers, sh
from tests.test_ownership import child

pytestmark = [needs_root, pytest.mark.kernel]


def _pids_alive(pids):
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.append(pid)
        except OSError:
            pass
    return out


def _marked_pids(lab_name):
    from netteach import kernel

    return [pid for pid, _ in kernel.marked(lab_name)]


# ---- 1. routes given with only dev= ------------------------------------------------------------

def test_root_route_with_only_dev_is_removed_by_destroy_and_cleanup(lab_name):
    veth, peer = f"nt{lab_name[-6:]}a", f"nt{lab_name[-6:]}b"
    with nt.Lab(lab_name, host="root") as lab:
        lab.add_veth(veth, peer)
        lab.set_up("host", veth)
        lab.add_route("host", "10.98.0.0/16", dev=veth)
        assert "10.98.0.0/16" in sh("ip route")
        lab.delete_route("host", "10.98.0.0/16")
        assert "10.98.0.0/16" not in sh("ip route"), "delete_route left the route"
        lab.add_route("host", "10.98.0.0/16", dev=veth)
        lab.add_route("host", "10.97.0.0/16", dev="lo")  # outlives the lab's own links
    assert "10.98.0.0/16" not in sh("ip route") and "10.97.0.0/16" not in sh("ip route")
    # the same after a crash: cleanup removes it
    p = child(f"""
import netteach as nt
lab = nt.Lab({lab_name!r}, host="root")
lab.add_route("host", "10.97.0.0/16", dev="lo")
""")
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    assert "10.97.0.0/16" in sh("ip route")
    assert lab_name in nt.cleanup()
    assert "10.97.0.0/16" not in sh("ip route"), "cleanup left the route"
    assert netteach_leftovers(lab_name) == []


def test_isolated_delete_route_with_only_dev_removes_it(lab):
    lab.add_netns("c1")
    lab.add_veth("v1", "eth0", peer_netns="c1")
    lab.set_up("c1", "eth0")
    lab.add_route("c1", "10.98.0.0/16", dev="eth0")
    assert "10.98.0.0/16" in lab.exec("c1", "ip route").stdout
    lab.delete_route("c1", "10.98.0.0/16")
    assert "10.98.0.0/16" not in lab.exec("c1", "ip route").stdout
    assert any("route del 10.98.0.0/16" in c for c in lab.commands)


# ---- 2. only per-namespace network sysctls ---------------------------------------------------

def test_sysctl_refuses_machine_wide_keys(lab):
    hostname = sh("hostname").strip()
    for key in ("kernel.hostname", "vm.swappiness", "fs.file-max", "net.ipv4.ip_forward\n"):
        with pytest.raises(nt.InvalidName):
            lab.sysctl("host", key, "x1")
    with pytest.raises(nt.NetteachError):  # a machine-wide net key: absent or read-only in a namespace
        lab.sysctl("host", "net.core.rmem_max", 4096)
    assert sh("hostname").strip() == hostname
    lab.sysctl("host", "net.ipv4.ip_forward", 1)
    assert lab.sysctl("host", "net.ipv4.ip_forward") == "1"


# ---- 3. root-mode sysctls shared by two labs ----------------------------------------------------

def test_two_root_labs_do_not_undo_each_other(lab_name):
    key = "net.ipv4.conf.all.forwarding"
    original = sh(f"sysctl -n {key}").strip()
    want = "0" if original == "1" else "1"
    a = nt.Lab(lab_name, host="root")
    b = nt.Lab(lab_name + "b", host="root")
    try:
        a.sysctl("host", key, want)
        b.sysctl("host", key, want)  # the same request: nothing to change, but b needs it too
        a.destroy()
        assert sh(f"sysctl -n {key}").strip() == want, "a's destroy undid what b still needs"
    finally:
        a.destroy()
        b.destroy()
    assert sh(f"sysctl -n {key}").strip() == original, "the last lab restores the machine's value"
    assert netteach_leftovers(lab_name) == [] and netteach_leftovers(lab_name + "b") == []


# ---- 4. an unmarked namespace of the same name is not ours ------------------------------------

def test_cleanup_spares_an_unmarked_namespace_made_by_hand(lab_name, untouched_root):
    p = child(f"""
import netteach as nt
lab = nt.Lab({lab_name!r})
lab.add_netns("c1")
""")
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    kns = f"nt-{lab_name}.c1"
    sh(f"ip netns del {kns} && ip netns add {kns}")  # made by hand: no marker on its lo
    try:
        assert lab_name in nt.cleanup()
        assert kns in sh("ip netns list"), "cleanup deleted a namespace it did not mark"
    finally:
        subprocess.run(["ip", "netns", "del", kns])
    assert netteach_leftovers(lab_name) == []


# ---- 5. the lock: no other user can hold it ------------------------------------------------

def _as_nobody(argv):
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]


HOLD = ("import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n")


def _hold_lock(path, nobody=False):
    """A process holding an flock on ``path`` (killing it releases the lock: no child keeps it)."""
    argv = ["/usr/bin/python3", "-c", HOLD, path]
    p = subprocess.Popen(_as_nobody(argv) if nobody else argv, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    return p, line.strip() == "held"


def test_unprivileged_user_cannot_freeze_labs(lab_name, untouched_root):
    if subprocess.run(["which", "setpriv", "flock"], capture_output=True).returncode:
        pytest.skip("needs setpriv and flock (util-linux)")
    os.makedirs("/run/netteach", exist_ok=True)
    os.chmod("/run/netteach", 0o755)
    holders = []
    try:
        p, held = _hold_lock("/run", nobody=True)  # any user can lock /run itself
        holders.append(p)
        assert held
        done = []

        def body():
            with nt.Lab(lab_name) as lab:  # holds the lock; a user cannot open the lock file
                lab.add_netns("c1")
                r = subprocess.run(_as_nobody(["flock", "-n", "/run/netteach/.lock", "true"]),
                                   capture_output=True, text=True)
                done.append(r)
            nt.cleanup()
            done.append("cleaned")

        t = threading.Thread(target=body, daemon=True)
        t.start()
        t.join(60)  # a hang guard, not a timing assertion: before the fix this blocked until the holder quit
        assert done[-1:] == ["cleaned"], "a lab blocked by another user's flock"
        assert done[0].returncode != 0 and "ermission denied" in done[0].stderr
    finally:
        for h in holders:
            h.kill()
            h.wait()
    assert netteach_leftovers(lab_name) == []


def test_a_stuck_lock_gives_a_clear_error_naming_the_holder(lab_name, monkeypatch):
    os.makedirs("/run/netteach", exist_ok=True)
    os.close(os.open("/run/netteach/.lock", os.O_CREAT | os.O_RDONLY, 0o600))
    holder, held = _hold_lock("/run/netteach/.lock")
    try:
        assert held
        monkeypatch.setattr(state, "LOCK_TIMEOUT", 0.3)
        with pytest.raises(nt.LabInUse, match=f"held by pid {holder.pid}"):
            nt.Lab(lab_name)
    finally:
        holder.kill()
        holder.wait()
    nt.cleanup()
    assert netteach_leftovers(lab_name) == []


# ---- 6. atomic state writes; a torn file is still removable ------------------------------------

def test_state_saves_from_threads_are_never_torn(lab, busy_switching):
    for i in range(3):
        lab.add_netns(f"c{i}")
    bad, stop = [], threading.Event()

    def writer(k):
        for j in range(150):
            lab._st.extra[f"w{k}"] = "x" * (j * 7 % 200)
            state.save(lab._st)

    def reader():
        while not stop.is_set():
            if isinstance(state.read(lab.name), Exception):
                bad.append(1)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert bad == []


def test_cleanup_removes_a_lab_whose_state_file_is_unreadable(lab_name, untouched_root):
    p = child(f"""
import netteach as nt
lab = nt.Lab({lab_name!r})
lab.add_netns("c1")
lab.write_etc("c1", "hosts", "127.0.0.1 localhost\\n")
lab.serve("c1", 80)
""")
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    server = _marked_pids(lab_name)
    assert server
    with open(f"/run/netteach/{lab_name}.json", "r+b") as f:
        f.truncate(len(f.read()) // 2)  # a torn write
    info = [i for i in nt.labs() if i.name == lab_name]
    assert info and set(info[0].namespaces) == {"host", "c1"}
    assert lab_name in nt.cleanup()  # its owner is dead: an orphan, whatever its torn file says
    assert netteach_leftovers(lab_name) == []
    assert not os.path.exists(f"/etc/netns/nt-{lab_name}.c1")
    assert _pids_alive(server) == []


# ---- 7. a process started just before a kill is still found ---------------------------------

def test_sigkill_between_start_and_record_leaves_no_process(lab_name, untouched_root):
    p = subprocess.run([sys.executable, "-c", f"""
import os, netteach as nt
from netteach import kernel
lab = nt.Lab({lab_name!r})
lab.add_netns("c1")
real = kernel.spawn
def spawn_then_die(*a, **k):
    info = real(*a, **k)
    os.kill(os.getpid(), 9)  # killed before the pid is recorded
kernel.spawn = spawn_then_die
lab.serve("c1", 80)
"""], cwd=os.path.dirname(os.path.dirname(__file__)), timeout=60)
    assert p.returncode == -9
    pids = _marked_pids(lab_name)
    assert pids, "the server started"
    assert lab_name in nt.cleanup()
    assert _pids_alive(pids) == []
    assert netteach_leftovers(lab_name) == []


# ---- 8. threads -------------------------------------------------------------------------------

@pytest.fixture
def busy_switching():
    """Threads switch every microsecond: races that hide behind the GIL show up."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def test_lab_from_many_threads_is_one_lab(lab_name, untouched_root, busy_switching):
    got, errs = [], []

    def make():
        try:
            got.append(nt.Lab(lab_name))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errs.append(exc)

    ts = [threading.Thread(target=make) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errs == [] and len({id(x) for x in got}) == 1
    got[0].destroy()
    assert netteach_leftovers(lab_name) == []


def test_docker_run_from_threads_gives_distinct_addresses(lab_name, untouched_root, busy_switching):
    dh = nt.DockerHost(lab_name)
    try:
        errs = []

        def run(i):
            try:
                dh.run(f"c{i}")
            except Exception as exc:  # noqa: BLE001
                errs.append(exc)

        ts = [threading.Thread(target=run, args=(i,)) for i in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errs == []
        ips = [dh.inspect(f"c{i}")["NetworkSettings"]["IPAddress"] for i in range(12)]  # from the kernel
        assert len(set(ips)) == 12 and all(ips)
    finally:
        dh.destroy()
    assert netteach_leftovers(lab_name) == []


def test_ownership_has_its_own_module_and_old_names_still_work():
    from netteach import lab, ownership

    assert nt.labs is ownership.labs and nt.cleanup is ownership.cleanup
    assert lab.cleanup is ownership.cleanup and lab.labs is ownership.labs and lab.teardown is ownership.teardown
    assert "def teardown" not in open(lab.__file__).read()
