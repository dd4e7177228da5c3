"""Every Lab verb against the real kernel, checked by reading the kernel with `ip`."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import netteach as nt
from tests.conftest import needs_root, netteach_leftovers, sh

pytestmark = [needs_root, pytest.mark.kernel]


def ipj(kns: str, *args: str):
    """`ip -j -n NS ...` parsed: the kernel's own answer, not netteach's."""
    return json.loads(sh(f"ip -j -n {kns} " + " ".join(args)) or "[]")


def link(kns, ifname):
    found = [l for l in ipj(kns, "-d", "link", "show") if l["ifname"] == ifname]
    return found[0] if found else None


def addrs(kns, ifname):
    return [f"{a['local']}/{a['prefixlen']}" for l in ipj(kns, "addr", "show", "dev", ifname)
            for a in l["addr_info"] if a["family"] == "inet"]


def two_ns(lab):
    """The article's model: container namespace, veth pair, addresses, up."""
    lab.add_netns("c1")
    lab.add_veth("veth0", "veth1")
    lab.set_netns("veth1", "c1")
    lab.add_addr("c1", "veth1", "10.0.0.2/24")
    lab.add_addr("host", "veth0", "10.0.0.1/24")
    lab.set_up("c1", "veth1")
    lab.set_up("host", "veth0")


def test_isolated_host_is_a_namespace_of_its_own(lab):
    host = lab.kernel_name("host")
    assert host == f"nt-{lab.name}.host"
    assert host in sh("ip netns list").split()
    # the lab namespaces carry the ownership marker on lo
    assert link(host, "lo")["ifalias"] == f"netteach lab={lab.name}"
    assert lab.namespaces == ["host"]


def test_add_netns_is_fresh_only_lo_down(lab):
    lab.add_netns("my-container")
    kns = lab.kernel_name("my-container")
    links = ipj(kns, "link", "show")
    assert [l["ifname"] for l in links] == ["lo"]
    assert "UP" not in links[0]["flags"]


def test_veth_pair_moves_and_pings(lab):
    two_ns(lab)
    host, c1 = lab.kernel_name("host"), lab.kernel_name("c1")
    assert link(host, "veth1") is None
    v1 = link(c1, "veth1")
    assert v1["linkinfo"]["info_kind"] == "veth"
    assert addrs(c1, "veth1") == ["10.0.0.2/24"]
    assert addrs(host, "veth0") == ["10.0.0.1/24"]
    assert "UP" in link(c1, "lo")["flags"], "set_up also brings lo up"
    r = lab.ping("c1", "10.0.0.1")
    assert r and r.received == 1 and r.rtt_ms is not None
    assert not lab.ping("c1", "10.0.0.99", timeout=1)


def test_every_verb_is_idempotent(lab):
    two_ns(lab)
    lab.add_bridge("br0")
    lab.set_master("veth0", "br0")
    lab.add_route("c1", "default", via="10.0.0.1")
    lab.sysctl("host", "net.ipv4.ip_forward", 1)
    n = len(lab.commands)
    before = {ns: sh(f"ip -n {lab.kernel_name(ns)} -d addr; ip -n {lab.kernel_name(ns)} route")
              for ns in lab.namespaces}
    # the same cells run again, and the lab object made again
    again = nt.Lab(lab.name)
    assert again is lab
    two_ns(lab)
    lab.add_bridge("br0")
    lab.set_master("veth0", "br0")
    lab.add_route("c1", "default", via="10.0.0.1")
    lab.sysctl("host", "net.ipv4.ip_forward", 1)
    after = {ns: sh(f"ip -n {lab.kernel_name(ns)} -d addr; ip -n {lab.kernel_name(ns)} route")
             for ns in lab.namespaces}
    assert after == before
    assert len(lab.commands) == n, "a converged re-run adds no commands"


def test_contradictions_are_conflicts(lab):
    two_ns(lab)
    with pytest.raises(nt.Conflict, match="peer is 'veth1'"):
        lab.add_veth("veth0", "other")
    lab.add_route("c1", "default", via="10.0.0.1")
    with pytest.raises(nt.Conflict, match="already has a route"):
        lab.add_route("c1", "default", via="10.0.0.254")
    lab.add_netns("c2")
    with pytest.raises(nt.Conflict, match="not a bridge"):
        lab.add_bridge("veth0")


def test_bridge_and_master(lab):
    lab.add_bridge("br0")
    lab.add_netns("c1")
    lab.add_veth("vethc1", "eth0")
    lab.set_netns("eth0", "c1")
    lab.set_master("vethc1", "br0")
    host = lab.kernel_name("host")
    assert link(host, "br0")["linkinfo"]["info_kind"] == "bridge"
    assert link(host, "vethc1")["master"] == "br0"
    snap = lab.snapshot()
    assert snap.interface("host", "vethc1").master == "br0"
    assert snap.interface("host", "vethc1").peer == ("c1", "eth0")
    assert snap.interface("c1", "eth0").peer == ("host", "vethc1")


def test_routes_and_forwarding_between_two_namespaces(lab):
    """c1 -- host -- c2 on two subnets: works only with routes and ip_forward."""
    for i, (c, net) in enumerate((("c1", "10.1.0"), ("c2", "10.2.0")), 1):
        lab.add_netns(c)
        lab.add_veth(f"h{i}", "eth0")
        lab.set_netns("eth0", c)
        lab.add_addr("host", f"h{i}", f"{net}.1/24")
        lab.add_addr(c, "eth0", f"{net}.2/24")
        lab.set_up("host", f"h{i}")
        lab.set_up(c, "eth0")
    assert not lab.ping("c1", "10.2.0.2"), "no route yet"
    lab.add_route("c1", "default", via="10.1.0.1")
    lab.add_route("c2", "default", via="10.2.0.1")
    lab.sysctl("host", "net.ipv4.ip_forward", 0)
    assert not lab.ping("c1", "10.2.0.2"), "routes but ip_forward=0"
    lab.sysctl("host", "net.ipv4.ip_forward", 1)
    assert lab.sysctl("host", "net.ipv4.ip_forward") == "1"
    assert sh(f"ip netns exec {lab.kernel_name('host')} sysctl -n net.ipv4.ip_forward").strip() == "1"
    assert lab.ping("c1", "10.2.0.2")
    routes = ipj(lab.kernel_name("c1"), "route", "show")
    assert {"dst": "default", "gateway": "10.1.0.1"}.items() <= routes[0].items()
    lab.delete_route("c1", "default")
    assert not any(r["dst"] == "default" for r in ipj(lab.kernel_name("c1"), "route", "show"))


def test_exec_runs_inside_the_namespace(lab):
    lab.add_netns("c1")
    r = lab.exec("c1", "ip -br link")
    assert r.ok and r.stdout.split()[0] == "lo" and len(r.stdout.splitlines()) == 1
    r = lab.exec("c1", ["sh", "-c", "exit 3"])
    assert r.returncode == 3 and not r
    assert "[c1]$ ip -br link" in repr(lab.exec("c1", "ip -br link"))


def test_exec_sees_etc_netns_files(lab):
    """Like `ip netns exec`: /etc/netns/<ns>/hosts replaces /etc/hosts inside."""
    import os

    lab.add_netns("c1")
    d = f"/etc/netns/{lab.kernel_name('c1')}"
    os.makedirs(d)
    lab._st.files.append(d)  # the lab owns it: destroy removes it
    lab._save()
    with open(f"{d}/hosts", "w") as f:
        f.write("10.9.9.9 db\n")
    assert lab.exec("c1", "getent hosts db").stdout.split()[0] == "10.9.9.9"
    lab.destroy()
    assert not os.path.exists(d)


def test_commands_replay_to_the_same_state(lab, lab_name):
    """lab.commands, run by a shell, builds what the lab built."""
    two_ns(lab)
    lab.add_bridge("br0")
    lab.add_route("c1", "default", via="10.0.0.1")
    lab.sysctl("host", "net.ipv4.ip_forward", 1)
    script = str(lab.commands)
    expected = {ns: sh(f"ip -n {lab.kernel_name(ns)} -4 -br addr; ip -n {lab.kernel_name(ns)} route; "
                       f"ip -n {lab.kernel_name(ns)} -br link | awk '{{print $1, $2}}'")
                for ns in lab.namespaces}
    lab.destroy()
    try:
        subprocess.run(["sh", "-e", "-c", script], check=True, capture_output=True)
        got = {ns: sh(f"ip -n nt-{lab_name}.{ns} -4 -br addr; ip -n nt-{lab_name}.{ns} route; "
                      f"ip -n nt-{lab_name}.{ns} -br link | awk '{{print $1, $2}}'")
               for ns in ("host", "c1")}
        # MACs differ; names, addresses, states and routes do not
        assert {k: v for k, v in got.items()} == expected
    finally:
        for ns in ("c1", "host"):
            subprocess.run(["ip", "netns", "del", f"nt-{lab_name}.{ns}"], capture_output=True)


def test_article_code_block_1_as_written(lab):
    """The article moves veth0 (not veth1) into the container: the kernel shows where each end is."""
    lab.add_netns("my-container")
    lab.add_veth("veth0", "veth1")
    lab.set_netns("veth0", "my-container")  # as printed in the article
    snap = lab.snapshot()
    assert snap.interface("my-container", "veth0") is not None
    assert snap.interface("host", "veth1") is not None
    assert snap.interface("host", "veth0") is None
    assert snap.interface("my-container", "veth0").peer == ("host", "veth1")
    # a re-run of the article's cells converges
    lab.add_veth("veth0", "veth1")
    lab.set_netns("veth0", "my-container")


def test_hand_made_changes_show_in_the_snapshot(lab):
    two_ns(lab)
    c1 = lab.kernel_name("c1")
    sh(f"ip -n {c1} addr add 192.0.2.77/32 dev veth1")
    sh(f"ip -n {lab.kernel_name('host')} link add brx type bridge")
    sh(f"ip -n {c1} link set veth1 mtu 1400")
    snap = lab.snapshot()
    assert "192.0.2.77/32" in snap.interface("c1", "veth1").addresses
    assert snap.interface("host", "brx").kind == "bridge"
    assert snap.interface("c1", "veth1").mtu == 1400
    g = lab.graph()
    assert g.nodes["if:host/brx"]["type"] == "bridge"


def test_snapshot_reads_kinds_states_macs(lab):
    two_ns(lab)
    lab.add_bridge("br0")
    snap = lab.snapshot()
    v = snap.interface("c1", "veth1")
    assert v.kind == "veth" and v.state == "UP" and v.admin_up
    assert v.mac == link(lab.kernel_name("c1"), "veth1")["address"]
    assert snap.interface("host", "br0").state == "DOWN"
    assert snap.interface("c1", "lo").kind == "loopback"
    assert repr(snap) == "<Snapshot: 2 netns, 1 veth pair, 1 bridge>"


def test_graph_schema_from_the_kernel(lab):
    two_ns(lab)
    g = lab.graph()
    assert g.nodes["netns:c1"]["kind"] == "netns"
    node = g.nodes["if:c1/veth1"]
    assert node["type"] == "veth" and node["addresses"] == ["10.0.0.2/24"] and node["netns"] == "c1"
    veth_edges = [(u, v) for u, v, k in g.edges(data="kind") if k == "veth"]
    assert len(veth_edges) == 1 and set(veth_edges[0]) == {"if:c1/veth1", "if:host/veth0"}


def test_draw_and_repr_png(lab):
    two_ns(lab)
    fig = lab.draw()
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "veth1" in texts and "c1" in texts
    png = lab._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_creates_nothing(lab):
    host = lab.kernel_name("host")
    before = sh(f"ip -n {host} -d link; ip -n {host} addr; ip netns list")
    with pytest.raises(nt.InvalidName):
        lab.add_veth("a-name-that-is-too-long", "x")
    with pytest.raises(nt.InvalidName):
        lab.add_netns("bad name")
    with pytest.raises(nt.NoSuchNamespace, match="add_netns"):
        lab.set_netns("veth0", "nowhere")
    with pytest.raises(nt.NoSuchInterface, match="it has: lo"):
        lab.add_addr("host", "eth9", "10.0.0.1/24")
    with pytest.raises(nt.InvalidAddress):
        lab.add_addr("host", "lo", "10.0.0.1")
    with pytest.raises(nt.InvalidAddress, match="gateway"):
        lab.add_route("host", "default", via="10.7.7.7")
    with pytest.raises(nt.InvalidName):
        lab.sysctl("host", "net/../../etc", 1)
    with pytest.raises(nt.InvalidName):
        nt.Lab("Bad Name")
    assert sh(f"ip -n {host} -d link; ip -n {host} addr; ip netns list") == before


def test_missing_kernel_feature_is_clear(lab):
    from netteach import kernel

    try:
        kernel.link_add(lab.kernel_name("host"), "d0", "dummy")
    except nt.MissingKernelFeature as exc:
        assert "nt.doctor()" in str(exc)
    else:  # this kernel has dummy: then an unknown kind must still be a netteach error
        with pytest.raises(nt.NetteachError):
            kernel.link_add(lab.kernel_name("host"), "x0", "no-such-kind")


def test_no_raw_netlink_error_escapes(lab):
    from pyroute2.netlink.exceptions import NetlinkError

    lab.add_netns("c1")
    lab.add_veth("a", "b")
    for bad in (lambda: lab.set_master("a", "b"), lambda: lab.set_netns("lo", "c1")):
        with pytest.raises(nt.NetteachError) as info:
            bad()
        assert not isinstance(info.value, NetlinkError)


def test_context_manager_destroys_even_on_exception(lab_name, untouched_root):
    with pytest.raises(RuntimeError):
        with nt.Lab(lab_name) as lab:
            lab.add_netns("c1")
            raise RuntimeError("boom")
    assert netteach_leftovers(lab_name) == []
    assert repr(lab) == f"<Lab {lab_name} (destroyed)>"
    with pytest.raises(nt.NetteachError, match="destroyed"):
        lab.add_netns("c2")


def test_spawned_processes_are_killed_on_destroy(lab):
    import os

    from netteach import kernel

    lab.add_netns("c1")
    pids = [lab.spawn("c1", "sleep 300"), lab.spawn("c1", ["sleep", "301"])]
    starts = [kernel.start_time(p) for p in pids]
    want = os.stat(f"/run/netns/{lab.kernel_name('c1')}").st_ino
    for pid in pids:  # running, inside c1's namespace (once `ip netns exec` has entered it)
        for _ in range(200):
            if os.stat(f"/proc/{pid}/ns/net").st_ino == want:
                break
            time.sleep(0.01)
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == want
    lab.kill(pids[1])
    assert not kernel.alive(pids[1], starts[1])
    with pytest.raises(nt.Conflict, match="only stops its own"):
        lab.kill(1)
    lab.destroy()
    assert not kernel.alive(pids[0], starts[0])


def test_labs_lists_owner(lab):
    mine = [i for i in nt.labs() if i.name == lab.name]
    assert len(mine) == 1 and mine[0].alive and mine[0].owner_pid == __import__("os").getpid()
    assert mine[0].namespaces == ["host"]
    assert lab.name in repr(nt.labs())


def test_without_privileges_a_clear_error_and_nothing_made(lab_name, untouched_root):
    """Root with every capability dropped (as in an unprivileged container)."""
    import shutil
    import sys

    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv (util-linux) to drop capabilities")
    code = ("import netteach as nt\n"
            "try:\n"
            f"    nt.Lab({lab_name!r})\n"
            "except nt.PermissionDenied as e:\n"
            "    print('DENIED', e)\n")
    r = subprocess.run(["setpriv", "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-c", code],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.startswith("DENIED") and "README" in r.stdout, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert netteach_leftovers(lab_name) == []


def test_new_namespaces_start_with_forwarding_off(lab):
    """The kernel copies a new namespace's IPv4 settings from the machine's first namespace (on a
    machine running Docker: ip_forward=1). A lab sets them explicitly, so lessons do not depend on
    the machine, and says so in its commands."""
    lab.add_netns("c1")
    for netns in ("host", "c1"):
        kns = lab.kernel_name(netns)
        got = sh(f"ip netns exec {kns} sysctl -n net.ipv4.ip_forward net.ipv4.conf.all.forwarding").split()
        assert got == ["0", "0"], netns
        assert (f"ip netns exec {kns} sysctl -qw net.ipv4.ip_forward=0 net.ipv4.conf.all.forwarding=0"
                in lab.commands)
    more = [f"n{i}" for i in range(12)]  # more than the spares made ahead: both ways of making one
    for n in more:
        lab.add_netns(n)
    for n in more:
        got = sh(f"ip netns exec {lab.kernel_name(n)} sysctl -n net.ipv4.ip_forward net.ipv4.conf.all.forwarding")
        assert got.split() == ["0", "0"], n
    lab.sysctl("c1", "net.ipv4.ip_forward", 1)  # the lesson's own step still works
    assert sh(f"ip netns exec {lab.kernel_name('c1')} sysctl -n net.ipv4.conf.all.forwarding").strip() == "1"


def test_root_mode_moves_into_the_root_namespace(lab_name):
    """host="root": moving an interface to "host" must really move it (it used to send nothing and
    log a command), and the moved interface is marked and removed by destroy()."""
    a, b, x, y = (f"n{lab_name[-6:]}{s}" for s in "abxy")
    with nt.Lab(lab_name, host="root") as lab:
        lab.add_netns("c1")
        c1 = lab.kernel_name("c1")
        lab.add_veth(a, b, netns="c1")
        lab.set_netns(b, "host", from_netns="c1")
        assert b in sh(f"ip -o link show {b}") and f"alias netteach lab={lab_name}" in sh(f"ip -o link show {b}")
        assert b not in sh(f"ip -n {c1} -o link show")
        assert f"ip -n {c1} link set {b} netns 1" in lab.commands
        lab.set_netns(b, "host", from_netns="c1")  # a re-run cell: already there
        lab.add_veth(x, y, netns="c1", peer_netns="host")  # ... peer name Y netns 1
        assert y in sh(f"ip -o link show {y}") and x in sh(f"ip -n {c1} -o link show {x}")
        assert lab.snapshot().interface("host", y).peer == ("c1", x)
    assert netteach_leftovers(lab_name) == []
    assert b not in sh("ip -o link show") and y not in sh("ip -o link show")
