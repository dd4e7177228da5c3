"""Random SIGKILLs during a DockerHost build: does cleanup leave nothing, does a take-over converge?

Run as root from the repository (inside tools/sandbox.sh on a shared machine):
    .venv/bin/python -m benchmarks.kill_takeover [--kills 24] [--takeovers 20]

A child process builds a DockerHost (a user network, containers that serve and
publish ports) and is killed with SIGKILL at a random moment. Then either

- cleanup: ``nt.cleanup()`` runs; counted are leftovers (namespaces, marked
  links, state files, /etc/netns directories) and orphaned processes (any
  process whose environment carries the lab's marker); or
- take-over: this process runs the same build (it takes the lab over) and the
  kernel is checked: every container's namespace, eth0 address, default
  route and web server (an HTTP answer), every network's bridge with its
  gateway address. Then destroy() and the same leftover count.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time

import netteach as nt
from netteach import kernel

BUILD = """
import netteach as nt
dh = nt.DockerHost({name!r})
dh.network_create("backend", subnet="10.10.0.0/24")
for i in range(6):
    dh.run(f"c{{i}}", network="bridge" if i % 2 else "backend", serve=80 if i % 3 == 0 else None,
           publish={{8080 + i: 80}} if i % 3 == 0 and i % 2 else None)
"""


def build(name):
    exec(BUILD.format(name=name), {})
    return nt.DockerHost(name)


def leftovers(name) -> list[str]:
    out = [f"netns {n}" for n in kernel.netns_list() if n.startswith(f"nt-{name}.")]
    out += [f"link {l['ifname']}" for l in kernel.dump(None)["links"] if l.get("alias") == f"netteach lab={name}"]
    if os.path.isdir("/run/netteach"):
        out += [f"state {f}" for f in os.listdir("/run/netteach") if f.startswith(f"{name}.")]
    if os.path.isdir("/etc/netns"):
        out += [f"etc {f}" for f in os.listdir("/etc/netns") if f.startswith(f"nt-{name}.")]
    return out


def orphans(name) -> list[int]:
    time.sleep(0.05)
    return [pid for pid, _ in kernel.marked(name)]


def kill_during_build(name, rng) -> None:
    p = subprocess.Popen([sys.executable, "-c", BUILD.format(name=name)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.2, 2.5))
    p.send_signal(signal.SIGKILL)
    p.wait()


def converged(dh) -> list[str]:
    """What the kernel lacks of what the model says (empty: converged)."""
    wrong = []
    for net, n in dh._nets.items():
        link = kernel.link_get(dh._host(), n["bridge"])
        addrs = [a["address"] for a in kernel.dump(dh._host())["addrs"] if link and a["index"] == link["index"]]
        if link is None or n["gateway"] not in addrs:
            wrong.append(f"network {net}: bridge {n['bridge']} missing or without {n['gateway']}")
    for cname, c in dh._ctrs.items():
        kns = dh.kernel_name(cname)
        if not kernel.netns_exists(kns):
            wrong.append(f"{cname}: no namespace")
            continue
        d = kernel.dump(kns)
        for net, ep in c["endpoints"].items():
            if not any(a["address"] == ep["ip"] for a in d["addrs"]):
                wrong.append(f"{cname}: no address {ep['ip']}")
        if not any(r["dst"] == "default" for r in d["routes"]):
            wrong.append(f"{cname}: no default route")
        if c["spec"]["serve"] and not dh.http_get("host", cname, 80):
            wrong.append(f"{cname}: its server does not answer")
    return wrong


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=24)
    ap.add_argument("--takeovers", type=int, default=20)
    args = ap.parse_args()
    rng = random.Random(9)
    left = orph = 0
    for k in range(args.kills):
        name = f"kc{os.getpid() % 1000}-{k}"
        kill_during_build(name, rng)
        nt.cleanup()
        lo, op = leftovers(name), orphans(name)
        left += bool(lo)
        orph += len(op)
        if lo or op:
            print(f"kill {k}: leftovers {lo} orphans {op}")
    print(f"random kills {args.kills}: runs with leftovers {left}, orphaned processes {orph}")
    ok = left2 = 0
    for k in range(args.takeovers):
        name = f"kt{os.getpid() % 1000}-{k}"
        kill_during_build(name, rng)
        dh = build(name)
        wrong = converged(dh)
        ok += not wrong
        if wrong:
            print(f"take-over {k}: {wrong}")
        dh.destroy()
        left2 += bool(leftovers(name) or orphans(name))
    print(f"take-overs re-run {args.takeovers}: converged {ok}, runs with leftovers after destroy {left2}")


if __name__ == "__main__":
    main()
