"""lab.trace / dh.trace: one real packet, hop by hop, from the kernel's own trace events.

Kernel tests build real labs; the pure ones check input validation and the
table a trace shows.
"""

from __future__ import annotations

import os
import subprocess

import pytest

import netteach as nt
from netteach import errors
from netteach.trace import Hop, Trace, check_request
from tests.conftest import needs_root

pytestmark = []


def kinds(t):
    return [(h.namespace, h.kind) for h in t.hops]


def index(t, pred) -> int:
    for i, h in enumerate(t.hops):
        if pred(h):
            return i
    raise AssertionError(f"no such hop in\n{t.table()}")


def trace_tables(kns) -> list[str]:
    out = subprocess.run(["ip", "netns", "exec", kns, "nft", "list", "tables"], capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.splitlines() if "netteach_trace" in line]


def netlink_fds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


# ---- pure ------------------------------------------------------------------------------------

def test_request_checks():
    assert check_request(None, None) == ("icmp", None)
    assert check_request(80, None) == ("tcp", 80)
    assert check_request(53, "UDP") == ("udp", 53)
    for port, proto in [(0, None), (65536, None), ("80", None), (True, None)]:
        with pytest.raises(errors.InvalidAddress):
            check_request(port, proto)
    with pytest.raises(errors.InvalidName, match="icmp"):
        check_request(None, "sctp")
    with pytest.raises(errors.InvalidName, match="no port"):
        check_request(80, "icmp")
    with pytest.raises(errors.InvalidAddress, match="needs a destination port"):
        check_request(None, "udp")


def test_trace_shows_as_a_table_and_html():
    t = Trace("c1", "c2", "icmp", None, [Hop("c1", "route", "10.0.0.2 dev eth0"),
                                         Hop("host", "drop", "ip filter FORWARD policy drop")],
              delivered=False, verdict="dropped in host by ip filter FORWARD policy")
    assert not t
    assert "dropped in host" in t.table() and "10.0.0.2 dev eth0" in t.table()
    html = t._repr_html_()
    assert "<table>" in html and "FORWARD policy drop" in html
    d = t.to_dict()
    assert d["hops"][1] == {"namespace": "host", "kind": "drop", "detail": "ip filter FORWARD policy drop",
                            "data": {}}


def test_big_labs_watch_only_where_the_packet_can_go():
    from netteach.trace import watched
    from tests.fixtures import bridge_lab

    small = bridge_lab(3)
    assert watched(small, "c1", "172.17.0.3") == ["host", "c1", "c2", "c3"]
    big = bridge_lab(20)
    assert watched(big, "c1", "172.17.0.3") == ["host", "c1", "c2"]
    big.namespace("host").ruleset = [{"rule": {"expr": [{"dnat": {"addr": "172.17.0.9", "port": 80}}]}}]
    assert watched(big, "c1", "198.51.100.2") == ["host", "c1", "c8"]


# ---- on the kernel ---------------------------------------------------------------------------

@pytest.fixture
def dh(lab_name, untouched_root):
    host = nt.DockerHost(lab_name)
    try:
        host.run("web", publish={8080: 80}, serve=80)
        yield host
    finally:
        host.destroy()


@needs_root
@pytest.mark.kernel
def test_internet_to_published_port(dh):
    """The issue's first 'done when': internet -> host:8080 in the order the kernel saw it."""
    before = netlink_fds()
    t = dh.trace("internet", "host", 8080)
    assert t.delivered, t.table()
    assert t.events > 0
    route_inet = index(t, lambda h: h.namespace == "internet" and h.kind == "route")
    dnat = index(t, lambda h: h.namespace == "host" and h.kind == "rule" and h.data.get("hook") == "prerouting"
                 and "dnat to 172.17.0.2:80" in h.detail)
    nat = index(t, lambda h: h.kind == "nat" and "172.17.0.2:80" in h.detail)
    route_br = index(t, lambda h: h.namespace == "host" and h.kind == "route" and "dev docker0" in h.detail)
    accept = index(t, lambda h: h.kind == "rule" and h.data.get("chain") == "DOCKER"
                   and h.data.get("hook") == "forward" and h.data.get("verdict") == "accept")
    jump = index(t, lambda h: h.kind == "rule" and h.data.get("chain") == "FORWARD"
                 and "jump DOCKER" in h.detail and "USER" not in h.detail and "ISOLATION" not in h.detail)
    port = index(t, lambda h: h.kind == "bridge" and h.data["bridge"] == "docker0")
    deliver = index(t, lambda h: h.kind == "deliver" and h.namespace == "web")
    assert route_inet < dnat < nat < route_br < jump < accept < deliver
    assert route_br < port < deliver
    veth = t.hops[port].data["port"]
    assert veth.startswith("veth") and dh.snapshot().interface("host", veth).peer == ("web", "eth0")
    assert "dnat" in t.verdict.lower() and t.verdict.startswith("delivered to web:80")
    assert {"netns:internet", "netns:host", "netns:web", f"if:host/{veth}"} <= set(t.path)
    # nothing left: no table in any namespace, no socket
    for ns in dh.namespaces:
        assert trace_tables(dh.kernel_name(ns)) == []
    assert netlink_fds() == before
    from netteach.draw import HIGHLIGHT
    from matplotlib.colors import to_hex

    fig = t.draw()
    lit = {p.get_gid() for p in fig.axes[0].patches if to_hex(p.get_edgecolor()) == HIGHLIGHT}
    assert {"netns:internet", "netns:host", "netns:web", f"if:host/{veth}"} <= lit


@needs_root
@pytest.mark.kernel
def test_cross_network_ping_names_the_isolation_drop(dh):
    dh.network_create("backend", subnet="10.10.0.0/24")
    dh.run("db", network="backend")
    t = dh.trace("web", "db")
    assert not t.delivered
    drop = index(t, lambda h: h.kind == "drop")
    assert t.hops[drop].data["chain"] == "DOCKER-ISOLATION-STAGE-2"
    assert "DOCKER-ISOLATION-STAGE-2" in t.verdict and t.verdict.startswith("dropped in host")
    assert not any(h.namespace == "db" for h in t.hops)


@needs_root
@pytest.mark.kernel
def test_bridged_and_masqueraded_and_unrouted(dh):
    dh.run("web2")
    t = dh.trace("web2", "web", 80)
    assert t.delivered, t.table()
    br = t.hops[index(t, lambda h: h.kind == "bridge")]
    assert br.data["in_port"] and br.data["port"] and br.data["in_port"] != br.data["port"]
    assert not any(h.namespace == "host" and h.kind == "route" for h in t.hops)  # switched, not routed
    out = dh.trace("web", "internet", proto="udp", port=53)
    assert out.hops[-1].kind == "deliver" and out.hops[-1].namespace == "internet"
    nat = out.hops[index(out, lambda h: h.kind == "nat")]
    assert "MASQUERADE" in nat.detail and "198.51.100.2" in nat.detail
    lost = dh.trace("internet", "web", 80)  # the internet has no route to a private address
    assert not lost.delivered and lost.verdict.startswith("no route in internet")


def two_subnets(lab):
    """a (10.0.1.2) and b (10.0.2.2), each on its own veth to a forwarding host."""
    lab.add_netns("a")
    lab.add_netns("b")
    for ns, net in (("a", "10.0.1"), ("b", "10.0.2")):
        lab.add_veth(f"to-{ns}", "eth0", peer_netns=ns)
        lab.add_addr("host", f"to-{ns}", f"{net}.1/24")
        lab.add_addr(ns, "eth0", f"{net}.2/24")
        lab.set_up("host", f"to-{ns}")
        lab.set_up(ns, "eth0")
        lab.add_route(ns, "default", via=f"{net}.1")
    lab.sysctl("host", "net.ipv4.ip_forward", 1)


@needs_root
@pytest.mark.kernel
def test_plain_lab_forward_policy_drop(lab):
    two_subnets(lab)
    assert lab.trace("a", "b").delivered
    r = lab.exec("host", ["nft", "-f", "-"], input="table ip filter {\n chain FORWARD {\n "
                 "type filter hook forward priority filter; policy drop;\n }\n}\n")
    assert r.ok, r
    t = lab.trace("a", "10.0.2.2", port=80)
    assert not t.delivered
    assert t.verdict == "dropped in host by ip filter FORWARD policy"
    lab.sysctl("host", "net.ipv4.ip_forward", 0)
    t = lab.trace("a", "b")
    assert not t.delivered and "no route" in t.verdict and "host" in t.verdict, t.table()


@needs_root
@pytest.mark.kernel
def test_bad_input_leaves_nothing(dh):
    with pytest.raises(errors.NetteachError):
        dh.trace("nobody", "web")
    with pytest.raises(errors.NetteachError):
        dh.trace("internet", "nobody")
    with pytest.raises(errors.NetteachError):
        dh.trace("internet", "host", 70000)
    with pytest.raises(errors.NetteachError):
        dh.trace("internet", "host", 80, proto="sctp")
    for ns in dh.namespaces:
        assert trace_tables(dh.kernel_name(ns)) == []


@needs_root
@pytest.mark.kernel
def test_interrupted_trace_leaves_nothing(dh, monkeypatch):
    """A KeyboardInterrupt after the tables and sockets exist, before the packet leaves."""
    from netteach.kernel import nftrace

    before = netlink_fds()
    seen = {}

    def interrupted(*args):
        seen["tables"] = {ns: trace_tables(dh.kernel_name(ns)) for ns in dh.namespaces}
        raise KeyboardInterrupt

    monkeypatch.setattr(nftrace, "_send", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dh.trace("internet", "host", 8080)
    assert all(seen["tables"].values())  # the interrupt came while the tables were there
    for ns in dh.namespaces:
        assert trace_tables(dh.kernel_name(ns)) == []
    assert netlink_fds() == before
    monkeypatch.undo()
    assert dh.trace("internet", "host", 8080).delivered


@needs_root
@pytest.mark.kernel
def test_trace_in_a_rootless_lab(lab_name, untouched_root):
    """The same trace through the helper process of a rootless lab (its calls cross a process boundary)."""
    try:
        lab = nt.Lab(lab_name, mode="rootless")
    except errors.UserNamespacesUnavailable as exc:
        pytest.skip(f"user namespaces unavailable here: {exc}")
    try:
        two_subnets(lab)
        t = lab.trace("a", "b", port=80)
        assert t.delivered and t.listeners == [], t.table()
        assert [h.kind for h in t.hops][-1] == "deliver" and any(h.namespace == "host" for h in t.hops)
        assert t.verdict == "delivered to b:80, but nothing listens there"
    finally:
        lab.destroy()
