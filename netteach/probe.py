"""Run things inside namespaces and read the answer: commands, ping.

>>> r = parse_ping(0, "2 packets transmitted, 2 received, 0% packet loss, time 1001ms\\n"
...                   "rtt min/avg/max/mdev = 0.041/0.052/0.063/0.011 ms\\n", "", "c1", "10.0.0.1")
>>> bool(r), r.received, r.rtt_ms
(True, 2, 0.052)
>>> r
<PingResult c1 -> 10.0.0.1: 2/2 answered, rtt 0.052 ms>
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from netteach import kernel


@dataclass
class ExecResult:
    """What a command printed inside a namespace (like ``ip netns exec NS CMD``)."""

    netns: str
    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def __bool__(self):
        return self.ok

    def __str__(self):
        return self.stdout + self.stderr

    def __repr__(self):
        text = (self.stdout + self.stderr).rstrip("\n")
        head = f"[{self.netns}]$ {self.command}"
        tail = "" if self.ok else f"\n(exit status {self.returncode})"
        return f"{head}\n{text}{tail}" if text else head + tail

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


@dataclass
class PingResult:
    """The outcome of a ping: truthy when at least one echo was answered."""

    source: str
    target: str
    sent: int
    received: int
    rtt_ms: float | None
    output: str
    hint: str = ""  # why an unanswered ping may have failed, when netteach can tell

    def __bool__(self):
        return self.received > 0

    def __repr__(self):
        hint = f" - {self.hint}" if self.hint and not self else ""
        if not self.sent and not self.received:
            why = self.output.strip().splitlines()[-1] if self.output.strip() else "no answer"
            return f"<PingResult {self.source} -> {self.target}: failed ({why}){hint}>"
        rtt = f", rtt {self.rtt_ms:g} ms" if self.rtt_ms is not None else ""
        return f"<PingResult {self.source} -> {self.target}: {self.received}/{self.sent} answered{rtt}{hint}>"


def run(label: str, kns, command, timeout: float = 10, input: str | None = None) -> ExecResult:
    """Run ``command`` (a shell string or an argv list) in namespace ``kns``."""
    if isinstance(command, str):
        argv, shown = ["sh", "-c", command], command
    else:
        argv, shown = [str(a) for a in command], shlex.join(str(a) for a in command)
    rc, out, err = kernel.run(kns, argv, timeout=timeout, input=input)
    return ExecResult(label, shown, rc, out, err)


def parse_ping(rc: int, out: str, err: str, source: str, target: str) -> PingResult:
    m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", out)
    sent, received = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", out)
    return PingResult(source, target, sent, received, float(rtt.group(1)) if rtt else None,
                      out + err)


def ping(label: str, kns, target: str, count: int = 1, timeout: float = 2) -> PingResult:
    """``ping -c COUNT -W TIMEOUT TARGET`` from inside ``kns``."""
    return ping_many([(label, kns, target)], count=count, timeout=timeout)[0]


@dataclass
class HttpResult:
    """The outcome of an HTTP GET: truthy when a response came back."""

    source: str
    target: str
    port: int
    status: int | None
    body: str
    error: str | None

    def __bool__(self):
        return self.status is not None

    def __repr__(self):
        if self:
            return f"<HttpResult {self.source} -> {self.target}:{self.port}: {self.status} {self.body.strip()!r}>"
        return f"<HttpResult {self.source} -> {self.target}:{self.port}: failed ({self.error})>"


TCP_AT_ONCE = 1000  # sockets open at once (file descriptors): far below the raised limit


def http_get_many(jobs: list[tuple], timeout: float = 2.0) -> list[HttpResult]:
    """``(label, kns, address, port)`` each: ``GET /`` from inside ``kns``, at most 1000 at a time."""
    if len(jobs) > TCP_AT_ONCE:
        return [r for i in range(0, len(jobs), TCP_AT_ONCE)
                for r in http_get_many(jobs[i:i + TCP_AT_ONCE], timeout)]
    raw = kernel.tcp_requests([(kns, addr, port, _get(addr, port)) for _, kns, addr, port in jobs], timeout=timeout)
    return _http_results(jobs, raw)


def reach_many(pings: list[tuple], gets: list[tuple], timeout: float = 1, http_timeout: float = 2,
               flush: list | None = None) -> tuple[list[bool], list[HttpResult]]:
    """Pings ``(kns, target)`` and ``GET /`` requests ``(label, kns, address, port)`` in one sweep of the
    kernel's (see :mod:`netteach.kernel.reach`): right at hundreds of containers, the machine's
    neighbour table given back. ``flush``: the namespaces whose neighbour entries it may remove."""
    echoes, raw = kernel.reach_many(pings, [(kns, addr, port, _get(addr, port)) for _, kns, addr, port in gets],
                                    timeout=timeout, tcp_timeout=http_timeout, flush=flush)
    return echoes, _http_results(gets, raw)


def _get(addr, port) -> bytes:
    return f"GET / HTTP/1.0\r\nHost: {addr}:{port}\r\n\r\n".encode()


def _http_results(jobs, raw) -> list[HttpResult]:
    out = []
    for (label, _, addr, port), r in zip(jobs, raw):
        status, body, error = None, "", r["error"]
        head, _, rest = r["data"].decode(errors="replace").partition("\r\n\r\n")
        m = re.match(r"HTTP/\d\.\d (\d{3})", head)
        if m:
            status, body = int(m.group(1)), rest
        elif r["connected"] and error is None:
            error = "connected, but no HTTP answer"
        out.append(HttpResult(label, str(addr), int(port), status, body, error))
    return out


def ping_many(jobs: list[tuple], count: int = 1, timeout: float = 1) -> list[PingResult]:
    """``(label, kns, target)`` each: ping from inside ``kns``, all at once."""
    kernel.procs.require_tool("ping", "iputils-ping")
    argv = ["ping", "-n", "-c", str(count), "-W", str(timeout), "-i", "0.2"]
    raw = kernel.run_many([(kns, argv + [str(t)]) for _, kns, t in jobs], timeout=count * 0.2 + timeout + 5)
    return [parse_ping(rc, out, err, label, str(t)) for (label, _, t), (rc, out, err) in zip(jobs, raw)]
