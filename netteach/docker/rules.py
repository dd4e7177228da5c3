"""The nftables rules dockerd installs, as a pure function of the Docker host's networks and ports.

The layout is Docker's "classic" one (up to 27.x; see CURRICULUM.md), with
Docker's own table and chain names so that a student recognises them in a
real ``nft list ruleset`` / ``iptables -L``. Chains Docker manages are
rewritten as a whole in one ``nft -f`` transaction; ``DOCKER-USER`` is only
created, never touched: it is the place for the administrator's own rules.

>>> nets = [Net("docker0", "172.17.0.0/16")]
>>> ports = [Port(8080, "172.17.0.2", 80, "docker0")]
>>> print(rules(nets, ports).split("add rule ip nat DOCKER ")[-1].splitlines()[0])
iifname != "docker0" tcp dport 8080 counter dnat to 172.17.0.2:80
"""

from __future__ import annotations

from typing import NamedTuple


class Net(NamedTuple):
    bridge: str  # docker0, br-<12 hex>
    subnet: str  # 172.17.0.0/16


class Port(NamedTuple):
    host_port: int
    ip: str  # the container's address
    port: int  # the container's port
    bridge: str  # the bridge the container is reached on


# chains (table, chain, hook spec or None for a regular chain), in creation order
CHAINS = [
    ("nat", "PREROUTING", "type nat hook prerouting priority dstnat; policy accept;"),
    ("nat", "OUTPUT", "type nat hook output priority -100; policy accept;"),
    ("nat", "POSTROUTING", "type nat hook postrouting priority srcnat; policy accept;"),
    ("nat", "DOCKER", None),
    ("filter", "INPUT", "type filter hook input priority filter; policy accept;"),
    ("filter", "FORWARD", "type filter hook forward priority filter; policy drop;"),
    ("filter", "OUTPUT", "type filter hook output priority filter; policy accept;"),
    ("filter", "DOCKER", None),
    ("filter", "DOCKER-ISOLATION-STAGE-1", None),
    ("filter", "DOCKER-ISOLATION-STAGE-2", None),
    ("filter", "DOCKER-USER", None),
]
MANAGED = [(t, c) for t, c, _ in CHAINS if c not in ("DOCKER-USER", "INPUT", "OUTPUT") or t == "nat"]


def rules(nets: list[Net], ports: list[Port]) -> str:
    """One ``nft -f`` script that makes Docker's chains hold exactly these networks' rules."""
    out = []
    for table in ("nat", "filter"):
        out.append(f"table ip {table} {{")
        for t, chain, spec in CHAINS:
            if t == table:
                out.append(f"  chain {chain} {{ {spec} }}" if spec else f"  chain {chain} {{ }}")
        out.append("}")
    for table, chain in MANAGED:
        out.append(f"flush chain ip {table} {chain}")

    def add(table, chain, rule):
        out.append(f"add rule ip {table} {chain} {rule}")

    # nat: published ports reach the containers; containers' traffic leaves as the host
    add("nat", "PREROUTING", "fib daddr type local counter jump DOCKER")
    add("nat", "OUTPUT", "ip daddr != 127.0.0.0/8 fib daddr type local counter jump DOCKER")
    for n in nets:
        add("nat", "POSTROUTING", f'ip saddr {n.subnet} oifname != "{n.bridge}" counter masquerade')
    for p in ports:  # hairpin: a container reaching itself through its published port
        add("nat", "POSTROUTING", f"ip saddr {p.ip} ip daddr {p.ip} tcp dport {p.port} counter masquerade")
    for n in nets:  # from a bridge, the userland proxy answers instead of DNAT
        add("nat", "DOCKER", f'iifname "{n.bridge}" counter return')
    for p in ports:
        add("nat", "DOCKER", f'iifname != "{p.bridge}" tcp dport {p.host_port} counter dnat to {p.ip}:{p.port}')

    # filter: FORWARD drops by default; Docker lets through what belongs
    add("filter", "FORWARD", "counter jump DOCKER-USER")
    add("filter", "FORWARD", "counter jump DOCKER-ISOLATION-STAGE-1")
    for n in nets:
        b = n.bridge
        add("filter", "FORWARD", f'oifname "{b}" ct state related,established counter accept')
        add("filter", "FORWARD", f'oifname "{b}" counter jump DOCKER')
        add("filter", "FORWARD", f'iifname "{b}" oifname != "{b}" counter accept')
        add("filter", "FORWARD", f'iifname "{b}" oifname "{b}" counter accept')
    for p in ports:
        add("filter", "DOCKER", f'ip daddr {p.ip} iifname != "{p.bridge}" oifname "{p.bridge}" '
                                f"tcp dport {p.port} counter accept")
    for n in nets:
        add("filter", "DOCKER-ISOLATION-STAGE-1",
            f'iifname "{n.bridge}" oifname != "{n.bridge}" counter jump DOCKER-ISOLATION-STAGE-2')
        add("filter", "DOCKER-ISOLATION-STAGE-2", f'oifname "{n.bridge}" counter drop')
    add("filter", "DOCKER-ISOLATION-STAGE-1", "counter return")
    add("filter", "DOCKER-ISOLATION-STAGE-2", "counter return")
    return "\n".join(out) + "\n"
