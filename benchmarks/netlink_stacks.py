"""pyroute2 against netteach's fastnl, the same netlink work side by side (issue 10, "one netlink stack").

Run as root from the repository:  .venv/bin/python -m benchmarks.netlink_stacks [--rounds 5] [--n 100]

Both stacks do, for N containers on one bridge, exactly the kernel work
``DockerHost.run`` / ``build_lab`` need: the veth pair made with its peer
already in the container's namespace, enslaved and up; then in the container
``lo`` up, ``eth0`` up, the address and the default route; then a dump of
every namespace (what a snapshot reads). Namespaces are made the same way
for both (netteach's unshare + bind mount, not timed), and each stack keeps one
socket per namespace opened *inside* it, as the kernel layer does, in the
helper too. Only the netlink part is timed. Prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def _namespaces(prefix: str, n: int) -> list[str]:
    from netteach import kernel

    names = [f"{prefix}.host"] + [f"{prefix}.c{i}" for i in range(n)]
    for name in names:
        kernel.netns_add(name)
    return names


def _remove(names):
    from netteach import kernel

    for name in names:
        kernel.netns_delete(name)


def run_fastnl(prefix: str, n: int) -> dict:
    from netteach import kernel
    from netteach.kernel import rtnl

    names = _namespaces(prefix, n)
    host, ctrs = names[0], names[1:]
    try:
        for name in names:
            rtnl.fast(name)  # sockets open (netns_add already kept one per namespace)
        t = time.perf_counter()
        kernel.link_add(host, "br0", "bridge")
        kernel.configure(host, "br0", "10.0.0.1/16")
        for i, c in enumerate(ctrs):
            a = i + 2
            kernel.veth_add(host, f"v{i}", "eth0", peer_ns=c, up=True, master="br0")
            kernel.configure(c, "eth0", f"10.0.{a // 256}.{a % 256}/16", gateway="10.0.0.1")
        build = time.perf_counter() - t
        t = time.perf_counter()
        for name in names:
            kernel.dump(name)
        dump = time.perf_counter() - t
    finally:
        _remove(names)
    return {"build": build, "dump": dump}


def run_pyroute2(prefix: str, n: int) -> dict:
    from pyroute2 import IPRoute

    from netteach.kernel import netns, worker

    names = _namespaces(prefix, n)
    host, ctrs = names[0], names[1:]

    def work():
        socks = {}
        for name in names:  # one IPRoute per namespace, opened inside it
            with netns.entered(name):
                socks[name] = IPRoute()
        try:
            t = time.perf_counter()
            h = socks[host]
            h.link("add", ifname="br0", kind="bridge")
            br = h.link_lookup(ifname="br0")[0]
            h.addr("add", index=br, address="10.0.0.1", prefixlen=16)
            h.link("set", index=br, state="up")
            for i, c in enumerate(ctrs):
                a = i + 2
                fd = netns.open_fd(c)
                try:
                    h.link("add", ifname=f"v{i}", kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
                finally:
                    os.close(fd)
                v = h.link_lookup(ifname=f"v{i}")[0]
                h.link("set", index=v, master=br, state="up")
                s = socks[c]
                eth = s.link_lookup(ifname="eth0")[0]
                s.link("set", index=1, state="up")
                s.link("set", index=eth, state="up")
                s.addr("add", index=eth, address=f"10.0.{a // 256}.{a % 256}", prefixlen=16)
                s.route("add", dst="0.0.0.0/0", gateway="10.0.0.1")
            build = time.perf_counter() - t
            t = time.perf_counter()
            for name in names:
                s = socks[name]
                list(s.get_links()), list(s.get_addr()), list(s.get_routes())
            dump = time.perf_counter() - t
            return {"build": build, "dump": dump}
        finally:
            for s in socks.values():
                s.close()

    try:
        return worker.call(work)  # pyroute2's sync API needs a thread without a running loop
    finally:
        _remove(names)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--n", type=int, default=100)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("the benchmark builds real namespaces: run it as root")
    import pyroute2

    rows = {"fastnl": [], "pyroute2": []}
    for r in range(args.rounds):  # interleaved, so both see the same machine load
        rows["fastnl"].append(run_fastnl(f"ntnl{os.getpid()}f{r}", args.n))
        rows["pyroute2"].append(run_pyroute2(f"ntnl{os.getpid()}p{r}", args.n))
    print(f"machine: {os.cpu_count()} cores, kernel {os.uname().release}, Python {sys.version.split()[0]}, "
          f"pyroute2 {pyroute2.__version__}; {args.rounds} rounds, medians")
    print(f"{'netlink work':<38} {'pyroute2':>10} {'fastnl':>10} {'ratio':>7}")
    for key, what in (("build", f"build {args.n} containers (netlink only)"),
                      ("dump", f"dump {args.n + 1} namespaces")):
        pr = statistics.median(x[key] for x in rows["pyroute2"])
        fl = statistics.median(x[key] for x in rows["fastnl"])
        print(f"{what:<38} {pr:>9.3f}s {fl:>9.3f}s {pr / fl:>6.1f}x")


if __name__ == "__main__":
    main()
