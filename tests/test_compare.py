"""compare(): two builds of one container, role by role; compare_labs(): plus real packets traced on both.

The pure tests use the hand-written snapshots of tests/fixtures.py; the kernel
tests compare notebook 03's hand-built host with a DockerHost, packet by packet."""

from __future__ import annotations

import copy

import pytest

from netteach.compare import Comparison, compare
from tests.conftest import needs_root
from tests.fixtures import bridge_lab

def docker_like():
    """tests/fixtures.bridge_lab(1) renamed as Docker names things, plus an uplink to 'internet'."""
    from netteach.snapshot import Interface, Namespace

    snap = bridge_lab(1)
    host = snap.namespace("host")
    host.interface("br0").ifname = "docker0"
    veth = host.interface("veth1")
    veth.ifname, veth.master = "vethc18bcba", "docker0"
    c1 = snap.namespace("c1").interface("eth0")
    c1.peer, c1.mac = ("host", "vethc18bcba"), "02:42:ac:11:00:02"
    host.interfaces.append(Interface("host", "eth0", kind="veth", peer=("internet", "eth0"), state="UP",
                                     admin_up=True, addresses=["198.51.100.2/24"]))
    snap.namespaces.append(Namespace("internet", interfaces=[
        Interface("internet", "eth0", kind="veth", peer=("host", "eth0"), state="UP", admin_up=True,
                  addresses=["198.51.100.1/24", "203.0.113.10/24"])]))
    return snap


def row(c: Comparison, role: str):
    found = [r for r in c.rows if r.role == role]
    assert found, [r.role for r in c.rows]
    return found[0]


# ---- compare() on fixture snapshots --------------------------------------------------------------

def test_identical_builds_match_in_every_role():
    c = compare(docker_like(), "c1", docker_like(), "c1", ip_forward=("1", "1"))
    assert c, c.table()
    assert c.summary() == f"all {len(c.rows)} roles match"
    assert row(c, "container eth0: address/prefix").a == "172.17.0.2/16"
    assert row(c, "host end of the veth: name").a == "vethc18bcba (veth + 7 hex, like Docker)"
    assert row(c, "host end: addresses").a == "none"
    assert row(c, "bridge: gateway address").a == "docker0 172.17.0.1/16"
    assert row(c, "container routes").a == "default via 172.17.0.1 dev eth0; 172.17.0.0/16 dev eth0"


def test_ip_forward_comes_from_the_snapshot():
    a, b = docker_like(), docker_like()
    a.namespace("host").sysctls = {"net.ipv4.ip_forward": "1"}
    b.namespace("host").sysctls = {"net.ipv4.ip_forward": "0"}
    c = compare(a, "c1", b, "c1", labels=("by hand", "docker"))
    assert [r.role for r in c.differences] == ["host: net.ipv4.ip_forward"]
    assert "✗ differs" in c.table() and "#f3d0d0" in c._repr_html_()


def test_interface_differences_are_named_by_role():
    a = docker_like()
    b = copy.deepcopy(a)
    veth = b.namespace("host").interface("vethc18bcba")
    veth.ifname, veth.addresses = "veth0", ["172.17.0.1/32"]
    b.namespace("c1").interface("eth0").peer = ("host", "veth0")
    b.namespace("c1").interface("eth0").mac = "aa:bb:cc:dd:ee:ff"
    b.namespace("c1").routes = [r for r in b.namespace("c1").routes if r.dst != "default"]
    c = compare(a, "c1", b, "c1", ip_forward=("1", "0"))
    assert {r.role for r in c.differences} == {
        "container eth0: MAC", "container routes", "host end of the veth: name", "host end: addresses",
        "host: net.ipv4.ip_forward"}
    assert row(c, "host end of the veth: name").b == "veth0 (not Docker's veth + 7 hex)"


def test_containers_of_different_names_and_addresses_compare_by_role():
    snap = bridge_lab(2)
    c = compare(snap, "c1", snap, "c2")
    assert row(c, "container routes").same  # same routes, each with its own address
    assert not row(c, "container eth0: address/prefix").same
    assert row(c, "container eth0: address/prefix").b == "172.17.0.3/16"


def test_a_missing_container_shows_dashes_instead_of_raising():
    c = compare(bridge_lab(1), "c1", bridge_lab(1), "nope")
    assert row(c, "container eth0: address/prefix").b == "—"
    assert not c


# ---- against the kernel ----------------------------------------------------------------------

@needs_root
@pytest.mark.kernel
def test_hand_built_host_matches_a_docker_host(lab_name, untouched_root):
    import netteach as nt
    from netteach.compare import compare_labs
    from tests import ch3_build

    with nt.Lab(lab_name) as lab, nt.DockerHost(lab_name + "d") as dh:
        ch3_build.hand_built(lab)
        dh.run("web", publish={8080: 80}, serve=80)
        lab.serve("host", 8080)  # stands in for docker-proxy: something listens on the host's 8080
        c = compare_labs(lab, "c1", dh, "web", labels=("by hand", "docker"))
        assert c, c.table()
        assert row(c, "host: net.ipv4.ip_forward").a == "1"
        assert row(c, "host end of the veth: name").a == "veth7f3a2c1 (veth + 7 hex, like Docker)"
        assert row(c, "packet: internet → host:8080").same
        assert "DNAT" in row(c, "packet: internet → host:8080").a
        assert row(c, "packet: container → internet (ping)").b.startswith("delivered to internet after MASQUERADE")
        # and a real difference is seen: the hand-built container loses its default route
        lab.delete_route("c1", "default")
        diff = [r.role for r in compare_labs(lab, "c1", dh, "web").differences]
        assert "container routes" in diff and "packet: container → internet (ping)" in diff


@needs_root
@pytest.mark.kernel
def test_second_container_and_the_proxy_differ_until_fixed(lab_name, untouched_root):
    """Notebook 03: without Docker's intra-bridge accept, c2 -> c1 is dropped by FORWARD's policy;
    without a docker-proxy, host:8080 from a container and 127.0.0.1:8080 find nobody listening."""
    import netteach as nt
    from netteach.compare import compare_labs
    from tests import ch3_build

    with nt.Lab(lab_name) as lab, nt.DockerHost(lab_name + "d") as dh:
        ch3_build.hand_built(lab)
        ch3_build.container(lab, "c2", "veth3c9e1d2", "172.17.0.3", "02:42:ac:11:00:03")
        dh.run("web", publish={8080: 80}, serve=80)
        dh.run("web2")
        c = compare_labs(lab, "c1", dh, "web", labels=("by hand", "docker"))
        peer = row(c, "packet: another container on its network → container (ping)")
        assert not peer.same
        assert peer.a == "dropped in host by ip filter FORWARD policy"
        assert peer.b.startswith("delivered to web")
        assert not row(c, "packet: host → 127.0.0.1:8080").same
        assert "nothing listens" in row(c, "packet: host → 127.0.0.1:8080").a
        assert "docker_proxy listens" in row(c, "packet: host → 127.0.0.1:8080").b
        ch3_build.nft(lab, 'add rule ip filter FORWARD iifname "docker0" oifname "docker0" accept\n')
        c = compare_labs(lab, "c1", dh, "web", labels=("by hand", "docker"))
        assert row(c, "packet: another container on its network → container (ping)").same, c.table()
