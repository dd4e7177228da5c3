"""The self-checks of notebooks 01 and 02 against the real kernel: a solved lab passes,
a half-done one fails naming exactly what is missing."""

from __future__ import annotations

import pytest

import netteach as nt
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.kernel]


def problems(result):
    assert not result, f"{result!r} should have failed"
    return result.problems


# ---- notebook 01 -------------------------------------------------------------------------

def test_loopback_up(lab):
    assert problems(nt.check.loopback_up(lab)) == ["the lab has no namespace 'c1' (lab.add_netns('c1'))"]
    lab.add_netns("c1")
    assert problems(nt.check.loopback_up(lab)) == ["lo in 'c1' is not up (lab.set_up('c1', 'lo'))"]
    lab.set_up("c1", "lo")
    r = nt.check.loopback_up(lab)
    assert r and repr(r) == "✓ loopback_up: done"


def build_direct_cable(lab, b_up=True):
    lab.add_netns("a")
    lab.add_netns("b")
    lab.add_veth("eth0", "eth0", netns="a", peer_netns="b")
    lab.add_addr("a", "eth0", "10.1.0.1/24")
    lab.add_addr("b", "eth0", "10.1.0.2/24")
    lab.set_up("a", "eth0")
    if b_up:
        lab.set_up("b", "eth0")


def test_direct_cable_solved(lab):
    build_direct_cable(lab)
    assert nt.check.direct_cable(lab)


def test_direct_cable_wrong(lab):
    lab.add_netns("a")
    assert problems(nt.check.direct_cable(lab)) == ["the lab has no namespace 'b' (lab.add_netns('b'))"]
    build_direct_cable(lab, b_up=False)
    assert problems(nt.check.direct_cable(lab)) == ["eth0 in 'b' is not up (lab.set_up('b', 'eth0'))"]


def test_direct_cable_through_the_host_is_not_direct(lab):
    for ns in ("a", "b"):
        lab.add_netns(ns)
        lab.add_veth(f"v{ns}", "eth0", peer_netns=ns)
    assert problems(nt.check.direct_cable(lab)) == [
        "no veth cable joins 'a' and 'b' directly (lab.add_veth('eth0', 'eth0', netns='a', peer_netns='b'))"]


def test_direct_cable_names_the_ends(lab):
    lab.add_netns("a")
    lab.add_netns("b")
    lab.add_veth("x", "y", netns="a", peer_netns="b")
    got = problems(nt.check.direct_cable(lab))
    assert "the cable's end in 'a' is called 'x', the task asks for 'eth0'" in got
    assert "y in 'b' has no address 10.1.0.2/24 (lab.add_addr('b', 'y', '10.1.0.2/24'))" in got


def build_bridge(lab, enslave_s2=True):
    lab.add_bridge("br0")
    lab.set_up("host", "br0")
    for ns, cidr in (("s1", "10.2.0.1/24"), ("s2", "10.2.0.2/24")):
        lab.add_netns(ns)
        lab.add_veth(f"v{ns}", "eth0", peer_netns=ns)
        if ns == "s1" or enslave_s2:
            lab.set_master(f"v{ns}", "br0")
        lab.set_up("host", f"v{ns}")
        lab.add_addr(ns, "eth0", cidr)
        lab.set_up(ns, "eth0")


def test_two_on_a_bridge_solved(lab):
    build_bridge(lab)
    assert nt.check.two_on_a_bridge(lab)


def test_two_on_a_bridge_wrong(lab):
    got = problems(nt.check.two_on_a_bridge(lab))
    assert got[0] == "the host has no bridge 'br0' (lab.add_bridge('br0'))"
    build_bridge(lab, enslave_s2=False)
    assert problems(nt.check.two_on_a_bridge(lab)) == [
        "vs2 (the host end of 's2''s cable) is not a port of br0 (lab.set_master('vs2', 'br0'))"]


# ---- notebook 02 -------------------------------------------------------------------------

def build_article_model(lab, ns, host_end, net, route=True):
    """The article's model, correctly: host end stays, the other end moves in."""
    lab.add_netns(ns)
    lab.add_veth(host_end, "eth0")
    lab.set_netns("eth0", ns)
    lab.add_addr("host", host_end, f"{net}.1/24")
    lab.add_addr(ns, "eth0", f"{net}.2/24")
    lab.set_up("host", host_end)
    lab.set_up(ns, "eth0")
    if route:
        lab.add_route(ns, "default", via=f"{net}.1")


def test_second_container_solved(lab):
    build_article_model(lab, "c2", "veth2", "10.0.2")
    assert nt.check.second_container(lab)


def test_second_container_without_route(lab):
    build_article_model(lab, "c2", "veth2", "10.0.2", route=False)
    assert problems(nt.check.second_container(lab)) == [
        "c2 has no default route (lab.add_route('c2', 'default', via='10.0.2.1'))"]


def test_second_container_wrong_end_moved(lab):
    lab.add_netns("c2")
    lab.add_veth("veth2", "eth0")
    lab.set_netns("veth2", "c2")  # code block 1's mistake
    got = problems(nt.check.second_container(lab))
    assert len(got) == 1 and got[0].startswith("veth2 is inside 'c2': it is the host's end")


def test_second_container_other_end_not_moved(lab):
    lab.add_netns("c2")
    lab.add_veth("veth2", "eth0")
    assert problems(nt.check.second_container(lab)) == [
        "the other end of veth2 is still in 'host', not in 'c2' (lab.set_netns('eth0', 'c2'))"]


def test_host_as_router(lab):
    build_article_model(lab, "my-container", "veth0", "10.0.0")
    build_article_model(lab, "c2", "veth2", "10.0.2")
    assert problems(nt.check.host_as_router(lab)) == [
        "the host does not forward packets: net.ipv4.ip_forward is 0 "
        "(lab.sysctl('host', 'net.ipv4.ip_forward', 1))"]
    lab.sysctl("host", "net.ipv4.ip_forward", 1)
    assert nt.check.host_as_router(lab)
    lab.delete_route("c2", "default")
    assert problems(nt.check.host_as_router(lab)) == [
        "c2 has no route to 10.0.0.2 (a default route via its gateway)"]


def build_docker0(lab, ns, ip, address_on_host_end=False):
    lab.add_bridge("docker0")
    lab.add_addr("host", "docker0", "172.17.0.1/16")
    lab.set_up("host", "docker0")
    lab.add_netns(ns)
    lab.add_veth(f"veth{ns}", "eth0", peer_netns=ns)
    lab.set_master(f"veth{ns}", "docker0")
    if address_on_host_end:
        lab.add_addr("host", f"veth{ns}", "172.17.0.100/16")
    lab.set_up("host", f"veth{ns}")
    lab.add_addr(ns, "eth0", f"{ip}/16")
    lab.set_up(ns, "eth0")
    lab.add_route(ns, "default", via="172.17.0.1")


def test_docker_way_solved(lab):
    build_docker0(lab, "c3", "172.17.0.3")
    assert nt.check.docker_way(lab)


def test_docker_way_wrong(lab):
    assert problems(nt.check.docker_way(lab)) == [
        "the host has no bridge 'docker0' (lab.add_bridge('docker0'))",
        "the lab has no namespace 'c3' (lab.add_netns('c3'))"]
    build_docker0(lab, "c3", "172.17.0.3", address_on_host_end=True)
    assert problems(nt.check.docker_way(lab)) == [
        "vethc3 has an address (172.17.0.100/16): Docker leaves the host end unnumbered, "
        "the gateway is docker0's address"]


def test_checks_are_exported():
    for name in ("loopback_up", "direct_cable", "two_on_a_bridge", "second_container", "host_as_router",
                 "docker_way"):
        assert callable(getattr(nt.check, name))


# ---- what the notebooks' CNI cells rely on -------------------------------------------------

def test_own_path_is_removed_by_destroy(lab_name, untouched_root):
    import os

    lab = nt.Lab(lab_name)
    path = lab.own_path(f"/run/netteach/cni-{lab_name}/")
    assert path == f"/run/netteach/cni-{lab_name}"
    assert lab.own_path(path) == path and lab._st.files.count(path) == 1  # a re-run cell
    os.makedirs(os.path.join(path, "demo-net"))
    with open(os.path.join(path, "demo-net", "10.22.0.2"), "w") as f:
        f.write("pod1")
    with pytest.raises(nt.InvalidName):
        lab.own_path("/var/lib/cni")
    with pytest.raises(nt.InvalidName):
        lab.own_path("/run/netteach/../../var/lib/cni")
    lab.destroy()
    assert not os.path.exists(path)
