"""The snapshot holds each namespace's nftables ruleset (nft -j) and forwarding sysctls; the picture shows
what a host forwards, publishes and masquerades."""

from __future__ import annotations

import pytest

from netteach import draw, firewall
from netteach.graph import to_graph
from tests.conftest import needs_root
from tests.fixtures import bridge_lab

DNAT = {"rule": {"family": "ip", "table": "nat", "chain": "DOCKER", "handle": 5, "expr": [
    {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
    {"dnat": {"addr": "172.17.0.2", "port": 80}}]}}
MASQ = {"rule": {"family": "ip", "table": "nat", "chain": "POSTROUTING", "handle": 7, "expr": [
    {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
               "right": {"prefix": {"addr": "172.17.0.0", "len": 16}}}},
    {"masquerade": None}]}}


def texts(fig) -> set:
    return {t.get_text() for t in fig.axes[0].texts}


def test_picture_shows_forwarding_published_ports_and_masquerade():
    before = bridge_lab(1)
    after = bridge_lab(1)
    host = after.namespace("host")
    host.ruleset = [DNAT, MASQ]
    host.sysctls = {"net.ipv4.ip_forward": "1"}
    g = to_graph(after)
    assert g.nodes["netns:host"]["firewall"] == [
        "forwards (ip_forward=1)", "publishes tcp 8080→172.17.0.2:80", "masquerades 172.17.0.0/16"]
    assert g.nodes["netns:host"]["forwarding"] is True
    shown = texts(draw.draw(after))
    assert {"publishes tcp 8080→172.17.0.2:80", "masquerades 172.17.0.0/16"} <= shown
    assert not any(t.startswith(("publishes", "masquerades", "forwards")) for t in texts(draw.draw(before)))


def test_a_container_does_not_claim_to_forward():
    snap = bridge_lab(1)
    snap.namespace("c1").sysctls = {"net.ipv4.ip_forward": "1"}  # inherited: nothing to route between
    assert to_graph(snap).nodes["netns:c1"]["firewall"] == []


def test_snapshot_round_trips_its_firewall():
    from netteach.snapshot import Snapshot

    snap = bridge_lab(1)
    snap.namespace("host").ruleset = [DNAT]
    snap.namespace("host").sysctls = {"net.ipv4.ip_forward": "0"}
    back = Snapshot.from_dict(snap.to_dict())
    assert back.namespace("host").ruleset == [DNAT] and back.namespace("host").forwards is False
    assert firewall.published(back.namespace("host").ruleset)[0]["port"] == 8080


@needs_root
@pytest.mark.kernel
def test_snapshot_reads_rulesets_and_sysctls_from_the_kernel(lab_name, untouched_root):
    import netteach as nt

    with nt.DockerHost(lab_name) as dh:
        plain = dh.snapshot().namespace("host")
        assert plain.forwards is True and plain.sysctls["net.ipv4.conf.all.rp_filter"] is not None
        assert firewall.published(plain.ruleset) == []
        dh.run("web", publish={8080: 80})
        snap = dh.snapshot()
        host = snap.namespace("host")
        assert {"proto": "tcp", "port": 8080, "to": "172.17.0.2", "to_port": 80} in firewall.published(host.ruleset)
        assert "172.17.0.0/16" in firewall.masquerades(host.ruleset)
        chains = {(o["chain"]["table"], o["chain"]["name"]) for o in host.ruleset if "chain" in o}
        assert ("filter", "DOCKER-USER") in chains
        assert snap.namespace("internet").ruleset == []
        # a DockerHost's picture lists Docker's published ports by container (the DNAT summary's line for
        # the same port is not repeated)
        assert "published 0.0.0.0:8080 -> web:80" in texts(dh.draw())
