"""Captured packets, decoded by scapy: what ``lab.capture()`` returns.

``lab.capture(netns, ifname)`` opens a packet socket on the interface at once
(:mod:`netteach.kernel.capture`); send traffic, then look at the capture:
reading it takes the frames the kernel kept meanwhile (up to ``count``,
waiting at most ``timeout`` seconds for missing ones) and decodes them with
scapy, VXLAN included (UDP port 4789).

    cap = lab.capture("node1", "eth0", count=2, filter="udp port 4789")
    lab.ping("c1", "10.0.9.3")
    cap              # one line per packet: outer UDP 4789, inner ICMP
    cap[0].layers()  # [('Ether', 14), ('IP', 20), ('UDP', 8), ('VXLAN', 8), ('Ether', 14), ...]

The filter is a small part of tcpdump's language -- ``icmp``, ``udp``,
``tcp``, ``arp``, ``vxlan``, ``port N``, ``udp port N``, ``tcp port N``,
``host A``, joined by ``and`` -- and, unlike tcpdump's, it looks at every
layer, so ``icmp`` also matches ICMP carried inside a VXLAN tunnel.

>>> f = parse_filter("udp port 4789 and host 192.0.2.12")
>>> f
<filter udp port 4789 and host 192.0.2.12>
>>> from scapy.layers.l2 import Ether
>>> from scapy.layers.inet import IP, UDP
>>> f(Ether() / IP(src="192.0.2.11", dst="192.0.2.12") / UDP(sport=5000, dport=4789))
True
>>> parse_filter("icmp")(Ether() / IP() / UDP())
False
>>> parse_filter("port eighty")
Traceback (most recent call last):
...
netteach.errors.InvalidName: capture filter 'port eighty': 'port' needs a number, e.g. 'port 80'
"""

from __future__ import annotations

import ipaddress
import time

from netteach import errors

PROTOS = ("icmp", "udp", "tcp", "arp", "vxlan")


def _layers():
    """scapy's layer classes, imported on first use (scapy takes a second to import)."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether
    from scapy.layers.vxlan import VXLAN  # binds UDP 4789 to VXLAN

    return {"ether": Ether, "ip": IP, "icmp": ICMP, "udp": UDP, "tcp": TCP, "arp": ARP, "vxlan": VXLAN}


class _Filter:
    def __init__(self, text: str, terms: list):
        self.text, self.terms = text, terms

    def __call__(self, pkt) -> bool:
        L = _layers()
        for kind, value in self.terms:
            if kind == "proto" and not pkt.haslayer(L[value]):
                return False
            if kind == "port":
                proto, port = value
                found = False
                for p in ((proto,) if proto else ("udp", "tcp")):
                    layer = pkt.getlayer(L[p])
                    while layer is not None and not found:
                        found = port in (layer.sport, layer.dport)
                        layer = layer.payload.getlayer(L[p]) if layer.payload else None
                if not found:
                    return False
            if kind == "host":
                layer, found = pkt.getlayer(L["ip"]), False
                while layer is not None and not found:
                    found = value in (layer.src, layer.dst)
                    layer = layer.payload.getlayer(L["ip"]) if layer.payload else None
                if not found:
                    return False
        return True

    def __repr__(self):
        return f"<filter {self.text}>"


def parse_filter(text: str | None) -> _Filter | None:
    """A predicate on scapy packets from a small tcpdump-like expression (None: everything)."""
    if text is None or not str(text).strip():
        return None
    words = str(text).lower().split()
    terms, i = [], 0

    def bad(why):
        return errors.InvalidName(f"capture filter {text!r}: {why}")

    while i < len(words):
        w = words[i]
        if w == "and":
            i += 1
            continue
        proto = None
        if w in ("udp", "tcp") and i + 1 < len(words) and words[i + 1] == "port":
            proto, i = w, i + 1
            w = words[i]
        if w == "port":
            if i + 1 >= len(words) or not words[i + 1].isdigit():
                raise bad("'port' needs a number, e.g. 'port 80'")
            terms.append(("port", (proto, int(words[i + 1]))))
            i += 2
        elif w == "host":
            try:
                terms.append(("host", str(ipaddress.IPv4Address(words[i + 1]))))
            except (IndexError, ValueError):
                raise bad("'host' needs an IPv4 address, e.g. 'host 10.0.9.2'") from None
            i += 2
        elif w in PROTOS:
            terms.append(("proto", w))
            i += 1
        else:
            raise bad(f"{w!r} is not understood; use {', '.join(PROTOS)}, 'port N', "
                      "'udp port N', 'host A', joined by 'and'")
    return _Filter(" ".join(str(text).split()), terms)


class Captured:
    """One captured frame: ``.time``, ``.direction`` ("in"/"out"), ``.raw`` bytes, ``.packet`` (scapy)."""

    def __init__(self, t: float, direction: str, raw: bytes, packet):
        self.time, self.direction, self.raw, self.packet = t, direction, raw, packet

    def summary(self) -> str:
        return self.packet.summary()

    def layers(self) -> list[tuple[str, int]]:
        """Each header's name and size in bytes, outermost first (what encapsulation costs)."""
        out, layer = [], self.packet
        while layer is not None and len(layer):
            size = len(layer) - len(layer.payload)
            out.append((layer.name if layer.name != "Ethernet" else "Ether", size))
            layer = layer.payload if layer.payload else None
        return out

    def show(self) -> str:
        """Every field of every layer (scapy's ``show()``), as text."""
        from netteach.lab import _Text

        return _Text(self.packet.show(dump=True))

    def __len__(self):
        return len(self.raw)

    def __repr__(self):
        return f"<Captured {self.direction} {len(self.raw)} bytes: {self.summary()}>"


class Capture:
    """Frames seen on one interface since it was opened; reading it ends the capture."""

    def __init__(self, label: str, ifname: str, sock, count: int, filter: str | None, timeout: float):
        self.label, self.ifname, self.count, self.timeout = label, ifname, count, timeout
        self.filter = parse_filter(filter)
        self._sock, self._packets, self._started = sock, None, time.time()

    @property
    def packets(self) -> list[Captured]:
        """The frames (read and decoded on first use; the socket is closed then)."""
        if self._packets is None:
            from netteach.kernel import capture as kcap

            ether = _layers()["ether"]
            decoded = {}

            def accept(data):
                pkt = ether(data)
                if self.filter is None or self.filter(pkt):
                    decoded[len(decoded)] = pkt
                    return True
                return False

            try:
                frames = kcap.read(self._sock, self.count, self.timeout, accept)
            finally:
                self.close()
            self._packets = [Captured(t, d, raw, decoded[i]) for i, (t, d, raw) in enumerate(frames)]
        return self._packets

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.packets
        return False

    def __len__(self):
        return len(self.packets)

    def __iter__(self):
        return iter(self.packets)

    def __getitem__(self, i):
        return self.packets[i]

    def table(self) -> str:
        head = f"capture on {self.ifname} in {self.label!r}" + (f" ({self.filter.text})" if self.filter else "")
        if not self.packets:
            return head + ": no packets"
        rows = [head + f": {len(self.packets)} packet(s)"]
        for i, p in enumerate(self.packets):
            rows.append(f"{i:>3}  {p.time - self._started:7.3f}s  {p.direction:<4} {len(p):>5} B  {p.summary()}")
        return "\n".join(rows)

    def __repr__(self):
        return self.table()

    def _repr_pretty_(self, p, cycle):
        p.text(self.table())
