"""Rootless labs: the same kernel layer, run in a helper process inside a user namespace.

A process that is not root cannot make network namespaces. It can, where the
kernel allows unprivileged user namespaces, start a helper that is root
*inside a user namespace of its own* and has its own network, mount and pid
namespaces::

    setpriv --pdeathsig KILL -- unshare --user --map-root-user --net --mount \\
            --pid --fork --kill-child --mount-proc -- python -m netteach.kernel.helper FD

The helper's network namespace plays the machine: a lab's ``host`` and
containers are named namespaces under the helper's own ``/run/netns`` (a
tmpfs only the helper sees), ``/etc/netns`` and ``/run/netteach`` likewise.
Servers and proxies that a lab starts run inside it. It must be started
single-threaded (a threaded process cannot enter a new user namespace:
EINVAL), so it is a fresh ``python`` and not a fork of a Jupyter kernel.

Every public function of :mod:`netteach.kernel` is wrapped (:func:`install`)
so that, while this process uses a helper, the call is sent over a socket
pair as ``(name, args, kwargs)`` and run there; plain data goes both ways,
and a netteach error raised there is raised here. Callers cannot tell which
side they talk to. Functions added to ``netteach.kernel`` later are wrapped
the same way, as long as they are defined above its ``install`` line.

Nothing can be left behind: the helper is pid 1 of its pid namespace, and
it dies with the process that started it (parent-death signals on ``unshare``
and on the helper); when it dies the kernel ends every process of its pid
namespace, and its namespaces and tmpfs go with the last of them.

The parent reads the helper's files (lab state) through
``/proc/<pid>/root``, where it sees the helper's mounts: :func:`local_path`.

>>> local_path("/run/netteach") if current() is None else "/run/netteach"
'/run/netteach'
"""

from __future__ import annotations

import collections
import functools
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import threading

from netteach import errors

# Functions of netteach.kernel that always run where they are called: they
# describe this process, or map paths between the two sides.
LOCAL = {"local_path"}
# Process checks asked about this very process (a lab's owner) answer here: the
# helper has a pid namespace of its own, where this process has no number.
SELF = {"alive", "start_time"}


def _exists_here(h, ns, *rest):
    from netteach.kernel import netns

    h.check()
    if netns.exists(ns, root=f"/proc/{h.pid}/root"):
        h.seen.add(ns)
        return True
    if ns in h.seen:  # it existed and is gone (`ip netns del`): the helper lets go of its sockets
        h.seen.discard(ns)
        return h.call("netns_exists", (ns,), {})
    return False


# Questions this process can ask the helper's filesystem itself, through
# /proc/<pid>/root, for a named namespace (every verb asks whether its
# namespace still exists: a round trip saved each time).
VIEW = {"netns_exists": _exists_here}

_current: "Helper | None" = None  # the helper this process's kernel calls go to
_in_helper = False  # True inside the helper itself: never forward
_lock = threading.Lock()
_on_gone: list = []  # callbacks run once when the helper is found dead

GONE = ("the lab's helper process is gone (it was killed, or crashed), and every namespace of its "
        "labs went with it; run the cells again (nt.Lab(...) starts a new helper)")


def current() -> "Helper | None":
    """The helper this process uses, or None when it talks to the kernel itself."""
    return _current


def local_path(path: str) -> str:
    """Where this process sees the lab machine's file ``path`` (``/proc/<helper>/root/...`` if rootless)."""
    h = _current
    if h is None or _in_helper:
        return path
    h.check()
    return f"/proc/{h.pid}/root{path}"


# ---- the parent's side ----------------------------------------------------------------------


def _argv(fd: int, errfd: int) -> list[str]:
    for tool, pkg in (("unshare", "util-linux"), ("setpriv", "util-linux")):
        if not shutil.which(tool):
            raise errors.MissingTool(f"rootless labs need {tool!r}: apt-get install {pkg}")
    return [shutil.which("setpriv"), "--pdeathsig", "KILL", "--",
            shutil.which("unshare"), "--user", "--map-root-user", "--net", "--mount",
            "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc", "--",
            sys.executable, "-m", "netteach.kernel.helper", str(fd), str(errfd)]


def _frame(obj) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return struct.pack("!I", len(data)) + data


class _Passed:
    """Stands for a socket the helper sent along (its file descriptor travels with SCM_RIGHTS)."""

    def __init__(self, s: socket.socket):
        self.family, self.type, self.proto = int(s.family), int(s.type), s.proto


class _Reader:
    """Length-prefixed frames from a stream socket; a partial read survives an interrupt.

    File descriptors that come along (sockets the helper opened for the caller, e.g. a
    capture) are queued and take the place of the ``_Passed`` markers, in order.
    """

    FDS = socket.CMSG_SPACE(16 * 4)
    # received into one buffer made once: recvmsg(1 MiB) allocated (and freed) 1 MiB per read,
    # ~20 us on each side of every round trip
    CHUNK = 1 << 18

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.fds: list[int] = []
        self.view = memoryview(bytearray(self.CHUNK))

    def frame(self):
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack_from("!I", self.buf)[0]
                if len(self.buf) >= 4 + n:
                    data = bytes(self.buf[4:4 + n])
                    del self.buf[:4 + n]
                    return self._sockets(pickle.loads(data))
            got, anc, _, _ = self.sock.recvmsg_into([self.view], self.FDS)
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    self.fds += struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4])
            if not got:
                raise EOFError
            self.buf += self.view[:got]

    def _sockets(self, msg):
        if isinstance(msg, tuple) and len(msg) == 3 and isinstance(msg[2], _Passed):
            p = msg[2]
            return (msg[0], msg[1], socket.socket(p.family, p.type, p.proto, fileno=self.fds.pop(0)))
        return msg


class Helper:
    """A running helper process and the socket that drives it.

    >>> h = Helper()          # doctest: +SKIP
    >>> h.call("netns_list", (), {})      # doctest: +SKIP
    []
    """

    def __init__(self):
        from netteach.kernel import worker

        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        errfd = os.dup(2)
        try:
            # started from the kernel thread, which lives as long as this process: the
            # parent-death signal fires when the *thread* that forked the helper ends
            self.proc = worker.call(lambda: subprocess.Popen(
                _argv(theirs.fileno(), errfd), pass_fds=(theirs.fileno(), errfd),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        finally:
            theirs.close()
            os.close(errfd)
        self.sock = mine
        self.reader = _Reader(mine)
        self.lock = threading.Lock()
        self.seq = 0
        self.alive = True
        self.seen: set = set()  # namespaces seen existing (see VIEW)
        self.calls: collections.Counter = collections.Counter()  # round trips by function (profiling)
        try:
            hello = self.reader.frame()
        except (EOFError, OSError):
            err = self.proc.stderr.read().decode(errors="replace").strip()
            self.proc.wait()
            self._close()
            raise errors.UserNamespacesUnavailable(unavailable_message(err)) from None
        self.proc.stderr.close()
        self.info = hello
        # `unshare` (this process's child) shares the helper's mounts: /proc/<pid>/root sees them
        self.pid = self.proc.pid

    @property
    def helper_pid(self) -> int | None:
        """The helper python (pid 1 of its pid namespace), as this process's /proc numbers it."""
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def _close(self):
        self.alive = False
        self.sock.close()

    def call(self, name: str, args: tuple, kwargs: dict):
        """Run ``netteach.kernel.<name>(*args, **kwargs)`` in the helper; its result or its error."""
        with self.lock:
            if not self.alive:
                raise errors.HelperGone(GONE)
            self.seq += 1
            seq = self.seq
            self.calls[name] += 1
            try:
                self.sock.sendall(_frame((seq, name, args, kwargs)))
                while True:  # answers to calls interrupted earlier (Ctrl-C) are skipped
                    got, ok, value = self.reader.frame()
                    if got == seq:
                        break
            except (EOFError, ConnectionError, OSError):
                self._gone()
                raise errors.HelperGone(GONE) from None
        if ok:
            return value
        raise value

    def check(self):
        """Raise HelperGone if the helper has ended (killed from outside)."""
        if self.proc.poll() is not None:
            with self.lock:
                if self.alive:
                    self._gone()
            raise errors.HelperGone(GONE)

    def _gone(self):
        global _current
        self._close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if _current is self:
            _current = None
        for fn in list(_on_gone):
            fn(self)

    def stop(self):
        """End the helper (and so everything inside it)."""
        global _current
        with self.lock:
            if self.alive:
                self._close()  # the helper reads the end of its socket and exits
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if _current is self:
            _current = None


def start() -> Helper:
    """The helper of this process, started if there is none (raises if user namespaces are unavailable)."""
    global _current
    with _lock:
        if _current is None or not _current.alive:
            _wrap_submodules()
            _current = Helper()
        return _current


def stop() -> None:
    """Stop this process's helper, if any: every rootless namespace goes with it."""
    h = _current
    if h is not None:
        h.stop()


def unavailable_message(detail: str = "") -> str:
    """Why a helper cannot start here, and the exact fix (shared with nt.doctor())."""
    why = userns_blocker()
    text = "rootless labs need unprivileged user namespaces, and this machine refuses them"
    if detail:
        text += f" ({detail.splitlines()[-1]})"
    return (f"{text}: {why} Nothing was built. The README's 'Rootless' section has the details; "
            "or run as root: `./bootstrap.sh lab --root`.")


def userns_blocker() -> str:
    """What blocks unprivileged user namespaces here, and the command that lifts it."""
    def read(p):
        try:
            with open(p) as f:
                return f.read().strip()
        except OSError:
            return None

    if read("/proc/sys/user/max_user_namespaces") == "0":
        return ("user.max_user_namespaces is 0; allow them with "
                "`sudo sysctl -w user.max_user_namespaces=15000`.")
    if read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        return ("kernel.unprivileged_userns_clone is 0; allow them with "
                "`sudo sysctl -w kernel.unprivileged_userns_clone=1`.")
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return ("AppArmor restricts unprivileged user namespaces (Ubuntu 24.04+); allow them for "
                "netteach's helper with an AppArmor profile granting `userns,` to `unshare` (see "
                "the README's 'Rootless' section), or for every program with "
                "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`.")
    return ("the kernel or a security policy (seccomp in a container, e.g. Docker's default profile) "
            "denies unshare(CLONE_NEWUSER); ask the machine's admin to allow user namespaces.")


def find_helpers() -> list[int]:
    """Pids of this user's running helpers (``python -m netteach.kernel.helper``), seen from here."""
    out = []
    uid = os.getuid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"netteach.kernel.helper" in argv and b"-m" in argv and b"unshare" not in argv[0]:
            out.append(int(entry))
    return sorted(out)


def shell_argv(lab: str) -> list[str] | None:
    """The command that opens a root shell inside the helper holding rootless lab ``lab``, or None.

    ``nsenter`` joins the helper's user, network, mount and pid namespaces: there
    ``ip netns`` lists the lab's namespaces and the commands of ``lab.commands`` work.
    """
    for pid in find_helpers():
        if os.path.exists(f"/proc/{pid}/root/run/netteach/{lab}.json"):
            return [shutil.which("nsenter") or "nsenter", f"--target={pid}", "--user", "--net", "--mount",
                    "--pid", "--preserve-credentials", "--wd=/", "--", os.environ.get("SHELL") or "/bin/bash"]
    return None


# ---- wrapping netteach.kernel ---------------------------------------------------------------


def _forwarding(name: str, fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        h = _current
        if h is None or _in_helper or (name.rpartition(".")[2] in SELF and args and args[0] == os.getpid()):
            return fn(*args, **kwargs)
        if any(isinstance(a, socket.socket) for a in args):
            return fn(*args, **kwargs)  # works on a socket the helper handed over: here
        named = bool(args) and isinstance(args[0], str) and not args[0].startswith("/")
        if name in VIEW and (named or (args and args[0] is None)) and h.alive:
            return VIEW[name](h, *args)
        out = h.call(name, args, kwargs)
        if named:
            h.seen.add(args[0])  # the helper may now hold a socket into it (see VIEW)
        return out
    call.__wrapped_kernel__ = fn
    return call


# Submodules of netteach.kernel whose functions are plumbing of the calling side (they
# never run alone in the helper), and functions that describe the calling process.
PLUMBING = {"helper", "worker", "netns", "rtnl", "fastnl"}
KEEP_LOCAL = {"features": {"capabilities", "tools", "user_namespaces"}, "procs": {"require_tool", "in_ns"}}
_submodules_wrapped = False


def _wrap_submodules() -> None:
    """Forward the public functions of every netteach.kernel submodule too (``kernel.capture.x()``).

    Done when the first helper starts (root mode never pays for it). A caller that
    bound a function by ``from netteach.kernel.mod import f`` before that keeps the
    unwrapped one: call it as ``mod.f()``.
    """
    global _submodules_wrapped
    import importlib
    import pkgutil
    import types

    import netteach.kernel as kernel

    if _submodules_wrapped:
        return
    for info in pkgutil.iter_modules(kernel.__path__):
        if info.name in PLUMBING:
            continue
        mod = importlib.import_module(f"netteach.kernel.{info.name}")
        keep = KEEP_LOCAL.get(info.name, set())
        for name, value in list(vars(mod).items()):
            if (name.startswith("_") or name in keep or not isinstance(value, types.FunctionType)
                    or value.__module__ != mod.__name__ or getattr(value, "__wrapped_kernel__", None)):
                continue
            setattr(mod, name, _forwarding(f"{info.name}.{name}", value))
    _submodules_wrapped = True


def install(namespace: dict) -> None:
    """Wrap every public function in ``namespace`` (netteach.kernel's globals) to forward when rootless."""
    import types

    for name, value in list(namespace.items()):
        if name.startswith("_") or name in LOCAL or not isinstance(value, types.FunctionType):
            continue
        if getattr(value, "__wrapped_kernel__", None) is not None:
            continue
        namespace[name] = _forwarding(name, value)


# ---- the helper's side ----------------------------------------------------------------------


def _mount_private_dirs():
    """Give the helper its own /run (netns, netteach) and /etc/netns, on tmpfs only it sees."""
    from netteach.kernel.netns import _c

    libc = _c()

    def mount(src, target, fstype, data=None):
        if libc.mount(src.encode(), target.encode(), fstype.encode(), 0,
                      data.encode() if data else None) != 0:
            import ctypes

            e = ctypes.get_errno()
            raise OSError(e, f"mount {fstype} on {target}: {os.strerror(e)}")

    mount("nt-helper-run", "/run", "tmpfs", "mode=755")
    for d in ("/run/netns", "/run/netteach", "/run/lock"):
        os.makedirs(d, exist_ok=True)
    if os.path.isdir("/etc/netns"):
        mount("nt-helper-etcnetns", "/etc/netns", "tmpfs", "mode=755")
    else:  # no /etc/netns on this machine: an overlay on /etc that only the helper sees
        os.makedirs("/run/.etc/upper", exist_ok=True)
        os.makedirs("/run/.etc/work", exist_ok=True)
        try:
            mount("nt-helper-etc", "/etc", "overlay",
                  "lowerdir=/etc,upperdir=/run/.etc/upper,workdir=/run/.etc/work")
            os.makedirs("/etc/netns", exist_ok=True)
        except OSError:
            pass  # write_etc then says what to do (sudo mkdir /etc/netns)


def _serve(sock: socket.socket) -> None:
    import importlib
    import threading

    import netteach.kernel as kernel
    from netteach.kernel import worker

    # this thread is the kernel thread: no asyncio loop runs here, and nothing else
    # in the helper calls the kernel layer, so its namespace hops need no hand-off
    worker._thread = threading.current_thread()
    functions: dict = {}
    reader = _Reader(sock)
    while True:
        try:
            seq, name, args, kwargs = reader.frame()
        except EOFError:
            return  # the parent closed its end: stop
        try:
            fn = functions.get(name)
            if fn is None:
                mod, _, attr = name.rpartition(".")
                fn = functions[name] = getattr(
                    importlib.import_module(f"netteach.kernel.{mod}") if mod else kernel, attr)
            reply = (seq, True, fn(*args, **kwargs))
        except BaseException as exc:  # every error goes back to the caller
            reply = (seq, False, exc)
        passed = reply[2] if reply[1] and isinstance(reply[2], socket.socket) else None
        if passed is not None:  # a socket for the caller (a capture): its descriptor goes along
            reply = (seq, True, _Passed(passed))
        try:
            data = _frame(reply)
        except Exception as exc:  # an unpicklable result or error
            data = _frame((seq, False, errors.KernelError(f"{name}: {type(exc).__name__}: {exc}")))
            passed = None
        if passed is not None:
            sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", passed.fileno()))])
            passed.close()
        else:
            sock.sendall(data)


def main(argv: list[str]) -> int:
    global _in_helper
    import ctypes
    import signal

    fd, errfd = int(argv[0]), int(argv[1])
    _in_helper = True
    import netteach.kernel.helper as this  # run as __main__: mark the module that kernel uses

    this._in_helper = True
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: `unshare` above us gone -> we go
    sock = socket.socket(fileno=fd)
    try:
        this._mount_private_dirs()
        from netteach.kernel import fastnl

        s = fastnl.Socket()  # the helper's own netns, the lab machine: lo up, like a machine's
        s.transact([fastnl.setlink(1, up=True)])
        s.close()
    except BaseException as exc:
        print(f"netteach helper: {exc}", file=sys.stderr)
        return 1
    sock.sendall(_frame({"uid": os.getuid()}))
    os.dup2(errfd, 2)
    os.close(errfd)
    this._serve(sock)  # the imported module's: its classes pickle by their real name
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
