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
    icc: bool = True  # com.docker.network.bridge.enable_icc: containers of this network reach each other
    internal: bool = False  # --internal: nothing in or out but the bridge itself
    masquerade: bool = True  # com.docker.network.bridge.enable_ip_masquerade


class Port(NamedTuple):
    host_port: int
    ip: str  # the container's address
    port: int  # the container's port
    bridge: str  # the bridge the container is reached on
    host_ip: str | None = None  # -p 127.0.0.1:8081:80 binds to one host address only


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

    outside = [n for n in nets if not n.internal]
    # nat: published ports reach the containers; containers' traffic leaves as the host
    add("nat", "PREROUTING", "fib daddr type local counter jump DOCKER")
    add("nat", "OUTPUT", "ip daddr != 127.0.0.0/8 fib daddr type local counter jump DOCKER")
    for n in outside:  # an internal network has no way out, so no masquerade
        if n.masquerade:
            add("nat", "POSTROUTING", f'ip saddr {n.subnet} oifname != "{n.bridge}" counter masquerade')
    for p in ports:  # hairpin: a container reaching itself through its published port
        add("nat", "POSTROUTING", f"ip saddr {p.ip} ip daddr {p.ip} tcp dport {p.port} counter masquerade")
    for n in outside:  # from a bridge, the userland proxy answers instead of DNAT
        add("nat", "DOCKER", f'iifname "{n.bridge}" counter return')
    for p in ports:
        only = f"ip daddr {p.host_ip} " if p.host_ip else ""
        add("nat", "DOCKER", f'{only}iifname != "{p.bridge}" tcp dport {p.host_port} counter dnat to {p.ip}:{p.port}')

    # filter: FORWARD drops by default; Docker lets through what belongs
    add("filter", "FORWARD", "counter jump DOCKER-USER")
    add("filter", "FORWARD", "counter jump DOCKER-ISOLATION-STAGE-1")
    for n in nets:
        b = n.bridge
        if not n.internal:
            add("filter", "FORWARD", f'oifname "{b}" ct state related,established counter accept')
            add("filter", "FORWARD", f'oifname "{b}" counter jump DOCKER')
            add("filter", "FORWARD", f'iifname "{b}" oifname != "{b}" counter accept')
        if n.icc:
            add("filter", "FORWARD", f'iifname "{b}" oifname "{b}" counter accept')
    for n in nets:  # enable_icc=false: traffic between two containers of the network, dropped last
        if not n.icc:
            add("filter", "FORWARD", f'iifname "{n.bridge}" oifname "{n.bridge}" counter drop')
    for p in ports:
        add("filter", "DOCKER", f'ip daddr {p.ip} iifname != "{p.bridge}" oifname "{p.bridge}" '
                                f"tcp dport {p.port} counter accept")
    for n in nets:  # --internal: nothing from outside the subnet in, nothing to outside it out
        if n.internal:
            add("filter", "DOCKER-ISOLATION-STAGE-1", f'ip saddr != {n.subnet} oifname "{n.bridge}" counter drop')
            add("filter", "DOCKER-ISOLATION-STAGE-1", f'ip daddr != {n.subnet} iifname "{n.bridge}" counter drop')
    for n in nets:
        add("filter", "DOCKER-ISOLATION-STAGE-1",
            f'iifname "{n.bridge}" oifname != "{n.bridge}" counter jump DOCKER-ISOLATION-STAGE-2')
        add("filter", "DOCKER-ISOLATION-STAGE-2", f'oifname "{n.bridge}" counter drop')
    add("filter", "DOCKER-ISOLATION-STAGE-1", "counter return")
    add("filter", "DOCKER-ISOLATION-STAGE-2", "counter return")
    return "\n".join(out) + "\n"


def dns_rules(udp_port: int, tcp_port: int, address: str = "127.0.0.11") -> str:
    """The nat rules dockerd puts *inside a container's namespace* for its embedded DNS server.

    Queries to 127.0.0.11:53 are DNATed to the ports the resolver really listens
    on (random, one per protocol); the SNAT back to port 53 is there for the
    replies but never hit: conntrack already undoes the DNAT.

    >>> print(dns_rules(41234, 37111).split("flush chain ip nat DOCKER_POSTROUTING")[1])
    <BLANKLINE>
    add rule ip nat OUTPUT ip daddr 127.0.0.11 counter jump DOCKER_OUTPUT
    add rule ip nat POSTROUTING ip daddr 127.0.0.11 counter jump DOCKER_POSTROUTING
    add rule ip nat DOCKER_OUTPUT ip daddr 127.0.0.11 tcp dport 53 counter dnat to 127.0.0.11:37111
    add rule ip nat DOCKER_OUTPUT ip daddr 127.0.0.11 udp dport 53 counter dnat to 127.0.0.11:41234
    add rule ip nat DOCKER_POSTROUTING ip saddr 127.0.0.11 tcp sport 37111 counter snat to :53
    add rule ip nat DOCKER_POSTROUTING ip saddr 127.0.0.11 udp sport 41234 counter snat to :53
    <BLANKLINE>
    """
    out = ["table ip nat {",
           "  chain OUTPUT { type nat hook output priority -100; policy accept; }",
           "  chain POSTROUTING { type nat hook postrouting priority srcnat; policy accept; }",
           "  chain DOCKER_OUTPUT { }",
           "  chain DOCKER_POSTROUTING { }",
           "}"]
    out += [f"flush chain ip nat {c}" for c in ("OUTPUT", "POSTROUTING", "DOCKER_OUTPUT", "DOCKER_POSTROUTING")]
    out.append(f"add rule ip nat OUTPUT ip daddr {address} counter jump DOCKER_OUTPUT")
    out.append(f"add rule ip nat POSTROUTING ip daddr {address} counter jump DOCKER_POSTROUTING")
    for proto, port in (("tcp", tcp_port), ("udp", udp_port)):
        out.append(f"add rule ip nat DOCKER_OUTPUT ip daddr {address} {proto} dport 53 counter "
                   f"dnat to {address}:{port}")
    for proto, port in (("tcp", tcp_port), ("udp", udp_port)):
        out.append(f"add rule ip nat DOCKER_POSTROUTING ip saddr {address} {proto} sport {port} counter snat to :53")
    return "\n".join(out) + "\n"
