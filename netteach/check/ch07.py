"""Self-checks for notebook 07 (security): each proves a policy with real traffic.

- :func:`icc_off_network` -- exercise 1, a network whose containers cannot reach each other;
- :func:`egress_allowlist` -- exercise 2, containers on docker0 may only open HTTP to 203.0.113.10;
- :func:`direct_access_closed` -- exercise 3, a neighbour routing 172.17.0.0/16 to the host reaches
  no container directly, while published ports still work.

>>> _bridge_of({"NetworkSettings": {"Networks": {"quiet": {"IPAddress": "172.19.0.2"}}}}, "quiet")
'172.19.0.2'
"""

from __future__ import annotations

from netteach import probe
from netteach.check import Result
from netteach.check.ch03 import _safe

__all__ = ["icc_off_network", "egress_allowlist", "direct_access_closed"]

SERVER = "203.0.113.10"  # the lab internet's web site
UPLINK = "198.51.100.2"  # the Docker host's address on the internet


def _probe(dh, pings: list, gets: list) -> tuple[list, list]:
    """Pings ``(src, address)`` and HTTP GETs ``(src, address, port)``, all at once (blocked ones
    cost their timeout once, not one after the other)."""
    p = probe.ping_many([(s, dh._kns_of(s), a) for s, a in pings], timeout=1)
    h = probe.http_get_many([(s, dh._kns_of(s), a, port) for s, a, port in gets], timeout=1)
    return [bool(x) for x in p], [bool(x) for x in h]


def _bridge_of(inspect: dict, network: str) -> str | None:
    return inspect["NetworkSettings"]["Networks"].get(network, {}).get("IPAddress")


@_safe
def icc_off_network(dh, network: str = "private", a: str = "p1", b: str = "p2", port: int = 80) -> Result:
    """Exercise 1: ``docker network create -o com.docker.network.bridge.enable_icc=false private``,
    ``p1`` and ``p2`` (serving 80) on it: they cannot reach each other, both reach the internet."""
    title = "icc_off_network"
    problems = []
    for who in (a, b):
        if who not in dh.containers():
            problems.append(f"no container {who!r} (dh.run({who!r}, network={network!r}"
                            + (f", serve={port}))" if who == b else "))"))
    if problems:
        return Result(title, problems)
    ip_a, ip_b = _bridge_of(dh.inspect(a), network), _bridge_of(dh.inspect(b), network)
    for who, ip in ((a, ip_a), (b, ip_b)):
        if ip is None:
            problems.append(f"{who} is not on network {network!r}")
    if problems:
        return Result(title, problems)
    bridge = dh._nets[network]["bridge"]
    drop = f'iifname "{bridge}" oifname "{bridge}" counter'
    forward = [line for line in str(dh.rules("FORWARD")).splitlines() if drop in line]
    (peer, out_a, out_b), (get,) = _probe(dh, [(a, ip_b), (a, SERVER), (b, SERVER)], [(a, ip_b, port)])
    if peer or get:
        problems.append(f"{a} still reaches {b} ({ip_b}): create {network!r} with "
                        "options={'com.docker.network.bridge.enable_icc': 'false'}")
    elif not any(line.rstrip().endswith("drop") for line in forward):
        problems.append(f"no FORWARD rule drops traffic inside {bridge}: is the isolation coming from somewhere else?")
    for who, ok in ((a, out_a), (b, out_b)):
        if not ok:
            problems.append(f"{who} no longer reaches the internet ({SERVER}): ICC off must not cut egress")
    return Result(title, problems)


@_safe
def egress_allowlist(dh, allowed: str = SERVER, port: int = 80, containers: tuple = ("w1", "web"),
                     published: int = 8080) -> Result:
    """Exercise 2: in DOCKER-USER, containers on docker0 may open connections to the internet only to
    ``203.0.113.10:80`` (where the lesson's ``dh.serve("internet", 80)`` answers); the internet
    still reaches ``host:8080``."""
    title = "egress_allowlist"
    problems = []
    for c in containers:
        if c not in dh.containers():
            problems.append(f"no container {c!r} (the lesson's {c})")
    if problems:
        return Result(title, problems)
    other = "198.51.100.1"
    pings, gets = [], []
    for c in containers:
        pings += [(c, allowed), (c, other)]
        gets += [(c, allowed, port), (c, other, 80)]
    pings.append((containers[0], dh._target(containers[0], containers[1])))
    gets.append(("internet", UPLINK, published))
    p, h = _probe(dh, pings, gets)
    for i, c in enumerate(containers):
        if not h[2 * i]:
            problems.append(f"{c} cannot open http://{allowed}:{port}/, the one destination allowed")
        if p[2 * i]:
            problems.append(f"{c} can still ping {allowed}: only tcp port {port} should be let out")
        if p[2 * i + 1] or h[2 * i + 1]:
            problems.append(f"{c} still reaches {other} (another internet address)")
    if not h[-1]:
        problems.append(f"the internet no longer reaches the published port {UPLINK}:{published}: "
                        "replies leave from docker0 too (ct state established,related first)")
    if not p[-1]:
        problems.append(f"{containers[0]} no longer reaches {containers[1]} on the same bridge")
    rules = str(dh.rules("DOCKER-USER"))
    if "docker0" not in rules:
        problems.append("DOCKER-USER has no rule for docker0: the policy belongs there")
    return Result(title, problems)


@_safe
def direct_access_closed(dh, subnet: str = "172.17.0.0/16", published: int = 8080) -> Result:
    """Exercise 3: the internet routes 172.17.0.0/16 to the host (a neighbour on its LAN), yet reaches
    no container port directly; the published port still works."""
    title = "direct_access_closed"
    problems = []
    route = dh.exec("internet", f"ip route show {subnet}").stdout
    if UPLINK not in route:
        return Result(title, [f"the internet has no route to {subnet} via {UPLINK} (the neighbour of the "
                              f"lesson: dh.add_route('internet', {subnet!r}, via={UPLINK!r}))"])
    served = [(c, dh._ctrs[c]["spec"]["serve"]) for c in dh.containers()
              if dh._ctrs[c]["spec"].get("serve") and dh._ctrs[c]["mode"] == "bridge"]
    direct = [(c, _bridge_of(dh.inspect(c), "bridge"), port) for c, port in served]
    direct = [d for d in direct if d[1]]
    _, h = _probe(dh, [], [("internet", ip, port) for _, ip, port in direct] + [("internet", UPLINK, published)])
    for (c, ip, port), reached in zip(direct, h):
        if reached:
            problems.append(f"the internet reaches {c} directly at {ip}:{port}")
    if not h[-1]:
        problems.append(f"the published port {UPLINK}:{published} no longer answers the internet")
    return Result(title, problems)
