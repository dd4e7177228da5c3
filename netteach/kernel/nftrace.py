"""Send one real packet and collect the kernel's own nftables trace events for it.

How: in each namespace a table netteach owns (``netteach_trace``) marks
exactly this packet with ``meta nftrace set 1`` (matched by its protocol,
source port or ICMP id), and a netlink socket joined to the
``NFNLGRP_NFTRACE`` group in that namespace receives every event the kernel
emits for it: each rule it matched, each chain return and policy, with the
interfaces and packet headers at that moment. The mark does not survive a
veth (the kernel scrubs it when a packet changes namespace), hence a table in
every namespace. This is what ``nft monitor trace`` prints, read directly from
netlink: the socket is subscribed before the packet leaves (no start-up race)
and there is no monitor process to leave behind. The tables are removed in a
``finally``, also on KeyboardInterrupt.

Plain data in and out (strings, ints, dicts), so it can run behind a process
boundary. Only :func:`trace` sends anything; the other functions read.

>>> parse_ruleset('''table ip filter { # handle 2
... \tchain FORWARD { # handle 1
... \t\ttype filter hook forward priority filter; policy drop;
... \t\tiifname "docker0" counter packets 0 bytes 0 accept # handle 5
... \t}
... }''')[("ip", "filter", "FORWARD")]["rules"]
{5: 'iifname "docker0" counter packets 0 bytes 0 accept'}
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import random
import re
import select
import socket
import struct
import time

from netteach import errors
from netteach.kernel import icmp, netns, nftables, procs, worker
from netteach.kernel.fastnl import attrs

TABLE = "netteach_trace"
NETLINK_NETFILTER, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTRACE = 12, 270, 1, 9
NFT_MSG_TRACE = (10 << 8) | 17  # NFNL_SUBSYS_NFTABLES, NFT_MSG_TRACE
FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
TYPES = {1: "policy", 2: "return", 3: "rule"}
VERDICTS = {0: "drop", 1: "accept", 2: "stolen", 3: "queue", 4: "repeat", 5: "stop",
            -1: "continue", -2: "break", -3: "jump", -4: "goto", -5: "return"}
PROTOS = {"icmp": 1, "tcp": 6, "udp": 17}
LAST = 2147483647  # our delivery witness runs after every other input chain


def _match(proto: str, ident: int) -> str:
    """The nft match for exactly our packet: a TCP SYN from our port, a UDP datagram, an echo request."""
    if proto == "tcp":
        return f"tcp sport {ident} tcp flags & (syn | ack) == syn"
    if proto == "udp":
        return f"udp sport {ident}"
    return f"icmp type echo-request icmp id {ident}"


def _table_script(proto: str, ident: int) -> str:
    m = _match(proto, ident)
    return (f"table inet {TABLE}\ndelete table inet {TABLE}\n"
            f"table bridge {TABLE}\ndelete table bridge {TABLE}\n"
            f"table inet {TABLE} {{\n"
            f" chain pre {{ type filter hook prerouting priority -350; policy accept; {m} meta nftrace set 1; }}\n"
            f" chain out {{ type filter hook output priority -350; policy accept; {m} meta nftrace set 1; }}\n"
            f" chain deliver {{ type filter hook input priority {LAST}; policy accept; }}\n"
            f"}}\n"
            f"table bridge {TABLE} {{\n"
            f" chain pre {{ type filter hook prerouting priority -350; policy accept; {m} meta nftrace set 1; }}\n"
            f" chain forward {{ type filter hook forward priority {LAST}; policy accept; }}\n"
            f" chain out {{ type filter hook output priority {LAST}; policy accept; }}\n"
            f"}}\n")


_REMOVE = (f"table inet {TABLE}\ndelete table inet {TABLE}\n"
           f"table bridge {TABLE}\ndelete table bridge {TABLE}\n")


def _listen(kns) -> socket.socket:
    with netns.entered(kns):  # a netlink socket belongs to the namespace it was made in
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((0, 0))
        s.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTRACE)
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def _probe_socket(kns, proto: str):
    """A socket in ``kns`` bound to a free local port (tcp/udp) or a raw ICMP socket."""
    with netns.entered(kns):
        if proto == "icmp":
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.IPPROTO_ICMP)
            return s, random.randint(0x4000, 0xfffe)
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    try:
        s.setblocking(False)
        s.bind(("0.0.0.0", 0))
    except BaseException:
        s.close()
        raise
    return s, s.getsockname()[1]


def _send(s, proto: str, dst: str, port: int | None, ident: int) -> str | None:
    """Send the one packet; the kernel's refusal (e.g. no route) as text, or None."""
    try:
        if proto == "tcp":
            rc = s.connect_ex((dst, port))
            if rc not in (0, errno.EINPROGRESS):
                return os.strerror(rc)
        elif proto == "udp":
            s.sendto(b"netteach trace\n", (dst, port))
        else:
            s.sendto(icmp.echo_request(ident, 1, b"netteach trace"), (dst, 0))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _headers(net: bytes | None, transport: bytes | None) -> dict:
    """Addresses and ports from the IPv4 and transport headers the event carries."""
    if not net or len(net) < 20 or net[0] >> 4 != 4:
        return {}
    proto = net[9]
    out = {"saddr": str(ipaddress.IPv4Address(net[12:16])), "daddr": str(ipaddress.IPv4Address(net[16:20])),
           "proto": {1: "icmp", 6: "tcp", 17: "udp"}.get(proto, str(proto))}
    if transport and proto in (6, 17) and len(transport) >= 4:
        out["sport"], out["dport"] = struct.unpack("!HH", transport[:4])
    elif transport and proto == 1 and len(transport) >= 6:
        out["icmp_type"], out["icmp_id"] = transport[0], struct.unpack("!H", transport[4:6])[0]
    return out


def parse_event(msg: bytes) -> dict | None:
    """One NFT_MSG_TRACE message (without its netlink header) as a plain dict."""
    if len(msg) < 4:
        return None
    a = attrs(msg, 4)

    def text(k):
        return a[k].rstrip(b"\0").decode(errors="replace") if k in a else None

    def u32(k):
        return struct.unpack("!I", a[k][:4])[0] if k in a else None

    ev = {"family": FAMILIES.get(msg[0], str(msg[0])), "table": text(1), "chain": text(2),
          "handle": struct.unpack("!Q", a[3][:8])[0] if 3 in a else None,
          "type": TYPES.get(u32(4), str(u32(4))), "trace_id": u32(6),
          "iif": u32(10), "oif": u32(12)}
    if 5 in a:
        v = attrs(a[5])
        code = struct.unpack("!i", v[1][:4])[0] if 1 in v else None
        ev["verdict"] = VERDICTS.get(code, str(code))
        if 2 in v:
            ev["target"] = v[2].rstrip(b"\0").decode()
    if 16 in a:
        ev["policy"] = VERDICTS.get(struct.unpack("!i", a[16][:4])[0])
    ev["packet"] = _headers(a.get(8), a.get(9))
    if 7 in a and len(a[7]) >= 12:
        ev["ll"] = {"dst": _mac(a[7][0:6]), "src": _mac(a[7][6:12])}
    if 18 in a:
        ev["ct_id"] = u32(18)
    if 20 in a:
        ev["ct_status"] = u32(20)
    return ev


def _read(s: socket.socket) -> list[dict]:
    out = []
    while True:
        try:
            data = s.recv(1 << 16)
        except BlockingIOError:
            return out
        off = 0
        while off + 16 <= len(data):
            ln, kind = struct.unpack_from("=IH", data, off)
            if ln < 16:
                break
            if kind == NFT_MSG_TRACE:
                ev = parse_event(data[off + 16:off + ln])
                if ev is not None:
                    out.append(ev)
            off += (ln + 3) & ~3


def _terminal(ev: dict) -> bool:
    """The packet's journey ended here: dropped, or accepted for local delivery."""
    if ev.get("verdict") == "drop" or ev.get("policy") == "drop":
        return True
    return ev["table"] == TABLE and ev["chain"] == "deliver" and ev["type"] == "policy"


def trace(src, spaces: dict, dst: str, proto: str = "icmp", port: int | None = None,
          quiet: float = 0.15, limit: float = 2.0) -> dict:
    """Send one packet from namespace ``src`` to ``dst`` and collect its trace events in ``spaces``.

    ``spaces`` maps a label to a kernel namespace (``None`` = root); ``src``
    is one of the labels. Returns ``{"ident", "error", "events": {label:
    [event, ...]}, "seconds"}``: ``ident`` is the source port (tcp/udp) or
    the ICMP id that marked the packet, ``error`` what the sending socket
    said (``"Network is unreachable"``) or None. Collecting stops at a drop,
    at local delivery, or ``quiet`` seconds after the last event (at most
    ``limit`` seconds).
    """
    t0 = time.perf_counter()
    probe = listeners = None
    installed: list = []
    try:
        probe, ident = worker.call(_probe_socket, spaces[src], proto)
        listeners = {label: worker.call(_listen, kns) for label, kns in spaces.items()}
        script = _table_script(proto, ident)
        installed = list(spaces.values())
        results = nftables.run_many([(kns, script) for kns in installed])
        bad = [err for rc, _, err in results if rc != 0]
        if bad:
            raise errors.MissingKernelFeature(
                f"nftables tracing is not available here: nft could not add netteach's trace table "
                f"({bad[0].strip()}) - see nt.doctor()")
        error = _send(probe, proto, dst, port, ident)
        events: dict = {label: [] for label in spaces}
        last = time.perf_counter()
        deadline = last + limit
        done_at = None
        if error is None:
            fds = {s.fileno(): label for label, s in listeners.items()}
            while True:
                now = time.perf_counter()
                end = min(deadline, (done_at + 0.02) if done_at else last + quiet)
                if now >= end:
                    break
                ready, _, _ = select.select(list(fds), [], [], end - now)
                for fd in ready:
                    got = _read(listeners[fds[fd]])
                    if got:
                        events[fds[fd]].extend(got)
                        last = time.perf_counter()
                        if done_at is None and any(_terminal(e) for e in got):
                            done_at = last
        return {"ident": ident, "error": error, "events": events, "seconds": time.perf_counter() - t0}
    finally:
        _cleanup(probe, listeners, installed)


def _cleanup(probe, listeners, installed):
    """Close our sockets and remove our tables; finish even if interrupted, then re-raise."""
    interrupted = None
    for _ in range(5):
        try:
            if probe is not None:
                probe.close()
            for s in (listeners or {}).values():
                s.close()
            if installed:
                nftables.run_many([(kns, _REMOVE) for kns in installed])
            break
        except KeyboardInterrupt as exc:
            interrupted = exc
    if interrupted is not None:
        raise interrupted


# ---- reading what explains the events ---------------------------------------------------------

_TABLE = re.compile(r"^table (\S+) (\S+) \{")
_CHAIN = re.compile(r"^\s*chain (\S+) \{")
_BASE = re.compile(r"^\s*type (\S+) hook (\S+) (?:device \S+ )?priority ([^;]+);(?:\s*policy (\S+);)?")
_HANDLE = re.compile(r"^\s*(.*\S)\s+# handle (\d+)\s*$")


def parse_ruleset(text: str) -> dict:
    """``nft -a list ruleset`` as {(family, table, chain): {hook, type, priority, policy, rules: {handle: text}}}.

    Only finds each rule's text by the handle a trace event names; nothing
    here decides what a rule does (the kernel said that in the event).
    """
    out: dict = {}
    fam = table = chain = None
    for line in text.splitlines():
        m = _TABLE.match(line)
        if m:
            fam, table, chain = m.group(1), m.group(2), None
            continue
        m = _CHAIN.match(line)
        if m and fam:
            chain = m.group(1)
            out[(fam, table, chain)] = {"hook": None, "type": None, "priority": None, "policy": None,
                                        "rules": {}}
            continue
        if chain is None:
            continue
        m = _BASE.match(line)
        if m:
            c = out[(fam, table, chain)]
            c.update(type=m.group(1), hook=m.group(2), priority=m.group(3).strip(), policy=m.group(4))
            continue
        m = _HANDLE.match(line)
        if m and not line.strip().startswith(("chain ", "table ", "set ", "map ")):
            out[(fam, table, chain)]["rules"][int(m.group(2))] = m.group(1)
        elif line.strip() == "}":
            chain = None
    return out


def rulesets(spaces: dict) -> dict:
    """{label: ``nft -a list ruleset`` text} for each (label, kernel ns), read at once."""
    labels = list(spaces)
    res = nftables.run_many([(spaces[label], "list ruleset") for label in labels], handles=True)
    return {label: out for label, (rc, out, _) in zip(labels, res) if rc == 0}


def route_get(jobs: list[dict]) -> list[dict]:
    """``ip -j route get DST [from SRC iif IIF]`` for each job {ns, dst, src?, iif?}, at once.

    Each answer is the kernel's route as a dict, or {"error": what ip said}.
    """
    argvs = []
    for j in jobs:
        argv = ["ip", "-j", "route", "get", j["dst"]]
        if j.get("iif"):
            argv += ["from", j["src"], "iif", j["iif"]]
        argvs.append((j["ns"], argv))
    out = []
    for rc, o, e in procs.run_many(argvs):
        if rc != 0:
            out.append({"error": e.strip().replace("RTNETLINK answers: ", "") or f"exit {rc}"})
            continue
        try:
            out.append(json.loads(o)[0])
        except (ValueError, IndexError):
            out.append({"error": o.strip()})
    return out


def fdb(ns, bridge: str) -> list[dict]:
    """``bridge -j fdb show br BRIDGE``: the bridge's forwarding database (MAC -> port)."""
    rc, out, _ = procs.run(ns, ["bridge", "-j", "fdb", "show", "br", bridge])
    try:
        return json.loads(out) if rc == 0 else []
    except ValueError:
        return []


def conntrack(ns, proto: str, ident: int) -> list[dict] | None:
    """Conntrack entries of our packet in ``ns`` (``conntrack -L``): original and reply tuples.

    None when the ``conntrack`` tool is not installed.
    """
    import shutil

    if not shutil.which("conntrack"):
        return None
    argv = ["conntrack", "-L", "-p", proto]
    argv += ["--icmp-id", str(ident)] if proto == "icmp" else ["--orig-port-src", str(ident)]
    rc, out, _ = procs.run(ns, argv)
    entries = []
    for line in out.splitlines():
        pairs = re.findall(r"(\w+)=(\S+)", line)
        tuples, cur = [], {}
        for k, v in pairs:
            if k == "src" and "src" in cur:  # the reply tuple starts
                tuples.append(cur)
                cur = {}
            cur[k] = v
        tuples.append(cur)
        if len(tuples) >= 2:
            entries.append({"original": tuples[0], "reply": tuples[1], "line": line.strip()})
    return entries


def listeners(ns, proto: str, port: int) -> list[str]:
    """Programs with a socket listening on ``proto`` ``port`` in ``ns`` (``ss -lnp sport = :PORT``).

    Each is named by its module when it is ``python -m X`` (e.g. ``docker_proxy``), else its command.
    """
    flag = "-t" if proto == "tcp" else "-u"
    rc, out, _ = procs.run(ns, ["ss", "-H", "-l", "-n", "-p", flag, "sport", "=", f":{port}"])
    names = []
    for line in out.splitlines() if rc == 0 else []:
        for comm, pid in re.findall(r'\("([^"]+)",pid=(\d+)', line):
            name = comm
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
                if "-m" in argv and argv.index("-m") + 1 < len(argv):
                    name = argv[argv.index("-m") + 1].rsplit(".", 1)[-1]
            except OSError:
                pass
            if name not in names:
                names.append(name)
        if not re.search(r"users:", line) and "(unknown)" not in names:
            names.append("(unknown)")
    return names
