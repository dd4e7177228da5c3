"""One traced packet across three namespaces (a -> router -> b), and on a DockerHost, timed.

Run as root from the repository:  .venv/bin/python -m benchmarks.trace_one [--rounds 10]

Prints medians over the rounds: ``lab.trace`` of one ICMP echo a -> b through a
forwarding ``host``; ``dh.trace("internet", "host", 8080)`` through the DNAT to
a container; and, side by side, what the bare packet costs without any
tracing (``ping -c1`` from the same namespace), so the ratio shows what the
tables, the trace events and the follow-up questions (route lookups,
rulesets, conntrack) add. Everything lives in namespaces the benchmark makes
and removes.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _median(fn, rounds):
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    import netteach as nt

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args(argv)
    rows = []
    with nt.Lab("bench-trace") as lab:
        for ns, net in (("a", "10.0.1"), ("b", "10.0.2")):
            lab.add_netns(ns)
            lab.add_veth(f"to-{ns}", "eth0", peer_netns=ns)
            lab.add_addr("host", f"to-{ns}", f"{net}.1/24")
            lab.add_addr(ns, "eth0", f"{net}.2/24")
            lab.set_up("host", f"to-{ns}")
            lab.set_up(ns, "eth0")
            lab.add_route(ns, "default", via=f"{net}.1")
        lab.sysctl("host", "net.ipv4.ip_forward", 1)
        assert lab.trace("a", "b").delivered
        ping = _median(lambda: lab.exec("a", "ping -c1 -W1 10.0.2.2"), args.rounds)
        tr = _median(lambda: lab.trace("a", "b"), args.rounds)
        rows.append(("trace a -> host -> b (icmp, 3 netns)", ping, tr))
    with nt.DockerHost("bench-trace-d") as dh:
        dh.run("web", publish={8080: 80}, serve=80)
        assert dh.trace("internet", "host", 8080).delivered
        ping = _median(lambda: dh.exec("internet", "ping -c1 -W1 198.51.100.2"), args.rounds)
        tr = _median(lambda: dh.trace("internet", "host", 8080), args.rounds)
        rows.append(("dh.trace internet -> host:8080 (DNAT)", ping, tr))
    print(f"{'figure':<40} {'ping -c1':>9} {'trace':>9} {'ratio':>7}  target")
    for name, base, t in rows:
        ok = "ok" if t < 1.0 else "SLOW"
        print(f"{name:<40} {base:>8.3f}s {t:>8.3f}s {t / base:>6.1f}x  <1s {ok}")


if __name__ == "__main__":
    main()
