"""Ownership: labs of dead processes are removable, live ones are protected, and
nothing netteach did not mark is ever removed. Also host="root" mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import netteach as nt
from tests.conftest import needs_root, netteach_leftovers, root_view, sh

pytestmark = [needs_root, pytest.mark.kernel]


def child(code: str) -> subprocess.Popen:
    """A second Python process (another notebook) running ``code``; prints READY when set up."""
    src = textwrap.dedent(code) + "\nprint('READY', flush=True)\nsys.stdin.read()\n"
    p = subprocess.Popen([sys.executable, "-c", "import sys\n" + src], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    line = p.stdout.readline()
    if line.strip() != "READY":
        p.kill()
        raise AssertionError(f"child failed: {line}{p.stderr.read()}")
    return p


BUILD = """
import netteach as nt
lab = nt.Lab({name!r})
for i in range(3):
    c = f"c{{i}}"
    lab.add_netns(c)
    lab.add_veth(f"v{{i}}", "eth0")
    lab.set_netns("eth0", c)
    lab.add_addr(c, "eth0", f"10.0.0.{{i + 2}}/24")
lab.spawn("c0", "sleep 300")
"""


def test_live_owner_blocks_second_process(lab_name, untouched_root):
    p = child(BUILD.format(name=lab_name))
    try:
        with pytest.raises(nt.LabInUse, match=f"pid {p.pid}"):
            nt.Lab(lab_name)
        info = [i for i in nt.labs() if i.name == lab_name][0]
        assert info.alive and info.owner_pid == p.pid
        assert nt.cleanup() == [] or lab_name not in nt.cleanup(), "cleanup must spare live labs"
        assert f"nt-{lab_name}.c0" in sh("ip netns list")
    finally:
        p.stdin.close()  # the child exits normally: atexit destroys its lab
        p.wait(timeout=20)
    assert netteach_leftovers(lab_name) == []


def test_sigkill_mid_build_then_cleanup_removes_everything(lab_name, untouched_root):
    p = child(BUILD.format(name=lab_name))
    sleeper = [int(x) for x in sh(f"ip netns pids nt-{lab_name}.c0").split()]
    assert sleeper, "the lab's process runs in c0"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    info = [i for i in nt.labs() if i.name == lab_name][0]
    assert not info.alive
    assert lab_name in nt.cleanup()
    assert netteach_leftovers(lab_name) == []
    time.sleep(0.1)
    for pid in sleeper:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"


def test_dead_owner_is_taken_over(lab_name, untouched_root):
    p = child(BUILD.format(name=lab_name))
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    lab = nt.Lab(lab_name)
    try:
        assert "took over" in lab.commands[0]
        assert set(lab.namespaces) == {"host", "c0", "c1", "c2"}
        snap = lab.snapshot()
        assert snap.interface("c1", "eth0").addresses == ["10.0.0.3/24"]
        # re-running the same cells converges on what is there
        lab.add_netns("c1")
        lab.add_veth("v1", "eth0")
        lab.set_netns("eth0", "c1")
        assert [i for i in nt.labs() if i.name == lab_name][0].owner_pid == os.getpid()
    finally:
        lab.destroy()
    assert netteach_leftovers(lab_name) == []


def test_cleanup_never_touches_unmarked_objects(lab_name):
    """Another program's namespace with a veth0 and a docker0 bridge, and a namespace that only
    looks like netteach's, all survive cleanup(). (No test removes every lab: on a
    teacher's machine it would destroy the live labs of every notebook.)"""
    other = f"other-{lab_name}"
    sh(f"ip netns add {other}")
    try:
        sh(f"ip -n {other} link add veth0 type veth peer name veth1")
        sh(f"ip -n {other} link add docker0 type bridge")
        # a namespace that merely looks like netteach's, but has no marker and no state file
        sh(f"ip netns add nt-{lab_name}z.lookalike")
        lab = nt.Lab(lab_name)
        lab.add_netns("c1")
        p = child(BUILD.format(name=lab_name + "x"))
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        removed = nt.cleanup()  # the orphan goes; this process's live lab stays
        assert lab_name + "x" in removed and lab_name not in removed
        assert f"nt-{lab_name}.c1" in sh("ip netns list")
        lab.destroy()
        links = sh(f"ip -n {other} -br link")
        assert "veth0" in links and "veth1" in links and "docker0" in links
        assert f"nt-{lab_name}z.lookalike" in sh("ip netns list")
        assert netteach_leftovers(lab_name) == [] and netteach_leftovers(lab_name + "x") == []
        assert repr(lab).endswith("(destroyed)>")
    finally:
        subprocess.run(["ip", "netns", "del", other])
        subprocess.run(["ip", "netns", "del", f"nt-{lab_name}z.lookalike"])


def test_orphan_namespace_without_state_file_is_removed_by_marker(lab_name, untouched_root):
    lab = nt.Lab(lab_name)
    lab.add_netns("c1")
    os.unlink(f"/run/netteach/{lab_name}.json")  # the state file is lost
    lab._destroyed = True  # forget it here, as a crashed process would
    nt.lab._registry.pop(lab_name)
    assert lab_name in nt.cleanup()
    assert netteach_leftovers(lab_name) == []


# ---- host="root" ---------------------------------------------------------------------

def test_root_mode_adds_only_marked_objects_and_restores(lab_name):
    # an interface of "the machine" (in the sandbox there may be nothing but lo): not the lab's
    real = f"m{lab_name[-6:]}r"
    sh(f"ip link add {real} type veth peer name {real}p")
    try:
        _root_mode_adds_only_marked_objects_and_restores(lab_name, real)
    finally:
        subprocess.run(["ip", "link", "del", real])


def _root_mode_adds_only_marked_objects_and_restores(lab_name, real):
    veth, peer = f"nt{lab_name[-6:]}a", f"nt{lab_name[-6:]}b"
    before = root_view()
    fin = sh("sysctl -n net.ipv4.tcp_fin_timeout").strip()
    with nt.Lab(lab_name, host="root") as lab:
        assert lab.kernel_name("host") is None
        lab.add_netns("c1")
        lab.add_veth(veth, peer)
        lab.set_netns(peer, "c1")
        lab.add_addr("host", veth, "198.18.7.1/24")  # benchmarking range, never routed outside
        lab.add_addr("c1", peer, "198.18.7.2/24")
        lab.set_up("host", veth)
        lab.set_up("c1", peer)
        lab.add_route("host", "198.18.8.0/24", via="198.18.7.2")
        lab.sysctl("host", "net.ipv4.tcp_fin_timeout", int(fin) + 1)
        shown = sh(f"ip -o link show {veth}")
        assert f"alias netteach lab={lab_name}" in shown
        assert lab.ping("c1", "198.18.7.1")
        assert "198.18.8.0/24 via 198.18.7.2" in sh("ip route")
        assert lab.commands[0].startswith("ip netns add") and f"ip link add {veth}" in str(lab.commands)
        snap = lab.snapshot()
        assert snap.interface("host", veth).peer == ("c1", peer)
        # the machine's own interfaces are off limits
        with pytest.raises(nt.Conflict, match="does not belong"):
            lab.add_addr("host", real, "198.18.9.1/24")
        with pytest.raises(nt.Conflict, match="does not belong"):
            lab.set_netns(real, "c1")
        for verb in (lambda: lab.set_up("host", real), lambda: lab.delete_link("host", real),
                     lambda: lab.set_master(real, veth)):
            with pytest.raises(nt.Conflict):
                verb()
        with pytest.raises(nt.Conflict, match="does not belong"):
            lab.set_down("host", "lo")
    assert root_view() == before
    assert sh("sysctl -n net.ipv4.tcp_fin_timeout").strip() == fin
    assert netteach_leftovers(lab_name) == []


def test_root_mode_refuses_a_name_the_machine_uses(lab_name):
    with nt.Lab(lab_name, host="root") as lab:
        with pytest.raises(nt.Conflict):
            lab.add_bridge("lo")
    assert netteach_leftovers(lab_name) == []


def test_host_mode_mismatch_is_clear(lab_name, untouched_root):
    with nt.Lab(lab_name):
        with pytest.raises(nt.Conflict, match="host='isolated'"):
            nt.Lab(lab_name, host="root")
    with pytest.raises(nt.InvalidName, match="host="):
        nt.Lab(lab_name, host="vm")
    assert netteach_leftovers(lab_name) == []


def test_a_namespace_is_marked_before_it_has_a_name(lab_name, monkeypatch):
    """Both ways of making a namespace (a spare made ahead, or one made on the spot) mark its
    ``lo`` before the name appears in /run/netns: a process killed in between leaves no named,
    unmarked namespace, which cleanup would have to leave on the machine (unmarked = not ours)."""
    from netteach import kernel
    from netteach.kernel import netns as knetns

    seen = []
    original = knetns.create

    def watched(name, then=None):
        def then_and_look():
            result = then()
            seen.append(os.path.ismount(knetns.path(name)))  # named yet (mounted at /run/netns/NAME)?
            return result
        return original(name, then_and_look)

    monkeypatch.setattr(knetns, "create", watched)
    monkeypatch.setattr(knetns.spares, "take", lambda: None)  # the on-the-spot way
    name, marker = f"nt-{lab_name}.probe", f"netteach:{lab_name}:test"
    try:
        assert kernel.netns_add(name, alias=marker, sysctls={"net.ipv4.ip_forward": 0})
        assert seen == [False], "the namespace had its name before it was marked"
        lo = kernel.links_get(name, ["lo"])[0]
        assert lo and lo.get("alias") == marker, lo
    finally:
        kernel.netns_delete(name)
    assert not netteach_leftovers(lab_name)
