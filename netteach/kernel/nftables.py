"""A namespace's firewall and forwarding state, read from the kernel as plain data; nft without a process.

``nft -j list ruleset`` (the ruleset as JSON: what nft itself reads back from
the kernel) and the sysctls that decide whether a namespace forwards and
filters bridged frames. Namespaces without any nftables table are found with
one netlink request each.

:func:`run` is ``nft -f -`` / ``nft list ...`` through ``libnftables`` (the
library the ``nft`` command is made of, installed with it) on the kernel
thread inside the namespace: ~1 ms instead of ~10 ms for an ``ip netns exec
nft`` process, so a 100-container lab's rulesets read in a blink. Where the
library cannot be loaded, the ``nft`` command does the same.

>>> has_tables(None) in (True, False)
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import socket
import struct
import threading

from netteach import errors
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


_lib = None
_lib_lock = threading.Lock()
NFT_CTX_OUTPUT_HANDLE, NFT_CTX_OUTPUT_JSON = 1 << 3, 1 << 4


def _library():
    """libnftables via ctypes, or False where it cannot be loaded."""
    global _lib
    with _lib_lock:
        if _lib is None:
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("nftables") or "libnftables.so.1")
                lib.nft_ctx_new.restype = ctypes.c_void_p
                lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
                lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
                lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
                lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
                lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
                lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
                lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
                lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
                lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
                lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
                _lib = lib
            except (OSError, AttributeError):
                _lib = False
        return _lib


def _run_here(lib, script: str, flags: int) -> tuple[int, str, str]:
    ctx = lib.nft_ctx_new(0)
    if not ctx:
        return 1, "", "libnftables: no context"
    try:
        lib.nft_ctx_output_set_flags(ctx, flags)
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        rc = lib.nft_run_cmd_from_buffer(ctx, script.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        return rc, out, err
    finally:
        lib.nft_ctx_free(ctx)


def run_many(jobs: list[tuple], json_out: bool = False, handles: bool = False) -> list[tuple[int, str, str]]:
    """``nft [-j] [-a] -f -`` with each ``(ns, script)``; (returncode, stdout, stderr) of each, in order."""
    flags = (NFT_CTX_OUTPUT_JSON if json_out else 0) | (NFT_CTX_OUTPUT_HANDLE if handles else 0)
    lib = _library()
    if lib:
        def all_here():
            out = []
            for ns, script in jobs:
                try:
                    with netns.entered(ns):  # the library's netlink socket opens in this namespace
                        out.append(_run_here(lib, script, flags))
                except (errors.NoSuchNamespace, OSError) as exc:  # gone meanwhile
                    out.append((1, "", str(exc)))
            return out

        return worker.call(all_here)
    procs.require_tool("nft", "nftables")
    argv = ["nft"] + (["-j"] if json_out else []) + (["-a"] if handles else []) + ["-f", "-"]
    return [procs.run(ns, argv, input=script) for ns, script in jobs]


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
    """For each kernel namespace: {"sysctls": {key: value or None}, "ruleset": [nft -j objects]}.

    A namespace whose rules this process may not read (the machine's own, seen by a
    rootless user) also says ``"unreadable"``; its ruleset is then left empty.
    """
    def one(ns):
        sysctls: dict = {}
        try:
            sysctls = _read_sysctls(ns)
            return sysctls, _tables_in(ns)
        except PermissionError:  # a namespace this process may look at but not administer
            return sysctls, None  # (the machine's own, to a rootless user): its rules cannot be read
        except (errors.NoSuchNamespace, OSError):  # gone meanwhile (a process's namespace): nothing to say
            return {}, 0

    def read_all():
        return [one(ns) for ns in spaces]

    first = worker.call(read_all)
    want = [i for i, (_, n) in enumerate(first) if n]
    rulesets: dict = {}
    if want:
        for i, (rc, out, _) in zip(want, run_many([(spaces[i], "list ruleset") for i in want], json_out=True)):
            try:
                rulesets[i] = json.loads(out).get("nftables", []) if rc == 0 else []
            except ValueError:
                rulesets[i] = []
    return [{"sysctls": s, "ruleset": rulesets.get(i, []),
             **({"unreadable": "nftables rules (reading them needs CAP_NET_ADMIN)"} if n is None else {})}
            for i, (s, n) in enumerate(first)]
