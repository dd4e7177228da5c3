"""ICMP echo (ping) from inside many namespaces at once, with bounded resources.

``ping`` as a process per pair costs ~5 ms of CPU and a process slot each: a
300-container reachability matrix is 90,000 pairs. Here each source
namespace gets one raw ICMP socket (opened inside it by the kernel thread);
echo requests go out in bursts and the replies are matched by identifier and
sequence number. The packets are the ones ``ping`` sends; the verdict is the
kernel's (a reply came back, or not).

Two kernel limits shape it:

- a socket's receive buffer: replies wait in it between reads, so bursts are
  small and the buffer large;
- the neighbour (ARP) table is one table for the whole machine: beyond
  ``net.ipv4.neigh.default.gc_thresh3`` entries (1024 by default) the kernel
  refuses new neighbours younger than 5 s and drops the packet that needed one.
  A full mesh of n containers on one bridge needs ~2n² entries, so when the
  table fills up the sweep waits for the replies in flight and flushes the
  neighbour caches of the namespaces it pings from (soft state: the kernel
  learns them again), then goes on.

Pairs not answered are tried once more at the end, so a packet dropped while
a neighbour was being resolved does not make a reachable pair look unreachable.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time

from netteach.kernel import netns, worker

SOL_RAW, ICMP_FILTER = 255, 1
SO_RCVBUFFORCE = 33
RTM_DELNEIGH, RTM_GETNEIGH = 29, 30
NDA_DST = 1
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
BURST = 128  # echo requests sent between two reads of the replies
NEIGH_BUDGET = 384  # neighbour entries the sweep lets itself add before it makes room (two per echo at most)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _echo(ident: int, seq: int) -> bytes:
    payload = b"netteach-reach!!"
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, _checksum(head + payload), ident, seq) + payload


def _open(ns) -> socket.socket:
    with netns.entered(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                          socket.IPPROTO_ICMP)
    s.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", 0xFFFFFFFF & ~1))  # only echo replies (type 0)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


def _neighbour_room() -> tuple[int, int]:
    """(entries in the machine's ARP table now, the hard limit)."""
    limit = 1024
    try:
        with open("/proc/sys/net/ipv4/neigh/default/gc_thresh3") as f:
            limit = int(f.read())
    except OSError:
        pass  # visible in the initial namespace only: the default then
    try:
        with open("/proc/net/stat/arp_cache") as f:
            f.readline()
            entries = int(f.readline().split()[0], 16)
    except (OSError, ValueError, IndexError):
        entries = 0
    return entries, limit


def flush_neighbours(ns) -> int:
    """``ip -n NS neigh flush all`` for IPv4 (not permanent entries); returns how many went."""
    from netteach.kernel import fastnl, rtnl

    sock = rtnl.fast(ns)
    dels = []
    for m in sock.dump(RTM_GETNEIGH, struct.pack("BxxxiHBB", socket.AF_INET, 0, 0, 0, 0)):
        family, index, state, _, _ = struct.unpack_from("BxxxiHBB", m, 0)
        if state & (NUD_NOARP | NUD_PERMANENT):
            continue
        dst = fastnl.attrs(m, 12).get(NDA_DST)
        if dst:
            dels.append((RTM_DELNEIGH, 0, struct.pack("BxxxiHBB", family, index, 0, 0, 0)
                         + fastnl._attr(NDA_DST, dst)))
    if dels:
        sock.transact(dels, ok=(errno.ENOENT,))
    return len(dels)


def echo_many(jobs: list[tuple], timeout: float = 1.0, attempts: int = 3, flush: list | None = None) -> list[bool]:
    """For each ``(ns, address)``: does an ICMP echo sent from ``ns`` get a reply?

    ``flush``: the namespaces whose neighbour caches may be flushed when the
    machine's neighbour table fills up (default: the source namespaces).
    """
    from netteach.kernel import rtnl

    results = [False] * len(jobs)
    if not jobs:
        return results
    spaces = list(dict.fromkeys(ns for ns, _ in jobs))
    rtnl._raise_fd_limit()
    socks = worker.call(lambda: {ns: _open(ns) for ns in spaces})
    base = (os.getpid() * 7919) & 0xFFFF
    ident = {ns: (base + k) & 0xFFFF for k, ns in enumerate(spaces)}
    by_fd = {s.fileno(): ns for ns, s in socks.items()}
    flush = spaces if flush is None else flush
    seq = {ns: 0 for ns in spaces}
    try:
        todo = list(range(len(jobs)))
        for attempt in range(attempts):
            outstanding: dict = {}  # (ns, seq) -> job index
            last_send = time.monotonic()

            def drain(wait: float):
                end = time.monotonic() + wait
                while True:
                    left = end - time.monotonic()
                    ready, _, _ = select.select(list(by_fd), [], [], max(0.0, left))
                    for fd in ready:
                        ns = by_fd[fd]
                        s = socks[ns]
                        while True:
                            try:
                                data, (src, _) = s.recvfrom(2048)
                            except BlockingIOError:
                                break
                            ihl = (data[0] & 0x0F) * 4
                            if len(data) < ihl + 8 or data[ihl] != 0:
                                continue
                            rid, rseq = struct.unpack_from("!HH", data, ihl + 4)
                            i = outstanding.get((ns, rseq)) if rid == ident[ns] else None
                            if i is not None and jobs[i][1] == src:
                                results[i] = True
                                del outstanding[(ns, rseq)]
                    if not outstanding or left <= 0:
                        return

            if attempt:  # a fresh start for the pairs not answered: room in the neighbour table
                for f in flush:
                    flush_neighbours(f)
            sent_since_check = added = 0
            for n, i in enumerate(todo):
                ns, addr = jobs[i]
                if sent_since_check >= BURST:
                    drain(0)
                    sent_since_check = 0
                    entries, limit = _neighbour_room()  # (readable in the initial namespace only)
                    if added >= NEIGH_BUDGET or entries > limit * 0.7:
                        # the table is filling: let the replies come, then make room; what is still
                        # out is tried again in the next attempt
                        drain(min(timeout, 0.05))
                        for f in flush:
                            flush_neighbours(f)
                        added = 0
                seq[ns] = (seq[ns] + 1) & 0xFFFF
                try:
                    socks[ns].sendto(_echo(ident[ns], seq[ns]), (addr, 0))
                except BlockingIOError:
                    drain(0.01)
                    try:
                        socks[ns].sendto(_echo(ident[ns], seq[ns]), (addr, 0))
                    except OSError:
                        continue
                except OSError:
                    continue  # no route, unreachable: no reply will come
                outstanding[(ns, seq[ns])] = i
                sent_since_check += 1
                added += 2  # at most: the source learns the target (or its gateway), the target the source
                last_send = time.monotonic()
            drain(max(0.0, last_send + timeout - time.monotonic()))
            todo = [i for i in todo if not results[i]]
            if not todo:
                break
    finally:
        for s in socks.values():
            s.close()
    return results
