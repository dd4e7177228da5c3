"""Packet capture without tcpdump: an ``AF_PACKET`` socket opened inside a namespace.

A packet socket bound to one interface receives a copy of every frame the
interface sends or receives (what ``tcpdump -i IFNAME`` sees). The socket is
opened on the kernel thread inside the namespace and stays bound to that
namespace's interface; frames wait in the socket's receive buffer until
:func:`read` takes them, so traffic can be sent *after* opening and read back
later, with no thread running meanwhile.

>>> from netteach.kernel.capture import DIRECTIONS
>>> DIRECTIONS[0], DIRECTIONS[4]
('in', 'out')
"""

from __future__ import annotations

import select
import socket
import time

from netteach import errors
from netteach.kernel import netns, worker

ETH_P_ALL = 0x0003
# sll_pkttype: PACKET_HOST, BROADCAST, MULTICAST, OTHERHOST, OUTGOING
DIRECTIONS = {0: "in", 1: "in (broadcast)", 2: "in (multicast)", 3: "in (not for us)", 4: "out"}
RCVBUF = 4 << 20  # frames wait here until read: room for a few thousand


def open_socket(ns, ifname: str) -> socket.socket:
    """A non-blocking packet socket seeing every frame of ``ifname`` in namespace ``ns``."""
    def make():
        with netns.entered(ns):
            try:
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            except PermissionError:
                raise errors.PermissionDenied("capturing packets needs CAP_NET_RAW (run as root)") from None
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                s.bind((ifname, 0))  # resolved in the namespace the socket was made in
            except OSError as exc:
                s.close()
                if exc.errno == 19:  # ENODEV
                    raise errors.NoSuchInterface(f"no interface {ifname!r} to capture on in "
                                                 f"namespace {ns!r}") from None
                raise errors.PermissionDenied(f"cannot capture on {ifname!r} in {ns!r}: {exc.strerror}") from None
        s.setblocking(False)
        return s

    return worker.call(make)


def read(sock: socket.socket, count: int, timeout: float, accept=None) -> list[tuple[float, str, bytes]]:
    """Up to ``count`` frames ``(time, direction, bytes)`` for which ``accept(bytes)`` is true.

    Waits at most ``timeout`` seconds for more once the buffered ones are read.
    """
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        try:
            data, addr = sock.recvfrom(65535)
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            continue
        if accept is None or accept(data):
            out.append((time.time(), DIRECTIONS.get(addr[2], str(addr[2])), data))
    return out
