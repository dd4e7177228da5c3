"""Netlink sockets per namespace, and the one place netlink errors become netteach errors.

Two clients: :mod:`.fastnl` (plain sockets; links, addresses, routes, dumps,
namespace ids: the hot path, usable from any thread) and pyroute2 (link kinds
with options such as vxlan or macvlan; kernel thread only, since pyroute2 runs
an asyncio loop). Both kinds of socket are opened from inside their namespace
by the kernel thread and kept until the namespace goes away.
"""

from __future__ import annotations

import errno
import threading

from netteach import errors
from netteach.kernel import fastnl, netns, worker

_lock = threading.Lock()
_fast: dict = {}  # ns -> (inode, fastnl.Socket)
_pyr: dict = {}  # ns -> (inode, pyroute2.IPRoute)


def _cached(cache, ns, opener):
    ino = netns.inode(ns)
    with _lock:
        hit = cache.get(ns)
        if hit and hit[0] == ino and ino is not None:
            return hit[1]
    if ns is not None and not netns.exists(ns):
        forget(ns)
        raise errors.NoSuchNamespace(f"network namespace {ns!r} does not exist")
    fresh = worker.call(opener, ns)
    with _lock:
        old = cache.get(ns)
        cache[ns] = (ino, fresh)
    if old:
        old[1].close()
    return fresh


def _open_fast(ns):
    _raise_fd_limit()
    with netns.entered(ns):
        return fastnl.Socket()


_fd_limit_raised = False


def _raise_fd_limit():
    """One socket per namespace: a 1000-container lab needs more than the usual 1024 fds."""
    global _fd_limit_raised
    if not _fd_limit_raised:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
        _fd_limit_raised = True


def _open_pyroute2(ns):
    from pyroute2 import IPRoute  # loaded only when a link kind needs it

    with netns.entered(ns):
        return IPRoute()


def fast(ns) -> fastnl.Socket:
    """The fast socket of namespace ``ns`` (None = root), reopened if the namespace was replaced."""
    return _cached(_fast, ns, _open_fast)


def pyroute2(ns):
    """A pyroute2 IPRoute for ``ns`` — use only on the kernel thread."""
    return _cached(_pyr, ns, _open_pyroute2)


def adopt(ns, sock: fastnl.Socket):
    """Keep the socket opened while creating namespace ``ns``."""
    with _lock:
        _fast[ns] = (netns.inode(ns), sock)


def forget(ns):
    """Close netteach's sockets into ``ns`` (they would keep a deleted namespace alive)."""
    with _lock:
        socks = [c.pop(ns, None) for c in (_fast, _pyr)]
    for s in socks:
        if s:
            s[1].close()


def forget_gone():
    """Close the sockets of every namespace that no longer exists (removed by hand, or its process ended)."""
    with _lock:
        cached = {ns for c in (_fast, _pyr) for ns in c if ns is not None}
    for ns in cached:
        if not netns.exists(ns):
            forget(ns)


def where(ns) -> str:
    return "the root namespace" if ns is None else f"namespace {ns!r}"


def translate(exc: OSError, what: str, hint: str = "") -> errors.NetteachError:
    """Map a netlink error (fastnl's or pyroute2's) to the netteach error a student can act on."""
    code = getattr(exc, "code", None) or exc.errno
    text = f"{what}: {exc.strerror if getattr(exc, 'strerror', None) else exc}"
    if hint:
        text += f" - {hint}"
    if code in (errno.EPERM, errno.EACCES):
        return errors.PermissionDenied(text + " (netteach needs root or CAP_NET_ADMIN; see nt.doctor())")
    if code == errno.EEXIST:
        return errors.Conflict(text)
    if code in (errno.ENODEV, errno.ENOENT, errno.ESRCH):
        return errors.NoSuchInterface(text)
    if code in (errno.EOPNOTSUPP, errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT):
        return errors.MissingKernelFeature(text + " (this kernel lacks the module; see nt.doctor())")
    if code in (errno.ENETUNREACH, errno.EINVAL, errno.ERANGE, errno.EADDRNOTAVAIL):
        return errors.InvalidAddress(text)
    return errors.KernelError(text)


def transact(ns, what: str, batch: list, ok=(), hint: str = "") -> list[int]:
    """Send fastnl requests to ``ns`` in one write; errors translated."""
    try:
        return fast(ns).transact(batch, ok=ok)
    except fastnl.NetlinkError as exc:
        raise translate(exc, what, hint) from None


def with_pyroute2(ns, what: str, fn, hint: str = ""):
    """``fn(IPRoute)`` on the kernel thread, errors translated."""
    from pyroute2.netlink.exceptions import NetlinkError

    def work():
        try:
            return fn(pyroute2(ns))
        except NetlinkError as exc:
            exc.errno = exc.code
            exc.strerror = exc.args[1] if len(exc.args) > 1 else str(exc)
            raise translate(exc, what, hint) from None
    return worker.call(work)
