"""Self-checks for notebook 04 (network modes and drivers).

Each check reads the kernel (addresses, the nat rules inside a container,
what ``getent`` answers through the container's own resolver) and sends real
traffic, then names what is missing:

- :func:`network_alias` -- exercise 1, ``--network-alias redis`` answered by Docker's embedded DNS;
- :func:`db_behind_api` -- exercise 2, a second network only ``api`` shares with ``db``;
- :func:`macvlan_host_shim` -- exercise 3, a macvlan child in the host so it reaches its macvlan containers.

>>> _getent("10.20.0.5       redis\\n")
'10.20.0.5'
"""

from __future__ import annotations

import ipaddress

from netteach.check import Result
from netteach.check.ch03 import _safe

__all__ = ["network_alias", "db_behind_api", "macvlan_host_shim"]

RES = "RES_OPTIONS='timeout:1 attempts:1' "  # a dead upstream must not make a check wait 10 s


def _getent(out: str) -> str | None:
    parts = (out or "").split()
    return parts[0] if parts else None


def _v4(snap, name: str) -> list[str]:
    ns = snap.namespace(name)
    return [a.split("/")[0] for i in (ns.interfaces if ns else []) if i.kind != "loopback"
            for a in i.addresses if ":" not in a]


def _resolve(dh, container: str, name: str) -> str | None:
    return _getent(dh.exec(container, RES + f"getent hosts {name}").stdout)


def _need_embedded_dns(dh, container: str, problems: list) -> bool:
    """The container asks 127.0.0.11, and its nat rules send that to a resolver that listens."""
    resolv = dh.exec(container, "cat /etc/resolv.conf").stdout
    if "nameserver 127.0.0.11" not in resolv:
        problems.append(f"{container}'s /etc/resolv.conf does not name 127.0.0.11 (Docker's embedded DNS): "
                        "is it on a user-defined network?")
        return False
    rules = dh.exec(container, "nft list chain ip nat DOCKER_OUTPUT")
    if "dnat to 127.0.0.11:" not in rules.stdout:
        problems.append(f"{container} has no nat rule sending 127.0.0.11:53 to its resolver")
        return False
    return True


@_safe
def network_alias(dh, alias: str = "redis", target: str = "cache", client: str = "client",
                  network: str = "appnet") -> Result:
    """Exercise 1: ``docker run --network appnet --network-alias redis --name cache``; ``client`` resolves it."""
    title = "network_alias"
    problems = []
    snap = dh.snapshot()
    if snap.namespace(target) is None:
        return Result(title, [f"no container {target!r} (dh.run({target!r}, network={network!r}, "
                              f"aliases=[{alias!r}]))"])
    if snap.namespace(client) is None:
        return Result(title, [f"no container {client!r} (the lesson's client on {network!r})"])
    if not _need_embedded_dns(dh, client, problems):
        return Result(title, problems)
    want = _v4(snap, target)
    got = _resolve(dh, client, alias)
    if got is None:
        problems.append(f"{client} cannot resolve {alias!r}: give {target} the network alias "
                        f"(dh.run(..., aliases=[{alias!r}]) or dh.network_connect(..., aliases=[{alias!r}]))")
    elif got not in want:
        problems.append(f"{alias!r} resolves to {got} in {client}, not to {target} ({', '.join(want)})")
    elif dh.exec(client, RES + f"ping -c 1 -W 1 {alias}").returncode != 0:
        problems.append(f"{client} resolves {alias!r} but ping {alias} gets no answer")
    hosts = dh.exec(client, "cat /etc/hosts").stdout
    if alias in hosts.split():
        problems.append(f"{alias!r} is written in {client}'s /etc/hosts: Docker never puts other "
                        "containers there; the embedded DNS answers it")
    return Result(title, problems)


@_safe
def db_behind_api(dh, db: str = "db", api: str = "api", client: str = "client",
                  network: str = "backend") -> Result:
    """Exercise 2: ``db`` on its own network ``backend``, which ``api`` joins too: api reaches db by name,
    ``client`` (only on appnet) neither resolves nor reaches it."""
    title = "db_behind_api"
    problems = []
    snap = dh.snapshot()
    for who in (db, api, client):
        if snap.namespace(who) is None:
            problems.append(f"no container {who!r}")
    if problems:
        return Result(title, problems)
    nets = dh.inspect(db)["NetworkSettings"]["Networks"]
    if network not in nets:
        problems.append(f"{db} is not on network {network!r} (dh.network_create({network!r}); "
                        f"dh.run({db!r}, network={network!r}))")
        return Result(title, problems)
    if len(nets) > 1:
        problems.append(f"{db} is also on {', '.join(n for n in nets if n != network)}: keep it on {network!r} only")
    db_ip = nets[network]["IPAddress"]
    if network not in dh.inspect(api)["NetworkSettings"]["Networks"]:
        problems.append(f"{api} is not connected to {network!r} (dh.network_connect({network!r}, {api!r}))")
    else:
        got = _resolve(dh, api, db)
        if got != db_ip:
            problems.append(f"{api} resolves {db!r} to {got or 'nothing'}, not {db_ip}")
        elif not dh.ping(api, db_ip):
            problems.append(f"{api} cannot ping {db} at {db_ip}")
    if network in dh.inspect(client)["NetworkSettings"]["Networks"]:
        problems.append(f"{client} is on {network!r} too: only {api} should share it with {db}")
    else:
        if _resolve(dh, client, db) is not None:
            problems.append(f"{client} resolves {db!r}: it must not know names of a network it is not on")
        if dh.ping(client, db_ip):
            problems.append(f"{client} reaches {db_ip}: two networks should be isolated")
    return Result(title, problems)


@_safe
def macvlan_host_shim(lab, containers: tuple = ("m1", "m2"), parent: str = "eth0") -> Result:
    """Exercise 3: the host reaches its macvlan containers through a macvlan child of its own."""
    title = "macvlan_host_shim"
    problems = []
    snap = lab.snapshot()
    host = snap.namespace("host")
    par = host.interface(parent) if host else None
    if par is None:
        return Result(title, [f"the host has no {parent!r} (the lesson's LAN uplink)"])
    lan = next((ipaddress.ip_interface(a).network for a in par.addresses if ":" not in a), None)
    shims = [i for i in host.interfaces if i.kind == "macvlan"]
    if not shims:
        problems.append(f"the host has no macvlan interface on {parent} "
                        f"(lab.add_macvlan('mv-host', {parent!r}), an address in {lan}, up)")
    else:
        shim = shims[0]
        if not any(ipaddress.ip_interface(a).ip in lan for a in shim.addresses if ":" not in a) and not any(
                r.dev == shim.ifname for r in host.routes):
            problems.append(f"{shim.ifname} has no address in {lan} and no route: the host still talks "
                            f"to the containers through {parent}")
        if not shim.admin_up:
            problems.append(f"{shim.ifname} is down (lab.set_up('host', {shim.ifname!r}))")
    for c in containers:
        for ip in _v4(snap, c):
            if not lab.ping("host", ip):
                problems.append(f"the host cannot ping {c} at {ip}")
    return Result(title, problems)
