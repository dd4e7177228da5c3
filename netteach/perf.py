"""Latency and throughput of a lab path, measured for real with a bounded load generator.

``perf.sink(lab, netns, port)`` starts a receiver inside a namespace (the lab
stops it on destroy); ``perf.measure(lab, src, addr, port)`` runs, from inside
``src``, a 1-byte request/response loop (latency) and a bulk transfer of
``mb`` megabytes (throughput) to ``addr:port`` and returns both. Only lab
namespaces take part. Introduced in notebooks/06_troubleshooting_performance.ipynb.

>>> Measurement("veth", 52.1, 9120.0)
<veth: 52.1 µs round trip, 9120 Mbit/s>
"""

from __future__ import annotations

import json
import sys
from typing import NamedTuple

from netteach import errors


class Measurement(NamedTuple):
    path: str
    rtt_us: float
    mbit_s: float

    def __repr__(self):
        return f"<{self.path}: {self.rtt_us:.1f} µs round trip, {self.mbit_s:.0f} Mbit/s>"


def sink(lab, netns: str, port: int = 5201) -> int:
    """Start the load generator's receiver inside ``netns``; returns its pid once it listens."""
    pid = lab.spawn(netns, [sys.executable, "-m", "netteach.programs.loadgen", "sink", str(port)])
    lab._wait_listening(pid, port)
    return pid


def measure(lab, src: str, addr: str, port: int = 5201, path: str | None = None, mb: float = 20,
            count: int = 300) -> Measurement:
    """From inside ``src``: mean TCP round trip (``count`` 1-byte exchanges) and throughput (``mb`` MB)."""
    out = []
    for args in (["rr", addr, str(port), str(count)], ["send", addr, str(port), str(mb)]):
        r = lab.exec(src, [sys.executable, "-m", "netteach.programs.loadgen", *args], timeout=60)
        if r.returncode != 0:
            raise errors.Conflict(f"measuring {src} -> {addr}:{port} failed: {(r.stderr or r.stdout).strip()[-300:]}"
                                  " (is a sink listening there, and does the path work? try lab.trace)")
        out.append(json.loads(r.stdout))
    return Measurement(path or f"{src} -> {addr}:{port}", out[0]["rtt_us"], out[1]["mbit_s"])
