"""A namespace's firewall and forwarding state, read from the kernel as plain data.

``nft -j list ruleset`` (the ruleset as JSON: what nft itself reads back from
the kernel) and the sysctls that decide whether a namespace forwards and
filters bridged frames. Namespaces without any nftables table are found with
one netlink request each (no ``nft`` process), so reading a 100-container lab
stays cheap.

>>> has_tables(None) in (True, False)
True
"""

from __future__ import annotations

import json
import os
import socket
import struct

from netteach.kernel import netns, procs, worker

SYSCTLS = ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.bridge.bridge-nf-call-iptables",
           "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter")
NETLINK_NETFILTER = 12
NFT_MSG_GETTABLE = (10 << 8) | 1
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3


def _tables_in(ns) -> int:
    with netns.entered(ns):
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
    try:
        s.bind((0, 0))
        s.send(struct.pack("=IHHII", 20, NFT_MSG_GETTABLE, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
               + struct.pack("=BBH", 0, 0, 0))
        count = 0
        while True:
            data = s.recv(1 << 16)
            off = 0
            while off + 16 <= len(data):
                ln, kind = struct.unpack_from("=IH", data, off)
                if kind == NLMSG_DONE or ln < 16:
                    return count
                if kind == NLMSG_ERROR:
                    code = struct.unpack_from("=i", data, off + 16)[0]
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return count
                if kind == (10 << 8) | 0:  # NFT_MSG_NEWTABLE
                    count += 1
                off += (ln + 3) & ~3
    finally:
        s.close()


def has_tables(ns) -> bool:
    """Does ``ns`` hold any nftables table (of any family)?"""
    return worker.call(_tables_in, ns) > 0


def _read_sysctls(ns) -> dict:
    out = {}
    with netns.entered(ns):
        for key in SYSCTLS:
            try:
                with open("/proc/sys/" + key.replace(".", "/")) as f:
                    out[key] = f.read().strip()
            except OSError:  # e.g. no br_netfilter module: no net.bridge.* at all
                out[key] = None
    return out


def state_many(spaces: list) -> list[dict]:
    """For each kernel namespace: {"sysctls": {key: value or None}, "ruleset": [nft -j objects]}."""
    def read_all():
        return [(_read_sysctls(ns), _tables_in(ns) if netns.exists(ns) else 0) for ns in spaces]

    first = worker.call(read_all)
    want = [i for i, (_, n) in enumerate(first) if n]
    rulesets: dict = {}
    if want:
        procs.require_tool("nft", "nftables")
        for i, (rc, out, _) in zip(want, procs.run_many([(spaces[i], ["nft", "-j", "list", "ruleset"])
                                                          for i in want])):
            try:
                rulesets[i] = json.loads(out).get("nftables", []) if rc == 0 else []
            except ValueError:
                rulesets[i] = []
    return [{"sysctls": s, "ruleset": rulesets.get(i, [])} for i, (s, _) in enumerate(first)]
