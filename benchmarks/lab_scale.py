"""netteach against the `ip` shell script that does the same, side by side, on this machine.

Run as root from the repository:  .venv/bin/python -m benchmarks.lab_scale [--rounds 3] [--sizes 10,100,300]

Prints medians over the rounds and the ratios the performance issue asks for:
  1. build N containers on one bridge (address, links up, default route, ping-ready):
     the `ip` script (benchmarks/baseline_ip.sh) vs Lab verbs; and their teardowns;
  2. snapshot() and draw() of the N-container lab;
  3. DockerHost.run N times vs the `ip` + `nft` script doing what dockerd does (baseline_docker.sh);
  4. memory: peak RSS of a fresh Python process that builds, snapshots and draws the lab;
  5. per-container cost at each size (does it grow?), with the kernel-facing part apart.
Everything lives in namespaces the benchmark makes and removes; it sends one ping per lab.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable


def settle():
    """Let the kernel finish freeing the last run's namespaces (it does so in the background)."""
    time.sleep(0.5)


def sh(script: str, *args) -> float:
    settle()
    t = time.perf_counter()
    subprocess.run(["sh", os.path.join(HERE, script), *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def ping_ok(kns: str, address: str) -> bool:
    r = subprocess.run(["ip", "netns", "exec", kns, "ping", "-c1", "-W2", address], capture_output=True)
    return r.returncode == 0


def build_lab(lab, n: int):
    """The cells a student writes: one verb per `ip` command."""
    lab.add_bridge("br0")
    lab.add_addr("host", "br0", "10.0.0.1/16")
    lab.set_up("host", "br0")
    for i in range(n):
        c, a = f"c{i}", i + 2
        lab.add_netns(c)
        lab.add_veth(f"v{i}", "eth0", peer_netns=c)
        lab.set_master(f"v{i}", "br0")
        lab.set_up("host", f"v{i}")
        lab.add_addr(c, "eth0", f"10.0.{a // 256}.{a % 256}/16")
        lab.set_up(c, "eth0")
        lab.add_route(c, "default", via="10.0.0.1")


class KernelClock:
    """Time spent inside netteach.kernel calls (the kernel-facing part of the work)."""

    def __init__(self):
        from netteach import kernel

        self.kernel, self.total, self.saved = kernel, 0.0, {}

    def __enter__(self):
        for name in ("netns_add", "veth_add", "link_add", "link_set", "links_up", "addr_add", "route_add",
                     "configure", "link_get", "link_by_index", "nft"):
            fn = getattr(self.kernel, name)
            self.saved[name] = fn

            def timed(*a, _fn=fn, **kw):
                t = time.perf_counter()
                try:
                    return _fn(*a, **kw)
                finally:
                    self.total += time.perf_counter() - t
            setattr(self.kernel, name, timed)
        return self

    def __exit__(self, *exc):
        for name, fn in self.saved.items():
            setattr(self.kernel, name, fn)


def round_lab(n: int, tag: str) -> dict:
    import netteach as nt

    out = {}
    prefix = f"ntb{os.getpid()}{tag}"
    out["ip_build"] = sh("baseline_ip.sh", "build", n, prefix)
    assert ping_ok(f"{prefix}.c{n - 1}", "10.0.0.1"), "baseline lab does not answer"
    out["ip_teardown"] = sh("baseline_ip.sh", "teardown", n, prefix)

    lab = nt.Lab(f"bench{tag}")
    try:
        settle()
        with KernelClock() as clock:
            t = time.perf_counter()
            build_lab(lab, n)
            out["nt_build"] = time.perf_counter() - t
        out["nt_build_kernel"] = clock.total
        assert lab.ping(f"c{n - 1}", "10.0.0.1"), "netteach lab does not answer"
        t = time.perf_counter()
        snap = lab.snapshot()
        out["nt_snapshot"] = time.perf_counter() - t
        assert len(snap.namespaces) == n + 1
        t = time.perf_counter()
        lab.draw()
        out["nt_draw"] = time.perf_counter() - t
    finally:
        settle()
        t = time.perf_counter()
        lab.destroy()
        out["nt_teardown"] = time.perf_counter() - t
    return out


def round_docker(n: int, tag: str) -> dict:
    import netteach as nt
    from netteach.docker import rules as dockerrules

    out = {}
    prefix = f"ntd{os.getpid()}{tag}"
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(dockerrules.rules([dockerrules.Net("docker0", "172.17.0.0/16")], []))
    try:
        out["ip_docker"] = sh("baseline_docker.sh", "build", n, prefix, f.name)
        assert ping_ok(f"{prefix}.c{n - 1}", "198.51.100.1"), "baseline docker host does not answer"
    finally:
        sh("baseline_docker.sh", "teardown", n, prefix)
        os.unlink(f.name)
    dh = nt.DockerHost(f"dbench{tag}")
    try:
        settle()
        with KernelClock() as clock:
            t = time.perf_counter()
            for i in range(n):
                dh.run(f"c{i}")
            out["nt_docker"] = time.perf_counter() - t
        out["nt_docker_kernel"] = clock.total
        assert dh.ping(f"c{n - 1}", "internet"), "netteach docker host does not answer"
    finally:
        dh.destroy()
    return out


MEMORY = """
import resource, netteach as nt
from benchmarks.lab_scale import build_lab
lab = nt.Lab("benchmem")
build_lab(lab, {n})
lab.snapshot(); lab.draw()
dh = nt.DockerHost("benchmemd")
for i in range({n}):
    dh.run(f"c{{i}}")
dh.snapshot(); dh.draw()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
lab.destroy(); dh.destroy()
"""


def memory_mb(n: int) -> float:
    r = subprocess.run([PY, "-c", MEMORY.format(n=n)], capture_output=True, text=True, check=True,
                       cwd=os.path.dirname(HERE))
    return float(r.stdout.strip().splitlines()[-1])


def med(rounds, key):
    return statistics.median(r[key] for r in rounds)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--n", type=int, default=100, help="containers for the main figures")
    p.add_argument("--sizes", default="10,100,300", help="sizes for the per-container cost")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("the benchmark builds real namespaces: run it as root")
    n = args.n
    print(f"machine: {os.cpu_count()} cores, kernel {os.uname().release}, Python {sys.version.split()[0]}")
    print(f"rounds: {args.rounds}, medians; ratio = baseline / netteach (higher is better)\n")

    labs = [round_lab(n, str(r)) for r in range(args.rounds)]
    docks = [round_docker(n, str(r)) for r in range(args.rounds)]
    rows = [
        (f"build {n} containers on a bridge", med(labs, "ip_build"), med(labs, "nt_build"), 5),
        (f"tear them down", med(labs, "ip_teardown"), med(labs, "nt_teardown"), 3),
        (f"DockerHost.run x{n} (with NAT)", med(docks, "ip_docker"), med(docks, "nt_docker"), 3),
    ]
    print(f"{'figure':<36} {'ip script':>10} {'netteach':>10} {'ratio':>7} {'target':>7}")
    for name, base, ours, target in rows:
        ok = "ok" if base / ours >= target else "MISSED"
        print(f"{name:<36} {base:>9.3f}s {ours:>9.3f}s {base / ours:>6.1f}x {'>=' + str(target) + 'x':>6} {ok}")
    snap, draw = med(labs, "nt_snapshot"), med(labs, "nt_draw")
    print(f"{f'snapshot() of {n} containers':<36} {'':>10} {snap:>9.3f}s {'':>7} {'<0.3s':>7} "
          f"{'ok' if snap < 0.3 else 'MISSED'}")
    print(f"{f'draw() of {n} containers':<36} {'':>10} {draw:>9.3f}s {'':>7} {'<2s':>7} "
          f"{'ok' if draw < 2 else 'MISSED'}")
    mem = memory_mb(n)
    print(f"{f'peak RSS, {n}-container lab + DockerHost':<36} {'':>10} {mem:>8.0f}MB {'':>7} {'<300MB':>7} "
          f"{'ok' if mem < 300 else 'MISSED'}")

    print(f"\nper-container cost (median of {args.rounds}), ms:")
    print(f"{'containers':>10} {'ip script':>10} {'netteach':>10} {'kernel part':>12} {'DockerHost':>11} {'its kernel part':>16}")
    for size in [int(s) for s in args.sizes.split(",")]:
        ls = [round_lab(size, f"s{size}r{r}") for r in range(args.rounds)]
        ds = [round_docker(size, f"s{size}r{r}") for r in range(args.rounds)]
        print(f"{size:>10} {med(ls, 'ip_build') / size * 1e3:>10.2f} {med(ls, 'nt_build') / size * 1e3:>10.2f} "
              f"{med(ls, 'nt_build_kernel') / size * 1e3:>12.2f} {med(ds, 'nt_docker') / size * 1e3:>11.2f} "
              f"{med(ds, 'nt_docker_kernel') / size * 1e3:>16.2f}")


if __name__ == "__main__":
    main()
