"""Compare two builds of one container, role by role: e.g. a hand-built lab and a DockerHost.

Names differ between two builds (``c1`` and ``web``, ``veth7f3a2c1`` and
``vethc18bcba``); what must match is each piece's *role*: the container's
``eth0`` (address, prefix, MAC, MTU, state, routes), the host end of its veth
(enslaved to the bridge, no address), the bridge's gateway address,
``ip_forward``. On live labs (:func:`compare_labs`) each side also sends real
packets and compares what the kernel did to them (:mod:`netteach.trace`):
container to container on the same network, container to the host's
published port, the host to ``127.0.0.1:<port>``, the internet to the
published port, the container to the internet. Docker's ``DOCKER`` chains
and three hand-written rules compare equal when the kernel treats the packet
the same; a row that differs shows each side's verdict, naming the rule or
policy that decided.

>>> from netteach.snapshot import Snapshot, Namespace, Interface, Route
>>> def build(mac):
...     return Snapshot(namespaces=[
...         Namespace("host", interfaces=[
...             Interface("host", "docker0", kind="bridge", admin_up=True, state="UP",
...                       addresses=["172.17.0.1/16"]),
...             Interface("host", "veth1a2b3c4", kind="veth", peer=("c1", "eth0"), master="docker0",
...                       admin_up=True, state="UP")]),
...         Namespace("c1", interfaces=[
...             Interface("c1", "eth0", kind="veth", peer=("host", "veth1a2b3c4"), mac=mac, mtu=1500,
...                       admin_up=True, state="UP", addresses=["172.17.0.2/16"])],
...             routes=[Route("c1", "default", gateway="172.17.0.1", dev="eth0")])])
>>> same = compare(build("02:42:ac:11:00:02"), "c1", build("02:42:ac:11:00:02"), "c1")
>>> bool(same), len(same.rows) > 10
(True, True)
>>> c = compare(build("02:42:ac:11:00:02"), "c1", build("02:42:ac:11:00:99"), "c1",
...             labels=("by hand", "docker"))
>>> c.differences
[<Row container eth0: MAC: by hand 02:42:ac:11:00:02, docker 02:42:ac:11:00:99>]

On live labs, :func:`compare_labs` reads the snapshots and traces the packets
itself: ``compare_labs(lab, "c1", dh, "web")``.

Introduced in notebooks/03_configuration.ipynb.
"""

from __future__ import annotations

import html
import ipaddress
import re
from dataclasses import dataclass

from netteach import firewall

DOCKER_VETH = re.compile(r"^veth[0-9a-f]{7}$")
INTERNET = "internet"
INTERNET_FALLBACK = "203.0.113.10"  # TEST-NET-3, what DockerHost's internet serves on


@dataclass
class Row:
    """One role compared: what each side shows, and whether they match."""

    role: str
    a: str
    b: str
    same: bool
    labels: tuple = ("a", "b")

    def __repr__(self):
        if self.same:
            return f"<Row {self.role}: {self.a} (both)>"
        return f"<Row {self.role}: {self.labels[0]} {self.a}, {self.labels[1]} {self.b}>"


class Comparison:
    """A side-by-side table of two builds; truthy when every role matches."""

    def __init__(self, labels: tuple, rows: list[Row]):
        self.labels = tuple(labels)
        self.rows = rows

    @property
    def differences(self) -> list[Row]:
        return [r for r in self.rows if not r.same]

    def __bool__(self):
        return not self.differences

    def summary(self) -> str:
        diff = self.differences
        if not diff:
            return f"all {len(self.rows)} roles match"
        return f"{len(diff)} of {len(self.rows)} roles differ: " + ", ".join(r.role for r in diff)

    def table(self) -> str:
        head = ("role", *self.labels, "")
        rows = [head] + [(r.role, r.a, r.b, "✓" if r.same else "✗ differs") for r in self.rows]
        widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
        lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths + [0])).rstrip() for r in rows]
        return "\n".join(lines + ["", self.summary()])

    def __repr__(self):
        return self.table()

    def _repr_pretty_(self, p, cycle):
        p.text(self.table())

    def _repr_html_(self):
        e = html.escape
        out = ["<table><tr><th style='text-align:left'>role</th>"
               + "".join(f"<th style='text-align:left'>{e(label)}</th>" for label in self.labels)
               + "<th></th></tr>"]
        for r in self.rows:
            color = "#cfe8cf" if r.same else "#f3d0d0"
            out.append(f"<tr><td style='text-align:left'>{e(r.role)}</td>"
                       f"<td style='text-align:left;font-family:monospace'>{e(r.a)}</td>"
                       f"<td style='text-align:left;font-family:monospace'>{e(r.b)}</td>"
                       f"<td style='background:{color}'>{'✓' if r.same else '✗ differs'}</td></tr>")
        out.append(f"<caption style='caption-side:bottom'>{e(self.summary())}</caption></table>")
        return "".join(out)


# ---- reading roles out of one snapshot ------------------------------------------------------

class _Side:
    """The pieces of one build, found by role."""

    def __init__(self, snap, container: str, ip_forward=None):
        self.snap = snap
        self.host = host_of(snap)
        self.ns = snap.namespace(container)
        self.ip_forward = ip_forward
        self.eth = self.host_end = self.bridge = self.uplink = None
        if self.ns is not None:
            cands = [i for i in self.ns.interfaces if i.kind != "loopback"]
            cands.sort(key=lambda i: (not (i.peer and i.peer[0] == self.host), i.ifname != "eth0"))
            self.eth = cands[0] if cands else None
        if self.eth is not None and self.eth.peer:
            self.host_end = snap.interface(*self.eth.peer)
        if self.host_end is not None and self.host_end.master:
            self.bridge = snap.interface(self.host_end.netns, self.host_end.master)
        host = snap.namespace(self.host)
        if host is not None:
            self.uplink = next((i for i in host.interfaces if i.peer and i.peer[0] == INTERNET), None)
        self.local = {a.split("/")[0] for i in (host.interfaces if host else []) for a in i.addresses}

    @property
    def ip(self) -> str | None:
        v4 = [a for a in (self.eth.addresses if self.eth else []) if ":" not in a]
        return v4[0].split("/")[0] if v4 else None

    @property
    def uplink_ip(self) -> str:
        v4 = [a for a in (self.uplink.addresses if self.uplink else []) if ":" not in a]
        return v4[0].split("/")[0] if v4 else "198.51.100.2"

    @property
    def internet_ip(self) -> str:
        inet = self.snap.namespace(INTERNET)
        up = ipaddress.ip_interface(self.uplink.addresses[0]).network if self.uplink and self.uplink.addresses else None
        for i in (inet.interfaces if inet else []):
            if i.kind == "loopback":
                continue
            for a in i.addresses:
                if ":" not in a and (up is None or ipaddress.ip_interface(a).ip not in up):
                    return a.split("/")[0]
        return INTERNET_FALLBACK

    def published(self) -> set:
        """(host port, container port) of every tcp DNAT rule of the host to this container (and, on a
        real Docker host, every port its daemon publishes for it: iptables-nft's DNAT hides its target
        from ``nft -j``)."""
        host = self.snap.namespace(self.host)
        out = {(p["port"], p["to_port"]) for p in firewall.published(host.ruleset if host else [])
               if p["to"] == self.ip and p["proto"] == "tcp"}
        m = getattr(self.snap, "docker", None)
        c = m.container(self.ns.name) if m is not None and self.ns is not None else None
        return out | {(p.host_port, p.container_port) for p in (c.ports if c else []) if p.proto == "tcp"}

    def neighbour(self) -> str | None:
        """Another namespace plugged into the same bridge (the first by name), or None."""
        if self.bridge is None:
            return None
        for ns in sorted(self.snap.namespaces, key=lambda n: n.name):
            if ns is self.ns or ns.name == self.host:
                continue
            for i in ns.interfaces:
                end = self.snap.interface(*i.peer) if i.peer else None
                if end is not None and end.netns == self.bridge.netns and end.master == self.bridge.ifname:
                    return ns.name
        return None


def host_of(snap) -> str:
    """The label of the Docker host's namespace: ``"host"`` in a lab (and ``nt.docker_host()``), the
    machine's ``"root"`` in ``nt.inspect()`` of a machine running dockerd."""
    return getattr(snap, "docker_host", None) or "host"


def _fact(value, key=None):
    shown = "—" if value in (None, "", []) else str(value)
    return shown, (shown if key is None else key)


def _routes(side: _Side):
    if side.ns is None:
        return _fact(None)
    parts = []
    for r in side.ns.routes:
        if ":" in r.dst:
            continue
        s = r.dst + (f" via {r.gateway}" if r.gateway else "") + (f" dev {r.dev}" if r.dev else "")
        parts.append(s)
    text = "; ".join(sorted(parts, key=lambda s: (not s.startswith("default"), s)))
    if side.ip:  # compare by role: the container's own address is compared in its own row
        return _fact(text, text.replace(side.ip, "<ip>"))
    return _fact(text)


def _facts(side: _Side) -> list[tuple[str, tuple]]:
    eth, end, br = side.eth, side.host_end, side.bridge
    v4 = [a for a in (eth.addresses if eth else []) if ":" not in a]
    out = [
        ("container interface", _fact(eth and f"{eth.ifname} ({eth.kind}"
                                      + (f", other end in {eth.peer[0]})" if eth.peer else ")"))),
        ("container eth0: address/prefix", _fact(", ".join(v4))),
        ("container eth0: MAC", _fact(eth and eth.mac)),
        ("container eth0: MTU", _fact(eth and eth.mtu)),
        ("container eth0: state", _fact(eth and eth.state)),
        ("container lo", _fact(None if side.ns is None else
                               ("up" if any(i.kind == "loopback" and i.admin_up for i in side.ns.interfaces)
                                else "down"))),
        ("container routes", _routes(side)),
    ]
    if end is not None:
        docker_like = bool(DOCKER_VETH.match(end.ifname))
        name = (f"{end.ifname} (veth + 7 hex, like Docker)" if docker_like
                else f"{end.ifname} (not Docker's veth + 7 hex)")
        out += [
            ("host end of the veth: name", _fact(name, docker_like)),
            ("host end: enslaved to", _fact(end.master)),
            ("host end: addresses", _fact(", ".join(end.addresses) or "none")),
            ("host end: state", _fact(end.state)),
        ]
    else:
        out += [(r, _fact(None)) for r in ("host end of the veth: name", "host end: enslaved to",
                                            "host end: addresses", "host end: state")]
    out += [
        ("bridge: gateway address", _fact(br and f"{br.ifname} {' '.join(a for a in br.addresses if ':' not in a)}")),
        ("bridge: switched on", _fact(br and ("up" if br.admin_up else "down"))),
        ("host: net.ipv4.ip_forward", _fact(side.ip_forward if side.ip_forward is not None else "not read")),
    ]
    return out


def compare(snap_a, ns_a: str, snap_b, ns_b: str, *, labels: tuple = ("a", "b"),
            ip_forward: tuple = (None, None)) -> Comparison:
    """Compare container ``ns_a`` of ``snap_a`` with ``ns_b`` of ``snap_b``, role by role.

    The interfaces, routes and the host's ``ip_forward`` (from each
    snapshot's sysctls, or ``ip_forward`` when given); what packets do is
    :func:`compare_labs`'s part, since it needs the live kernel.
    """
    fwd = []
    for snap, given in zip((snap_a, snap_b), ip_forward):
        host = snap.namespace(host_of(snap))
        fwd.append(given if given is not None else (host.sysctls.get("net.ipv4.ip_forward") if host else None))
    a, b = _Side(snap_a, ns_a, fwd[0]), _Side(snap_b, ns_b, fwd[1])
    rows = []
    for (role, (sa, ka)), (_, (sb, kb)) in zip(_facts(a), _facts(b)):
        rows.append(Row(role, sa, sb, ka == kb, tuple(labels)))
    return Comparison(labels, rows)


def _outcome(side: _Side, t, others: dict) -> tuple[str, str]:
    """(shown, key) of one traced packet: the verdict as shown; the key says it by role, not by name."""
    shown = t.verdict
    if t.delivered:
        dest = t.hops[-1].namespace if t.hops else "?"
        role = others.get(dest, dest)
        key = f"delivered to {role}"
        if t.port:
            key += " (listening)" if t.listeners else " (nothing listens)"
        nats = sorted({h.detail.split(":")[0] for h in t.hops if h.kind == "nat"})
        if nats:
            key += " after " + "+".join(nats)
    else:
        drop = next((h for h in t.hops if h.kind == "drop"), None)
        key = f"dropped in {others.get(drop.namespace, drop.namespace)}" if drop else "not delivered"
    return shown, key


def _probes(lab, side: _Side, ports: list) -> list[tuple[str, tuple]]:
    """The behaviour rows: real packets traced on this side's lab."""
    from netteach import trace

    def run(role, src, addr, port=None):
        if src is None or addr is None or side.snap.namespace(src) is None:
            return role, _fact(None)
        t = trace.run(lab, src, addr, port=port, src_label=src, addr=addr)
        return role, _outcome(side, t, roles)

    me, other = side.ns.name if side.ns else None, side.neighbour()
    roles = {me: "the container", "host": "the host", INTERNET: INTERNET}
    if other:
        roles[other] = "the other container"
    inet = side.internet_ip if side.snap.namespace(INTERNET) else None
    host_ip = side.uplink_ip if side.uplink else None
    out = []
    role = "packet: another container on its network → container (ping)"
    out.append(run(role, other, side.ip) if other else
               (role, ("— (no other container on its bridge)", "no other container")))
    for hp, cp in ports:
        out.append(run(f"packet: container → host:{hp}", me, host_ip, hp))
        out.append(run(f"packet: host → 127.0.0.1:{hp}", "host", "127.0.0.1", hp))
        out.append(run(f"packet: internet → host:{hp}", INTERNET, host_ip, hp))
    out.append(run("packet: container → internet (ping)", me, inet))
    return out


def compare_labs(lab_a, ns_a: str, lab_b, ns_b: str, labels: tuple | None = None) -> Comparison:
    """Compare two live labs: :func:`compare`'s roles, then real packets traced on both.

    ``compare_labs(lab, "c1", dh, "web")``: the hand-built ``c1`` against
    Docker's ``web``. Published ports are those the host's DNAT rules name
    for the container on either side; every packet row is a trace
    (:meth:`Lab.trace <netteach.lab.Lab.trace>`), so a row that differs says
    which packet and, in each side's verdict, which rule or policy decided.
    """
    snaps, fwd = [], []
    for lab in (lab_a, lab_b):
        snap = lab.snapshot()
        snaps.append(snap)
        host = snap.namespace(host_of(snap))
        fwd.append(host.sysctls.get("net.ipv4.ip_forward") if host else None)
    labels = labels or (f"{lab_a.name}: {ns_a}", f"{lab_b.name}: {ns_b}")
    c = compare(snaps[0], ns_a, snaps[1], ns_b, labels=labels, ip_forward=tuple(fwd))
    a, b = _Side(snaps[0], ns_a), _Side(snaps[1], ns_b)
    ports = sorted(a.published() | b.published())
    for (role, (sa, ka)), (_, (sb, kb)) in zip(_probes(lab_a, a, ports), _probes(lab_b, b, ports)):
        c.rows.append(Row(role, sa, sb, ka == kb, tuple(labels)))
    return c
