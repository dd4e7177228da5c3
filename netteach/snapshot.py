"""What the kernel held at one moment, as plain data (no kernel access here).

A :class:`Snapshot` is read from the kernel by :mod:`netteach.inspect`; the
graph (:mod:`netteach.graph`) and the picture (:mod:`netteach.draw`) are made
from it, never from what netteach meant to create.

>>> from netteach.snapshot import Snapshot, Namespace, Interface
>>> snap = Snapshot(namespaces=[
...     Namespace("host", interfaces=[Interface("host", "veth0", kind="veth", peer=("c1", "eth0"),
...                                             addresses=["10.0.0.1/24"], state="UP")]),
...     Namespace("c1", interfaces=[Interface("c1", "eth0", kind="veth", peer=("host", "veth0"),
...                                           addresses=["10.0.0.2/24"], state="UP")]),
... ])
>>> snap
<Snapshot: 2 netns, 1 veth pair>
>>> snap.interface("c1", "eth0").addresses
['10.0.0.2/24']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class Interface:
    """One network interface, as ``ip -d addr show`` would describe it.

    ``netns`` is the lab-level name of the namespace it is in; ``peer`` is
    ``(netns, ifname)`` of the other end of a veth pair (or None).
    """

    netns: str
    ifname: str
    kind: str = "other"  # veth, bridge, vxlan, macvlan, loopback, ... (ip -d link's "kind")
    index: int = 0
    mac: str | None = None
    mtu: int | None = None
    state: str = "DOWN"  # operational state: UP, DOWN, UNKNOWN, LOWERLAYERDOWN
    admin_up: bool = False  # the UP flag ("ip link set ... up"), even if no carrier yet
    addresses: list[str] = field(default_factory=list)
    master: str | None = None  # bridge this interface is a port of
    peer: tuple[str, str] | None = None
    alias: str | None = None
    details: dict = field(default_factory=dict)  # kind-specific: vxlan id, ...

    def __repr__(self):
        where = f"{self.ifname}@{self.netns}"
        if self.kind == "veth" and self.peer:
            where += f" <-> {self.peer[1]}@{self.peer[0]}"
        extra = "".join(f" {a}" for a in self.addresses)
        if self.master:
            extra += f" master {self.master}"
        return f"<{self.kind.capitalize()} {where}{extra} {self.state.lower()}>"


@dataclass
class Route:
    """One route of a namespace's main table, as ``ip route`` shows it."""

    netns: str
    dst: str  # "default" or "a.b.c.d/len"
    gateway: str | None = None
    dev: str | None = None
    scope: str = "universe"
    proto: str | None = None
    src: str | None = None

    def __str__(self):
        s = self.dst
        if self.gateway:
            s += f" via {self.gateway}"
        if self.dev:
            s += f" dev {self.dev}"
        if self.proto and self.proto not in ("boot", "static"):
            s += f" proto {self.proto}"
        if self.scope != "universe":
            s += f" scope {self.scope}"
        if self.src:
            s += f" src {self.src}"
        return s

    def __repr__(self):
        return f"<Route {self} in {self.netns}>"


@dataclass
class Namespace:
    """A network namespace: its lab-level name, what the kernel calls it, its contents.

    ``kernel_name`` is the name under ``/run/netns`` (what ``ip netns`` shows),
    ``None`` for the machine's root namespace, or a ``/proc/<pid>/ns/net``
    style path for a namespace held only by a process.
    """

    name: str
    interfaces: list[Interface] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    kernel_name: str | None = None
    lab: str | None = None  # the netteach lab that owns it, if any
    note: str = ""  # e.g. "docker container", "pid 1234 (sshd)"
    ruleset: list = field(default_factory=list)  # `nft -j list ruleset`'s "nftables" list
    sysctls: dict = field(default_factory=dict)  # net.ipv4.ip_forward, bridge-nf-call-iptables, rp_filter

    @property
    def forwards(self) -> bool | None:
        """Does it route between its interfaces (``net.ipv4.ip_forward``)? None if not read."""
        v = self.sysctls.get("net.ipv4.ip_forward")
        return None if v is None else v == "1"

    def interface(self, ifname):
        for i in self.interfaces:
            if i.ifname == ifname:
                return i
        return None

    def __repr__(self):
        names = ", ".join(i.ifname for i in self.interfaces)
        return f"<Namespace {self.name}: {names}>"


@dataclass
class Snapshot:
    """Everything read from the kernel for one lab (or the whole machine)."""

    namespaces: list[Namespace] = field(default_factory=list)
    lab: str | None = None
    nft: str = ""  # `nft list ruleset` of the host, when read
    # Docker, where a dockerd (or a DockerHost) was read: its model (netteach.docker.model.Model),
    # the label of its host namespace, its docker-proxy processes and legacy iptables rules
    docker: object | None = None
    docker_host: str | None = None
    proxies: list[dict] = field(default_factory=list)
    iptables_legacy: str = ""
    vanished: list[str] = field(default_factory=list)  # namespaces gone while they were read
    warnings: list[str] = field(default_factory=list)  # what could not be read, and why

    def namespace(self, name) -> Namespace | None:
        for ns in self.namespaces:
            if ns.name == name:
                return ns
        return None

    def interface(self, netns, ifname) -> Interface | None:
        ns = self.namespace(netns)
        return ns.interface(ifname) if ns else None

    @property
    def interfaces(self) -> list[Interface]:
        return [i for ns in self.namespaces for i in ns.interfaces]

    @property
    def routes(self) -> list[Route]:
        return [r for ns in self.namespaces for r in ns.routes]

    def count(self, kind) -> int:
        return sum(1 for i in self.interfaces if i.kind == kind)

    def summary(self) -> str:
        parts = [f"{len(self.namespaces)} netns"]
        if self.docker is not None:
            n = len([c for c in self.docker.containers if c.running])
            parts.append(f"{n} container" + ("s" if n != 1 else ""))
        veths = [i for i in self.interfaces if i.kind == "veth"]
        # a pair with both ends here is seen twice; one whose other end is outside, once
        here = {(i.netns, i.ifname) for i in veths}
        outside = sum(1 for i in veths if i.peer is None or i.peer not in here)
        pairs = (len(veths) - outside) // 2 + outside
        if pairs:
            parts.append(f"{pairs} veth pair" + ("s" if pairs > 1 else "")
                         + (f" ({outside} with one end outside)" if outside else ""))
        for kind in sorted({i.kind for i in self.interfaces} - {"veth", "loopback"}):
            n = self.count(kind)
            parts.append(f"{n} {kind}" + ("s" if n > 1 and not kind.endswith("s") else ""))
        return ", ".join(parts)

    def __repr__(self):
        return f"<Snapshot: {self.summary()}>"

    def show(self, dump=False):
        """Everything, namespace by namespace, like ``ip -br addr`` and ``ip route`` in each.

        With ``dump=True`` return the text instead of printing it.
        """
        lines = []
        for ns in self.namespaces:
            title = f"netns {ns.name}"
            if ns.kernel_name and ns.kernel_name != ns.name:
                title += f"  (kernel: {ns.kernel_name})"
            if ns.note:
                title += f"  [{ns.note}]"
            lines.append(title)
            for i in ns.interfaces:
                name = i.ifname + (f"@{i.peer[1]}({i.peer[0]})" if i.peer else "")
                master = f" master {i.master}" if i.master else ""
                lines.append(f"  {name:<28} {i.kind:<9} {i.state:<8} {i.mac or '':<18}"
                             f" {' '.join(i.addresses)}{master}")
            for r in ns.routes:
                lines.append(f"  route {r}")
        if self.docker is not None:
            for p in self.docker.ports:
                lines.append(f"published {p}")
            for p in self.proxies:
                lines.append(f"docker-proxy pid {p['pid']}: {p['host_ip']}:{p['host_port']} -> "
                             f"{p['container_ip']}:{p['container_port']}/{p['proto']}")
        for label in self.vanished:
            lines.append(f"(namespace {label} vanished while it was read: left out)")
        lines += [f"warning: {w}" for w in self.warnings]
        text = "\n".join(lines)
        if dump:
            return text
        print(text)

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self) + "\n" + self.show(dump=True))

    def to_dict(self) -> dict:
        """Plain dict (JSON-able), e.g. to save a fixture."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d) -> "Snapshot":
        nss = []
        for n in d.get("namespaces", []):
            ifs = [Interface(**{**i, "peer": tuple(i["peer"]) if i.get("peer") else None})
                   for i in n.get("interfaces", [])]
            routes = [Route(**r) for r in n.get("routes", [])]
            nss.append(Namespace(**{**n, "interfaces": ifs, "routes": routes}))
        docker = None
        if d.get("docker"):
            from netteach.docker.model import Model

            docker = Model.from_dict(d["docker"])
        return cls(namespaces=nss, lab=d.get("lab"), nft=d.get("nft", ""), docker=docker,
                   docker_host=d.get("docker_host"), proxies=list(d.get("proxies", [])),
                   iptables_legacy=d.get("iptables_legacy", ""), vanished=list(d.get("vanished", [])),
                   warnings=list(d.get("warnings", [])))

    # ---- the picture (drawing lives in netteach.draw; imported when asked for) -------------

    def graph(self):
        """This snapshot as a networkx graph (:func:`netteach.graph.to_graph`)."""
        from netteach.graph import to_graph

        return to_graph(self)

    def draw(self, **kwargs):
        """The picture (:func:`netteach.draw.draw`): drawn like a lab, a Docker host like a DockerHost."""
        from netteach.draw import draw

        if self.docker is not None and self.docker_host:
            kwargs.setdefault("title", f"Docker host: {self.docker.source}")
        return draw(self, **kwargs)

    def _repr_png_(self):
        from netteach.draw import to_png

        return to_png(self.draw())
