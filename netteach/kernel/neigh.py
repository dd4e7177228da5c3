"""The neighbour (ARP) tables: the machine's shared table, and a namespace's entries.

The table is one for the whole machine: every namespace's entries count
against ``gc_thresh3`` (1024 by default, settable only in the initial
namespace), and beyond it the kernel refuses a new neighbour that is younger
than 5 s and drops the packet that needed it. Anything that makes many
neighbours at once (a reachability sweep) must keep count and give them back.

>>> t = neighbour_table(); t["limit"] > 0 and t["entries"] >= 0
True
"""

from __future__ import annotations

import errno
import socket
import struct

RTM_DELNEIGH, RTM_GETNEIGH, RTM_GETNEIGHTBL = 29, 30, 66
NDA_DST = 1
NDTA_NAME, NDTA_THRESH3, NDTA_CONFIG, NDTA_STATS = 1, 4, 5, 7
NUD_INCOMPLETE, NUD_NOARP, NUD_PERMANENT = 0x01, 0x40, 0x80
NDMSG = "BxxxiHBB"  # family, ifindex, state, flags, type


def neighbour_table() -> dict:
    """The machine's ARP table as the kernel counts it (``ip -s ntable show name arp_cache``).

    ``entries`` now, ``limit`` (gc_thresh3) and ``table_fulls`` (how many times a
    new neighbour was refused because the table was full). The table is
    shared by all namespaces, so this namespace's answer is the machine's.
    """
    from netteach.kernel import fastnl, rtnl

    for m in rtnl.fast(None).dump(RTM_GETNEIGHTBL, struct.pack("Bxxx", socket.AF_INET)):
        a = fastnl.attrs(m, 4)
        if a.get(NDTA_NAME, b"").rstrip(b"\0") != b"arp_cache" or NDTA_CONFIG not in a:
            continue
        return {"entries": struct.unpack_from("I", a[NDTA_CONFIG], 4)[0],
                "limit": struct.unpack_from("I", a[NDTA_THRESH3], 0)[0] if NDTA_THRESH3 in a else 1024,
                # struct ndt_stats: eleven u64 counters, table_fulls the last
                "table_fulls": struct.unpack_from("Q", a[NDTA_STATS], 80)[0] if NDTA_STATS in a else 0}
    return {"entries": 0, "limit": 1024, "table_fulls": 0}


def neighbours(ns) -> list[tuple[int, str, int]]:
    """``ip -n NS -4 neigh``: (ifindex, address, state) of each entry."""
    from netteach.kernel import fastnl, rtnl

    out = []
    for m in rtnl.fast(ns).dump(RTM_GETNEIGH, struct.pack(NDMSG, socket.AF_INET, 0, 0, 0, 0)):
        _, index, state, _, _ = struct.unpack_from(NDMSG, m, 0)
        dst = fastnl.attrs(m, 12).get(NDA_DST)
        if dst and len(dst) == 4:
            out.append((index, socket.inet_ntoa(dst), state))
    return out


def soft(state: int) -> bool:
    """Is an entry in this state learnt by the kernel (not ``permanent`` or ``noarp``, set by hand)?"""
    return not state & (NUD_NOARP | NUD_PERMANENT)


def delete_neighbours(ns, entries) -> None:
    """``ip -n NS neigh del ADDRESS dev IFINDEX`` for each ``(ifindex, address)``, in one write."""
    from netteach.kernel import fastnl, rtnl

    dels = [(RTM_DELNEIGH, 0, struct.pack(NDMSG, socket.AF_INET, index, 0, 0, 0)
             + fastnl._attr(NDA_DST, socket.inet_aton(addr))) for index, addr in entries]
    if dels:
        rtnl.fast(ns).transact(dels, ok=(errno.ENOENT,))


def flush_neighbours(ns) -> int:
    """``ip -n NS neigh flush all`` for IPv4 (not permanent entries); returns how many went."""
    gone = [(i, a) for i, a, state in neighbours(ns) if soft(state)]
    delete_neighbours(ns, gone)
    return len(gone)


def backlog_drops() -> int:
    """Packets the kernel dropped because a CPU's input queue was full (``/proc/net/softnet_stat``,
    the machine's count). Each ARP broadcast on a bridge is copied to every port of it."""
    try:
        with open("/proc/net/softnet_stat") as f:
            return sum(int(line.split()[1], 16) for line in f)
    except (OSError, ValueError, IndexError):
        return 0
