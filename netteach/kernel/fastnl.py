"""A small, fast rtnetlink client for the operations a lab does hundreds of times.

pyroute2 costs ~0.25 ms of Python per request and needs an asyncio loop of its
own; the kernel answers in ~0.02 ms. For the hot path (links, addresses,
routes, dumps, namespace ids) netteach speaks rtnetlink directly: one plain
netlink socket per namespace, opened from inside it by the kernel thread, then
usable from any thread (requests on one socket are serialised by a lock).
Rarer things (vxlan, macvlan and other link kinds) still go through pyroute2.

Everything in and out is plain data; errors come back as ``NetlinkError``
(errno, message) and are translated to netteach errors by the caller.

>>> attrs(_attr(3, b"eth0\\0") + _attr(4, struct.pack("I", 1500)))
{3: b'eth0\\x00', 4: b'\\xdc\\x05\\x00\\x00'}
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import os
import socket
import struct
import threading

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 1, 4, 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_DUMP_INTR = 0x10  # on a dump's messages: the table changed while it was read (inconsistent)
DUMP_TRIES = 10
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_GETNSID = 90
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_NET_NS_FD, IFLA_LINK_NETNSID = 16, 18, 20, 28, 37
IFLA_EXT_MASK = 29
RTEXT_FILTER_SKIP_STATS = 1 << 3  # smaller answers: netteach never reads the counters this way
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC, RTA_TABLE = 1, 4, 5, 7, 15
NETNSA_NSID, NETNSA_FD = 1, 3
NLA_F_NESTED = 0x8000
IFF_UP = 1
OPERSTATES = ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"]
PROTO = {2: "kernel", 3: "boot", 4: "static", 16: "dhcp"}
SCOPE = {0: "universe", 200: "site", 253: "link", 254: "host"}


class NetlinkError(OSError):
    """The kernel refused a request: ``.errno`` and the kernel's message."""


# ---- encoding -----------------------------------------------------------------------

def _attr(kind: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("HH", n, kind) + payload + b"\0" * (-n % 4)


def _nest(kind: int, *parts: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, b"".join(parts))


def _str(kind: int, s: str) -> bytes:
    return _attr(kind, s.encode() + b"\0")


def _u32(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("I", v))


def _ifinfo(index=0, flags=0, change=0) -> bytes:
    return struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


def _mac(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def link_attrs(name=None, master=None, mtu=None, mac=None, alias=None, netns_fd=None) -> bytes:
    out = b""
    if name is not None:
        out += _str(IFLA_IFNAME, name)
    if master is not None:
        out += _u32(IFLA_MASTER, master)
    if mtu is not None:
        out += _u32(IFLA_MTU, mtu)
    if mac is not None:
        out += _attr(IFLA_ADDRESS, _mac(mac))
    if alias is not None:
        out += _attr(IFLA_IFALIAS, alias.encode())
    if netns_fd is not None:
        out += _u32(IFLA_NET_NS_FD, netns_fd)
    return out


# ---- decoding -----------------------------------------------------------------------

def attrs(buf: bytes, offset: int = 0, end: int | None = None) -> dict:
    """{type: payload} of a run of netlink attributes (last one wins)."""
    end = len(buf) if end is None else end
    out = {}
    while offset + 4 <= end:
        n, kind = struct.unpack_from("HH", buf, offset)
        if n < 4:
            break
        out[kind & 0x3FFF] = buf[offset + 4:offset + n]
        offset += (n + 3) & ~3
    return out


def _cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode(errors="replace")


def _u(b: bytes) -> int:
    return struct.unpack("I", b[:4])[0]


def _ip(family: int, b: bytes) -> str:
    return str(ipaddress.ip_address(b))


def parse_link(msg: bytes) -> dict:
    _, _, index, flags, _ = struct.unpack_from("BxHiII", msg, 0)
    a = attrs(msg, 16)
    kind = None
    if IFLA_LINKINFO in a:
        kind = attrs(a[IFLA_LINKINFO]).get(IFLA_INFO_KIND)
        kind = _cstr(kind) if kind else None
    name = _cstr(a.get(IFLA_IFNAME, b""))
    mac = a.get(IFLA_ADDRESS)
    return {
        "index": index,
        "ifname": name,
        "kind": "loopback" if name == "lo" else (kind or "other"),
        "mac": ":".join(f"{x:02x}" for x in mac) if mac else None,
        "mtu": _u(a[IFLA_MTU]) if IFLA_MTU in a else None,
        "state": OPERSTATES[a[IFLA_OPERSTATE][0]] if IFLA_OPERSTATE in a and a[IFLA_OPERSTATE][0] < 7 else "UNKNOWN",
        "admin_up": bool(flags & IFF_UP),
        "master": _u(a[IFLA_MASTER]) if IFLA_MASTER in a else None,
        "link": _u(a[IFLA_LINK]) if IFLA_LINK in a else None,
        "link_netnsid": struct.unpack("i", a[IFLA_LINK_NETNSID][:4])[0] if IFLA_LINK_NETNSID in a else None,
        "alias": a[IFLA_IFALIAS].split(b"\0", 1)[0].decode(errors="replace") if IFLA_IFALIAS in a else None,
        "details": {},
    }


def parse_addr(msg: bytes) -> dict:
    family, prefixlen, _, scope, index = struct.unpack_from("BBBBI", msg, 0)
    a = attrs(msg, 8)
    raw = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
    return {"index": index, "address": _ip(family, raw) if raw else None, "prefixlen": prefixlen,
            "family": 4 if family == socket.AF_INET else 6, "scope": scope}


def parse_route(msg: bytes) -> dict | None:
    family, dst_len, _, _, table, proto, scope, rtype, _ = struct.unpack_from("BBBBBBBBI", msg, 0)
    a = attrs(msg, 12)
    if RTA_TABLE in a:
        table = _u(a[RTA_TABLE])
    if table != 254 or rtype != 1:  # main table, unicast routes only (what `ip route` shows)
        return None
    dst = _ip(family, a[RTA_DST]) if RTA_DST in a else None
    return {"dst": f"{dst}/{dst_len}" if dst else "default",
            "gateway": _ip(family, a[RTA_GATEWAY]) if RTA_GATEWAY in a else None,
            "oif": _u(a[RTA_OIF]) if RTA_OIF in a else None,
            "scope": SCOPE.get(scope, str(scope)), "proto": PROTO.get(proto, str(proto)),
            "src": _ip(family, a[RTA_PREFSRC]) if RTA_PREFSRC in a else None,
            "family": 4 if family == socket.AF_INET else 6}


# ---- one socket per namespace -------------------------------------------------------

class Socket:
    """A rtnetlink socket (opened in the namespace it will talk to).

    ``sock`` is for tests that play the kernel's side over a socket pair.
    """

    def __init__(self, sock: socket.socket | None = None):
        if sock is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            sock.bind((0, 0))
        self.sock = sock
        self.seq = 0
        self.lock = threading.Lock()
        self.restarts = 0  # dumps asked again because the kernel said they were interrupted

    def close(self):
        self.sock.close()

    def _send(self, batch: list[tuple[int, int, bytes]]) -> list[int]:
        """Send several requests in one write; returns their sequence numbers."""
        out, seqs = [], []
        for mtype, flags, payload in batch:
            self.seq += 1
            seqs.append(self.seq)
            out.append(struct.pack("IHHII", 16 + len(payload), mtype, flags, self.seq, 0) + payload)
        self.sock.send(b"".join(out))
        return seqs

    def _messages(self):
        """(type, flags, seq, body) of each message the kernel sends, as they come."""
        while True:
            buf = self.sock.recv(1 << 20)
            off = 0
            while off + 16 <= len(buf):
                n, mtype, flags, seq, _ = struct.unpack_from("IHHII", buf, off)
                if n < 16:
                    break  # malformed: drop the rest of this datagram
                yield mtype, flags, seq, buf[off + 16:off + n]
                off += (n + 3) & ~3

    def transact(self, batch: list[tuple[int, int, bytes]], ok=()) -> list[int]:
        """Send requests (each with an ACK asked), wait for every answer.

        Returns the errno of each (0 = done; an errno listed in ``ok`` is
        returned instead of raised). The first other error raises NetlinkError
        once every answer is in, so the socket stays in step.
        """
        with self.lock:
            seqs = self._send([(t, f | NLM_F_REQUEST | NLM_F_ACK, p) for t, f, p in batch])
            want = {s: i for i, s in enumerate(seqs)}
            codes = [None] * len(seqs)
            for mtype, _, seq, body in self._messages():
                if seq in want and mtype == NLMSG_ERROR:
                    codes[want.pop(seq)] = -struct.unpack_from("i", body, 0)[0]
                if not want:
                    break
        for code in codes:
            if code and code not in ok:
                raise NetlinkError(code, os.strerror(code))
        return codes

    def get(self, mtype: int, payload: bytes) -> bytes | None:
        """One ``get`` request; the answer's body, or None if the kernel says there is no such thing."""
        return self.get_many(mtype, [payload])[0]

    def get_many(self, mtype: int, payloads: list[bytes]) -> list[bytes | None]:
        """Several ``get`` requests in one write; their answers in order (None: no such thing).

        Only ENODEV and ENOENT mean "no such thing"; any other refusal (EINVAL for
        a malformed request, say) raises, once every answer is in.
        """
        with self.lock:
            seqs = self._send([(mtype, NLM_F_REQUEST, p) for p in payloads])
            want = {s: i for i, s in enumerate(seqs)}
            out: list = [None] * len(seqs)
            error = 0
            for t, _, s, body in self._messages():
                if s not in want:
                    continue
                i = want.pop(s)
                if t == NLMSG_ERROR:
                    code = -struct.unpack_from("i", body, 0)[0]
                    if code not in (0, _errno.ENODEV, _errno.ENOENT):
                        error = error or code
                else:
                    out[i] = body
                if not want:
                    break
        if error:
            raise NetlinkError(error, os.strerror(error))
        return out

    def dump(self, mtype: int, payload: bytes) -> list[bytes]:
        """Every answer to a dump request, read consistently.

        If the kernel marks the dump interrupted (``NLM_F_DUMP_INTR`` on a
        message, or ``EINTR``: the table changed while it was read), the
        half-read answer is dropped and the dump asked again, a few times.
        """
        with self.lock:
            for _ in range(DUMP_TRIES):
                out, interrupted = self._dump_once(mtype, payload)
                if not interrupted:
                    return out
                self.restarts += 1
        raise NetlinkError(_errno.EINTR, f"the kernel's table kept changing while it was read "
                                         f"({DUMP_TRIES} dumps in a row were interrupted); try again")

    def _dump_once(self, mtype: int, payload: bytes) -> tuple[list[bytes], bool]:
        (seq,) = self._send([(mtype, NLM_F_REQUEST | NLM_F_DUMP, payload)])
        out, interrupted = [], False
        for t, flags, s, body in self._messages():
            if s != seq:
                continue
            if flags & NLM_F_DUMP_INTR:
                interrupted = True
            if t in (NLMSG_DONE, NLMSG_ERROR):
                # a dump ends with DONE, whose body holds the dump's errno (0: complete)
                code = -struct.unpack_from("i", body, 0)[0] if len(body) >= 4 else 0
                if code == _errno.EINTR:
                    return out, True
                if code:
                    raise NetlinkError(code, os.strerror(code))
                if t == NLMSG_DONE:
                    return out, interrupted
                continue  # an ACK (error 0) before DONE
            out.append(body)

    # ---- requests ----

    def links(self) -> list[dict]:
        return [parse_link(m) for m in self.dump(RTM_GETLINK, _ifinfo() + _u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS))]

    def link(self, name: str | None = None, index: int = 0) -> dict | None:
        return self.links_named([name] if name else [], index)[0]

    def links_named(self, names: list[str], index: int = 0) -> list[dict | None]:
        """Links by name (or one by index), asked in one write."""
        head = _ifinfo(index=index) + _u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
        bodies = self.get_many(RTM_GETLINK, [head + _str(IFLA_IFNAME, n) for n in names] or [head])
        return [parse_link(b) if b else None for b in bodies]

    def addrs(self) -> list[dict]:
        return [parse_addr(m) for m in self.dump(RTM_GETADDR, struct.pack("BBBBI", 0, 0, 0, 0, 0))]

    def routes(self) -> list[dict]:
        out = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for m in self.dump(RTM_GETROUTE, struct.pack("BBBBBBBBI", family, 0, 0, 0, 0, 0, 0, 0, 0)):
                r = parse_route(m)
                if r:
                    out.append(r)
        return out

    def nsid(self, fd: int) -> int | None:
        body = self.get(RTM_GETNSID, struct.pack("Bxxx", socket.AF_UNSPEC) + _u32(NETNSA_FD, fd))
        if not body:
            return None
        v = attrs(body, 4).get(NETNSA_NSID)
        n = struct.unpack("i", v[:4])[0] if v else -1
        return n if n >= 0 else None


def newlink_veth(name: str, peer: str, peer_fd=None, up=False, master=None, peer_mac=None) -> tuple:
    """RTM_NEWLINK for a veth pair (``ip link add NAME type veth peer name PEER [netns ...]``)."""
    peer_body = _ifinfo() + link_attrs(name=peer, netns_fd=peer_fd, mac=peer_mac)
    info = _nest(IFLA_LINKINFO, _str(IFLA_INFO_KIND, "veth"),
                 _nest(IFLA_INFO_DATA, _nest(VETH_INFO_PEER, peer_body)))
    body = _ifinfo(flags=IFF_UP if up else 0, change=IFF_UP if up else 0) + \
        link_attrs(name=name, master=master) + info
    return RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body


def newlink_kind(name: str, kind: str) -> tuple:
    """RTM_NEWLINK for a kind with no options (``ip link add NAME type bridge``)."""
    return RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, _ifinfo() + _str(IFLA_IFNAME, name) + \
        _nest(IFLA_LINKINFO, _str(IFLA_INFO_KIND, kind))


def setlink(index: int, up=None, **kw) -> tuple:
    """RTM_NEWLINK on an existing link (``ip link set ...``)."""
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    return RTM_NEWLINK, 0, _ifinfo(index=index, flags=flags, change=change) + link_attrs(**kw)


def dellink(index: int) -> tuple:
    return RTM_DELLINK, 0, _ifinfo(index=index)


def addr(add: bool, index: int, address: str, prefixlen: int) -> tuple:
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    body = struct.pack("BBBBI", family, prefixlen, 0, 0, index) + \
        _attr(IFA_LOCAL, ip.packed) + _attr(IFA_ADDRESS, ip.packed)
    if add:
        return RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body
    return RTM_DELADDR, 0, body


def route(add: bool, dst: str, via: str | None = None, oif: int | None = None, proto: int = 3) -> tuple:
    """``ip route add|del DST [via GW] [dev OIF]`` (main table; proto boot, as ip sets it)."""
    net = ipaddress.ip_network(dst)
    family = socket.AF_INET if net.version == 4 else socket.AF_INET6
    scope = 0 if via else 253  # a route with no gateway is on-link
    body = struct.pack("BBBBBBBBI", family, net.prefixlen, 0, 0, 254, proto if add else 0,
                       scope if add else 0, 1, 0)
    if net.prefixlen:
        body += _attr(RTA_DST, net.network_address.packed)
    if via:
        body += _attr(RTA_GATEWAY, ipaddress.ip_address(via).packed)
    if oif:
        body += _u32(RTA_OIF, oif)
    if add:
        return RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body
    return RTM_DELROUTE, 0, body
