"""Hand-written snapshots for the tests of the pure layers (graph, draw); no kernel needed.

Each function returns a fresh :class:`~netteach.snapshot.Snapshot` shaped like
what :mod:`netteach.inspect` reads from a real lab.

>>> article_two_ns()
<Snapshot: 2 netns, 1 veth pair>
>>> bridge_lab(3)
<Snapshot: 4 netns, 3 veth pairs, 1 bridge>
"""

from netteach.snapshot import Interface, Namespace, Route, Snapshot


def _lo(netns, up=True):
    return Interface(netns, "lo", kind="loopback", index=1, mac="00:00:00:00:00:00", mtu=65536,
                     state="UNKNOWN" if up else "DOWN", admin_up=up,
                     addresses=["127.0.0.1/8"] if up else [])


def _veth(netns, ifname, peer, addresses=(), master=None, index=2, up=True):
    return Interface(netns, ifname, kind="veth", index=index, mac=f"02:42:ac:11:{index // 256:02x}:{index % 256:02x}",
                     mtu=1500, state="UP" if up else "DOWN", admin_up=up,
                     addresses=list(addresses), master=master, peer=peer)


def article_two_ns():
    """host + my-container joined by veth0 (10.0.0.1/24) <-> veth1 (10.0.0.2/24), both up."""
    return Snapshot(lab="article", namespaces=[
        Namespace("host", kernel_name="nt-article-host", lab="article", interfaces=[
            _lo("host"),
            _veth("host", "veth0", ("my-container", "veth1"), ["10.0.0.1/24"], index=2),
        ], routes=[Route("host", "10.0.0.0/24", dev="veth0", scope="link", proto="kernel",
                         src="10.0.0.1")]),
        Namespace("my-container", kernel_name="nt-article-my-container", lab="article", interfaces=[
            _lo("my-container"),
            _veth("my-container", "veth1", ("host", "veth0"), ["10.0.0.2/24"], index=3),
        ], routes=[Route("my-container", "10.0.0.0/24", dev="veth1", scope="link",
                         proto="kernel", src="10.0.0.2")]),
    ])


def bridge_lab(n):
    """Docker's default network: host with br0 172.17.0.1/16, containers c1..cn on it.

    Container ``ck`` has ``eth0`` 172.17.x.y/16 whose peer ``vethk`` in the
    host is a port of br0, and a default route via 172.17.0.1.
    """
    host = Namespace("host", kernel_name="nt-bl-host", lab="bl", interfaces=[
        _lo("host"),
        Interface("host", "br0", kind="bridge", index=2, mac="02:42:ac:11:00:01", mtu=1500,
                  state="UP", admin_up=True, addresses=["172.17.0.1/16"]),
    ], routes=[Route("host", "172.17.0.0/16", dev="br0", scope="link", proto="kernel",
                     src="172.17.0.1")])
    containers = []
    for k in range(1, n + 1):
        name, ip = f"c{k}", f"172.17.{(k + 1) // 256}.{(k + 1) % 256}"
        host.interfaces.append(_veth("host", f"veth{k}", (name, "eth0"), master="br0",
                                     index=2 + 2 * k))
        containers.append(Namespace(name, kernel_name=f"nt-bl-{name}", lab="bl",
                                    note="container", interfaces=[
            _lo(name),
            _veth(name, "eth0", ("host", f"veth{k}"), [f"{ip}/16"], index=3 + 2 * k),
        ], routes=[Route(name, "default", gateway="172.17.0.1", dev="eth0"),
                   Route(name, "172.17.0.0/16", dev="eth0", scope="link", proto="kernel", src=ip)]))
    return Snapshot(lab="bl", namespaces=[host, *containers])


def fresh_ns():
    """One namespace just made by ``ip netns add fresh``: only lo, and lo is DOWN."""
    return Snapshot(lab="fresh", namespaces=[
        Namespace("fresh", kernel_name="nt-fresh-fresh", lab="fresh", interfaces=[_lo("fresh", up=False)]),
    ])


def mixed_lab():
    """Odd shapes: a down veth cable, a direct cable between two containers, a vxlan port,
    a macvlan, a veth whose peer is not in the snapshot, and an isolated namespace."""
    snap = bridge_lab(2)
    host = snap.namespace("host")
    host.interfaces += [
        Interface("host", "vxlan0", kind="vxlan", index=20, state="UP", master="br0",
                  details={"id": 42}),
        Interface("host", "eth0", kind="other", index=21, state="UP", addresses=["192.168.1.5/24"]),
        Interface("host", "mv0", kind="macvlan", index=22, state="UP"),
        _veth("host", "orphan0", ("elsewhere", "eth9"), index=23),
        _veth("host", "vdown", ("c3", "eth0"), index=24, up=False),
    ]
    snap.namespaces += [
        Namespace("c3", interfaces=[_lo("c3"), _veth("c3", "eth0", ("host", "vdown"), index=25),
                                    _veth("c3", "link1", ("c4", "link2"), ["10.9.0.1/30"], index=26)]),
        Namespace("c4", interfaces=[_lo("c4"), _veth("c4", "link2", ("c3", "link1"), ["10.9.0.2/30"], index=27)]),
        Namespace("lonely", interfaces=[_lo("lonely", up=False)]),
    ]
    return snap


def two_networks(n, m=3):
    """Docker's default network with ``n`` containers (``bridge_lab``) plus a second bridge
    ``br1`` 172.18.0.1/16 with ``m`` containers b1..bm, as after ``docker network create``."""
    snap = bridge_lab(n)
    host = snap.namespace("host")
    host.interfaces.append(Interface("host", "br1", kind="bridge", index=9000, mac="02:42:ac:12:00:01",
                                     mtu=1500, state="UP", admin_up=True, addresses=["172.18.0.1/16"]))
    for k in range(1, m + 1):
        name = f"b{k}"
        host.interfaces.append(_veth("host", f"vb{k}", (name, "eth0"), master="br1", index=9000 + 2 * k))
        snap.namespaces.append(Namespace(name, lab="bl", note="container (backend)", interfaces=[
            _lo(name), _veth(name, "eth0", ("host", f"vb{k}"), [f"172.18.0.{k + 1}/16"], index=9001 + 2 * k)]))
    return snap


def empty_bridge_host():
    """A fresh Docker host: docker0 with no port yet ("no carrier"), many host interfaces, and the
    uplink cable to an ``internet`` namespace."""
    host = Namespace("host", note="Docker host", interfaces=[
        _lo("host"),
        Interface("host", "docker0", kind="bridge", index=2, mac="02:42:ac:11:00:01", mtu=1500,
                  state="DOWN", admin_up=True, addresses=["172.17.0.1/16"]),
        _veth("host", "eth0", ("internet", "eth0"), ["198.51.100.2/24"], index=3),
    ])
    internet = Namespace("internet", note="the internet (stand-in)", interfaces=[
        _lo("internet"), _veth("internet", "eth0", ("host", "eth0"), ["198.51.100.1/24", "203.0.113.10/24"],
                               index=4)])
    return Snapshot(namespaces=[host, internet])
