"""Notebook 07's DockerHost options and self-checks on the real kernel: ICC off, internal networks,
-p on 127.0.0.1, direct access; each check passes on a solved lab and names what is missing."""

from __future__ import annotations

import pytest

import netteach as nt
from tests.conftest import needs_root, netteach_leftovers, problems

pytestmark = [needs_root, pytest.mark.kernel]

EGRESS = """
flush chain ip filter DOCKER-USER
add rule ip filter DOCKER-USER ct state related,established counter return
add rule ip filter DOCKER-USER iifname "docker0" oifname "eth0" ip daddr 203.0.113.10 tcp dport 80 counter return
add rule ip filter DOCKER-USER iifname "docker0" oifname "eth0" counter drop
"""


@pytest.fixture
def dh(lab_name, untouched_root):
    """Notebook 07's host: web (-p 8080:80, serves 80) and w1 (serves 80) on the default bridge."""
    dh = nt.DockerHost(lab_name)
    dh.run("web", publish=["8080:80"], serve=80)
    dh.run("w1", serve=80)
    dh.serve("internet", 80)  # a web site at 203.0.113.10
    yield dh
    dh.destroy()
    assert netteach_leftovers(lab_name) == []


def test_checks_are_exported_by_name():
    from netteach.check import ch07

    for name in ch07.__all__:
        assert getattr(nt.check, name) is getattr(ch07, name)


def test_icc_off_drops_peers_only(dh):
    dh.network_create("private", options={"com.docker.network.bridge.enable_icc": "false"})
    dh.run("p1", network="private")
    dh.run("p2", network="private", serve=80)
    assert dh.sysctl("host", "net.bridge.bridge-nf-call-iptables") in (1, "1")
    r = dh.reachability(among=["p1", "p2", "internet", "host"])
    assert not r.can_ping("p1", "p2") and not r.can_get("p1", "p2:80")
    assert r.can_ping("p1", "internet") and r.can_ping("p1", "host") and r.can_get("host", "p2:80")
    assert nt.check.icc_off_network(dh)
    bridge = dh._nets["private"]["bridge"]
    rules = [line.strip() for line in str(dh.rules("FORWARD")).splitlines() if "counter" in line]
    assert rules[-1].startswith(f'iifname "{bridge}" oifname "{bridge}" counter') and rules[-1].endswith("drop")
    assert dh.exec("p1", "getent hosts p2").returncode == 0, "the embedded DNS still answers"


def test_icc_off_network_wrong(dh):
    assert "no container 'p1'" in problems(nt.check.icc_off_network(dh))
    dh.network_create("private")
    dh.run("p1", network="private")
    dh.run("p2", network="private", serve=80)
    assert "p1 still reaches p2" in problems(nt.check.icc_off_network(dh))


def test_internal_network(dh):
    dh.network_create("vault", internal=True)
    dh.run("v1", network="vault", serve=80)
    dh.run("v2", network="vault", publish=["9090:80"])
    r = dh.reachability(among=["v1", "v2", "host", "internet", "w1"])
    assert r.can_ping("v1", "v2") and r.can_ping("v1", "host") and r.can_ping("host", "v1")
    assert not r.can_ping("v1", "internet") and not r.can_ping("internet", "v1")
    assert not r.can_ping("w1", "v1") and not r.can_get("w1", "v1:80")
    assert dh._ctrs["v2"]["ports"] == {}, "-p is ignored on an internal network"
    assert "masquerade" not in "".join(l for l in str(dh.rules("POSTROUTING")).splitlines()
                                       if dh._nets["vault"]["subnet"] in l)
    assert dh.dig("v1", "server.example").returncode == 9, "forwarded DNS is dropped too: no reply"
    assert "(internal)" in str(dh.networks())


def test_publish_on_localhost_only(dh):
    dh.run("web2", publish=["127.0.0.1:8081:80"], serve=80)
    assert dh.http_get("host", "127.0.0.1", 8081)
    assert not dh.http_get("host", "198.51.100.2", 8081)
    assert not dh.http_get("internet", "198.51.100.2", 8081)
    assert "ip daddr 127.0.0.1 " in str(dh.rules("DOCKER"))
    assert dh.inspect("web2")["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] == "8081"
    with pytest.raises(nt.NetteachError, match="IP:HOST:CONTAINER"):
        dh.run("bad", publish=["80"])


def test_egress_allowlist(dh):
    assert "w1 can still ping 203.0.113.10" in problems(nt.check.egress_allowlist(dh))
    no_ct = EGRESS.replace("add rule ip filter DOCKER-USER ct state related,established counter return\n", "")
    dh.exec("host", ["nft", "-f", "-"], input=no_ct)
    assert "the internet no longer reaches the published port" in problems(nt.check.egress_allowlist(dh))
    dh.exec("host", ["nft", "-f", "-"], input=EGRESS)
    r = nt.check.egress_allowlist(dh)
    assert r, r


def test_direct_access(dh):
    dh.run("web2", publish=["127.0.0.1:8081:80"], serve=80)
    assert "the internet has no route" in problems(nt.check.direct_access_closed(dh))
    dh.add_route("internet", "172.17.0.0/16", via="198.51.100.2")
    text = problems(nt.check.direct_access_closed(dh))
    assert "the internet reaches web directly at 172.17.0.2:80" in text
    assert "the internet reaches web2 directly at" in text, "127.0.0.1-only ports too"
    assert "w1" not in text, "FORWARD policy drop: unpublished ports stay closed"
    dh.exec("host", "nft add rule ip filter DOCKER-USER iifname eth0 oifname docker0 "
                    "ct original ip daddr 172.17.0.0/16 counter drop")
    r = nt.check.direct_access_closed(dh)
    assert r, r
