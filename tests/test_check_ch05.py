"""The chapter 5 self-checks and the capture on the real kernel: each check passes on a solved lab
and names exactly what is missing on a wrong one."""

from __future__ import annotations

import pytest

import netteach as nt
from tests import ch5_build
from tests.conftest import needs_root, netteach_leftovers, problems

pytestmark = [needs_root, pytest.mark.kernel]


def _needs_vxlan():
    if not nt.doctor(show=False).has("vxlan"):
        pytest.skip("the kernel has no vxlan link type")


@pytest.fixture
def ov(lab_name, untouched_root):
    """Notebook 05's lab: node1/node2 on a LAN, overlay VNI 42 with c1 and c2 (MTU 1450)."""
    _needs_vxlan()
    lab = ch5_build.build(nt.Lab(lab_name))
    yield lab
    lab.destroy()
    assert netteach_leftovers(lab_name) == []


def test_checks_are_exported_by_name():
    from netteach.check import ch05

    for name in ch05.__all__:
        assert getattr(nt.check, name) is getattr(ch05, name)


def test_capture_shows_outer_udp_4789_and_inner_icmp(ov):
    cap = ov.capture("node1", "eth0", count=2, filter="udp port 4789 and icmp")
    assert ov.ping("c1", "10.0.9.3")
    assert len(cap) == 2
    out, back = cap
    assert out.direction == "out" and back.direction == "in"
    assert [n for n, _ in out.layers()][:7] == ["Ether", "IP", "UDP", "VXLAN", "Ether", "IP", "ICMP"]
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.layers.vxlan import VXLAN

    p = out.packet
    assert p[IP].src == "192.0.2.11" and p[IP].dst == "192.0.2.12" and p[UDP].dport == 4789
    assert p[VXLAN].vni == 42
    assert p[VXLAN].payload[IP].src == "10.0.9.2" and p[VXLAN].payload[ICMP].type == 8
    assert sum(size for _, size in out.layers()[:4]) + 14 == 64  # outer Ether+IP+UDP+VXLAN, inner Ether
    assert "VXLAN" in repr(cap) and "echo-request" in repr(cap)


def test_capture_filter_and_errors(ov):
    cap = ov.capture("c1", "eth0", count=5, filter="udp port 4789", timeout=0.3)
    assert ov.ping("c1", "10.0.9.3")
    assert len(cap) == 0  # inside the overlay nothing is wrapped
    with pytest.raises(nt.NetteachError, match="'port' needs a number"):
        ov.capture("c1", "eth0", filter="port x")
    with pytest.raises(nt.NetteachError, match="no interface 'eth9'"):
        ov.capture("c1", "eth9")


def test_vxlan_mtu_is_the_kernels(ov):
    snap = ov.snapshot()
    assert snap.interface("node1", "vxlan0").mtu == 1450  # eth0's 1500 - 50, set by the kernel
    assert snap.interface("node1", "vxlan0").kind == "vxlan"


# ---- exercise 1 ----------------------------------------------------------------------------------

def test_third_container_missing(ov):
    assert "the lab has no namespace 'c3'" in problems(nt.check.overlay_third_container(ov))


def test_third_container_mtu_too_big(ov):
    ch5_build.container(ov, "c3", "node2", "10.0.9.4/24", mtu=None)
    text = problems(nt.check.overlay_third_container(ov))
    assert "small pings pass but a full-size one (1500 bytes, c3's MTU) to 10.0.9.2 is lost" in text
    assert "lab.set_mtu('c3', 'eth0', 1450)" in text


def test_third_container_on_the_wrong_node(ov):
    ch5_build.container(ov, "c3", "node1", "10.0.9.4/24")
    assert "c3's eth0 is not a veth whose other end is in 'node2'" in problems(nt.check.overlay_third_container(ov))


def test_third_container_done(ov):
    ch5_build.container(ov, "c3", "node2", "10.0.9.4/24")
    r = nt.check.overlay_third_container(ov)
    assert r, r


# ---- exercise 2 ----------------------------------------------------------------------------------

def test_second_vni_missing(ov):
    text = problems(nt.check.second_vni(ov))
    assert "node1 has no VXLAN device with VNI 43" in text and "node2 has no VXLAN device with VNI 43" in text


def test_second_vni_on_the_same_bridge(ov):
    ch5_build.overlay(ov, vni=43, bridge="br0", vxlan="vxlan1", subnet="10.0.10", names=("b1", "b2"))
    assert "on node1 VNI 43 is plugged into br0, the bridge of VNI 42" in problems(nt.check.second_vni(ov))


def test_second_vni_done(ov):
    ch5_build.overlay(ov, vni=43, bridge="br1", vxlan="vxlan1", subnet="10.0.10", names=("b1", "b2"))
    r = nt.check.second_vni(ov)
    assert r, r
    assert not ov.ping("b1", "10.0.9.2")  # another network: no way across


# ---- exercise 3 ----------------------------------------------------------------------------------

def test_jumbo_underlay_missing(ov):
    text = problems(nt.check.jumbo_underlay(ov))
    assert "node1's eth0 has MTU 1500, less than 1550" in text
    assert "vxlan0 on node1 still has MTU 1450" in text
    assert "c1's eth0 has MTU 1450" in text


def test_jumbo_underlay_done(lab_name, untouched_root):
    _needs_vxlan()
    with nt.Lab(lab_name) as lab:
        ch5_build.underlay(lab)
        for i, node in ((1, "node1"), (2, "node2")):
            lab.set_mtu("host", f"port{i}", 1550)
            lab.set_mtu(node, "eth0", 1550)
        ch5_build.overlay(lab, mtu=None)
        assert lab.snapshot().interface("node1", "vxlan0").mtu == 1500  # 1550 - 50, by the kernel
        r = nt.check.jumbo_underlay(lab)
        assert r, r
    assert netteach_leftovers(lab_name) == []
