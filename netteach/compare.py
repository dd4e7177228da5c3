"""Compare two builds of one container, role by role: e.g. a hand-built lab and a DockerHost.

Names differ between two builds (``c1`` and ``web``, ``veth7f3a2c1`` and
``vethc18bcba``); what must match is each piece's *role*: the container's
``eth0`` (address, prefix, MAC, MTU, state, routes), the host end of its veth
(enslaved to the bridge, no address), the bridge's gateway address,
``ip_forward``, and what the host's nftables rules do to the container's
traffic (followed packet by packet with :mod:`netteach.ruleset`, so that
Docker's ``DOCKER`` chains and three hand-written rules compare equal when
they do the same thing).

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

On live labs, :func:`compare_labs` reads the snapshots, the host's ruleset
and ``ip_forward`` itself: ``compare_labs(lab, "c1", dh, "web")``.

Introduced in notebooks/03_configuration.ipynb.
"""

from __future__ import annotations

import html
import ipaddress
import re
from dataclasses import dataclass

from netteach.ruleset import Packet, Ruleset, nat_rules

DOCKER_VETH = re.compile(r"^veth[0-9a-f]{7}$")
INTERNET = "internet"
INTERNET_FALLBACK = "203.0.113.10"  # TEST-NET-3, what DockerHost's internet serves on
UNPUBLISHED_PORT = 22


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
        self.ns = snap.namespace(container)
        self.ip_forward = ip_forward
        self.eth = self.host_end = self.bridge = self.uplink = None
        if self.ns is not None:
            cands = [i for i in self.ns.interfaces if i.kind != "loopback"]
            cands.sort(key=lambda i: (not (i.peer and i.peer[0] == "host"), i.ifname != "eth0"))
            self.eth = cands[0] if cands else None
        if self.eth is not None and self.eth.peer:
            self.host_end = snap.interface(*self.eth.peer)
        if self.host_end is not None and self.host_end.master:
            self.bridge = snap.interface(self.host_end.netns, self.host_end.master)
        host = snap.namespace("host")
        if host is not None:
            self.uplink = next((i for i in host.interfaces if i.peer and i.peer[0] == INTERNET), None)
        self.rules = Ruleset.parse(snap.nft)
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
            for a in i.addresses:
                if ":" not in a and (up is None or ipaddress.ip_interface(a).ip not in up):
                    return a.split("/")[0]
        return INTERNET_FALLBACK

    def published(self) -> set:
        """(host port, container port) of every DNAT rule to this container."""
        out = set()
        for _, rule in nat_rules(self.snap.nft):
            m = re.search(r"tcp dport (\d+)\b.*\bdnat to ([\d.]+):(\d+)", rule)
            if m and m.group(2) == self.ip:
                out.add((int(m.group(1)), int(m.group(3))))
        return out


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


def _verdict(side: _Side, kind: str, hook: str, pkt: Packet | None):
    if pkt is None:
        return _fact(None)
    v = side.rules.nat(hook, pkt, side.local) if kind == "nat" else side.rules.filter(hook, pkt, side.local)
    shown = str(v) if (v.action or kind == "filter") else "no NAT"
    if v.unknown:
        shown += " (? some rules not understood)"
    key = shown.replace(side.ip, "<container>") if side.ip else shown
    return shown, key


def _facts(side: _Side, ports: list) -> list[tuple[str, tuple]]:
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
    cip, brname, up = side.ip, br.ifname if br else "", side.uplink.ifname if side.uplink else "eth0"
    inet, host_ip = side.internet_ip, side.uplink_ip
    ok = cip is not None
    out.append(("nat POSTROUTING: container → internet (new)", _verdict(
        side, "nat", "postrouting",
        ok and Packet(saddr=cip, daddr=inet, iif=brname, oif=up, dport=80) or None)))
    for hp, cp in ports:
        out.append((f"nat PREROUTING: internet → host:{hp}", _verdict(
            side, "nat", "prerouting", Packet(saddr=inet, daddr=host_ip, iif=up, dport=hp))))
        out.append((f"nat OUTPUT: the host itself → host:{hp}", _verdict(
            side, "nat", "output", Packet(saddr=host_ip, daddr=host_ip, oif="lo", dport=hp))))
        out.append((f"filter FORWARD: internet → container:{cp} (new)", _verdict(
            side, "filter", "forward",
            ok and Packet(saddr=inet, daddr=cip, iif=up, oif=brname, dport=cp) or None)))
    closed = UNPUBLISHED_PORT
    while closed in {cp for _, cp in ports}:
        closed += 1
    out += [
        (f"filter FORWARD: internet → container:{closed} (not published)", _verdict(
            side, "filter", "forward",
            ok and Packet(saddr=inet, daddr=cip, iif=up, oif=brname, dport=closed) or None)),
        ("filter FORWARD: container → internet (new)", _verdict(
            side, "filter", "forward",
            ok and Packet(saddr=cip, daddr=inet, iif=brname, oif=up, dport=80) or None)),
        ("filter FORWARD: internet → container (replies)", _verdict(
            side, "filter", "forward",
            ok and Packet(saddr=inet, daddr=cip, iif=up, oif=brname, sport=80, dport=40000,
                          ct="established") or None)),
    ]
    return out


def compare(snap_a, ns_a: str, snap_b, ns_b: str, *, labels: tuple = ("a", "b"),
            ip_forward: tuple = (None, None)) -> Comparison:
    """Compare container ``ns_a`` of ``snap_a`` with ``ns_b`` of ``snap_b``, role by role.

    The host's ``nft list ruleset`` is read from each snapshot's ``nft``
    field; ``ip_forward`` (the host's value of each) is not in a snapshot, so
    it is passed in (:func:`compare_labs` reads it). Published ports are
    found in either side's DNAT rules and followed on both.
    """
    a, b = _Side(snap_a, ns_a, ip_forward[0]), _Side(snap_b, ns_b, ip_forward[1])
    ports = sorted(a.published() | b.published())
    rows = []
    for (role, (sa, ka)), (_, (sb, kb)) in zip(_facts(a, ports), _facts(b, ports)):
        rows.append(Row(role, sa, sb, ka == kb, tuple(labels)))
    return Comparison(labels, rows)


def compare_labs(lab_a, ns_a: str, lab_b, ns_b: str, labels: tuple | None = None) -> Comparison:
    """Read two live labs (snapshot, host ruleset, ``ip_forward``) and :func:`compare` them.

    ``compare_labs(lab, "c1", dh, "web")``: the hand-built ``c1`` against Docker's ``web``.
    """
    snaps, fwd = [], []
    for lab in (lab_a, lab_b):
        snap = lab.snapshot()
        snap.nft = str(lab.nft("host"))
        snaps.append(snap)
        fwd.append(lab.sysctl("host", "net.ipv4.ip_forward"))
    labels = labels or (f"{lab_a.name}: {ns_a}", f"{lab_b.name}: {ns_b}")
    return compare(snaps[0], ns_a, snaps[1], ns_b, labels=labels, ip_forward=tuple(fwd))
