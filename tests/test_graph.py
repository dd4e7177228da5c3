"""The graph's shape is part of the contract (API.md, "The graph")."""

from collections import Counter

import networkx as nx
import pytest

from netteach import NoSuchInterface, NoSuchNamespace
from netteach.graph import bridge_ports, node_id, path, to_graph, veth_pairs
from netteach.snapshot import Snapshot
from tests.fixtures import article_two_ns, bridge_lab, fresh_ns, mixed_lab


def edge_kinds(g):
    return Counter(kind for _, _, kind in g.edges(data="kind"))


def test_article_nodes_and_attributes():
    g = to_graph(article_two_ns())
    assert isinstance(g, nx.MultiGraph)
    assert set(g) == {"netns:host", "netns:my-container", "if:host/lo", "if:host/veth0",
                      "if:my-container/lo", "if:my-container/veth1"}
    assert g.nodes["netns:my-container"] == {
        "kind": "netns", "name": "my-container", "kernel_name": "nt-article-my-container",
        "lab": "article", "note": "", "forwarding": None, "firewall": []}
    veth1 = g.nodes["if:my-container/veth1"]
    assert veth1 == {
        "kind": "interface", "ifname": "veth1", "netns": "my-container", "type": "veth",
        "mac": veth1["mac"], "mtu": 1500, "state": "UP", "admin_up": True,
        "addresses": ["10.0.0.2/24"], "master": None, "alias": None}
    assert g.nodes["if:host/lo"]["type"] == "loopback"
    assert g.graph["lab"] == "article"


def test_article_edges():
    g = to_graph(article_two_ns())
    assert edge_kinds(g) == {"in": 4, "veth": 1}
    assert g.has_edge("if:host/veth0", "if:my-container/veth1", "veth")
    assert g.has_edge("if:my-container/veth1", "netns:my-container", "in")
    assert veth_pairs(g) == [("if:host/veth0", "if:my-container/veth1")]


def test_addresses_are_a_copy():
    snap = article_two_ns()
    g = to_graph(snap)
    g.nodes["if:host/veth0"]["addresses"].append("10.0.0.9/24")
    assert snap.interface("host", "veth0").addresses == ["10.0.0.1/24"]


@pytest.mark.parametrize("n", [0, 1, 5])
def test_bridge_lab_counts(n):
    g = to_graph(bridge_lab(n))
    kinds = Counter(d["kind"] for _, d in g.nodes(data=True))
    assert kinds == {"netns": n + 1, "interface": 2 + 3 * n}  # host lo+br0; per container lo, eth0, vethK
    assert edge_kinds(g) == ({"in": 2 + 3 * n, "veth": n, "port": n} if n else {"in": 2})
    assert len(veth_pairs(g)) == n


def test_bridge_ports_and_master():
    g = to_graph(bridge_lab(3))
    assert bridge_ports(g, "host", "br0") == ["if:host/veth1", "if:host/veth2", "if:host/veth3"]
    assert g.nodes["if:host/veth2"]["master"] == "br0"
    assert g.nodes["if:host/br0"]["type"] == "bridge"
    assert bridge_ports(g, "c1", "eth0") == []
    with pytest.raises(NoSuchInterface, match="'br9'"):
        bridge_ports(g, "host", "br9")
    with pytest.raises(NoSuchNamespace, match="'nope'"):
        bridge_ports(g, "nope", "br0")


def test_one_veth_edge_per_pair_and_none_for_missing_peer():
    g = to_graph(mixed_lab())
    pairs = veth_pairs(g)
    assert len(pairs) == len(set(pairs)) == 4  # veth1, veth2, vdown, link1<->link2; not orphan0
    assert ("if:c3/link1", "if:c4/link2") in pairs
    assert not any("orphan0" in a or "orphan0" in b for a, b in pairs)
    assert "if:host/orphan0" in g  # the interface itself is still there
    assert bridge_ports(g, "host", "br0") == ["if:host/veth1", "if:host/veth2", "if:host/vxlan0"]


def test_path_through_bridge():
    g = to_graph(bridge_lab(3))
    assert path(g, "c1", "c3") == ["netns:c1", "if:c1/eth0", "if:host/veth1", "if:host/br0",
                                   "if:host/veth3", "if:c3/eth0", "netns:c3"]
    assert path(g, "host", "c2") == ["netns:host", "if:host/veth2", "if:c2/eth0", "netns:c2"]
    assert path(g, "c2", "c2") == ["netns:c2"]


def test_path_is_layer2_only():
    g = to_graph(mixed_lab())
    # c4 reaches the host only through c3, which would have to route: no cable path
    assert path(g, "c4", "host") is None
    assert path(g, "c4", "c3") == ["netns:c4", "if:c4/link2", "if:c3/link1", "netns:c3"]
    assert path(g, "lonely", "host") is None
    assert nx.has_path(g, "netns:c4", "netns:host")  # the full graph still connects them


def test_path_unknown_namespace():
    g = to_graph(article_two_ns())
    with pytest.raises(NoSuchNamespace, match="'red'.*host, my-container"):
        path(g, "red", "host")
    with pytest.raises(LookupError):
        path(g, "host", "blue")


def test_fresh_and_empty():
    g = to_graph(fresh_ns())
    assert g.nodes["if:fresh/lo"]["state"] == "DOWN"
    assert edge_kinds(g) == {"in": 1}
    assert to_graph(Snapshot()).number_of_nodes() == 0
    assert node_id("fresh", "lo") in g


def test_summary_counts_pairs_with_one_end_outside():
    """A veth whose other end is outside the snapshot is one pair, not half of one."""
    from netteach.snapshot import Interface, Namespace

    def veth(ns, name, peer):
        return Interface(ns, name, kind="veth", peer=peer, state="UP")

    snap = Snapshot(namespaces=[
        Namespace("host", interfaces=[veth("host", "v0", ("c1", "eth0")), veth("host", "v1", None),
                                      veth("host", "v2", None)]),
        Namespace("c1", interfaces=[veth("c1", "eth0", ("host", "v0")), veth("c1", "eth1", ("elsewhere", "x"))]),
    ])
    assert snap.summary() == "2 netns, 4 veth pairs (3 with one end outside)"
    assert repr(bridge_lab(3)) == "<Snapshot: 4 netns, 3 veth pairs, 1 bridge>"
    assert "veth" not in fresh_ns().summary()
