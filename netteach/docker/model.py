"""Docker's objects as plain data: one model, filled from two sources.

``Container``, ``Network``, ``Endpoint`` and ``Port`` say what Docker *means*
(names, ids, modes, published ports); what the kernel *holds* (links,
addresses, routes, rules) is read separately into a
:class:`~netteach.snapshot.Snapshot`. A :class:`Model` is filled either

- from a real dockerd's Engine API answers (:func:`from_engine`, given the
  JSON of ``GET /containers/{id}/json`` and ``GET /networks/{id}``; the I/O is
  in :mod:`netteach.docker.engine`), or
- from a :class:`~netteach.docker.host.DockerHost`'s state (:func:`from_state`),

and behaves the same whoever filled it. Nothing here talks to a kernel or a
daemon, so it is tested without root.

>>> m = from_engine(
...     containers=[{"Id": "6013bf07c581" + "0" * 52, "Name": "/web", "State": {"Pid": 42, "Running": True},
...                  "Config": {"Hostname": "6013bf07c581"},
...                  "HostConfig": {"NetworkMode": "default"},
...                  "NetworkSettings": {"SandboxKey": "/var/run/docker/netns/1a2b3c",
...                      "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
...                      "Networks": {"bridge": {"NetworkID": "f" * 64, "IPAddress": "172.17.0.2",
...                          "IPPrefixLen": 16, "MacAddress": "02:42:ac:11:00:02", "Gateway": "172.17.0.1"}}}}],
...     networks=[{"Name": "bridge", "Id": "f" * 64, "Driver": "bridge", "Internal": False,
...                "IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]},
...                "Options": {"com.docker.network.bridge.name": "docker0"}}])
>>> m.container("web")
<Container web 6013bf07c581 bridge 172.17.0.2 0.0.0.0:8080->80/tcp>
>>> m.network("bridge").bridge, m.bridge_networks()
('docker0', {'docker0': 'bridge'})
>>> [str(p) for p in m.ports]
['0.0.0.0:8080 -> web:80']
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field

ICC = "com.docker.network.bridge.enable_icc"
BRIDGE_NAME = "com.docker.network.bridge.name"
MTU = "com.docker.network.driver.mtu"


@dataclass
class Port:
    """One published port: ``-p [host_ip:]host_port:container_port[/proto]``."""

    container: str
    container_port: int
    host_port: int
    host_ip: str = "0.0.0.0"
    proto: str = "tcp"

    def __str__(self):
        return f"{self.host_ip}:{self.host_port} -> {self.container}:{self.container_port}"

    @property
    def spec(self) -> str:
        """As ``docker ps`` prints it: ``0.0.0.0:8080->80/tcp``."""
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.proto}"


@dataclass
class Endpoint:
    """A container's attachment to one network: its address and MAC there."""

    network: str
    ip: str = ""
    prefixlen: int = 0
    mac: str = ""
    gateway: str = ""
    aliases: list[str] = field(default_factory=list)
    ifname: str | None = None  # eth0, eth1...: known to the kernel, filled in when read from it


@dataclass
class Network:
    """A Docker network (``docker network inspect``): bridge device, subnet, options."""

    name: str
    id: str = ""
    driver: str = "bridge"
    subnet: str | None = None
    gateway: str | None = None
    bridge: str | None = None  # the Linux bridge that carries it (docker0, br-<12 hex>)
    internal: bool = False
    icc: bool = True
    mtu: int | None = None
    options: dict = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass
class Container:
    """A container as far as networking goes (``docker inspect``'s network parts)."""

    name: str
    id: str = ""
    mode: str = "bridge"  # bridge (or a network's name), host, none, container:<name>
    sandbox_key: str = ""  # the namespace file dockerd made (/var/run/docker/netns/<id>)
    pid: int | None = None  # its first process, whose /proc/<pid>/ns/net is its namespace
    running: bool = True
    hostname: str = ""
    endpoints: list[Endpoint] = field(default_factory=list)
    ports: list[Port] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def shares(self) -> str | None:
        """The container whose namespace this one joins (``container:<x>``), or None."""
        return self.mode.split(":", 1)[1] if self.mode.startswith("container:") else None

    def endpoint(self, network) -> Endpoint | None:
        return next((e for e in self.endpoints if e.network == network), None)

    @property
    def addresses(self) -> list[str]:
        return [e.ip for e in self.endpoints if e.ip]

    def __repr__(self):
        bits = [self.name, self.short_id or "-", self.mode, *self.addresses, *(p.spec for p in self.ports)]
        return "<Container " + " ".join(bits) + ">"


@dataclass
class Model:
    """Docker's containers, networks and published ports at one moment, plus who filled it."""

    containers: list[Container] = field(default_factory=list)
    networks: list[Network] = field(default_factory=list)
    source: str = ""  # "dockerd 20.10.24 (API 1.41)" or "DockerHost 'ch3'"
    firewall: str = ""  # "nftables", "iptables-nft", "iptables-legacy", "" when unknown

    def container(self, name) -> Container | None:
        return next((c for c in self.containers if c.name == name or (len(name) >= 12 and c.id.startswith(name))),
                    None)

    def network(self, name) -> Network | None:
        return next((n for n in self.networks if n.name == name), None)

    @property
    def ports(self) -> list[Port]:
        return [p for c in self.containers for p in c.ports]

    def bridge_networks(self) -> dict:
        """{bridge device: network name}, e.g. ``{"docker0": "bridge", "br-609621cb1e35": "backend"}``."""
        return {n.bridge: n.name for n in self.networks if n.bridge}

    def note(self, container: Container) -> str:
        """The caption of a container's namespace in a picture: ``container 6013bf07c581 (bridge)``,
        plus the containers that share it."""
        mode = container.mode
        text = f"container {container.short_id} ({mode})" if container.short_id else f"container ({mode})"
        joined = [c.name for c in self.containers if c.shares == container.name]
        return text + "".join(f" + {j}" for j in joined)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Model":
        ctrs = [Container(**{**c, "endpoints": [Endpoint(**e) for e in c.get("endpoints", [])],
                             "ports": [Port(**p) for p in c.get("ports", [])]}) for c in d.get("containers", [])]
        return cls(containers=ctrs, networks=[Network(**n) for n in d.get("networks", [])],
                   source=d.get("source", ""), firewall=d.get("firewall", ""))


def _bool_opt(value, default=True) -> bool:
    if value is None:
        return default
    return str(value).lower() in ("1", "true", "yes", "on")


def network_from_engine(n: dict) -> Network:
    """A :class:`Network` from ``GET /networks/{id}`` (``docker network inspect``)."""
    opts = n.get("Options") or {}
    cfg = ((n.get("IPAM") or {}).get("Config") or [{}])
    v4 = next((c for c in cfg if c.get("Subnet") and ipaddress.ip_network(c["Subnet"]).version == 4), cfg[0] or {})
    driver = n.get("Driver") or ""
    bridge = None
    if driver == "bridge":  # user-defined bridges are br-<first 12 hex of the id> unless named
        bridge = opts.get(BRIDGE_NAME) or "br-" + (n.get("Id") or "")[:12]
    mtu = opts.get(MTU)
    return Network(name=n.get("Name", ""), id=n.get("Id", ""), driver=driver, subnet=v4.get("Subnet"),
                   gateway=v4.get("Gateway"), bridge=bridge, internal=bool(n.get("Internal")),
                   icc=_bool_opt(opts.get(ICC)), mtu=int(mtu) if mtu else None, options=dict(opts))


def container_from_engine(c: dict, network_names: dict | None = None) -> Container:
    """A :class:`Container` from ``GET /containers/{id}/json`` (``docker inspect``).

    ``network_names`` maps network ids to names, to turn ``container:<id>`` modes into names.
    """
    hc, ns, state = c.get("HostConfig") or {}, c.get("NetworkSettings") or {}, c.get("State") or {}
    name = (c.get("Name") or "").lstrip("/")
    mode = hc.get("NetworkMode") or "default"
    nets = ns.get("Networks") or {}
    if mode == "default":
        mode = "bridge"
    if mode.startswith("container:") and network_names:
        mode = "container:" + network_names.get(mode.split(":", 1)[1], mode.split(":", 1)[1])
    eps = []
    for net, e in nets.items():
        if net in ("host", "none"):
            continue
        eps.append(Endpoint(network=net, ip=e.get("IPAddress") or "", prefixlen=int(e.get("IPPrefixLen") or 0),
                            mac=(e.get("MacAddress") or "").lower(), gateway=e.get("Gateway") or "",
                            aliases=[a for a in (e.get("Aliases") or []) if a != (c.get("Id") or "")[:12]]))
    ports = []
    for cport, binds in sorted((ns.get("Ports") or {}).items()):
        number, _, proto = cport.partition("/")
        for b in binds or []:  # exposed but not published: None
            ports.append(Port(container=name, container_port=int(number), host_port=int(b.get("HostPort") or 0),
                              host_ip=b.get("HostIp") or "0.0.0.0", proto=proto or "tcp"))
    # Docker lists each binding for 0.0.0.0 and for :: - one port is one line here
    seen, uniq = set(), []
    for p in ports:
        key = (p.container_port, p.host_port, p.proto)
        if p.host_ip in ("::", "[::]") and any(k == key for k in seen):
            continue
        seen.add(key)
        uniq.append(p)
    return Container(name=name, id=c.get("Id", ""), mode=mode, sandbox_key=ns.get("SandboxKey") or "",
                     pid=state.get("Pid") or None, running=bool(state.get("Running")),
                     hostname=(c.get("Config") or {}).get("Hostname", ""), endpoints=eps, ports=uniq)


def from_engine(containers: list[dict], networks: list[dict], source: str = "", firewall: str = "") -> Model:
    """The model of a real dockerd from its Engine API answers (inspect JSON of each object)."""
    nets = [network_from_engine(n) for n in networks]
    by_id = {(c.get("Id") or ""): (c.get("Name") or "").lstrip("/") for c in containers}
    ctrs = [container_from_engine(c, by_id) for c in containers]
    for n in nets:  # the default bridge's IPAM often leaves the gateway out; its endpoints know it
        if n.gateway is None:
            n.gateway = next((e.gateway for c in ctrs for e in c.endpoints if e.network == n.name and e.gateway),
                             None)
    ctrs.sort(key=lambda c: c.name)
    nets.sort(key=lambda n: (n.driver != "bridge" or n.name != "bridge", n.name))
    return Model(containers=ctrs, networks=nets, source=source, firewall=firewall)


def from_state(d: dict, source: str = "") -> Model:
    """The model of a :class:`~netteach.docker.host.DockerHost` from its saved state (``{"networks", "containers"}``)."""
    nets = []
    for name, n in d.get("networks", {}).items():
        opts = dict(n.get("options") or {})
        nets.append(Network(name=name, id=n.get("id", ""), driver="bridge", subnet=n.get("subnet"),
                            gateway=n.get("gateway"), bridge=n.get("bridge"), internal=bool(n.get("internal")),
                            icc=_bool_opt(opts.get(ICC)), mtu=int(opts[MTU]) if opts.get(MTU) else None,
                            options=opts))
    ctrs = []
    for name, c in d.get("containers", {}).items():
        eps = []
        for net, e in c.get("endpoints", {}).items():
            subnet = d["networks"].get(net, {}).get("subnet")
            eps.append(Endpoint(network=net, ip=e.get("ip", ""),
                                prefixlen=ipaddress.ip_network(subnet).prefixlen if subnet else 0,
                                mac=e.get("mac", ""), gateway=d["networks"].get(net, {}).get("gateway", ""),
                                ifname=e.get("ifname")))
        ports = []
        for hp, cp in (c.get("ports") or {}).items():
            host_ip, host_port = ("0.0.0.0", hp)
            if isinstance(cp, dict):  # richer entries (host_ip, proto) may come with -p strings
                ports.append(Port(container=name, container_port=int(cp.get("port", cp.get("container_port", 0))),
                                  host_port=int(cp.get("host_port", hp)), host_ip=cp.get("host_ip", "0.0.0.0"),
                                  proto=cp.get("proto", "tcp")))
                continue
            ports.append(Port(container=name, container_port=int(cp), host_port=int(host_port), host_ip=host_ip))
        ctrs.append(Container(name=name, id=c.get("id", ""), mode=c.get("mode", "bridge"),
                              hostname=c.get("hostname", ""), endpoints=eps, ports=ports))
    return Model(containers=ctrs, networks=nets, source=source, firewall="nftables")


def proxy_of(argv: list[str]) -> dict | None:
    """What a ``docker-proxy`` process forwards, from its command line.

    >>> proxy_of(["/usr/sbin/docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "8080",
    ...           "-container-ip", "172.17.0.2", "-container-port", "80"])
    {'proto': 'tcp', 'host_ip': '0.0.0.0', 'host_port': 8080, 'container_ip': '172.17.0.2', 'container_port': 80}
    """
    opts = {}
    for key, value in zip(argv[1:], argv[2:]):
        if key.startswith("-") and not value.startswith("-"):
            opts[key.lstrip("-")] = value
    try:
        return {"proto": opts.get("proto", "tcp"), "host_ip": opts["host-ip"], "host_port": int(opts["host-port"]),
                "container_ip": opts["container-ip"], "container_port": int(opts["container-port"])}
    except (KeyError, ValueError):
        return None


def firewall_of(nft_text: str, legacy_text: str) -> str:
    """Which firewall backend Docker's rules are in, from what the kernel lists.

    >>> firewall_of('table ip filter {\\n chain DOCKER {\\n}\\n}\\n# Warning: table ip filter is managed by iptables-nft', '')
    'iptables-nft'
    >>> firewall_of('', '*filter\\n:DOCKER - [0:0]\\nCOMMIT\\n')
    'iptables-legacy'
    >>> firewall_of('table ip docker-bridges {\\n}', '')
    'nftables'
    """
    if "DOCKER" in legacy_text:
        return "iptables-legacy"
    if "table ip docker-bridges" in nft_text or "table ip6 docker-bridges" in nft_text:
        return "nftables"
    if "DOCKER" in nft_text:
        return "iptables-nft"
    return ""


def forward_policy(nft_text: str, legacy_text: str = "") -> str | None:
    """The policy of the ``ip filter FORWARD`` chain Docker uses (``"drop"``/``"accept"``), None if none.

    >>> forward_policy('table ip filter {\\n\\tchain FORWARD {\\n\\t\\ttype filter hook forward priority filter; policy drop;\\n')
    'drop'
    >>> forward_policy('', '*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD DROP [0:0]\\n')
    'drop'
    """
    import re

    m = re.search(r":FORWARD (ACCEPT|DROP)", legacy_text)
    if m:
        return m.group(1).lower()
    m = re.search(r"table ip filter \{.*?chain FORWARD \{[^}]*?policy (\w+);", nft_text, re.S)
    return m.group(1) if m else None
