"""nt.inspect() of a real Docker host with N containers, against what a shell script does for the same view.

    sudo .venv/bin/python -m benchmarks.docker_inspect              # 50 containers, 5 rounds
    sudo .venv/bin/python -m benchmarks.docker_inspect --containers 50 --rounds 5

A private dockerd (Debian's docker.io, namespaces of its own, data on tmpfs:
netteach.kernel.dockerd) gets N busybox containers on the default bridge and a
user network, every fifth publishing a port. Then, side by side, several rounds:

- netteach: ``nt.inspect(processes=False)`` (Engine API + every namespace read
  from the kernel + Docker's ruleset + docker-proxy processes), and
  ``nt.docker_host().snapshot()``;
- the shell baseline: ``docker inspect`` of every running container, then
  ``nsenter -t PID -n ip -j addr`` and ``ip -j route`` in each container and
  the host, and ``nft list ruleset`` in the host: the same facts, read the way
  a person would script it.

Prints medians and the ratio (baseline / netteach; higher is better). Target:
nt.inspect() under 1 s at 50 containers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time


def shell_baseline(url: str, host_pid: int) -> None:
    docker = "/usr/bin/docker"
    env = {**os.environ, "DOCKER_HOST": url}
    ids = subprocess.run([docker, "ps", "-q"], capture_output=True, text=True, env=env, check=True).stdout.split()
    out = subprocess.run([docker, "inspect", "-f", "{{.State.Pid}}", *ids], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    for pid in out + [str(host_pid)]:
        for what in (["addr"], ["route"]):
            subprocess.run(["nsenter", "-t", pid, "-n", "ip", "-j", *what], capture_output=True, check=True)
    subprocess.run(["nsenter", "-t", str(host_pid), "-n", "nft", "list", "ruleset"], capture_output=True, check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    import docker

    import netteach as nt
    from netteach.kernel import dockerd

    why = dockerd.available()
    if why:
        raise SystemExit(f"cannot run: {why}")
    d = dockerd.start()
    try:
        image = d.import_busybox()
        client = docker.DockerClient(base_url=d.url, version="auto")
        client.networks.create("backend")
        t = time.perf_counter()
        for i in range(args.containers):
            ports = {"80/tcp": 9000 + i} if i % 5 == 0 else {}
            client.containers.run(image, ["sleep", "100000"], name=f"c{i}", detach=True,
                                  network="backend" if i % 2 else "bridge", ports=ports)
        started = time.perf_counter() - t
        os.environ["DOCKER_HOST"] = d.url
        snap = nt.inspect(processes=False)  # warm-up; and check it sees them all
        assert len([n for n in snap.namespaces if n.name.startswith("c")]) == args.containers, snap
        from netteach.docker import engine

        host_pid = engine.connect(d.url).daemon.pid
        rows = {"nt.inspect(processes=False)": [], "nt.inspect()": [], "nt.docker_host().snapshot()": [],
                "shell: docker inspect + nsenter ip/nft": []}
        real = nt.docker_host()
        for _ in range(args.rounds):
            for name, fn in (("nt.inspect(processes=False)", lambda: nt.inspect(processes=False)),
                             ("nt.inspect()", nt.inspect),
                             ("nt.docker_host().snapshot()", real.snapshot),
                             ("shell: docker inspect + nsenter ip/nft", lambda: shell_baseline(d.url, host_pid))):
                t = time.perf_counter()
                fn()
                rows[name].append(time.perf_counter() - t)
        base = statistics.median(rows["shell: docker inspect + nsenter ip/nft"])
        print(f"{args.containers} containers ({args.containers // 5} publishing a port) started by dockerd in "
              f"{started:.1f} s; medians of {args.rounds} rounds:")
        print(f"{'figure':<42} {'time':>8} {'ratio':>7}  target")
        for name, times in rows.items():
            m = statistics.median(times)
            ratio = "" if name.startswith("shell") else f"{base / m:6.1f}x"
            target = "<1s " + ("ok" if m < 1 else "MISSED") if name.startswith("nt.inspect(") else ""
            print(f"{name:<42} {m:7.3f}s {ratio:>7}  {target}")
        client.close()
    finally:
        d.stop()


if __name__ == "__main__":
    main()
