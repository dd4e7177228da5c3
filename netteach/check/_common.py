"""What the chapter checks share: reading a lab back and saying what is missing.

Every helper reads a :class:`~netteach.snapshot.Snapshot` (or asks the lab to
run ``ping``); none changes anything. Each ``need_*`` helper appends the
problem, phrased for the student, to ``problems`` and returns what it found
(or None), so a check reads as a list of requirements.

>>> from netteach.snapshot import Interface, Namespace, Route
>>> ns = Namespace("c1", interfaces=[Interface("c1", "eth0", kind="veth", addresses=["10.0.0.2/24"])],
...                routes=[Route("c1", "10.0.0.0/24", dev="eth0")])
>>> problems = []
>>> need_addr(ns.interface("eth0"), "10.0.0.3/24", problems)
False
>>> need_up(ns.interface("eth0"), problems)
False
>>> problems
["eth0 in 'c1' has no address 10.0.0.3/24 (lab.add_addr('c1', 'eth0', '10.0.0.3/24'))", "eth0 in 'c1' is not up (lab.set_up('c1', 'eth0'))"]
>>> route_to(ns, "10.0.0.9"), route_to(ns, "10.0.2.2")
(<Route 10.0.0.0/24 dev eth0 in c1>, None)
"""

from __future__ import annotations

import ipaddress


def need_netns(snap, name: str, problems: list):
    """The namespace ``name`` of the snapshot, or None and a problem saying how to make it."""
    ns = snap.namespace(name)
    if ns is None:
        problems.append(f"the lab has no namespace {name!r} (lab.add_netns({name!r}))")
    return ns


def need_addr(iface, cidr: str, problems: list) -> bool:
    """Does ``iface`` carry ``cidr`` (e.g. ``"10.0.0.2/24"``, prefix included)?"""
    if cidr in iface.addresses:
        return True
    problems.append(f"{iface.ifname} in {iface.netns!r} has no address {cidr} "
                    f"(lab.add_addr({iface.netns!r}, {iface.ifname!r}, {cidr!r}))")
    return False


def need_up(iface, problems: list) -> bool:
    """Was ``iface`` switched on (``ip link set ... up``)? The carrier also needs the other end up."""
    if iface.admin_up:
        return True
    problems.append(f"{iface.ifname} in {iface.netns!r} is not up "
                    f"(lab.set_up({iface.netns!r}, {iface.ifname!r}))")
    return False


def cables(snap, a: str, b: str) -> list:
    """The interfaces in namespace ``a`` whose veth peer is in namespace ``b``."""
    ns = snap.namespace(a)
    return [i for i in (ns.interfaces if ns else []) if i.kind == "veth" and i.peer and i.peer[0] == b]


def default_route(ns):
    """The namespace's default route (IPv4), or None."""
    for r in ns.routes:
        if r.dst == "default" and (r.gateway is None or ":" not in r.gateway):
            return r
    return None


def route_to(ns, address: str):
    """The route ``ns`` would use for ``address`` (longest prefix, like ``ip route get``), or None."""
    ip = ipaddress.ip_address(address)
    best, best_len = None, -1
    for r in ns.routes:
        dst = "0.0.0.0/0" if r.dst == "default" else r.dst
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if net.version == ip.version and ip in net and net.prefixlen > best_len:
            best, best_len = r, net.prefixlen
    return best


def need_ping(lab, netns: str, target: str, problems: list) -> bool:
    """Ask the kernel: does ``ping TARGET`` from inside ``netns`` get an answer?"""
    # a second, slower try: the first echo can be lost while ARP or a new bridge port settles
    if lab.ping(netns, target, count=1, timeout=1) or lab.ping(netns, target, count=1, timeout=3):
        return True
    problems.append(f"ping {target} from {netns!r} gets no answer")
    return False
