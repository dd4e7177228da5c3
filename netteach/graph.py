"""A snapshot as a networkx graph: namespaces, interfaces and the cables between them.

The graph is plain data that a student can query with networkx; its shape is
part of the contract (see API.md, "The graph"):

- a node ``"netns:<name>"`` per namespace (``kind="netns"``, ``name``,
  ``kernel_name``, ``lab``, ``note``);
- a node ``"if:<netns>/<ifname>"`` per interface (``kind="interface"``,
  ``ifname``, ``netns``, ``type``, ``mac``, ``mtu``, ``state``, ``admin_up``,
  ``addresses``, ``master``, ``alias``);
- on a Docker host (a real dockerd or a DockerHost): ``network`` on each
  bridge's node, ``published`` (``["0.0.0.0:8080 -> web:80"]``) on the
  host's namespace node, ``container`` and ``container_id`` on containers';
- edges, keyed by their ``kind``: ``"in"`` (interface -- its namespace),
  ``"veth"`` (one per pair, between its two ends) and ``"port"``
  (interface -- the bridge it is enslaved to, ``ip link set ... master``).

>>> from netteach.snapshot import Snapshot, Namespace, Interface
>>> snap = Snapshot(namespaces=[
...     Namespace("host", interfaces=[Interface("host", "veth0", kind="veth", peer=("c1", "eth0"),
...                                             addresses=["10.0.0.1/24"], state="UP")]),
...     Namespace("c1", interfaces=[Interface("c1", "eth0", kind="veth", peer=("host", "veth0"),
...                                           addresses=["10.0.0.2/24"], state="UP")]),
... ])
>>> g = to_graph(snap)
>>> g.nodes["if:c1/eth0"]["addresses"]
['10.0.0.2/24']
>>> veth_pairs(g)
[('if:c1/eth0', 'if:host/veth0')]
>>> path(g, "c1", "host")
['netns:c1', 'if:c1/eth0', 'if:host/veth0', 'netns:host']

Introduced in the chapter 2 notebook, where the first veth pair is drawn.
"""

from __future__ import annotations

import networkx as nx

from netteach import firewall
from netteach.errors import NoSuchInterface, NoSuchNamespace

#: edge kinds a frame can cross without being routed (used by :func:`path`)
L2_EDGES = frozenset({"veth", "port", "vxlan"})


def node_id(netns, ifname=None) -> str:
    """The node id of a namespace (``"netns:c1"``) or of one of its interfaces (``"if:c1/eth0"``).

    >>> node_id("c1"), node_id("c1", "eth0")
    ('netns:c1', 'if:c1/eth0')
    """
    return f"netns:{netns}" if ifname is None else f"if:{netns}/{ifname}"


def to_graph(snapshot) -> nx.MultiGraph:
    """The snapshot as a ``networkx.MultiGraph`` (schema in the module docstring).

    Edges are keyed by kind, so ``g.has_edge(a, b, "veth")`` asks whether a
    and b are the two ends of one veth pair.
    """
    g = nx.MultiGraph(lab=snapshot.lab)
    for ns in snapshot.namespaces:
        g.add_node(node_id(ns.name), kind="netns", name=ns.name, kernel_name=ns.kernel_name,
                   lab=ns.lab, note=ns.note, forwarding=ns.forwards,
                   firewall=firewall.summary(ns.ruleset, ns.sysctls, routes_between=sum(
                       1 for i in ns.interfaces if i.kind != "loopback") > 1))
        for i in ns.interfaces:
            me = node_id(ns.name, i.ifname)
            g.add_node(me, kind="interface", ifname=i.ifname, netns=ns.name, type=i.kind,
                       mac=i.mac, mtu=i.mtu, state=i.state, admin_up=i.admin_up,
                       addresses=list(i.addresses), master=i.master, alias=i.alias)
            g.add_edge(me, node_id(ns.name), key="in", kind="in")
    _docker(g, snapshot)
    for ns in snapshot.namespaces:
        for i in ns.interfaces:
            me = node_id(ns.name, i.ifname)
            bridge = node_id(ns.name, i.master) if i.master else None
            if bridge in g:
                g.add_edge(me, bridge, key="port", kind="port")
            peer = node_id(*i.peer) if i.peer else None
            if i.kind == "veth" and peer in g:  # both ends name each other: the key keeps one edge
                g.add_edge(me, peer, key="veth", kind="veth")
    return g


def _docker(g, snapshot) -> None:
    """Docker's names on the graph: ``network`` on bridges, ``published`` ports on the host, a
    ``container`` / ``container_id`` on each container's namespace."""
    m, host = getattr(snapshot, "docker", None), getattr(snapshot, "docker_host", None)
    if m is None or host is None or node_id(host) not in g:
        return
    for bridge, name in m.bridge_networks().items():
        if node_id(host, bridge) in g:
            g.nodes[node_id(host, bridge)]["network"] = name
    g.nodes[node_id(host)]["published"] = [str(p) for p in m.ports]
    for c in m.containers:
        if node_id(c.name) in g:
            g.nodes[node_id(c.name)].update(container=c.name, container_id=c.id)


def veth_pairs(g) -> list[tuple[str, str]]:
    """Every veth pair as ``(end, end)`` node ids, sorted, like ``ip -br link show type veth`` on both sides.

    >>> from netteach.snapshot import Snapshot
    >>> veth_pairs(to_graph(Snapshot()))
    []
    """
    return sorted(tuple(sorted((u, v))) for u, v, kind in g.edges(data="kind") if kind == "veth")


def bridge_ports(g, netns, bridge) -> list[str]:
    """The node ids of the ports of ``bridge`` in ``netns``, like ``bridge link show master br0``.

    Raises :class:`~netteach.errors.NoSuchNamespace` or
    :class:`~netteach.errors.NoSuchInterface` when either is not in the graph.
    """
    _check_netns(g, netns)
    me = node_id(netns, bridge)
    if me not in g:
        raise NoSuchInterface(f"no interface {bridge!r} in namespace {netns!r}")
    return sorted(port for _, port, kind in g.edges(me, data="kind") if kind == "port")


def path(g, src_netns, dst_netns) -> list[str] | None:
    """The shortest cable path from one namespace to another, as node ids; None if there is none.

    The path goes only through interfaces, veth cables and bridges (layer 2):
    it never crosses a third namespace, because that would need routing.
    For any path at all, use ``networkx.shortest_path(g, "netns:a", "netns:b")``.
    """
    src, dst = _check_netns(g, src_netns), _check_netns(g, dst_netns)

    def layer2(u, v, key):
        kind = g.edges[u, v, key]["kind"]
        return kind in L2_EDGES or (kind == "in" and (src in (u, v) or dst in (u, v)))

    try:
        return nx.shortest_path(nx.subgraph_view(g, filter_edge=layer2), src, dst)
    except nx.NetworkXNoPath:
        return None


def _check_netns(g, netns) -> str:
    me = node_id(netns)
    if g.nodes.get(me, {}).get("kind") != "netns":
        known = ", ".join(sorted(d["name"] for _, d in g.nodes(data=True) if d["kind"] == "netns"))
        raise NoSuchNamespace(f"no namespace {netns!r} in this graph (it has: {known or 'none'})")
    return me
