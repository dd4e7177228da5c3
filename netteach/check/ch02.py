"""Self-checks for notebook 02 (principles): each reads the lab back from the kernel.

- :func:`second_container` — exercise 2.1, the article's model once more, for ``c2``;
- :func:`host_as_router` — exercise 2.2, ``my-container`` and ``c2`` reach each other through the host;
- :func:`docker_way` — exercise 2.3, container ``c3`` attached the way Docker does it, to ``docker0``.
"""

from __future__ import annotations

from netteach.check import Result
from netteach.check._common import (cables, default_route, need_addr, need_netns, need_ping, need_up,
                                    route_to)

__all__ = ["second_container", "host_as_router", "docker_way"]


def _ip(cidr: str) -> str:
    return cidr.split("/")[0]


def _need_default_via(ns, gateway: str, problems: list) -> bool:
    r = default_route(ns)
    if r is None:
        problems.append(f"{ns.name} has no default route "
                        f"(lab.add_route({ns.name!r}, 'default', via={gateway!r}))")
        return False
    if r.gateway != gateway:
        problems.append(f"{ns.name}'s default route goes via {r.gateway or r.dev}, not {gateway} "
                        f"(lab.delete_route({ns.name!r}, 'default'), then add it via {gateway})")
        return False
    return True


def _container_end(lab, ns, inside, address: str, gateway: str, problems: list):
    """The container's end is addressed and up, routes via the gateway, and reaches it."""
    need_addr(inside, address, problems)
    need_up(inside, problems)
    _need_default_via(ns, _ip(gateway), problems)
    if not problems:
        need_ping(lab, ns.name, _ip(gateway), problems)


def second_container(lab, netns: str = "c2", host_end: str = "veth2",
                     gateway: str = "10.0.2.1/24", address: str = "10.0.2.2/24") -> Result:
    """Exercise 2.1: the article's model for a second container ``c2``, on its own subnet.

    A veth pair ``veth2`` (stays in the host, 10.0.2.1/24: the gateway) and
    ``eth0`` (moved into ``c2``, 10.0.2.2/24); both up; ``c2`` has a default
    route via 10.0.2.1 and pings it.

    In the chapter's notebook::

        nt.check.second_container(lab)   # ✗ second_container: the lab has no namespace 'c2' (lab.add_netns('c2'))
    """
    problems: list[str] = []
    snap = lab.snapshot()
    ns = need_netns(snap, netns, problems)
    if ns is None:
        return Result("second_container", problems)
    hv = snap.interface("host", host_end)
    if hv is None:
        if ns.interface(host_end) is not None:
            problems.append(f"{host_end} is inside {netns!r}: it is the host's end and must stay in "
                            f"the host; move the other end instead (code block 1's mistake)")
        else:
            problems.append(f"the host has no {host_end} (lab.add_veth({host_end!r}, 'eth0'))")
        return Result("second_container", problems)
    if hv.kind != "veth" or not hv.peer or hv.peer[0] != netns:
        where = f"still in {hv.peer[0]!r}" if hv.peer else "nowhere the lab can see"
        peer = hv.peer[1] if hv.peer else "eth0"
        problems.append(f"the other end of {host_end} is {where}, not in {netns!r} "
                        f"(lab.set_netns({peer!r}, {netns!r}))")
        return Result("second_container", problems)
    inside = snap.interface(netns, hv.peer[1])
    need_addr(hv, gateway, problems)
    need_up(hv, problems)
    _container_end(lab, ns, inside, address, gateway, problems)
    return Result("second_container", problems)


def host_as_router(lab, a: tuple = ("my-container", "10.0.0.2"), b: tuple = ("c2", "10.0.2.2")) -> Result:
    """Exercise 2.2: ``my-container`` (10.0.0.2) and ``c2`` (10.0.2.2) ping each other through the host.

    Each already reaches the host; to reach each other, both need a route
    (their default route via their gateway) and the host must forward
    packets between its interfaces (``net.ipv4.ip_forward=1``; a lab sets 0 in
    every namespace it makes, where the kernel would copy the machine's value).

    In the chapter's notebook::

        nt.check.host_as_router(lab)   # ✗ host_as_router: the host does not forward packets: net.ipv4.ip_forward is 0 (...)
    """
    problems: list[str] = []
    snap = lab.snapshot()
    for (netns, ip), (_, other) in ((a, b), (b, a)):
        ns = need_netns(snap, netns, problems)
        if ns is None:
            continue
        if not any(addr.split("/")[0] == ip for i in ns.interfaces for addr in i.addresses):
            problems.append(f"{netns} has no address {ip} (build it first: the lesson's four steps "
                            "and exercise 2.1)")
        elif route_to(ns, other) is None:
            problems.append(f"{netns} has no route to {other} (a default route via its gateway)")
    if lab.sysctl("host", "net.ipv4.ip_forward") != "1":
        problems.append("the host does not forward packets: net.ipv4.ip_forward is 0 "
                        "(lab.sysctl('host', 'net.ipv4.ip_forward', 1))")
    if not problems:
        need_ping(lab, a[0], b[1], problems)
    return Result("host_as_router", problems)


def docker_way(lab, netns: str = "c3", address: str = "172.17.0.3/16", bridge: str = "docker0",
               gateway: str = "172.17.0.1/16") -> Result:
    """Exercise 2.3: container ``c3`` attached as Docker does it, to the bridge ``docker0``.

    ``docker0`` (in the host, up) holds the gateway 172.17.0.1/16; ``c3``'s
    cable has its host end enslaved to ``docker0`` **without an address**;
    ``c3``'s end has 172.17.0.3/16 and a default route via 172.17.0.1,
    which it pings.

    In the chapter's notebook::

        nt.check.docker_way(lab)   # ✗ docker_way: the lab has no namespace 'c3' (lab.add_netns('c3'))
    """
    problems: list[str] = []
    snap = lab.snapshot()
    br = snap.interface("host", bridge)
    if br is None or br.kind != "bridge":
        problems.append(f"the host has no bridge {bridge!r} (lab.add_bridge({bridge!r}))")
    else:
        need_addr(br, gateway, problems)
        need_up(br, problems)
    ns = need_netns(snap, netns, problems)
    if ns is None:
        return Result("docker_way", problems)
    found = cables(snap, netns, "host")
    if not found:
        problems.append(f"{netns!r} has no veth cable to the host "
                        f"(lab.add_veth('veth{netns}', 'eth0', peer_netns={netns!r}))")
        return Result("docker_way", problems)
    inside = found[0]
    host_end = snap.interface("host", inside.peer[1])
    if host_end.master != bridge:
        problems.append(f"{host_end.ifname} (the host end of {netns!r}'s cable) is not a port of "
                        f"{bridge} (lab.set_master({host_end.ifname!r}, {bridge!r}))")
    v4 = [a for a in host_end.addresses if ":" not in a]
    if v4:
        problems.append(f"{host_end.ifname} has an address ({', '.join(v4)}): Docker leaves the host "
                        f"end unnumbered, the gateway is {bridge}'s address")
    need_up(host_end, problems)
    _container_end(lab, ns, inside, address, gateway, problems)
    return Result("docker_way", problems)
