"""Docker's IP address management as pure functions: pools for new networks, addresses in a network.

No kernel and no state here: the DockerHost keeps which subnets and addresses
are taken and asks these functions.

>>> free_subnet({"bridge": "172.17.0.0/16"})
'172.18.0.0/16'
>>> overlap(ipaddress.ip_network("172.17.5.0/24"), {"bridge": "172.17.0.0/16"})
'bridge'
>>> lowest_free("172.17.0.0/16", {"172.17.0.1", "172.17.0.2"})
'172.17.0.3'
"""

from __future__ import annotations

import ipaddress

from netteach import errors

# where Docker looks for a new network's subnet, in order (its default address pools)
POOLS = [f"172.{x}.0.0/16" for x in range(17, 32)] + [f"192.168.{x}.0/20" for x in range(0, 256, 16)]


def overlap(net, subnets: dict, reserved: dict | None = None) -> str | None:
    """The name of a network (or a reserved range's description) whose subnet overlaps ``net``; None if free.

    ``subnets`` is {network name: subnet}; ``reserved`` {range: description}.
    """
    for name, subnet in subnets.items():
        if net.overlaps(ipaddress.ip_network(subnet)):
            return name
    for r, what in (reserved or {}).items():
        if net.overlaps(ipaddress.ip_network(r)):
            return what
    return None


def free_subnet(subnets: dict, reserved: dict | None = None) -> str:
    """The first of Docker's pools that overlaps no network and no reserved range (``docker network create``)."""
    for cand in POOLS:
        if not overlap(ipaddress.ip_network(cand), subnets, reserved):
            return cand
    raise errors.Conflict("no free address pool left for a new network; give subnet=")


def lowest_free(subnet: str, taken: set, start: int | None = None) -> str | None:
    """Docker's choice of a container's address: the lowest free one, so freed addresses are reused.

    ``start`` (an address as int) may skip a prefix known to be all taken. None when the subnet is full.
    """
    net = ipaddress.ip_network(subnet)
    first, last = int(net.network_address) + 1, int(net.broadcast_address)
    for i in range(max(first, start or first), last):
        ip = str(ipaddress.IPv4Address(i))
        if ip not in taken:
            return ip
    return None
