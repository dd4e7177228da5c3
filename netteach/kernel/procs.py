"""Processes: run a command inside a namespace, start and stop long-lived ones, sysctls.

Commands run as ``ip netns exec NAME ...`` does (that also bind-mounts
``/etc/netns/NAME/*`` over ``/etc``, which is how a container gets its own
resolv.conf and hosts), or under ``nsenter --net=PATH`` for a namespace that
only a process holds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from netteach import errors
from netteach.kernel import netns, worker


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        raise errors.MissingTool(f"the {name!r} command is not installed - install it with "
                                 f"`apt-get install {package}` (the README's setup command does)")
    return path


def in_ns(ns, argv: list[str]) -> list[str]:
    """The argv that runs ``argv`` inside namespace ``ns``."""
    if ns is None:
        return list(argv)
    if ns.startswith("/"):
        return [require_tool("nsenter", "util-linux"), f"--net={ns}", "--", *argv]
    return [require_tool("ip", "iproute2"), "netns", "exec", ns, *argv]


def run(ns, argv: list[str], timeout: float = 10, input: str | None = None):
    """Run to completion; returns (returncode, stdout, stderr)."""
    argv = in_ns(ns, argv)
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise errors.MissingTool(f"{exc.filename!r} is not installed") from None
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return 124, out, f"timed out after {timeout} s"
    return p.returncode, p.stdout, p.stderr


def run_many(jobs: list[tuple], timeout: float = 10) -> list[tuple]:
    """Run several ``(ns, argv)`` at once; returns their (returncode, stdout, stderr) in order."""
    procs = []
    for ns, argv in jobs:
        procs.append(subprocess.Popen(in_ns(ns, argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    out = []
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            o, e = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            out.append((p.returncode, o, e))
        except subprocess.TimeoutExpired:
            p.kill()
            o, e = p.communicate()
            out.append((124, o, e + f"timed out after {timeout} s"))
    return out


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks (tells a pid from a reused pid)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def alive(pid: int, start: int | None) -> bool:
    """Is this exact process (pid and start time) still running (not a zombie)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] not in ("Z", "X") and (start is None or int(fields[19]) == start)


MARK_VAR = "NETTEACH_LAB"  # in the environment of every process a lab starts: how cleanup finds them


def spawn(ns, argv: list[str], log_path: str | None = None, mark: str | None = None) -> dict:
    """Start ``argv`` inside ``ns`` in the background; returns {pid, start, argv}.

    ``mark`` (a lab name) goes into the process's environment as
    ``NETTEACH_LAB=mark``: :func:`marked` finds it, and its children, even if
    its pid was never recorded (the caller was killed in between).
    """
    env = None
    if mark is not None:
        env = {k: v for k, v in os.environ.items() if k != MARK_VAR}
        env[MARK_VAR] = mark
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        p = subprocess.Popen(in_ns(ns, argv), stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True, env=env)
    finally:
        if log_path:
            out.close()
    _children[p.pid] = p
    return {"pid": p.pid, "start": start_time(p.pid), "argv": list(argv)}


_children: dict[int, subprocess.Popen] = {}


def marked(mark: str) -> list[tuple[int, int | None]]:
    """(pid, start time) of every process whose environment says ``NETTEACH_LAB=mark``."""
    needle = f"{MARK_VAR}={mark}".encode()
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or a kernel thread
        if needle in env:
            out.append((int(entry), start_time(int(entry))))
    return out


def kill(pid: int, start: int | None, grace: float = 1.0) -> bool:
    """Stop exactly this process (and its process group): TERM, then KILL. True if it was running."""
    if not alive(pid, start):
        _reap(pid)
        return False
    try:
        leader = os.getpgid(pid) == pid  # spawn() made it a group leader: its children go too
    except ProcessLookupError:
        leader = False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            if leader:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if _reap(pid) or not alive(pid, start):
                return True
            time.sleep(0.01)
    _reap(pid)
    return True


def _reap(pid) -> bool:
    p = _children.get(pid)
    if p is not None and p.poll() is not None:
        del _children[pid]
        return True
    return False


def _sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def _sysctl_error(exc: OSError, key: str, doing: str) -> errors.NetteachError:
    """The netteach error for a sysctl file the kernel refused to read or write."""
    import errno

    if isinstance(exc, errors.NetteachError):
        return exc
    if exc.errno == errno.ENOENT:
        return errors.InvalidName(f"no sysctl {key!r} (is the name right? e.g. net.ipv4.ip_forward)")
    text = f"cannot {doing}: {exc.strerror or exc}"
    if exc.errno in (errno.EPERM, errno.EACCES, errno.EROFS):
        return errors.PermissionDenied(text + " - changing sysctls needs root (CAP_NET_ADMIN in the "
                                       "namespace's owner), and some are read-only outside the "
                                       "initial namespace; see nt.doctor()")
    if exc.errno in (errno.EINVAL, errno.ERANGE):
        return errors.InvalidValue(text + f" - the kernel does not accept that value for {key}")
    return errors.KernelError(text)


def sysctl_get(ns, key: str) -> str:
    def read():
        with netns.entered(ns):
            with open(_sysctl_path(key)) as f:
                return f.read().strip()
    try:
        return worker.call(read)
    except OSError as exc:
        raise _sysctl_error(exc, key, f"read {key}") from None


def sysctls_set(ns, values: dict) -> None:
    """Several ``sysctl -w KEY=VALUE`` inside ``ns``, entering it once."""
    def write():
        with netns.entered(ns):
            for key, value in values.items():
                try:
                    with open(_sysctl_path(key), "w") as f:
                        f.write(str(value))
                except OSError as exc:
                    raise _sysctl_error(exc, key, f"set {key}={value}") from None
    worker.call(write)


def sysctl_set(ns, key: str, value) -> None:
    def write():
        with netns.entered(ns):
            with open(_sysctl_path(key), "w") as f:
                f.write(str(value))
    try:
        worker.call(write)
    except OSError as exc:
        raise _sysctl_error(exc, key, f"set {key}={value}") from None


def processes_named(comm: str) -> list[dict]:
    """Processes whose command name is ``comm``: ``{"pid", "argv", "netns"}`` (netns = inode), like ``pgrep -a``.

    A process that ends while it is read is left out.
    """
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != comm:
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            ino = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:
            continue
        out.append({"pid": int(entry), "argv": argv, "netns": ino})
    return sorted(out, key=lambda p: p["pid"])
