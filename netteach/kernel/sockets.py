"""TCP from inside namespaces, many at once: the kernel thread opens each socket
inside its namespace (a socket stays in the namespace it was made in), then
all connections run in parallel with one selector, on the caller's thread."""

from __future__ import annotations

import selectors
import socket
import time

from netteach.kernel import netns, worker


def _open(ns, family):
    with netns.entered(ns):
        s = socket.socket(family, socket.SOCK_STREAM)
    s.setblocking(False)
    return s


def tcp_requests(jobs: list[tuple], timeout: float = 2.0) -> list[dict]:
    """For each ``(ns, address, port, payload)``: connect, send payload, read until close.

    Returns one dict per job: ``{"connected": bool, "data": bytes, "error": str|None}``.
    """
    results = [{"connected": False, "data": b"", "error": None} for _ in jobs]
    socks = worker.call(lambda: [_open(ns, socket.AF_INET6 if ":" in str(addr) else socket.AF_INET)
                                 for ns, addr, _, _ in jobs])
    sel = selectors.DefaultSelector()
    pending = {}
    for i, (s, (_, addr, port, payload)) in enumerate(zip(socks, jobs)):
        err = s.connect_ex((str(addr), int(port)))
        if err not in (0, 115):  # 115 EINPROGRESS
            results[i]["error"] = _err(err)
            s.close()
            continue
        pending[s] = [i, payload, False]
        sel.register(s, selectors.EVENT_WRITE)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, events in sel.select(max(0.0, deadline - time.monotonic())):
            s = key.fileobj
            i, payload, connected = pending[s]
            if not connected:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    results[i]["error"] = _err(err)
                    _close(sel, s, pending)
                    continue
                results[i]["connected"] = True
                pending[s][2] = True
                if payload:
                    s.sendall(payload)
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                chunk = s.recv(65536)
            except OSError as exc:
                results[i]["error"] = _err(exc.errno)
                chunk = b""
            if chunk:
                results[i]["data"] += chunk
            else:
                _close(sel, s, pending)
    for s in list(pending):
        i = pending[s][0]
        if results[i]["error"] is None and not results[i]["data"]:
            results[i]["error"] = "timed out (no answer: dropped on the way?)"
        _close(sel, s, pending)
    sel.close()
    return results


def _close(sel, s, pending):
    sel.unregister(s)
    s.close()
    pending.pop(s, None)


def _err(code) -> str:
    import os

    return {111: "connection refused (nothing listens there, or rejected)",
            113: "no route to host", 101: "network is unreachable"}.get(code, os.strerror(code))


def listening(pid: int, port: int, proto: str = "tcp") -> bool:
    """Is anything listening on ``port`` in the namespace that process ``pid`` is in?"""
    for name in (proto, proto + "6"):
        try:
            with open(f"/proc/{pid}/net/{name}") as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state = parts[1], parts[3]
                    if int(local.rsplit(":", 1)[1], 16) == port and (proto == "udp" or state == "0A"):
                        return True
        except (OSError, StopIteration):
            continue
    return False
