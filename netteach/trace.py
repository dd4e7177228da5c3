"""What the kernel did to one real packet, hop by hop: ``lab.trace(src, dst, port=None, proto=None)``.

One packet is sent from ``src``'s namespace (an ICMP echo request without a
port, a TCP SYN with one, a UDP datagram with ``proto="udp"``) and every step
comes from the kernel:

- ``route``: the kernel's own route lookup in that namespace (``ip route
  get``, with ``from``/``iif`` for a packet it forwards);
- ``rule`` / ``policy``: each nftables rule and chain policy the packet met,
  from the kernel's trace events (:mod:`netteach.kernel.nftrace`);
- ``nat``: the address rewrite, from the conntrack entry (original and reply
  tuples), or from the headers the trace events carried;
- ``bridge``: the port a bridge sent the frame out of (a trace event at the
  bridge's hook), with the forwarding database entry that chose it;
- ``deliver`` / ``drop``: where it was taken in, or where and why it stopped.

Nothing is filled in by guessing: a namespace the kernel reported nothing for
has no hops, and a trace without any kernel event says so.

>>> t = Trace("c1", "10.0.0.2", "icmp", None, [
...     Hop("c1", "route", "10.0.0.2 dev eth0 src 10.0.0.1"),
...     Hop("c2", "deliver", "c2 takes it in on eth0")], delivered=True, verdict="delivered to c2")
>>> t
<Trace c1 -> 10.0.0.2 icmp: delivered to c2>
>>> print(t.table())
#  namespace  step     detail
1  c1         route    10.0.0.2 dev eth0 src 10.0.0.1
2  c2         deliver  c2 takes it in on eth0
<BLANKLINE>
delivered to c2
>>> t.to_dict()["hops"][1]
{'namespace': 'c2', 'kind': 'deliver', 'detail': 'c2 takes it in on eth0', 'data': {}}

Introduced in notebooks/03_configuration.ipynb.
"""

from __future__ import annotations

import dataclasses
import html
import ipaddress
import re
from dataclasses import dataclass, field

from netteach import errors

KINDS = ("route", "bridge", "rule", "policy", "nat", "deliver", "drop")
_NAT = re.compile(r"\b(dnat|snat|masquerade|redirect)\b")


@dataclass
class Hop:
    """One step of a packet: the namespace (lab-level name), its kind (see :data:`KINDS`), what happened.

    ``data`` holds the plain facts behind ``detail`` (table, chain, handle,
    rule, verdict, interfaces, addresses) for code that wants them.
    """

    namespace: str
    kind: str
    detail: str
    data: dict = field(default_factory=dict)

    def __repr__(self):
        return f"<Hop {self.namespace} {self.kind}: {self.detail}>"


class Trace:
    """One packet's journey as the kernel reported it; truthy when delivered."""

    def __init__(self, src, dst, proto, port, hops, delivered=False, verdict="", events=0, seconds=None,
                 path=(), addr=None):
        self.src, self.dst, self.proto, self.port = src, dst, proto, port
        self.addr = addr or dst
        self.hops: list[Hop] = list(hops)
        self.delivered = bool(delivered)
        self.verdict = verdict
        self.events = events  # how many kernel trace events this was built from
        self.seconds = seconds
        self.path = list(path)  # graph node ids the packet went through (for draw)
        self.listeners = None  # delivered tcp/udp: the programs listening on its port ([] = none)
        self._lab = None

    def __bool__(self):
        return self.delivered

    @property
    def what(self) -> str:
        return f"{self.src} -> {self.dst}" + (f":{self.port}" if self.port else "") + f" {self.proto}"

    def __repr__(self):
        return f"<Trace {self.what}: {self.verdict}>"

    def to_dict(self) -> dict:
        """Plain data (JSON-able): what a widget or a test reads."""
        return {"src": self.src, "dst": self.dst, "addr": self.addr, "proto": self.proto, "port": self.port,
                "delivered": self.delivered, "verdict": self.verdict, "events": self.events,
                "listeners": self.listeners,
                "hops": [dataclasses.asdict(h) for h in self.hops], "path": list(self.path)}

    def table(self) -> str:
        rows = [("#", "namespace", "step", "detail")]
        rows += [(str(i), h.namespace, h.kind, h.detail) for i, h in enumerate(self.hops, 1)]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths + [0])).rstrip() for r in rows]
        return "\n".join(lines + ["", self.verdict])

    def _repr_pretty_(self, p, cycle):
        p.text(f"trace {self.what}\n" + self.table())

    def _repr_html_(self):
        e = html.escape
        colors = {"drop": "#f3d0d0", "deliver": "#cfe8cf", "nat": "#fdf1c7"}
        out = [f"<table><caption style='caption-side:top;text-align:left'><b>trace {e(self.what)}</b>"
               "</caption><tr><th>#</th><th style='text-align:left'>namespace</th>"
               "<th style='text-align:left'>step</th><th style='text-align:left'>detail</th></tr>"]
        for i, h in enumerate(self.hops, 1):
            bg = colors.get(h.kind, "")
            style = f" style='background:{bg}'" if bg else ""
            out.append(f"<tr{style}><td>{i}</td><td style='text-align:left'>{e(h.namespace)}</td>"
                       f"<td style='text-align:left'>{e(h.kind)}</td>"
                       f"<td style='text-align:left;font-family:monospace'>{e(h.detail)}</td></tr>")
        color = "#1a7f37" if self.delivered else "#b42318"
        out.append(f"<tr><td colspan=4 style='text-align:left;color:{color}'><b>{e(self.verdict)}</b></td></tr>"
                   "</table>")
        return "".join(out)

    def draw(self, **kwargs):
        """The lab's picture with this packet's path (namespaces, interfaces, cables) in red."""
        if self._lab is None:
            raise errors.NetteachError("this trace is not tied to a lab; draw it with "
                                       "netteach.draw.draw(snapshot, highlight=trace.path)")
        short = re.split(r" after | by |: ", self.verdict, maxsplit=1)[0]
        kwargs.setdefault("title", f"trace {self.what}: {short}")
        return self._lab.draw(highlight=self.path, **kwargs)


# ---- checking what the student asked for -------------------------------------------------------

def check_request(port, proto) -> tuple[str, int | None]:
    """The protocol and port a trace sends: icmp without a port, tcp with one (or as asked).

    >>> check_request(None, None), check_request(8080, None), check_request(53, "udp")
    (('icmp', None), ('tcp', 8080), ('udp', 53))
    >>> check_request(70000, None)
    Traceback (most recent call last):
    ...
    netteach.errors.InvalidAddress: port 70000 is not a port number (1-65535)
    """
    if proto is None:
        proto = "tcp" if port is not None else "icmp"
    if not isinstance(proto, str) or proto.lower() not in ("icmp", "tcp", "udp"):
        raise errors.InvalidName(f"protocol {proto!r} cannot be traced: use proto='icmp', 'tcp' or 'udp'")
    proto = proto.lower()
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        raise errors.InvalidAddress(f"port {port!r} is not a port number (1-65535)")
    if proto == "icmp" and port is not None:
        raise errors.InvalidName("an ICMP echo has no port: leave port out, or say proto='tcp' or 'udp'")
    if proto != "icmp" and port is None:
        raise errors.InvalidAddress(f"a {proto} packet needs a destination port, e.g. port=80")
    return proto, port


def address_of(snapshot, src: str, dst: str) -> str:
    """``dst`` as an IPv4 address: itself, or the address of namespace ``dst`` that ``src`` would use
    (one on a subnet they share, else its first one)."""
    try:
        return str(ipaddress.IPv4Address(dst))
    except ValueError:
        pass
    ns = snapshot.namespace(dst)
    if ns is None:
        raise errors.NoSuchNamespace(
            f"cannot trace to {dst!r}: it is neither an IPv4 address nor a namespace of this lab "
            f"(it has: {', '.join(n.name for n in snapshot.namespaces)})")
    mine = [ipaddress.ip_interface(a) for i in (snapshot.namespace(src).interfaces
                                                 if snapshot.namespace(src) else []) for a in i.addresses
            if ":" not in a and i.kind != "loopback"]
    theirs = [ipaddress.ip_interface(a) for i in ns.interfaces for a in i.addresses
              if ":" not in a and i.kind != "loopback"]
    for t in theirs:
        if any(t.ip in m.network for m in mine):
            return str(t.ip)
    if not theirs:
        raise errors.InvalidAddress(f"namespace {dst!r} has no IPv4 address to send a packet to")
    return str(theirs[0].ip)


# ---- turning kernel events into hops ---------------------------------------------------------

def _clean(rule: str) -> str:
    """A rule as nft lists it, without its counter values."""
    return " ".join(re.sub(r"\bcounter packets \d+ bytes \d+", "counter", rule).split())


class _Builder:
    def __init__(self, snap, spaces, raw, src, addr, proto, port):
        self.snap, self.spaces, self.raw = snap, spaces, raw
        self.src, self.addr, self.proto, self.port = src, addr, proto, port
        self.byidx = {(i.netns, i.index): i for i in snap.interfaces}
        self.hops: list[Hop] = []
        self.path: list[str] = []

    def ifname(self, ns, idx):
        i = self.byidx.get((ns, idx))
        return i.ifname if i else (f"ifindex {idx}" if idx else None)

    def order(self, events) -> list[str]:
        """The namespaces in the order the packet crossed them: follow each exit interface's veth peer."""
        seen, out, cur = set(), [], self.src
        while cur is not None and cur not in seen and events.get(cur):
            seen.add(cur)
            out.append(cur)
            nxt = None
            for ev in reversed(events[cur]):
                i = self.byidx.get((cur, ev.get("oif")))
                if i is not None and i.peer and i.peer[0] != cur:
                    nxt = i.peer[0]
                    break
            cur = nxt
        return out + [ns for ns in self.spaces if events.get(ns) and ns not in seen]


def build(snap, spaces: dict, raw: dict, src: str, dst: str, addr: str, proto: str, port,
          rulesets: dict, routes_fn, fdb_fn, conntrack_fn, forwarding_fn=lambda ns: None,
          listeners_fn=lambda ns, port: None) -> Trace:
    """A :class:`Trace` from what :func:`netteach.kernel.nftrace.trace` returned.

    The ``*_fn`` callables ask the kernel the follow-up questions (route
    lookups, bridge FDB, conntrack), so this function itself reads nothing.
    """
    from netteach.kernel.nftrace import TABLE

    b = _Builder(snap, spaces, raw, src, addr, proto, port)
    events = raw["events"]
    total = sum(len(v) for v in events.values())
    hops, path = b.hops, b.path
    what = f"{proto} to {addr}" + (f":{port}" if port else "")
    if raw.get("error"):
        route = routes_fn([{"ns": src, "dst": addr}])[0]
        hops.append(Hop(src, "route", route.get("error") or _route_text(route), route))
        hops.append(Hop(src, "drop", f"the kernel refused to send it: {raw['error']}"))
        v = (f"no route in {src} to {addr}" if "unreachable" in raw["error"].lower()
             else f"not sent from {src}: {raw['error']}")
        return Trace(src, dst, proto, port, hops, False, v, total, raw.get("seconds"), [f"netns:{src}"], addr)
    if total == 0:
        v = ("the kernel reported no trace events for this packet (is nftables tracing available here?): "
             "netteach does not guess its path")
        return Trace(src, dst, proto, port, [], False, v, 0, raw.get("seconds"), [], addr)

    parsed = {}
    from netteach.kernel.nftrace import parse_ruleset

    for ns, text in rulesets.items():
        parsed[ns] = parse_ruleset(text)
    delivered_in = drop = nat_rule = None
    order = b.order(events)
    route_jobs: list = []  # (hop index, job)
    nat_spaces: list = []
    bridges: list = []  # (hop index, ns, bridge, port, mac)
    for ns in order:
        evs = events[ns]
        path.append(f"netns:{ns}")
        rs = parsed.get(ns, {})
        hook = None
        routed = ns == b.src
        if routed:
            route_jobs.append((len(hops), {"ns": ns, "dst": addr}))
        arrival = next((e for e in evs if e.get("iif")), None)
        bridged = any(e["family"] == "bridge" and e["table"] == TABLE and e["chain"] == "forward" for e in evs)
        seen_in: dict = {}
        for ev in evs:
            for key in ("iif", "oif"):
                name = b.ifname(ns, ev.get(key))
                if name and ev.get(key) and f"if:{ns}/{name}" not in path:
                    path.append(f"if:{ns}/{name}")
            chain = rs.get((ev["family"], ev["table"], ev["chain"]), {})
            if chain.get("hook"):
                hook = chain["hook"]
            ours = ev["table"] == TABLE
            if ours and ev["family"] == "inet":
                hook = {"pre": "prerouting", "out": "output", "deliver": "input"}.get(ev["chain"], hook)
            if not routed and hook not in ("prerouting", None) and ev["family"] != "bridge":
                routed = True
                if not bridged:
                    pkt = ev.get("packet") or {}
                    first = (arrival or {}).get("packet") or {}
                    route_jobs.append((len(hops), {
                        "ns": ns, "dst": pkt.get("daddr") or first.get("daddr") or addr,
                        "src": first.get("saddr") or pkt.get("saddr"),
                        "iif": b.ifname(ns, (arrival or {}).get("iif"))}))
            if ours:
                # our chains' policy events carry no headers; the end-of-chain event before them does
                key = (ev["family"], ev["chain"])
                if ev.get("iif") or ev.get("oif") or ev.get("packet"):
                    seen_in[key] = ev
                ev = {**seen_in.get(key, {}), **{k: v for k, v in ev.items() if v not in (None, {})}}
                if ev["family"] == "inet" and ev["chain"] == "deliver" and ev["type"] == "policy":
                    delivered_in = ns
                    hops.append(Hop(ns, "deliver", f"{ns} takes it in on {b.ifname(ns, ev.get('iif')) or 'lo'}"
                                    + (f" for local {proto} port {(ev.get('packet') or {}).get('dport')}"
                                       if port else ""),
                                    {"iif": b.ifname(ns, ev.get("iif")), "packet": ev.get("packet")}))
                elif ev["family"] == "bridge" and ev["chain"] in ("forward", "out") and ev["type"] == "policy":
                    br = b.byidx.get((ns, ev.get("oif")))
                    master = br.master if br else None
                    mac = (ev.get("ll") or {}).get("dst")
                    bridges.append((len(hops), ns, master, br.ifname if br else None, mac))
                    if master and f"if:{ns}/{master}" not in path:
                        path.append(f"if:{ns}/{master}")
                    src_port = b.ifname(ns, ev.get("iif"))
                    how = (f"bridge {master} forwards the frame from port {src_port} out of port "
                           if ev["chain"] == "forward" else f"bridge {master} sends it out of port ")
                    hops.append(Hop(ns, "bridge", how + (br.ifname if br else f"ifindex {ev.get('oif')}"),
                                    {"bridge": master, "port": br.ifname if br else None,
                                     "in_port": src_port if ev["chain"] == "forward" else None, "mac": mac}))
                continue
            label = f"{ev['family']} {ev['table']} {ev['chain']}"
            data = {"table": ev["table"], "family": ev["family"], "chain": ev["chain"], "hook": hook,
                    "handle": ev.get("handle"), "verdict": ev.get("verdict"), "packet": ev.get("packet"),
                    "iif": b.ifname(ns, ev.get("iif")), "oif": b.ifname(ns, ev.get("oif"))}
            if ev["type"] == "policy":
                pol = ev.get("policy") or "accept"
                data["verdict"] = pol
                hops.append(Hop(ns, "policy", f"{label}: no rule decided, chain policy {pol}", data))
                if pol == "drop":
                    drop = (ns, f"dropped in {ns} by {label} policy")
                    hops.append(Hop(ns, "drop", f"{label} policy drop", data))
                continue
            if ev["type"] == "return" or ev.get("handle") is None:
                if not chain.get("hook"):  # a regular chain ran out of rules: back to its caller
                    hops.append(Hop(ns, "rule", f"{label}: no rule matched, back to the calling chain", data))
                continue
            text = _clean(chain.get("rules", {}).get(ev["handle"], f"rule handle {ev['handle']}"))
            data["rule"] = text
            verdict = ev.get("verdict") or "continue"
            shown = verdict + (f" {ev['target']}" if ev.get("target") else "")
            hops.append(Hop(ns, "rule", f"{label}: {text}  → {shown}", data))
            if verdict == "accept" and _NAT.search(text):
                nat_rule = nat_rule or (ns, label, text)
                nat_spaces.append((len(hops), ns, text, ev))
                hops.append(Hop(ns, "nat", "", {"rule": text}))
            if verdict == "drop":
                drop = (ns, f"dropped in {ns} by {label}: {text}")
                hops.append(Hop(ns, "drop", f"{label} drops it: {text}", data))
        if drop:
            break
        if not routed and delivered_in != ns and arrival is not None:  # taken in, then nothing: ask routing
            first = arrival.get("packet") or {}
            route_jobs.append((len(hops), {"ns": ns, "dst": first.get("daddr") or addr, "src": first.get("saddr"),
                                           "iif": b.ifname(ns, arrival.get("iif"))}))

    # the kernel's answers to the follow-up questions
    if route_jobs:
        answers = routes_fn([job for _, job in route_jobs])
        for (at, job), ans in reversed(list(zip(route_jobs, answers))):
            how = f" (from {job['src']} in on {job['iif']})" if job.get("iif") else ""
            if "error" not in ans and ans.get("type") in ("unreachable", "prohibit", "blackhole"):
                ans = {**ans, "error": f"{ans['type']} route"}
            if "error" in ans and job.get("iif") and forwarding_fn(job["ns"]) == "0":
                ans["error"] += f" (net.ipv4.ip_forward is 0 in {job['ns']}: it does not forward)"
            hops.insert(at, Hop(job["ns"], "route", ("no route: " + ans["error"] if "error" in ans
                                                      else _route_text(ans)) + how, {**ans, "query": job}))
            if ans.get("dev") not in (None, "lo") and f"if:{job['ns']}/{ans['dev']}" not in path:
                path.append(f"if:{job['ns']}/{ans['dev']}")
            bridges = [(i + 1 if i >= at else i, *rest) for i, *rest in bridges]
            nat_spaces = [(i + 1 if i >= at else i, *rest) for i, *rest in nat_spaces]
    for at, ns, text, ev in nat_spaces:
        hops[at] = _nat_hop(ns, text, conntrack_fn(ns), events)
    for at, ns, br, portname, mac in bridges:
        if not br or not mac:
            continue
        entries = [e for e in fdb_fn(ns, br) if e.get("mac") == mac]
        if entries:
            e = entries[0]
            h = hops[at]
            h.detail += f" (fdb: {mac} is on {e.get('ifname')})"
            h.data["fdb"] = e

    listen = None
    if delivered_in and port and not drop:
        dport = _dport(hops)
        listen = listeners_fn(delivered_in, int(dport)) if dport else None
        h = next(x for x in reversed(hops) if x.kind == "deliver")
        h.data["listeners"] = listen
        if listen:
            h.detail += f"; {', '.join(listen)} listens there"
        elif listen is not None:
            h.detail += ("; nothing listens there: the kernel answers with a reset" if proto == "tcp"
                         else "; nothing listens there: the kernel answers port unreachable")
    last_ns = order[-1] if order else src
    if drop:
        verdict = drop[1]
    elif delivered_in:
        verdict = f"delivered to {delivered_in}" + (f":{_dport(hops)}" if port else "")
        if nat_rule:
            verdict += f" after {_NAT.search(nat_rule[2]).group(1).upper()} by {nat_rule[1]}: {nat_rule[2]}"
        if listen:
            verdict += f" ({', '.join(listen)} listens)"
        elif listen is not None:
            verdict += ", but nothing listens there"
    else:
        stop = next((h for h in reversed(hops) if h.kind == "route" and "error" in h.data), None)
        if stop is not None:
            verdict = f"stopped in {stop.namespace}: no route ({stop.data['error']})"
            if "error" in stop.data and "ip_forward is 0" in stop.data["error"]:
                verdict = f"no route in {stop.namespace}: {stop.data['error']}"
        else:
            exit_to = None
            for ev in reversed(events.get(last_ns, [])):
                i = b.byidx.get((last_ns, ev.get("oif")))
                if i is not None and i.peer and i.peer[0] != last_ns:
                    exit_to = i.peer[0]
                    break
            if exit_to and not events.get(exit_to):
                verdict = (f"last seen leaving {last_ns} towards {exit_to}, where the kernel reported no "
                           f"trace event (sent towards {what})")
            else:
                verdict = (f"last seen in {last_ns}; no delivery or drop was reported by the kernel "
                           f"(sent towards {what})")
    return Trace(src, dst, proto, port, hops, bool(delivered_in) and not drop, verdict, total,
                 raw.get("seconds"), path, addr)


def _dport(hops) -> str:
    for h in reversed(hops):
        if h.kind == "deliver":
            return str(((h.data.get("packet") or {}).get("dport")) or "")
    return ""


def _route_text(r: dict) -> str:
    s = r.get("dst", "?")
    if r.get("type") and r["type"] != "unicast":
        s = f"{r['type']} {s}"
    if r.get("gateway"):
        s += f" via {r['gateway']}"
    if r.get("dev"):
        s += f" dev {r['dev']}"
    if r.get("prefsrc"):
        s += f" src {r['prefsrc']}"
    return s


def _nat_hop(ns, rule, entries, events) -> Hop:
    kind = _NAT.search(rule).group(1)
    if entries:
        e = entries[0]
        o, r = e["original"], e["reply"]

        def ep(t, side):
            p = t.get("sport" if side == "src" else "dport") or t.get("id")
            return t.get(side, "?") + (f":{p}" if p and "sport" in t else "")

        ct = (f"conntrack: original {ep(o, 'src')} -> {ep(o, 'dst')}, "
              f"reply {ep(r, 'src')} -> {ep(r, 'dst')}")

        if kind in ("dnat", "redirect"):
            detail = f"{kind.upper()}: destination {ep(o, 'dst')} becomes {ep(r, 'src')}"
        else:
            detail = f"{kind.upper()}: source {ep(o, 'src')} becomes {ep(r, 'dst')}"
        return Hop(ns, "nat", f"{detail}  ({ct})", {"rule": rule, "conntrack": e})
    seen = [ev.get("packet") for ev in events.get(ns, []) if ev.get("packet")]
    if seen and entries is None:
        a, z = seen[0], seen[-1]
        return Hop(ns, "nat", f"{kind.upper()} (conntrack tool not installed): the headers went from "
                   f"{a.get('saddr')} -> {a.get('daddr')}:{a.get('dport', '')} to "
                   f"{z.get('saddr')} -> {z.get('daddr')}:{z.get('dport', '')}", {"rule": rule})
    return Hop(ns, "nat", f"{kind.upper()} by this rule (no conntrack entry found)", {"rule": rule})


SMALL_LAB = 12  # up to this many namespaces, every one is watched


def watched(snap, src: str, addr: str) -> list[str]:
    """The namespaces to watch for this packet's trace events: in a small lab all of them; in a big one
    the source, every namespace that can pass packets on (a bridge, or more than one interface), the
    one holding the destination address and those holding an address some DNAT rule sends to.

    A packet that enters a namespace outside this set shows as leaving towards it, with no hops there.
    """
    from netteach import firewall

    if len(snap.namespaces) <= SMALL_LAB:
        return [ns.name for ns in snap.namespaces]
    targets = {addr}
    for ns in snap.namespaces:
        targets |= firewall.dnat_targets(ns.ruleset)
    out = []
    for ns in snap.namespaces:
        ifs = [i for i in ns.interfaces if i.kind != "loopback"]
        mine = {a.split("/")[0] for i in ifs for a in i.addresses}
        if ns.name == src or len(ifs) > 1 or any(i.kind == "bridge" for i in ifs) or mine & targets:
            out.append(ns.name)
    return out


def run(lab, src: str, dst: str, port=None, proto=None, src_label=None, addr=None) -> Trace:
    """Trace one packet in a live lab (what ``lab.trace`` and ``dh.trace`` call)."""
    from netteach import kernel

    proto, port = check_request(port, proto)
    snap = lab.snapshot()
    src_label = src_label or src
    if snap.namespace(src_label) is None:
        raise errors.NoSuchNamespace(f"cannot trace from {src!r}: no such namespace in lab {lab.name!r} "
                                     f"(it has: {', '.join(n.name for n in snap.namespaces)})")
    addr = addr or address_of(snap, src_label, dst)
    spaces = {ns.name: lab.kernel_name(ns.name) for ns in snap.namespaces}
    watch = {ns: spaces[ns] for ns in watched(snap, src_label, addr)}
    raw = kernel.trace_packet(src_label, watch, addr, proto, port)
    raw["events"] = {ns: raw["events"].get(ns, []) for ns in spaces}
    seen = {ns: spaces[ns] for ns, evs in raw["events"].items() if evs}
    rulesets = kernel.trace_rulesets(seen) if seen else {}

    def routes_fn(jobs):
        return kernel.route_get([{**j, "ns": spaces[j["ns"]]} for j in jobs])

    def conntrack_fn(ns):
        return kernel.conntrack_entries(spaces[ns], proto, raw["ident"])

    def fdb_fn(ns, bridge):
        return kernel.bridge_fdb(spaces[ns], bridge)

    def forwarding_fn(ns):
        return kernel.sysctl_get(spaces[ns], "net.ipv4.ip_forward")

    def listeners_fn(ns, dport):
        return kernel.listeners(spaces[ns], proto, dport)

    t = build(snap, spaces, raw, src_label, dst, addr, proto, port, rulesets, routes_fn, fdb_fn, conntrack_fn,
              forwarding_fn, listeners_fn)
    t.listeners = (t.hops[-1].data.get("listeners") if t.hops and t.hops[-1].kind == "deliver" else None)
    t.src = src
    t._lab = lab
    return t
