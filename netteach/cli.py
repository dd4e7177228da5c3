"""The ``netteach`` command: ``doctor``, ``labs``, ``cleanup [--all]``, ``demo``, ``lab``, ``shell LAB``.

>>> main(["--help"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
SystemExit: 0
"""

from __future__ import annotations

import argparse
import os
import sys


def _doctor(args):
    from netteach.doctor import doctor

    caps = doctor(show=True)
    return 0 if caps.real_labs else 1


def _labs(args):
    from netteach.lab import labs

    print(repr(labs()))
    return 0


def _cleanup(args):
    from netteach.lab import cleanup

    removed = cleanup(all=args.all)
    print("removed: " + ", ".join(removed) if removed else "nothing to clean up")
    return 0


def _demo(args):
    """Two containers on a bridge, a ping, the picture saved as PNG; then all removed."""
    from netteach import draw
    from netteach.lab import Lab

    with Lab("demo") as lab:
        lab.add_bridge("br0")
        lab.add_addr("host", "br0", "10.0.0.1/24")
        lab.set_up("host", "br0")
        for i in (1, 2):
            c = f"c{i}"
            lab.add_netns(c)
            lab.add_veth(f"veth{i}", "eth0")
            lab.set_netns("eth0", c)
            lab.set_master(f"veth{i}", "br0")
            lab.set_up("host", f"veth{i}")
            lab.add_addr(c, "eth0", f"10.0.0.{i + 1}/24")
            lab.set_up(c, "eth0")
            lab.add_route(c, "default", via="10.0.0.1")
        print(lab.snapshot().show(dump=True))
        print(repr(lab.ping("c1", "10.0.0.3")))
        with open(args.png, "wb") as f:
            f.write(draw.to_png(lab.draw()))
        print(f"picture: {args.png}")
        print("\n# the same, as commands:\n" + str(lab.commands))
    return 0


def _shell(args):
    """A shell where the lab's commands work: inside its helper (rootless) or its host namespace."""
    from netteach import state
    from netteach.kernel import helper
    from netteach.lab import kernel_netns_name

    argv = helper.shell_argv(args.name)
    if argv is None:
        st = state.load(args.name)  # a root-mode lab of this machine
        if st is None:
            print(f"netteach: no lab {args.name!r} here (a rootless lab lives only while the notebook "
                  "that made it runs); `netteach labs` lists root-mode labs", file=sys.stderr)
            return 2
        sh = os.environ.get("SHELL") or "/bin/bash"
        argv = [sh] if st.host == "root" else ["ip", "netns", "exec", kernel_netns_name(args.name, "host"), sh]
    print(f"# a shell in lab {args.name!r}: `ip netns` lists its namespaces; exit to leave", file=sys.stderr)
    os.execvp(argv[0], argv)


def _lab(args):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    nbdir = args.dir or os.path.join(here, "notebooks")
    argv = [sys.executable, "-m", "jupyter", "lab", "--ip=127.0.0.1", "--no-browser",
            f"--notebook-dir={nbdir}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    os.execv(sys.executable, argv + list(args.jupyter_args))


def main(argv=None):
    p = argparse.ArgumentParser(prog="netteach", description="Learn container networking on the real kernel.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("doctor", help="what this machine allows (privileges, kernel features, tools)")
    sub.add_parser("labs", help="list netteach labs on this machine and their owners")
    c = sub.add_parser("cleanup", help="remove labs whose owner process is gone (only netteach's objects)")
    c.add_argument("--all", action="store_true", help="remove every netteach lab, even live ones")
    d = sub.add_parser("demo", help="build a two-container bridge lab, ping, draw it, remove it")
    d.add_argument("--png", default="netteach-demo.png")
    s = sub.add_parser("shell", help="open a shell where a lab's commands (lab.commands) work")
    s.add_argument("name")
    l = sub.add_parser("lab", help="start JupyterLab on the notebooks (127.0.0.1); other options go to JupyterLab")
    l.add_argument("--dir", default=None)
    args, extra = p.parse_known_args(argv)
    if extra and args.cmd != "lab":
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    args.jupyter_args = extra
    from netteach.errors import NetteachError

    try:
        return {"doctor": _doctor, "labs": _labs, "cleanup": _cleanup, "demo": _demo, "lab": _lab,
                "shell": _shell}[args.cmd](args)
    except NetteachError as exc:
        print(f"netteach: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
