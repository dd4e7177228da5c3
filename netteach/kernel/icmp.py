"""ICMP echo (ping) packets and raw sockets for pinging from many namespaces at once (the sweep: :mod:`.reach`).

``ping`` as a process per pair costs ~5 ms of CPU and a process slot each: a
300-container reachability matrix is 90,000 pairs. Here each source
namespace gets one raw ICMP socket (opened inside it by the kernel thread);
echo requests go out and the replies are matched by identifier and sequence
number. The packets are the ones ``ping`` sends; the verdict is the kernel's
(a reply came back within the timeout, or not). How the requests are paced
and the neighbour table kept from overflowing: :mod:`.reach`.
"""

from __future__ import annotations

import socket
import struct

from netteach.kernel import netns

SOL_RAW, ICMP_FILTER = 255, 1
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes = b"netteach-reach!!") -> bytes:
    """An ICMP echo request as ``ping`` sends it (the kernel adds the IP header).

    >>> echo_request(1, 2)[:4].hex()
    '080034fc'
    """
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, _checksum(head + payload), ident, seq) + payload


def echo_reply(data: bytes) -> tuple[int, int] | None:
    """(identifier, sequence) of an echo reply as a raw socket reads it (IP header first), else None."""
    ihl = (data[0] & 0x0F) * 4
    if len(data) < ihl + 8 or data[ihl] != 0:
        return None
    return struct.unpack_from("!HH", data, ihl + 4)


def open_socket(ns) -> socket.socket:
    """A raw ICMP socket inside ``ns`` that reads only echo replies (run on the kernel thread)."""
    with netns.entered(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                          socket.IPPROTO_ICMP)
    s.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF & ~1))  # only echo replies (type 0)
    # large buffers: replies wait between reads, and requests waiting for ARP count as sent data
    for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            s.setsockopt(socket.SOL_SOCKET, force, 4 << 20)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, plain, 4 << 20)
    return s
