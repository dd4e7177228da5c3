"""Self-checks for notebook 01 (basics): each reads the lab back from the kernel.

- :func:`loopback_up` — exercise 1.1, wake up a fresh namespace's ``lo``;
- :func:`direct_cable` — exercise 1.2, two namespaces joined by one veth cable;
- :func:`two_on_a_bridge` — exercise 1.3, two namespaces plugged into one bridge.
"""

from __future__ import annotations

from netteach.check import Result
from netteach.check._common import cables, need_addr, need_netns, need_ping, need_up

__all__ = ["loopback_up", "direct_cable", "two_on_a_bridge"]


def loopback_up(lab, netns: str = "c1") -> Result:
    """Exercise 1.1: namespace ``c1`` has its loopback ``lo`` up, so it can ping 127.0.0.1.

    A fresh namespace has only ``lo``, DOWN: even talking to itself fails.

    In the chapter's notebook::

        nt.check.loopback_up(lab)   # ✗ loopback_up: lo in 'c1' is not up (lab.set_up('c1', 'lo'))
        lab.set_up("c1", "lo")
        nt.check.loopback_up(lab)   # ✓ loopback_up: done
    """
    problems: list[str] = []
    ns = need_netns(lab.snapshot(), netns, problems)
    if ns is not None:
        lo = ns.interface("lo")
        if lo is None:
            problems.append(f"{netns!r} has no lo at all (was it deleted?)")
        elif need_up(lo, problems) and need_addr(lo, "127.0.0.1/8", problems):
            need_ping(lab, netns, "127.0.0.1", problems)
    return Result("loopback_up", problems)


def direct_cable(lab, a: str = "a", b: str = "b", a_addr: str = "10.1.0.1/24",
                 b_addr: str = "10.1.0.2/24", ifname: str = "eth0") -> Result:
    """Exercise 1.2: namespaces ``a`` and ``b`` joined by one veth cable, both ends ``eth0``.

    No host in between: ``a``'s ``eth0`` (10.1.0.1/24) is the other end of
    ``b``'s ``eth0`` (10.1.0.2/24); both are up and ``a`` pings ``b``.
    Interface names only have to be unique inside one namespace.

    In the chapter's notebook::

        nt.check.direct_cable(lab)   # ✗ direct_cable: the lab has no namespace 'a' (lab.add_netns('a')); ...
    """
    problems: list[str] = []
    snap = lab.snapshot()
    ns_a, ns_b = need_netns(snap, a, problems), need_netns(snap, b, problems)
    if ns_a is None or ns_b is None:
        return Result("direct_cable", problems)
    found = cables(snap, a, b)
    if not found:
        problems.append(f"no veth cable joins {a!r} and {b!r} directly "
                        f"(lab.add_veth({ifname!r}, {ifname!r}, netns={a!r}, peer_netns={b!r}))")
        return Result("direct_cable", problems)
    end_a = found[0]
    end_b = snap.interface(b, end_a.peer[1])
    for end, cidr in ((end_a, a_addr), (end_b, b_addr)):
        if end.ifname != ifname:
            problems.append(f"the cable's end in {end.netns!r} is called {end.ifname!r}, "
                            f"the task asks for {ifname!r}")
        need_addr(end, cidr, problems)
        need_up(end, problems)
    if not problems:
        need_ping(lab, a, b_addr.split("/")[0], problems)
    return Result("direct_cable", problems)


def two_on_a_bridge(lab, bridge: str = "br0",
                    members: tuple = (("s1", "10.2.0.1/24"), ("s2", "10.2.0.2/24"))) -> Result:
    """Exercise 1.3: namespaces ``s1`` and ``s2`` plugged into the bridge ``br0`` in the lab's host.

    Each has a veth cable to the host whose host end is a port of ``br0``;
    the bridge and every end are up; ``s1`` (10.2.0.1/24) pings ``s2``
    (10.2.0.2/24). The bridge needs no address: it only switches frames.

    In the chapter's notebook::

        nt.check.two_on_a_bridge(lab)   # ✗ two_on_a_bridge: the host has no bridge 'br0' (lab.add_bridge('br0')); ...
    """
    problems: list[str] = []
    snap = lab.snapshot()
    br = snap.interface("host", bridge)
    if br is None or br.kind != "bridge":
        what = "no bridge" if br is None else f"a {br.kind}, not a bridge, called"
        problems.append(f"the host has {what} {bridge!r} (lab.add_bridge({bridge!r}))")
    else:
        need_up(br, problems)
    for netns, cidr in members:
        if need_netns(snap, netns, problems) is None:
            continue
        found = cables(snap, netns, "host")
        if not found:
            problems.append(f"{netns!r} has no veth cable to the host "
                            f"(lab.add_veth('v{netns}', 'eth0', peer_netns={netns!r}))")
            continue
        inside = found[0]
        host_end = snap.interface("host", inside.peer[1])
        if host_end.master != bridge:
            problems.append(f"{host_end.ifname} (the host end of {netns!r}'s cable) is not a port of "
                            f"{bridge} (lab.set_master({host_end.ifname!r}, {bridge!r}))")
        need_up(host_end, problems)
        need_addr(inside, cidr, problems)
        need_up(inside, problems)
    if not problems:
        (first, _), (_, other) = members[0], members[1]
        need_ping(lab, first, other.split("/")[0], problems)
    return Result("two_on_a_bridge", problems)
