"""Rootless labs: the kernel layer in a helper process inside a user namespace.

Each test runs the lab as the unprivileged user ``nobody`` (tests/unprivileged.py)
or, as root, with ``mode="rootless"``; the kernel is real in both cases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests import unprivileged
from tests.conftest import needs_root, netteach_leftovers

pytestmark = unprivileged.needs_nobody_python()

BUILD = """
import json, os, netteach as nt
from netteach.kernel import helper
lab = nt.Lab("rl")                          # not root: rootless by default
lab.add_bridge("br0")
lab.add_addr("host", "br0", "10.0.0.1/24")
lab.set_up("host", "br0")
for i in (1, 2):
    c = f"c{i}"
    lab.add_netns(c)
    lab.add_veth(f"veth{i}", "eth0")
    lab.set_netns("eth0", c)
    lab.set_master(f"veth{i}", "br0")
    lab.set_up("host", f"veth{i}")
    lab.add_addr(c, "eth0", f"10.0.0.{i + 1}/24")
    lab.set_up(c, "eth0")
    lab.add_route(c, "default", via="10.0.0.1")
lab.sysctl("host", "net.ipv4.ip_forward", 1)
lab.write_etc("c1", "hosts", "10.0.0.3 c2\\n")
h = helper.current()
out = {"mode": lab.mode, "uid": os.getuid(), "helper": [h.pid, h.helper_pid],
       # count=3: under load the bridge may enable a new port (linkwatch, a work queue) after
       # the first ARP request; ping then answers from the retry
       "ping": bool(lab.ping("c1", "10.0.0.3", count=3)), "ping_host": bool(lab.ping("c2", "10.0.0.1", count=3)),
       "getent": lab.exec("c1", "getent hosts c2").stdout.split(),
       "forward": lab.sysctl("host", "net.ipv4.ip_forward"),
       "snapshot": repr(lab.snapshot()), "labs": [l.name for l in nt.labs()],
       "commands": str(lab.commands).splitlines()[:2]}
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


def _wait_gone(pids, limit=30.0) -> list[int]:
    """The pids still there after waiting (bounded) for them to end."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if not _gone(p)]


def _pids_in(kind: str, inode: int) -> list[int]:
    """Live processes in that namespace (a zombie keeps only its credentials, so its user namespace)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and not _gone(int(entry)):
            try:
                if os.stat(f"/proc/{entry}/ns/{kind}").st_ino == inode:
                    out.append(int(entry))
            except OSError:
                pass
    return out


def _inodes_in_use(kind: str) -> set[int]:
    """The namespaces of this kind (net, mnt, user, pid) that some live process on the machine is in."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and not _gone(int(entry)):
            try:
                out.add(os.stat(f"/proc/{entry}/ns/{kind}").st_ino)
            except OSError:
                pass
    return out


def test_unprivileged_user_builds_pings_and_tears_down_a_lab():
    r = unprivileged.run(BUILD + """
lab.destroy()
out["after"] = {"helper": helper.current() is None, "labs": len(nt.labs())}
print(json.dumps(out))
""")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["uid"] == 65534 and out["mode"] == "rootless"
    assert out["ping"] and out["ping_host"], out
    assert out["getent"] == ["10.0.0.3", "c2"]  # /etc/netns/<ns>/hosts, private to the helper
    assert out["forward"] == "1"
    assert out["snapshot"] == "<Snapshot: 3 netns, 2 veth pairs, 1 bridge>"
    assert out["labs"] == ["rl"]
    assert out["commands"][0].startswith("# rootless")
    assert out["commands"][1] == "ip netns add nt-rl.host"
    assert out["after"] == {"helper": True, "labs": 0}
    assert _wait_gone(out["helper"]) == []
    assert netteach_leftovers("rl") == []  # nothing ever reached the machine's namespaces


def test_sigkill_of_the_parent_leaves_nothing():
    """The student's kernel killed: the helper, its servers and namespaces all go."""
    p = unprivileged.popen(BUILD + """
pid = lab.serve("c2", 80)
out["http"] = lab.http_get("c1", "10.0.0.3", 80).status
print(json.dumps(out), flush=True)
import time
time.sleep(600)
""")
    try:
        line = p.stdout.readline()
        assert line, p.stderr.read()
        out = json.loads(line)
        assert out["http"] == 200
        hpid = out["helper"][1]
        lab_netns = {os.stat(f"/proc/{hpid}/root/run/netns/{n}").st_ino
                      for n in ("nt-rl.host", "nt-rl.c1", "nt-rl.c2")}
        # the named namespaces are held by mounts in the helper's mount namespace, and the
        # server's by the server: once no process is in that mount namespace, all are freed
        helper_ns = {k: os.stat(f"/proc/{hpid}/ns/{k}").st_ino for k in ("mnt", "user", "pid")}
        inside = _pids_in("pid", helper_ns["pid"])  # the helper and the web server it started
        assert len(inside) >= 2 and any(os.stat(f"/proc/{q}/ns/net").st_ino in lab_netns for q in inside)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        assert _wait_gone(out["helper"] + inside) == []
        for kind, ino in helper_ns.items():  # (processes being killed take a moment to end)
            assert _wait_gone(_pids_in(kind, ino)) == [], f"processes still in the helper's {kind} namespace"
            assert _pids_in(kind, ino) == [], f"processes still in the helper's {kind} namespace"
        assert _inodes_in_use("net").isdisjoint(lab_netns)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_helper_killed_from_outside_next_verb_says_so():
    r = unprivileged.run("""
import json, os, signal, netteach as nt
from netteach.kernel import helper
lab = nt.Lab("gone")
lab.add_netns("c1")
h = helper.current()
os.kill(h.pid, signal.SIGKILL)
h.proc.wait()
out = {}
try:
    lab.add_netns("c2")
except nt.NetteachError as exc:
    out["error"] = [type(exc).__name__, str(exc)]
try:
    lab.snapshot()
except nt.NetteachError as exc:
    out["again"] = type(exc).__name__
lab.destroy()  # nothing to remove: no error either
lab2 = nt.Lab("gone")  # run the cells again: a new helper, a fresh lab
lab2.add_netns("c1")
out["fresh"] = lab2.namespaces
lab2.destroy()
out["helper"] = helper.current() is None
print(json.dumps(out))
""")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["error"][0] == "HelperGone"
    assert "helper process is gone" in out["error"][1] and "run the cells again" in out["error"][1]
    assert out["again"] == "HelperGone"
    assert out["fresh"] == ["host", "c1"]
    assert out["helper"] is True


@needs_root
def test_no_user_namespaces_lab_says_so_and_makes_nothing():
    """user.max_user_namespaces=0 inside a user namespace of the test's own (the machine's is untouched)."""
    code = """
import json, os, netteach as nt
out = {}
try:
    nt.Lab("nouserns", mode="rootless")
except nt.NetteachError as exc:
    out["error"] = [type(exc).__name__, str(exc)]
from netteach.kernel import helper
out["helper"] = helper.current()
out["labs"] = len(nt.labs())
print(json.dumps(out))
"""
    exe, env = unprivileged.python()
    r = subprocess.run(unprivileged.drop(
        ["unshare", "--user", "--map-root-user", "--", "sh", "-c",
         'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh", exe, "-c", code]),
        env=env, capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["error"][0] == "UserNamespacesUnavailable"
    assert "user.max_user_namespaces is 0" in out["error"][1]
    assert "sysctl -w user.max_user_namespaces=" in out["error"][1]
    assert "Nothing was built" in out["error"][1]
    assert out["helper"] is None and out["labs"] == 0


def test_unprivileged_docker_host_publishes_and_resolves():
    r = unprivileged.run("""
import json, netteach as nt
dh = nt.DockerHost("rld")
dh.run("web", publish={8080: 80}, serve=80)
dh.network_create("backend")
dh.run("db", network="backend")
dh.network_connect("backend", "web")
out = {"http": dh.http_get("internet", "host", 8080).status,
       "ping": bool(dh.ping("web", "db")),
       "names": dh.exec("db", "getent hosts web").stdout.split()[1:],
       "rules": "dnat" in dh.nft().lower()}
dh.destroy()
print(json.dumps(out))
""", timeout=180)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out == {"http": 200, "ping": True, "names": ["web"], "rules": True}


def test_netteach_shell_opens_a_shell_in_the_helper():
    r = unprivileged.run("""
import json, subprocess, sys, netteach as nt
lab = nt.Lab("sh")
lab.add_netns("c1")
lab.add_veth("veth0", "eth0", peer_netns="c1")
lab.add_addr("c1", "eth0", "10.9.0.2/24")
import os
env = dict(os.environ, SHELL="/bin/sh")
p = subprocess.run([sys.executable, "-m", "netteach", "shell", "sh"], env=env, text=True,
                   input="id -u; ip netns list; ip -n nt-sh.c1 -br addr show eth0\\n", capture_output=True)
missing = subprocess.run([sys.executable, "-m", "netteach", "shell", "nope"], env=env, text=True,
                         capture_output=True)
lab.destroy()
print(json.dumps({"rc": p.returncode, "out": p.stdout, "err": p.stderr, "missing": [missing.returncode, missing.stderr]}))
""")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["rc"] == 0, out["err"]
    lines = out["out"].splitlines()
    assert lines[0] == "0"  # root inside the helper's user namespace
    assert any(l.startswith("nt-sh.c1") for l in lines) and any(l.startswith("nt-sh.host") for l in lines)
    assert "10.9.0.2/24" in out["out"]
    assert out["missing"][0] == 2 and "no lab 'nope'" in out["missing"][1]


def test_doctor_tells_the_mode_and_the_fix():
    r = unprivileged.run("""
import json, netteach as nt
c = nt.doctor(show=False)
print(json.dumps({"mode": c.mode, "veth": c.has("veth"), "nat": c.has("nft nat"), "table": c.table()}))
""")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["mode"] == "rootless" and out["veth"] and out["nat"]  # probed inside a helper
    assert "mode: rootless" in out["table"]


@needs_root
def test_doctor_without_user_namespaces_says_neither_and_the_fix():
    exe, env = unprivileged.python()
    # nobody, in a user namespace of its own whose limit is 0, every capability dropped
    code = ("import json, netteach as nt; c = nt.doctor(show=False); "
            "print(json.dumps({'mode': c.mode, 'table': c.table()}))")
    r = subprocess.run(unprivileged.drop(
        ["unshare", "--user", "--map-root-user", "--", "sh", "-c",
         'echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --inh-caps=-all '
         '--bounding-set=-all -- "$@"', "sh", exe, "-c", code]),
        env=env, capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["mode"] == "neither"
    assert "user.max_user_namespaces is 0" in out["table"] and "sysctl -w" in out["table"]


def test_namespace_deleted_by_hand_in_the_helper_is_freed():
    """`ip netns del` in `netteach shell`: the next snapshot shows what the kernel shows."""
    r = unprivileged.run("""
import json, subprocess, time, netteach as nt
from netteach.kernel import helper
lab = nt.Lab("byhand")
lab.add_netns("c1")
lab.add_veth("v1", "eth0", peer_netns="c1")
before = [i.ifname for i in lab.snapshot().namespace("host").interfaces]
enter = ["nsenter", f"--target={helper.current().helper_pid}", "--user", "--net", "--mount",
         "--preserve-credentials", "--"]
subprocess.run(enter + ["ip", "netns", "del", "nt-byhand.c1"], check=True)
names = [n.name for n in lab.snapshot().namespaces]
deadline = time.monotonic() + 30  # the kernel frees a namespace in the background
def v1():
    return subprocess.run(enter + ["ip", "-n", "nt-byhand.host", "link", "show", "v1"],
                          capture_output=True).returncode == 0
while v1() and time.monotonic() < deadline:
    time.sleep(0.05)
after = [i.ifname for i in lab.snapshot().namespace("host").interfaces]
lab.destroy()
print(json.dumps({"before": before, "names": names, "after": after}))
""")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.splitlines()[-1])
    assert "v1" in out["before"]
    assert out["names"] == ["host"]
    assert out["after"] == ["lo"], "c1 was kept alive by netteach (and its veth pair with it)"


VERBS = """
import json, subprocess, netteach as nt
from netteach import kernel
from netteach.kernel import helper
lab = nt.Lab("rtv", mode=MODE)
lab.add_bridge("br0")
lab.add_bridge("br1")
lab.add_netns("c1")
lab.add_veth("v1", "eth0", peer_netns="c1")
h = helper.current()
trips = {}

def count(label, verb):
    before = sum(h.calls.values()) if h else 0
    verb()
    trips[label] = sum(h.calls.values()) - before if h else None

def said(verb):
    try:
        verb()
    except nt.NetteachError as exc:
        return [type(exc).__name__, str(exc)]
    return None

def kernel_now():
    out = {}
    for n in lab.namespaces:
        d = kernel.dump(lab.kernel_name(n))
        out[n] = [sorted([l["ifname"], l["master"] or 0, l["admin_up"]] for l in d["links"]),
                  sorted(a["address"] for a in d["addrs"] if a["family"] == 4)]
    return out

count("set_master", lambda: lab.set_master("v1", "br0"))
count("set_up host", lambda: lab.set_up("host", "v1"))
count("add_addr", lambda: lab.add_addr("c1", "eth0", "10.0.0.2/24"))
count("set_up c1", lambda: lab.set_up("c1", "eth0"))
count("set_up again", lambda: lab.set_up("c1", "eth0"))
made = kernel_now()
bad = [said(lambda: lab.set_master("br1", "br0")), said(lambda: lab.set_master("lo", "br0")),
       said(lambda: lab.set_master("v1", "v1")), said(lambda: lab.set_master("v1", "nope")),
       said(lambda: lab.set_up("c1", "nope")), said(lambda: lab.add_addr("c1", "nope", "10.0.0.3/24"))]
unchanged = kernel_now() == made
by_hand = ["ip", "-n", "nt-rtv.c1", "link", "del", "eth0"]  # the veth pair goes, v1 with it
if h:  # inside the helper, as `netteach shell` would
    by_hand = ["nsenter", f"--target={h.helper_pid}", "--user", "--net", "--mount", "--preserve-credentials",
               "--"] + by_hand
subprocess.run(by_hand, check=True)
gone = [said(lambda: lab.set_up("c1", "eth0")), said(lambda: lab.add_addr("c1", "eth0", "10.0.0.2/24")),
        said(lambda: lab.set_master("v1", "br0")), said(lambda: lab.set_up("host", "v1"))]
lab.destroy()
print(json.dumps({"trips": trips, "made": made, "bad": bad, "unchanged": unchanged, "gone": gone}))
"""


def test_link_verbs_check_and_act_in_one_round_trip_and_say_the_same_as_root_mode():
    """set_master, set_up, add_addr: one round trip each to the helper, and the same verdicts,
    errors and messages as in root mode - read from the kernel at that moment (a link deleted
    by hand is missing for the very next verb: nothing is remembered in between)."""
    import sys

    r = unprivileged.run('MODE = "rootless"\n' + VERBS)
    assert r.returncode == 0, r.stderr
    rootless = json.loads(r.stdout.splitlines()[-1])
    r = subprocess.run([sys.executable, "-c", 'MODE = "root"\n' + VERBS], capture_output=True, text=True,
                       timeout=120, cwd=unprivileged.REPO)
    assert r.returncode == 0, r.stderr
    root = json.loads(r.stdout.splitlines()[-1])
    assert rootless["trips"] == {"set_master": 1, "set_up host": 1, "add_addr": 1, "set_up c1": 1,
                                 "set_up again": 1}
    for side in (root, rootless):
        assert side["made"]["c1"] == [[["eth0", 0, True], ["lo", 0, True]], ["10.0.0.2", "127.0.0.1"]]
        v1 = [l for l in side["made"]["host"][0] if l[0] == "v1"][0]
        assert v1[1] != 0 and v1[2] is True, "v1 is enslaved to br0 and up"
        assert side["unchanged"], "a refused verb changed the kernel"
        assert [b[0] for b in side["bad"]] == ["Conflict", "Conflict", "Conflict", "NoSuchInterface",
                                               "NoSuchInterface", "NoSuchInterface"]
        assert side["gone"] == [
            ["NoSuchInterface", "no interface 'eth0' in namespace 'c1' (it has: lo)"],
            ["NoSuchInterface", "no interface 'eth0' in namespace 'c1' (it has: lo)"],
            ["NoSuchInterface", "no interface 'v1' in namespace 'host' (it has: lo, br0, br1)"],
            ["NoSuchInterface", "no interface 'v1' in namespace 'host' (it has: lo, br0, br1)"]]
    assert rootless["bad"] == root["bad"] and rootless["made"]["c1"] == root["made"]["c1"]
