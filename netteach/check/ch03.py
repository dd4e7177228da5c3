"""Self-checks for notebook 03 (configuration: what ``docker run`` builds).

Each check reads the kernel (snapshot, the host's nft ruleset, sysctls) and
sends real traffic inside the lab, then names what is still missing:

- :func:`second_published_port` -- exercise 1, ``-p 8081:80`` from a second container;
- :func:`fixed_ip_network` -- exercise 2, ``--ip``/``--mac-address`` on a user-defined network;
- :func:`c2_reaches_internet` -- exercise 3, a second hand-built container online;
- :func:`docker_user_block` -- exercise 4, cut a container off in ``DOCKER-USER``.

>>> _said_by("hello from web2 (you are 198.51.100.1)\\n"), _seen_as("hello from internet (you are 198.51.100.2)")
('web2', '198.51.100.2')
"""

from __future__ import annotations

import functools
import ipaddress
import re

from netteach.check import Result
from netteach.errors import NetteachError
from netteach import firewall, trace

__all__ = ["second_published_port", "fixed_ip_network", "c2_reaches_internet", "docker_user_block"]

INTERNET = "internet"
DOCKER_VETH = re.compile(r"^veth[0-9a-f]{7}$")


def _safe(func):
    """A check never raises for a student's lab: whatever stops it becomes the problem it names."""

    @functools.wraps(func)
    def wrapper(lab, *args, **kwargs):
        try:
            return func(lab, *args, **kwargs)
        except NetteachError as exc:
            return Result(func.__name__, [str(exc)])

    return wrapper


# ---- reading the lab ----------------------------------------------------------------------

def _said_by(body: str) -> str | None:
    m = re.match(r"hello from (\S+)", body or "")
    return m.group(1) if m else None


def _seen_as(body: str) -> str | None:
    m = re.search(r"you are ([\d.]+)", body or "")
    return m.group(1) if m else None


def _v4(iface) -> list[str]:
    return [a for a in (iface.addresses if iface else []) if ":" not in a]


class _Host:
    """The lab's host as read from the kernel: uplink, internet address, own addresses, rules."""

    def __init__(self, lab):
        self.lab = lab
        self.snap = lab.snapshot()
        host = self.snap.namespace("host")
        self.ifaces = host.interfaces if host else []
        self.uplink = next((i for i in self.ifaces if i.peer and i.peer[0] == INTERNET), None)
        self.local = {a.split("/")[0] for i in self.ifaces for a in i.addresses}
        up = _v4(self.uplink)
        self.ip = up[0].split("/")[0] if up else None
        self.internet = None
        inet = self.snap.namespace(INTERNET)
        for i in (inet.interfaces if inet else []):
            for a in _v4(i):
                if not up or ipaddress.ip_interface(a).ip not in ipaddress.ip_interface(up[0]).network:
                    self.internet = a.split("/")[0]
        self._rules = None

    @property
    def ruleset(self) -> list:
        """The host's nftables ruleset as ``nft -j`` data (from the snapshot)."""
        host = self.snap.namespace("host")
        return host.ruleset if host else []

    def chain_rules(self, family: str, table: str, chain: str) -> list | None:
        """The rules of one chain (``nft -j`` objects), or None if there is no such chain."""
        if not any("chain" in o and (o["chain"]["family"], o["chain"]["table"], o["chain"]["name"])
                   == (family, table, chain) for o in self.ruleset):
            return None
        return [o["rule"] for o in self.ruleset if "rule" in o
                and (o["rule"]["family"], o["rule"]["table"], o["rule"]["chain"]) == (family, table, chain)]

    def needs_internet(self) -> list[str]:
        if self.snap.namespace(INTERNET) is None:
            return ["the lab has no 'internet' namespace (build the uplink of section 5 first)"]
        if self.uplink is None or self.ip is None or self.internet is None:
            return ["the host has no addressed uplink to the 'internet' namespace (section 5)"]
        return []

    def container_eth(self, name: str):
        ns = self.snap.namespace(name)
        if ns is None:
            return None
        cands = [i for i in ns.interfaces if i.kind != "loopback"]
        cands.sort(key=lambda i: (not (i.peer and i.peer[0] == "host"), i.ifname != "eth0"))
        return cands[0] if cands else None

    def default_via(self, name: str) -> str | None:
        ns = self.snap.namespace(name)
        r = next((r for r in (ns.routes if ns else []) if r.dst == "default"), None)
        return None if r is None else (r.gateway or f"dev {r.dev}")


def _covers(source: str, ip: str) -> bool:
    """Does a masquerade rule's source match (``"all"``, a prefix, or a set of them) name ``ip``?"""
    if source == "all":
        return True
    for part in source.split(","):
        try:
            if ipaddress.ip_address(ip) in ipaddress.ip_network(part.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


# ---- exercise 1: -p 8081:80 from a second container ------------------------------------------

def _need_default_via(h, name: str, gateway: str, problems: list, what: str = "the gateway"):
    via = h.default_via(name)
    if via is None:
        problems.append(f"{name} has no default route")
    elif via != gateway:
        problems.append(f"{name}'s default route goes via {via}, not {what} {gateway}")


@_safe
def second_published_port(dh, port: int = 8081, first_port: int = 8080) -> Result:
    """Exercise 1: ``docker run -p 8081:80`` of a second container, reachable from everywhere.

    The internet reaches ``<host uplink>:8081`` through a DNAT rule, a
    *different* container answers than on 8080, and the host itself reaches
    it too (the OUTPUT rule).
    """
    name = "second_published_port"
    h = _Host(dh)
    problems = h.needs_internet()
    if problems:
        return Result(name, problems)
    where = f"{h.ip}:{port}"
    if not any(p["port"] == port and p["proto"] == "tcp" for p in firewall.published(h.ruleset)):
        problems.append(f"no DNAT rule sends tcp port {port} arriving at the host to a container "
                        f"(docker run -p {port}:80 ...)")
    second = dh.http_get(INTERNET, h.ip, port)
    first = dh.http_get(INTERNET, h.ip, first_port)
    if not second:
        problems.append(f"nothing answers on {where} from the internet")
    elif first and _said_by(first.body) == _said_by(second.body):
        problems.append(f"{where} is answered by {_said_by(second.body)}, the same container as port "
                        f"{first_port}: publish port 80 of a second container on {port}")
    if not first:
        problems.append(f"{h.ip}:{first_port} no longer answers from the internet")
    if not dh.http_get("host", h.ip, port):
        problems.append(f"the host itself gets no answer on {where} (DNAT in the nat OUTPUT chain?)")
    return Result(name, problems)


# ---- exercise 2: --ip and --mac-address on a user-defined network --------------------------------

@_safe
def fixed_ip_network(dh, container: str = "db", subnet: str = "10.10.0.0/24", ip: str = "10.10.0.10",
                     mac: str = "02:00:00:00:00:db") -> Result:
    """Exercise 2: ``docker network create --subnet 10.10.0.0/24 backend`` and
    ``docker run --network backend --ip 10.10.0.10 --mac-address 02:00:00:00:00:db --name db``.
    """
    name = "fixed_ip_network"
    net = ipaddress.ip_network(subnet)
    gateway = str(next(net.hosts()))
    h = _Host(dh)
    problems = []
    bridge = next((i for i in h.ifaces if i.kind == "bridge"
                   and f"{gateway}/{net.prefixlen}" in i.addresses), None)
    if bridge is None:
        problems.append(f"no bridge with {gateway}/{net.prefixlen} in the host: create the network "
                        f"(docker network create --subnet {subnet} backend)")
    if h.snap.namespace(container) is None:
        return Result(name, problems + [f"no container {container!r} (docker run --name {container} ...)"])
    ns = h.snap.namespace(container)
    eth = next((i for i in ns.interfaces for a in _v4(i) if ipaddress.ip_interface(a).ip in net), None)
    if eth is None:
        have = ", ".join(a for i in ns.interfaces if i.kind != "loopback" for a in _v4(i)) or "no address"
        problems.append(f"{container} has {have}, not an address on {subnet} (docker run --network ...)")
        return Result(name, problems)
    addr = next(a for a in _v4(eth) if ipaddress.ip_interface(a).ip in net)
    if addr != f"{ip}/{net.prefixlen}":
        problems.append(f"{container} has {addr} on {subnet}, not {ip}/{net.prefixlen} (docker run --ip {ip})")
    if (eth.mac or "").lower() != mac.lower():
        problems.append(f"{container}'s {eth.ifname} has MAC {eth.mac}, not {mac} (docker run --mac-address {mac})")
    end = h.snap.interface(*eth.peer) if eth.peer else None
    if bridge is not None and (end is None or end.master != bridge.ifname):
        problems.append(f"{container}'s {eth.ifname} is not plugged into the bridge {bridge.ifname} of {subnet}")
    _need_default_via(h, container, gateway, problems, what="its network's gateway")
    if not eth.admin_up:
        problems.append(f"{container}'s {eth.ifname} is down")
    elif not dh.ping(container, gateway):
        problems.append(f"{container} cannot ping its gateway {gateway}")
    return Result(name, problems)


# ---- exercise 3: a second hand-built container online ------------------------------------------

@_safe
def c2_reaches_internet(lab, container: str = "c2", address: str = "172.17.0.3/16", bridge: str = "docker0",
                        gateway: str = "172.17.0.1") -> Result:
    """Exercise 3: by hand, a container ``c2`` at 172.17.0.3/16 on docker0 that reaches the internet.

    Its piece of the puzzle (namespace, veth on docker0, address, Docker's MAC,
    default route) and the host's (ip_forward, masquerade) are read from the
    kernel; then c2 pings the internet and asks its web server which source
    address it sees.
    """
    from netteach.docker import docker_mac

    name = "c2_reaches_internet"
    h = _Host(lab)
    problems = h.needs_internet()
    c = container
    if h.snap.namespace(c) is None:
        return Result(name, problems + [f"no namespace {c!r} in lab {lab.name!r} (lab.add_netns({c!r}))"])
    ip = address.split("/")[0]
    eth = h.snap.interface(c, "eth0")
    if eth is None:
        return Result(name, problems + [f"{c} has no eth0 (a veth whose host end is on {bridge}, the other "
                                        f"end moved into {c} and called eth0)"])
    if address not in eth.addresses:
        problems.append(f"{c}'s eth0 has no address {address} (it has: {', '.join(_v4(eth)) or 'none'})")
    if (eth.mac or "").lower() != docker_mac(ip):
        problems.append(f"{c}'s eth0 has MAC {eth.mac}; Docker would give it {docker_mac(ip)}")
    if not eth.admin_up:
        problems.append(f"{c}'s eth0 is down")
    end = h.snap.interface(*eth.peer) if eth.peer else None
    if end is None or end.netns != "host":
        problems.append(f"{c}'s eth0 is not a veth whose other end is in the host")
    else:
        if end.master != bridge:
            problems.append(f"{c}'s host end {end.ifname} is not enslaved to {bridge}")
        if end.addresses:
            problems.append(f"{c}'s host end {end.ifname} has an address ({', '.join(end.addresses)}); "
                            "Docker's host ends have none")
        if not DOCKER_VETH.match(end.ifname):
            problems.append(f"{c}'s host end is called {end.ifname}; Docker names it veth + 7 hex digits "
                            "(like veth3c9e1d2)")
        if not end.admin_up:
            problems.append(f"{c}'s host end {end.ifname} is down")
    _need_default_via(h, c, gateway, problems)
    if lab.sysctl("host", "net.ipv4.ip_forward") != "1":
        problems.append("ip_forward is 0 in the host: it does not route between its interfaces")
    if h.internet is None or h.uplink is None:
        return Result(name, problems)
    if not any(_covers(m, ip) for m in firewall.masquerades(h.ruleset)):
        problems.append(f"no masquerade rule in the host's nat POSTROUTING covers {ip}")
    t = trace.run(lab, c, h.internet)  # one real ping, followed by the kernel's trace events
    drop = next((x for x in t.hops if x.kind == "drop" and x.namespace == "host"
                 and x.data.get("hook") == "forward"), None)
    if drop is not None:
        problems.append(f"the host's filter FORWARD drops new traffic from {c} to the internet ({t.verdict})")
    if not lab.ping(c, h.internet):
        problems.append(f"{c} cannot ping the internet ({h.internet})")
        return Result(name, problems)
    r = lab.http_get(c, h.internet, 80)
    if not r:
        problems.append(f"nothing serves on {h.internet}:80 (lab.serve('internet', 80)), so which source "
                        "address the internet sees cannot be checked")
    elif _seen_as(r.body) != h.ip:
        problems.append(f"the internet sees {c} as {_seen_as(r.body)}, not as the host's {h.ip}")
    return Result(name, problems)


# ---- exercise 4: DOCKER-USER ----------------------------------------------------------------------

@_safe
def docker_user_block(dh, container: str = "web", port: int = 8080) -> Result:
    """Exercise 4: a rule in ``DOCKER-USER`` cuts ``web`` off from the internet, while the internet
    still reaches its published port and every other container still gets out."""
    name = "docker_user_block"
    h = _Host(dh)
    problems = h.needs_internet()
    if problems:
        return Result(name, problems)
    chain = h.chain_rules("ip", "filter", "DOCKER-USER")
    if chain is None:
        return Result(name, ["the host has no filter DOCKER-USER chain (use the DockerHost of this chapter)"])
    if not chain:
        problems.append("DOCKER-USER is empty: add your rule there "
                        "(nft add rule ip filter DOCKER-USER ...)")
    eth = h.container_eth(container)
    if eth is None or not _v4(eth):
        return Result(name, problems + [f"no container {container!r} with an address"])
    ip = _v4(eth)[0].split("/")[0]
    if dh.ping(container, h.internet):
        problems.append(f"{container} still reaches the internet (ping {h.internet} is answered)")
    else:
        t = dh.trace(container, h.internet)  # which rule stops it, as the kernel reports it
        drop = next((x for x in t.hops if x.kind == "drop"), None)
        if drop is not None and drop.data.get("chain") != "DOCKER-USER":
            problems.append(f"{container} is cut off, but not by a DOCKER-USER rule (the verdict comes from "
                            f"{drop.data.get('chain')}: {drop.data.get('rule') or 'policy'})")
    if not dh.http_get(INTERNET, h.ip, port):
        problems.append(f"the internet no longer reaches {container}'s published port {h.ip}:{port}: "
                        f"drop only what {container} starts (ct state new), not its replies")
    for ns in h.snap.namespaces:
        if ns.name in ("host", INTERNET, container) or h.default_via(ns.name) is None:
            continue
        other = h.container_eth(ns.name)
        if other is None or not other.peer or other.peer[0] != "host":
            continue
        if not dh.ping(ns.name, h.internet):
            problems.append(f"{ns.name} can no longer reach the internet either: match only "
                            f"{container}'s traffic ({ip})")
    return Result(name, problems)
