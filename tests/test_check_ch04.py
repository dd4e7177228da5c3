"""The chapter 4 self-checks on the real kernel: each passes on a solved lab and names exactly what
is missing on a wrong one."""

from __future__ import annotations

import pytest

import netteach as nt
from tests.conftest import needs_root, netteach_leftovers, problems

pytestmark = [needs_root, pytest.mark.kernel]


@pytest.fixture
def dh(lab_name, untouched_root):
    """Notebook 04's user network: appnet with api (alias db-api) and client."""
    dh = nt.DockerHost(lab_name)
    dh.network_create("appnet", subnet="10.20.0.0/24")
    dh.run("api", network="appnet", aliases=["db-api"])
    dh.run("client", network="appnet")
    yield dh
    dh.destroy()
    assert netteach_leftovers(lab_name) == []


@pytest.fixture
def mv(lab_name, untouched_root):
    if not nt.doctor(show=False).has("macvlan"):
        pytest.skip("the kernel has no macvlan link type")
    lab = nt.Lab(lab_name)
    lab.add_netns("lan")
    lab.add_veth("eth0", "eth0", peer_netns="lan")
    lab.add_addr("lan", "eth0", "192.168.50.1/24")
    lab.set_up("lan", "eth0")
    lab.add_addr("host", "eth0", "192.168.50.2/24")
    lab.set_up("host", "eth0")
    for i in (1, 2):
        lab.add_netns(f"m{i}")
        lab.add_macvlan(f"mv{i}", "eth0")
        lab.set_netns(f"mv{i}", f"m{i}")
        lab.add_addr(f"m{i}", f"mv{i}", f"192.168.50.1{i}/24")
        lab.set_up(f"m{i}", f"mv{i}")
    yield lab
    lab.destroy()
    assert netteach_leftovers(lab_name) == []


def test_checks_are_exported_by_name():
    from netteach.check import ch04

    for name in ch04.__all__:
        assert getattr(nt.check, name) is getattr(ch04, name)


def test_network_alias_missing(dh):
    assert "no container 'cache'" in problems(nt.check.network_alias(dh))
    dh.run("cache", network="appnet")
    assert "client cannot resolve 'redis'" in problems(nt.check.network_alias(dh))


def test_network_alias_on_the_wrong_container(dh):
    dh.run("cache", network="appnet")
    dh.run("other", network="appnet", aliases=["redis"])
    assert "'redis' resolves to 10.20.0.5 in client, not to cache (10.20.0.4)" in problems(nt.check.network_alias(dh))


def test_network_alias_done(dh):
    dh.run("cache", network="appnet", aliases=["redis"])
    r = nt.check.network_alias(dh)
    assert r, r


def test_db_behind_api_wrong(dh):
    dh.network_create("backend")
    dh.run("db", network="backend")
    text = problems(nt.check.db_behind_api(dh))
    assert "api is not connected to 'backend'" in text
    dh.network_connect("backend", "api")
    dh.network_connect("backend", "client")
    text = problems(nt.check.db_behind_api(dh))
    assert "client is on 'backend' too" in text


def test_db_behind_api_done(dh):
    dh.network_create("backend")
    dh.run("db", network="backend")
    dh.network_connect("backend", "api")
    r = nt.check.db_behind_api(dh)
    assert r, r


def test_macvlan_host_shim(mv):
    text = problems(nt.check.macvlan_host_shim(mv))
    assert "the host has no macvlan interface on eth0" in text and "the host cannot ping m1 at 192.168.50.11" in text
    mv.add_macvlan("mv-host", "eth0")
    mv.add_addr("host", "mv-host", "192.168.50.3/32")
    assert "mv-host is down" in problems(nt.check.macvlan_host_shim(mv))
    mv.set_up("host", "mv-host")
    mv.add_route("host", "192.168.50.8/29", dev="mv-host")
    r = nt.check.macvlan_host_shim(mv)
    assert r, r


def test_ipvlan_missing_says_so(lab):
    if nt.doctor(show=False).has("ipvlan"):
        lab.add_veth("eth0", "eth1")
        lab.add_ipvlan("iv0", "eth0")
        assert lab.snapshot().interface("host", "iv0").kind == "ipvlan"
    else:
        lab.add_veth("eth0", "eth1")
        with pytest.raises(nt.NetteachError, match="cannot make ipvlan links"):
            lab.add_ipvlan("iv0", "eth0")
