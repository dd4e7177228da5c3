"""Network namespaces: create, find, enter and remove them (kernel thread only).

A namespace is named the way ``ip`` names it: ``None`` is the root namespace
of this process, ``"name"`` is ``/run/netns/name`` (what ``ip netns add``
makes), and an absolute path (``/proc/1234/ns/net``,
``/var/run/docker/netns/abc``) is a namespace held by something else.

Creating one costs ~0.3 ms here instead of ~7 ms for a fork: the kernel
thread ``unshare()``s a new namespace for itself, bind-mounts it where
``ip netns`` looks, and ``setns()``es back.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading

from netteach import errors

RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_SHARED = 4096, 16384, 1 << 20
MNT_DETACH = 2

_libc = None
_root_fd = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        if e in (errno.EPERM, errno.EACCES):
            raise errors.PermissionDenied(
                f"{what}: operation not permitted - netteach needs root (or CAP_NET_ADMIN "
                "and CAP_SYS_ADMIN) to build a real lab; run JupyterLab as root or with sudo, "
                "or see nt.doctor()")
        raise OSError(e, f"{what}: {os.strerror(e)}")


def root_fd() -> int:
    """An fd of the namespace this process started in (opened once, on the kernel thread)."""
    global _root_fd
    if _root_fd is None:
        # the kernel thread starts in the process's namespace and always returns to it
        _root_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    return _root_fd


def path(ns) -> str:
    if ns is None:
        return "/proc/self/ns/net"
    return ns if ns.startswith("/") else f"{RUN_DIR}/{ns}"


def inode(ns) -> int | None:
    """The namespace's identity (inode), or None if it does not exist."""
    try:
        return os.stat(path(ns)).st_ino
    except OSError:
        return None


def exists(ns, root: str = "") -> bool:
    """Does namespace ``ns`` exist? (``root``: where this process sees the machine's ``/``.)"""
    if ns is None:
        return True
    p = root + path(ns)
    try:
        # a mount point on /run/netns/<name> holds a namespace (nsfs); an
        # unmounted leftover file does not
        return os.stat(p).st_dev != os.stat(os.path.dirname(p)).st_dev
    except OSError:
        return False


def names() -> list[str]:
    """The named namespaces, as ``ip netns list`` shows them."""
    try:
        return sorted(n for n in os.listdir(RUN_DIR) if exists(n))
    except FileNotFoundError:
        return []


def _ensure_run_dir():
    # like iproute2: /run/netns is a shared bind mount, so namespaces made
    # later also show up in the mount namespaces `ip netns exec` makes
    os.makedirs(RUN_DIR, mode=0o755, exist_ok=True)
    libc = _c()
    if libc.mount(b"", RUN_DIR.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
        if ctypes.get_errno() == errno.EINVAL:
            _check(libc.mount(RUN_DIR.encode(), RUN_DIR.encode(), b"none", MS_BIND | MS_REC, None),
                   "mount --bind /run/netns")
            _check(libc.mount(b"", RUN_DIR.encode(), b"none", MS_SHARED | MS_REC, None),
                   "mount --make-shared /run/netns")
        else:
            _check(-1, "mount --make-shared /run/netns")


def create(name: str, then=None):
    """``ip netns add name``; ``then()`` runs inside the new namespace before it gets its name.

    Returns what ``then`` returned; FileExistsError if the name is taken (callers check first).
    ``then`` runs first so that a namespace is marked (its ``lo`` alias) before anyone can see
    it by name: a process killed in between leaves an anonymous namespace, which the kernel
    frees, never a named one that cleanup must leave alone because it is unmarked.
    """
    root_fd()
    if not os.path.ismount(RUN_DIR):
        _ensure_run_dir()
    target = path(name)
    fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
    os.close(fd)
    libc = _c()
    try:
        _check(libc.unshare(CLONE_NEWNET), f"creating network namespace {name!r}")
    except BaseException:
        os.unlink(target)
        raise
    result = None
    try:
        result = then() if then else None
        _check(libc.mount(b"/proc/thread-self/ns/net", target.encode(), b"none", MS_BIND, None),
               f"mounting network namespace {name!r}")
        return result
    except BaseException:
        if hasattr(result, "close"):
            result.close()
        libc.umount2(target.encode(), MNT_DETACH)
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    finally:
        _check(libc.setns(_root_fd, CLONE_NEWNET), "returning to the root namespace")


def delete(name: str):
    """``ip netns delete name``: unmount and remove; the kernel frees it when unused."""
    target = path(name)
    _c().umount2(target.encode(), MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)


@contextlib.contextmanager
def entered(ns):
    """Run the block with the kernel thread inside ``ns``; always come back."""
    if ns is None:
        yield
        return
    root_fd()
    try:
        fd = os.open(path(ns), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise errors.NoSuchNamespace(f"network namespace {ns!r} does not exist") from None
    try:
        _check(_c().setns(fd, CLONE_NEWNET), f"entering network namespace {ns!r}")
    finally:
        os.close(fd)
    try:
        yield
    finally:
        _check(_c().setns(_root_fd, CLONE_NEWNET), "returning to the root namespace")


def open_fd(ns) -> int:
    return os.open(path(ns), os.O_RDONLY | os.O_CLOEXEC)


def held_by_processes() -> dict[int, tuple[int, str]]:
    """{inode: (pid, command name)} of every network namespace some process is in."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ino = os.stat(f"/proc/{entry}/ns/net").st_ino
            if ino in out:
                continue
            with open(f"/proc/{entry}/comm") as f:
                out[ino] = (int(entry), f.read().strip())
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return out


def files_in(directory: str) -> list[str]:
    """Namespace files in a directory such as /var/run/docker/netns (absolute paths)."""
    try:
        return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                      if exists(os.path.join(directory, n)))
    except OSError:
        return []


class _Spares:
    """Fresh namespaces made ahead of time on a thread of their own.

    Making a network namespace costs the kernel ~0.3 ms (unshare); naming one
    is a ~0.1 ms bind mount. A lab that builds many containers takes a spare,
    already holding a netlink socket, and names it, while this thread makes
    the next ones on the other core. Spares are held only by file descriptors:
    if the process dies they vanish with it. The thread starts with the first
    namespace a lab makes, never at import.
    """

    SIZE = 8

    def __init__(self):
        self.items: list = []
        self.cv = threading.Condition()
        self.thread = None
        self.broken = False

    def take(self):
        """(fd, socket, sysctls already written in it) of a spare namespace, or None (then make one
        the slow way)."""
        with self.cv:
            if self.thread is None and not self.broken:
                self.thread = threading.Thread(target=self._run, name="netteach-spares", daemon=True)
                self.thread.start()
            item = self.items.pop() if self.items else None
            self.cv.notify()
        return item

    def _run(self):
        from netteach.kernel.fastnl import Socket

        libc = _c()
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            while True:
                with self.cv:
                    while len(self.items) >= self.SIZE:
                        self.cv.wait()
                if libc.unshare(CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "unshare")
                try:
                    fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                    sock = Socket()
                    try:
                        write_sysctls(SPARE_SYSCTLS)
                        fresh = dict(SPARE_SYSCTLS)
                    except OSError:
                        fresh = {}  # netns_add then writes what its caller asks the slow way
                finally:
                    if libc.setns(home, CLONE_NEWNET) != 0:  # cannot happen; never stay elsewhere
                        raise OSError(ctypes.get_errno(), "setns back")
                with self.cv:
                    self.items.append((fd, sock, fresh))
        except Exception:
            with self.cv:
                self.broken = True  # labs still work: namespaces are then made one by one
        finally:
            os.close(home)


spares = _Spares()

#: written inside each spare namespace as it is made, off the critical path (a lab sets these in
#: every namespace it makes: the kernel copies them from the machine's first namespace otherwise)
SPARE_SYSCTLS = {"net.ipv4.ip_forward": "0", "net.ipv4.conf.all.forwarding": "0"}


def write_sysctls(values: dict) -> None:
    """``sysctl -w`` for each item, in the namespace the calling thread is in."""
    for key, value in values.items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(str(value))


def name_spare(name: str, fd: int) -> None:
    """``ip netns attach``-like: bind-mount an unnamed namespace (by fd) at /run/netns/NAME."""
    if not os.path.ismount(RUN_DIR):
        _ensure_run_dir()
    target = path(name)
    os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    try:
        _check(_c().mount(f"/proc/self/fd/{fd}".encode(), target.encode(), b"none", MS_BIND, None),
               f"naming network namespace {name!r}")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
