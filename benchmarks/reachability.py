"""DockerHost.reachability() at 40, 100 and 300 containers: right, and how fast.

Run as root from the repository (inside tools/sandbox.sh on a shared machine):
    .venv/bin/python -m benchmarks.reachability [--sizes 40,100,300] [--old 40]

Each size builds a DockerHost with N containers, half on the default bridge and
half on a user network ``backend`` (Docker isolates the two), serving port 80
on every fifth container. The expected matrix follows from Docker's rules: same
network yes, across networks no, containers -> host and internet yes,
internet -> containers no (no route back). Printed side by side per size:
pairs, seconds, CPU seconds of this process (its threads and the kernel work
done on their behalf), pairs that differ from the rules, and a sample of pairs
checked again with the real ``ping`` command one by one; the HTTP checks
(every source to every served port) and how many differ from the rules
(served containers answer the host and their own network); the load average
before each size. ``--old`` also times
the previous way (every pair a ``ping`` process, all at once) at those sizes.
"""

from __future__ import annotations

import argparse
import os
import random
import time

import netteach as nt
from netteach import probe


def build(n: int):
    dh = nt.DockerHost(f"reach{os.getpid() % 1000}")
    dh.network_create("backend", subnet="10.10.0.0/16")
    for i in range(n):
        dh.run(f"c{i}", network="bridge" if i % 2 == 0 else "backend", serve=80 if i % 5 == 0 else None)
    return dh


def expected(dh, s, d) -> bool:
    if s == d:
        return True
    if s == "internet":
        return d == "host"
    if s == "host" or d in ("host", "internet"):
        return True
    return next(iter(dh._ctrs[s]["endpoints"])) == next(iter(dh._ctrs[d]["endpoints"]))


def expected_http(dh, s, service) -> bool:
    """GET / to a container's served port: from the host, and from containers on its network."""
    d = service.split(":")[0]
    if s == "internet":
        return False
    return s == "host" or expected(dh, s, d)


def old_way(dh, timeout=1):
    """What reachability did before: one ping process per pair, all started at once."""
    who = list(dh._ctrs) + ["host", "internet"]
    pings = [(s, d) for s in who for d in who if s != d]
    t = time.perf_counter()
    try:
        res = probe.ping_many([(s, dh._kns_of(s), dh._target(s, d)) for s, d in pings], timeout=timeout)
    except OSError as exc:
        return time.perf_counter() - t, f"failed: {exc}"
    wrong = sum(bool(r) != expected(dh, s, d) for (s, d), r in zip(pings, res))
    return time.perf_counter() - t, wrong


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="40,100,300")
    ap.add_argument("--old", default="", help="sizes at which to time the old way too, e.g. 40,100")
    ap.add_argument("--sample", type=int, default=60)
    args = ap.parse_args()
    olds = {int(x) for x in args.old.split(",") if x}
    print(f"{'containers':>10} {'pairs':>7} {'seconds':>8} {'cpu s':>7} {'wrong':>6} {'http':>6} {'http wrong':>10} {'ping sample disagrees':>22}"
          f" {'old seconds':>12} {'old wrong':>10} {'load':>5}")
    for n in (int(x) for x in args.sizes.split(",")):
        dh = build(n)
        try:
            load = os.getloadavg()[0]
            t, cpu = time.perf_counter(), time.process_time()
            r = dh.reachability()
            took, cpu = time.perf_counter() - t, time.process_time() - cpu
            pairs = [(s, d) for s in r.sources for d in r.sources if s != d]
            wrong = sum(r.can_ping(s, d) != expected(dh, s, d) for s, d in pairs)
            http_wrong = sum(r.can_get(s, svc) != expected_http(dh, s, svc) for s in r.sources for svc in r.services)
            sample = random.Random(n).sample(pairs, min(args.sample, len(pairs)))
            disagree = sum(bool(dh.ping(s, d, timeout=1)) != r.can_ping(s, d) for s, d in sample)
            old_t, old_wrong = old_way(dh) if n in olds else (None, "")
            print(f"{n:>10} {len(pairs):>7} {took:>8.2f} {cpu:>7.2f} {wrong:>6} {len(r.sources) * len(r.services):>6} {http_wrong:>10} {f'{disagree}/{len(sample)}':>22}"
                  f" {'' if old_t is None else f'{old_t:.2f}':>12} {str(old_wrong):>10} {load:>5.1f}", flush=True)
        finally:
            dh.destroy()


if __name__ == "__main__":
    main()
