"""Root mode against rootless mode: the same lab built both ways, side by side (issue 10's 1.5x target).

Run as root from the repository:  .venv/bin/python -m benchmarks.rootless [--rounds 7] [--n 100]

Builds N containers on a bridge (``build_lab``, the cells a student writes) and
runs ``DockerHost.run`` N times, once with ``mode="root"`` (this process talks
to the kernel) and once with ``mode="rootless"`` (every kernel call goes over
a socket pair to the helper in its user namespace), rounds interleaved so both
see the same machine load. Prints medians of wall time and of CPU time (this
process plus the helper: steadier than wall time on a busy machine) and the
ratio rootless / root (lower is better; the target is <= 1.5), and how many
round trips to the helper each container cost (``Helper.calls`` counts them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from benchmarks.lab_scale import build_lab, settle


def _helper_cpu() -> float:
    from netteach.kernel import helper

    h = helper.current()
    pid = h.helper_pid if h else None
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + _helper_cpu()


def _trips() -> int:
    """Round trips to the helper so far (0 in root mode)."""
    from netteach.kernel import helper

    h = helper.current()
    return sum(h.calls.values()) if h else 0


def one(kind: str, mode: str, n: int, tag: str) -> tuple[float, float, int]:
    import netteach as nt

    lab = (nt.Lab if kind == "lab" else nt.DockerHost)(f"rb{kind[0]}{tag}", mode=mode)
    try:
        settle()
        trips, c, t = _trips(), _cpu(), time.perf_counter()
        if kind == "lab":
            build_lab(lab, n)
        else:
            for i in range(n):
                lab.run(f"c{i}")
        wall, cpu, trips = time.perf_counter() - t, _cpu() - c, _trips() - trips
        target = ("10.0.0.1" if kind == "lab" else "internet")
        ok = lab.ping(f"c{n - 1}", target, count=3)
        assert ok, f"{mode} {kind} does not answer"
    finally:
        lab.destroy()
    return wall, cpu, trips


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--n", type=int, default=100)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("run it as root: it compares root mode with rootless mode")
    res = {(k, m): [] for k in ("lab", "docker") for m in ("root", "rootless")}
    for r in range(args.rounds):
        for kind in ("lab", "docker"):
            for mode in ("root", "rootless"):
                res[(kind, mode)].append(one(kind, mode, args.n, f"{r}{mode[-4:]}"))
    print(f"machine: {os.cpu_count()} cores, kernel {os.uname().release}, Python {sys.version.split()[0]}; "
          f"load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds, medians")
    print(f"{'figure':<34} {'root':>9} {'rootless':>9} {'ratio':>6}   {'cpu root':>9} {'rootless':>9} {'ratio':>6}")
    for kind, what in (("lab", f"build {args.n} containers (Lab)"), ("docker", f"DockerHost.run x{args.n}")):
        w = [statistics.median(x[0] for x in res[(kind, m)]) for m in ("root", "rootless")]
        c = [statistics.median(x[1] for x in res[(kind, m)]) for m in ("root", "rootless")]
        print(f"{what:<34} {w[0]:>8.3f}s {w[1]:>8.3f}s {w[1] / w[0]:>5.2f}x   "
              f"{c[0]:>8.3f}s {c[1]:>8.3f}s {c[1] / c[0]:>5.2f}x  (target <= 1.5x)")
    trips = {kind: statistics.median(x[2] for x in res[(kind, "rootless")]) / args.n for kind in ("lab", "docker")}
    print(f"round trips to the helper per container: Lab {trips['lab']:.1f}, DockerHost.run {trips['docker']:.1f}")


if __name__ == "__main__":
    main()
