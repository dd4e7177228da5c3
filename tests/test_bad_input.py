"""Every verb, fed bad input: a NetteachError that says what to do, and nothing half-made
(issue 9 item 11). The state file, the kernel objects of the lab's namespaces, its
/etc/netns files and its processes are compared before and after each bad call.

Run as a script for the counts (tried / clear errors / raw tracebacks / half-made):
    tools/sandbox.sh .venv/bin/python -m tests.test_bad_input
"""

from __future__ import annotations

import copy
import os

import pytest

import netteach as nt
from netteach import kernel
from tests.conftest import ROOT, needs_root

# raw errno wording that means an error was not translated into advice
RAW = ("Errno", "Invalid argument", "Too many levels", "unhashable", "object is not", "has no attribute",
       "not subscriptable", "argument must be", "NetlinkError", "Traceback")

L = "lab"  # cases on a plain Lab (namespaces host, c1; veth v1 <-> eth0 in c1; bridges br0, br1)
D = "dh"   # cases on a DockerHost (containers web (serve=80) and db on network backend)

CASES = [
    # Lab(...) itself
    (L, "Lab name with a space", lambda lab: nt.Lab("bad name")),
    (L, "Lab name with a newline", lambda lab: nt.Lab("ch2\n")),
    (L, "Lab name None", lambda lab: nt.Lab(None)),
    (L, "Lab name a list", lambda lab: nt.Lab(["x"])),
    (L, "Lab host='vm'", lambda lab: nt.Lab("badhost", host="vm")),
    # add_netns
    *[(L, f"add_netns({bad!r})", lambda lab, bad=bad: lab.add_netns(bad))
      for bad in (None, 5, ["a"], "a\n", "a\0b", "", "x" * 41, "-x", "a b", "a/b")],
    # add_veth
    (L, "add_veth None", lambda lab: lab.add_veth(None, "b")),
    (L, "add_veth 16 bytes", lambda lab: lab.add_veth("a" * 16, "b")),
    (L, "add_veth same names", lambda lab: lab.add_veth("a", "a")),
    (L, "add_veth newline", lambda lab: lab.add_veth("v\n", "p")),
    (L, "add_veth NUL", lambda lab: lab.add_veth("v\0", "p")),
    (L, "add_veth missing netns", lambda lab: lab.add_veth("a", "b", netns="nope")),
    (L, "add_veth missing peer netns", lambda lab: lab.add_veth("a", "b", peer_netns="nope")),
    (L, "add_veth list", lambda lab: lab.add_veth(["a"], "b")),
    (L, "add_veth name taken by a bridge", lambda lab: lab.add_veth("br0", "b")),
    # add_bridge
    *[(L, f"add_bridge({bad!r})", lambda lab, bad=bad: lab.add_bridge(bad))
      for bad in (None, "", "b" * 16, "a b", "v1")],
    # set_netns
    (L, "set_netns missing link", lambda lab: lab.set_netns("nope", "c1")),
    (L, "set_netns missing netns", lambda lab: lab.set_netns("v1", "nope")),
    (L, "set_netns None", lambda lab: lab.set_netns(None, "c1")),
    # set_master
    (L, "set_master bridge into bridge", lambda lab: lab.set_master("br1", "br0")),
    (L, "set_master lo", lambda lab: lab.set_master("lo", "br0")),
    (L, "set_master into a veth", lambda lab: lab.set_master("v1", "v1")),
    (L, "set_master missing bridge", lambda lab: lab.set_master("v1", "nope")),
    (L, "set_master None", lambda lab: lab.set_master(None, "br0")),
    # set_up / set_down / delete_link
    (L, "set_up missing link", lambda lab: lab.set_up("c1", "nope")),
    (L, "set_up None", lambda lab: lab.set_up("c1", None)),
    (L, "set_up netns int", lambda lab: lab.set_up(5, "eth0")),
    (L, "set_down missing", lambda lab: lab.set_down("c1", "nope")),
    (L, "delete_link None", lambda lab: lab.delete_link("c1", None)),
    (L, "delete_link slash", lambda lab: lab.delete_link("c1", "a/b")),
    # add_addr
    *[(L, f"add_addr({bad!r})", lambda lab, bad=bad: lab.add_addr("c1", "eth0", bad))
      for bad in ("10.0.0.2", None, "300.1.1.1/24", ["10.0.0.2/24"], "10.0.0.2/33", 5, "10.0.0.2/24\n")],
    (L, "add_addr missing link", lambda lab: lab.add_addr("c1", "nope", "10.0.0.2/24")),
    # add_route / delete_route
    (L, "add_route dst int", lambda lab: lab.add_route("c1", 5, via="10.0.0.1")),
    (L, "add_route dst list", lambda lab: lab.add_route("c1", ["default"], via="10.0.0.1")),
    (L, "add_route no via/dev", lambda lab: lab.add_route("c1", "default")),
    (L, "add_route via bad", lambda lab: lab.add_route("c1", "10.5.0.0/16", via="bad")),
    (L, "add_route via int", lambda lab: lab.add_route("c1", "default", via=5)),
    (L, "add_route host bits", lambda lab: lab.add_route("c1", "10.5.0.1/16", via="10.0.0.1")),
    (L, "add_route dev missing", lambda lab: lab.add_route("c1", "10.5.0.0/16", dev="nope")),
    (L, "add_route gateway unreachable", lambda lab: lab.add_route("c1", "10.5.0.0/16", via="10.77.0.1")),
    (L, "delete_route None", lambda lab: lab.delete_route("c1", None)),
    (L, "delete_route text", lambda lab: lab.delete_route("c1", "x")),
    # sysctl
    (L, "sysctl kernel.hostname", lambda lab: lab.sysctl("c1", "kernel.hostname", "x")),
    (L, "sysctl vm.swappiness", lambda lab: lab.sysctl("c1", "vm.swappiness", 1)),
    (L, "sysctl value True", lambda lab: lab.sysctl("c1", "net.ipv4.ip_forward", True)),
    (L, "sysctl value newline", lambda lab: lab.sysctl("c1", "net.ipv4.ip_forward", "1\n0")),
    (L, "sysctl value list", lambda lab: lab.sysctl("c1", "net.ipv4.ip_forward", [1])),
    (L, "sysctl key None", lambda lab: lab.sysctl("c1", None)),
    (L, "sysctl key newline", lambda lab: lab.sysctl("c1", "net.ipv4.ip_forward\n", 1)),
    (L, "sysctl missing key", lambda lab: lab.sysctl("c1", "net.ipv4.no_such_key", 1)),
    (L, "sysctl key with ..", lambda lab: lab.sysctl("c1", "net.ipv4..x", 1)),
    # write_etc
    (L, "write_etc None text", lambda lab: lab.write_etc("c1", "hosts", None)),
    (L, "write_etc int text", lambda lab: lab.write_etc("c1", "hosts", 5)),
    (L, "write_etc ../x", lambda lab: lab.write_etc("c1", "../x", "a")),
    (L, "write_etc name newline", lambda lab: lab.write_etc("c1", "hosts\n", "a")),
    (L, "write_etc host root", lambda lab: lab.write_etc("nope", "hosts", "a")),
    # exec
    *[(L, f"exec command {bad!r}", lambda lab, bad=bad: lab.exec("c1", bad))
      for bad in (5, None, ["ls", None], [], "", {"a": 1})],
    (L, "exec timeout 'x'", lambda lab: lab.exec("c1", "true", timeout="x")),
    (L, "exec timeout -1", lambda lab: lab.exec("c1", "true", timeout=-1)),
    (L, "exec input int", lambda lab: lab.exec("c1", "cat", input=5)),
    (L, "exec missing netns", lambda lab: lab.exec("nope", "true")),
    # ping
    (L, "ping target option", lambda lab: lab.ping("c1", "-f")),
    (L, "ping target None", lambda lab: lab.ping("c1", None)),
    (L, "ping target list", lambda lab: lab.ping("c1", ["10.0.0.1"])),
    (L, "ping count 'x'", lambda lab: lab.ping("c1", "10.0.0.1", count="x")),
    (L, "ping count 0", lambda lab: lab.ping("c1", "10.0.0.1", count=0)),
    (L, "ping count True", lambda lab: lab.ping("c1", "10.0.0.1", count=True)),
    (L, "ping timeout 'x'", lambda lab: lab.ping("c1", "10.0.0.1", timeout="x")),
    # http_get
    *[(L, f"http_get port {bad!r}", lambda lab, bad=bad: lab.http_get("c1", "10.0.0.1", bad))
      for bad in (70000, -1, "x", None, True, 0, 80.5)],
    (L, "http_get address None", lambda lab: lab.http_get("c1", None)),
    (L, "http_get address name", lambda lab: lab.http_get("c1", "bad")),
    (L, "http_get timeout 'x'", lambda lab: lab.http_get("c1", "10.0.0.1", 80, timeout="x")),
    # serve / spawn / kill
    *[(L, f"serve port {bad!r}", lambda lab, bad=bad: lab.serve("c1", bad))
      for bad in (0, "80", True, None, 70000)],
    (L, "serve name int", lambda lab: lab.serve("c1", 80, name=5)),
    (L, "spawn None", lambda lab: lab.spawn("c1", None)),
    (L, "spawn int", lambda lab: lab.spawn("c1", 5)),
    (L, "kill a pid not ours", lambda lab: lab.kill(1)),
    (L, "kill text", lambda lab: lab.kill("x")),
    # own_path
    *[(L, f"own_path({bad!r})", lambda lab, bad=bad: lab.own_path(bad))
      for bad in (None, "/etc/passwd", "/etc/netns/../../x", "relative", "/run/netteach/x.json",
                  "/run/netteach/.lock", "/etc/netns/nt-other.c1")],
    # nft
    (L, "nft missing netns", lambda lab: lab.nft("nope")),

    # ---- DockerHost ----
    *[(D, f"run name {bad!r}", lambda dh, bad=bad: dh.run(bad)) for bad in (None, ["a"], "a\n", "a b", "host")],
    *[(D, f"run network {bad!r}", lambda dh, bad=bad: dh.run("x", network=bad))
      for bad in (["bridge"], "nope", 5, "container:nope", "weird:x")],
    *[(D, f"run publish {bad!r}", lambda dh, bad=bad: dh.run("x", publish=bad))
      for bad in ([8080], "8080", {True: 80}, {8080: 70000}, {"x": 80}, {8080: True}, 8080, ["99999:80"])],
    *[(D, f"run ip {bad!r}", lambda dh, bad=bad: dh.run("x", network="backend", ip=bad))
      for bad in ("bad", 5, "10.99.0.5")],
    *[(D, f"run mac {bad!r}", lambda dh, bad=bad: dh.run("x", mac=bad)) for bad in ("zz", 5, "02:42:ac:11:00:99\n")],
    *[(D, f"run serve {bad!r}", lambda dh, bad=bad: dh.run("x", serve=bad)) for bad in ("80", True, 70000)],
    *[(D, f"run dns {bad!r}", lambda dh, bad=bad: dh.run("x", dns=bad)) for bad in (5, "8.8.8.8", ["bad"], [5])],
    *[(D, f"run hostname {bad!r}", lambda dh, bad=bad: dh.run("x", hostname=bad)) for bad in ("a b", 5, "a\nb")],
    *[(D, f"run add_host {bad!r}", lambda dh, bad=bad: dh.run("x", add_host=bad))
      for bad in ("x", {"evil\n10.66.0.1 web": "10.0.0.1"}, {"db": "bad"}, {"-x": "10.0.0.1"}, ["db"])],
    (D, "run port already published", lambda dh: dh.run("x", publish={8080: 80})),
    *[(D, f"run aliases {bad!r}", lambda dh, bad=bad: dh.run("x", network="backend", aliases=bad))
      for bad in ("db", ["a b"], 5)],
    (D, "run name taken, other options", lambda dh: dh.run("web", network="backend")),
    *[(D, f"network_create name {bad!r}", lambda dh, bad=bad: dh.network_create(bad))
      for bad in (None, "a b", "a\n", ["n"], "host")],
    *[(D, f"network_create subnet {bad!r}", lambda dh, bad=bad: dh.network_create("n2", subnet=bad))
      for bad in (5, "bad", "10.0.0.1/24", "10.10.0.0/24", "198.51.100.0/24")],
    *[(D, f"network_create gateway {bad!r}", lambda dh, bad=bad: dh.network_create("n2", subnet="10.50.0.0/24", gateway=bad))
      for bad in ("bad", 5, "10.99.0.1", "10.50.0.0")],
    (D, "network_connect list", lambda dh: dh.network_connect(["x"], "web")),
    (D, "network_connect missing network", lambda dh: dh.network_connect("nope", "web")),
    (D, "network_connect container None", lambda dh: dh.network_connect("bridge", None)),
    (D, "network_connect missing container", lambda dh: dh.network_connect("bridge", "nope")),
    (D, "network_disconnect not connected", lambda dh: dh.network_disconnect("bridge", "db")),
    (D, "network_rm None", lambda dh: dh.network_rm(None)),
    (D, "network_rm missing", lambda dh: dh.network_rm("nope")),
    (D, "network_rm default", lambda dh: dh.network_rm("bridge")),
    (D, "network_rm in use", lambda dh: dh.network_rm("backend")),
    (D, "rm None", lambda dh: dh.rm(None)),
    (D, "rm missing", lambda dh: dh.rm("nope")),
    (D, "rm list", lambda dh: dh.rm(["x"])),
    (D, "exec missing container", lambda dh: dh.exec("nope", "true")),
    (D, "exec None", lambda dh: dh.exec(None, "true")),
    (D, "exec command int", lambda dh: dh.exec("web", 5)),
    (D, "ping dst None", lambda dh: dh.ping("web", None)),
    (D, "ping src missing", lambda dh: dh.ping("nope", "web")),
    (D, "ping dst missing", lambda dh: dh.ping("web", "nope")),
    (D, "ping count 'x'", lambda dh: dh.ping("web", "db", count="x")),
    *[(D, f"http_get port {bad!r}", lambda dh, bad=bad: dh.http_get("internet", "host", bad))
      for bad in (70000, -1, "x", None, True)],
    (D, "http_get dst None", lambda dh: dh.http_get("web", None)),
    (D, "inspect None", lambda dh: dh.inspect(None)),
    (D, "inspect missing", lambda dh: dh.inspect("nope")),
    (D, "rules missing chain", lambda dh: dh.rules("NOPE")),
]


def fingerprint(lab) -> dict:
    """What a bad call must not change: the state, the kernel objects, the files, the processes."""
    ns = {}
    for n in lab.namespaces:
        kns = lab.kernel_name(n)
        d = kernel.dump(kns)
        # IPv4 only: IPv6 link-local addresses and routes come by themselves, a moment after a link is up
        ns[n] = (sorted((l["ifname"], l["kind"], l.get("master"), l["admin_up"]) for l in d["links"]),
                 sorted((a["index"], a["address"], a["prefixlen"]) for a in d["addrs"] if a["family"] == 4),
                 sorted((r["dst"], r["gateway"], r["oif"]) for r in d["routes"] if r["family"] == 4))
    files = {}
    for n in lab.namespaces:
        d = f"/etc/netns/{lab.kernel_name(n)}"
        if os.path.isdir(d):
            for f in sorted(os.listdir(d)):
                with open(os.path.join(d, f)) as fh:
                    files[f"{d}/{f}"] = fh.read()
    netns = sorted(k for k in kernel.netns_list() if k.startswith(f"nt-{lab.name}."))
    return {"state": copy.deepcopy(lab._st.to_dict()), "kernel": ns, "files": files, "netns": netns,
            "procs": sorted(p for p, _ in getattr(kernel, "marked", lambda _: [])(lab.name)),
            "labs": sorted(i.name for i in nt.labs())}


def build_lab(name):
    lab = nt.Lab(name)
    lab.add_netns("c1")
    lab.add_veth("v1", "eth0", peer_netns="c1")
    lab.add_addr("c1", "eth0", "10.0.0.2/24")
    lab.add_addr("host", "v1", "10.0.0.1/24")
    lab.set_up("c1", "eth0")
    lab.set_up("host", "v1")
    lab.add_bridge("br0")
    lab.add_bridge("br1")
    lab.write_etc("c1", "hosts", "127.0.0.1 localhost\n10.0.0.1 gw\n")
    return lab


def build_dh(name):
    dh = nt.DockerHost(name)
    dh.network_create("backend", subnet="10.10.0.0/24")
    dh.run("web", publish={8080: 80}, serve=80)
    dh.run("db", network="backend")
    return dh


def classify(call, target) -> str:
    """'clear', 'raw' (not a NetteachError, or a message in kernel words), 'accepted' or 'half-made'."""
    before = fingerprint(target)
    try:
        call(target)
        outcome = "accepted"
    except nt.NetteachError as exc:
        msg = str(exc)
        outcome = "raw" if len(msg) < 20 or any(r in msg for r in RAW) else "clear"
    except Exception:  # noqa: BLE001 - a raw traceback is what this counts
        outcome = "raw"
    if fingerprint(target) != before:
        return "half-made" if outcome != "accepted" else "accepted"
    return outcome


@pytest.fixture(scope="module")
def targets():
    if not ROOT:
        pytest.skip("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to make namespaces")
    t = {L: build_lab(f"bad{os.getpid() % 1000}"), D: build_dh(f"badd{os.getpid() % 1000}")}
    yield t
    for x in t.values():
        x.destroy()


@needs_root
@pytest.mark.kernel
@pytest.mark.parametrize("kind,label,call", CASES, ids=[c[1] for c in CASES])
def test_bad_input_is_a_clear_error_and_changes_nothing(targets, kind, label, call):
    target = targets[kind]
    before = fingerprint(target)
    with pytest.raises(nt.NetteachError) as exc:
        call(target)
    msg = str(exc.value)
    assert len(msg) >= 20 and not any(r in msg for r in RAW), f"unhelpful message: {msg!r}"
    assert fingerprint(target) == before, "half-made: the bad call changed the lab"


@needs_root
@pytest.mark.kernel
def test_write_etc_validates_before_opening(targets):
    lab = targets[L]
    path = f"/etc/netns/{lab.kernel_name('c1')}/hosts"
    before = open(path).read()
    with pytest.raises(nt.NetteachError):
        lab.write_etc("c1", "hosts", None)
    assert open(path).read() == before, "the file was emptied"


def main():
    counts = {"clear": 0, "raw": 0, "accepted": 0, "half-made": 0}
    t = {L: build_lab(f"bad{os.getpid() % 1000}"), D: build_dh(f"badd{os.getpid() % 1000}")}
    try:
        for kind, label, call in CASES:
            c = classify(call, t[kind])
            counts[c] += 1
            if c != "clear":
                print(f"{c:>9}: {label}")
    finally:
        for x in t.values():
            x.destroy()
    print(f"bad inputs tried {len(CASES)}: clear errors {counts['clear']}, raw tracebacks or kernel words "
          f"{counts['raw']}, accepted {counts['accepted']}, half-made {counts['half-made']}")


if __name__ == "__main__":
    main()
