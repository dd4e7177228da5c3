"""Netlink (rtnetlink) requests through pyroute2, on the kernel thread only.

One long-lived socket per namespace (opened from inside it, so it keeps
talking to that namespace) and one place that turns pyroute2's
``NetlinkError`` into netteach errors. Everything in and out is plain data.
"""

from __future__ import annotations

import errno
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netteach import errors
from netteach.kernel import netns

_socks: dict = {}  # ns -> (inode, IPRoute)


def sock(ns) -> IPRoute:
    """The socket for namespace ``ns`` (None = root), reopened if the namespace was replaced."""
    ino = netns.inode(ns)
    cached = _socks.get(ns)
    if cached and cached[0] == ino:
        return cached[1]
    if cached:
        forget(ns)
    if ns is not None and not netns.exists(ns):
        raise errors.NoSuchNamespace(f"network namespace {ns!r} does not exist")
    with netns.entered(ns):
        ipr = IPRoute()
    _socks[ns] = (ino, ipr)
    return ipr


def adopt(ns, ipr):
    """Keep a socket opened while creating namespace ``ns``."""
    _socks[ns] = (netns.inode(ns), ipr)


def forget(ns):
    """Close the socket of ``ns`` (it would keep a deleted namespace alive)."""
    cached = _socks.pop(ns, None)
    if cached:
        cached[1].close()


def where(ns) -> str:
    return "the root namespace" if ns is None else f"namespace {ns!r}"


def translate(exc: NetlinkError, what: str, hint: str = "") -> errors.NetteachError:
    """Map a NetlinkError to the netteach error a student can act on."""
    code = exc.code
    text = f"{what}: {exc.args[1] if len(exc.args) > 1 else exc}"
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


def request(ns, what, fn, *args, hint="", ok=(), **kw):
    """``fn(sock(ns), *args, **kw)`` with errors translated; errnos in ``ok`` return None."""
    ipr = sock(ns)
    try:
        return fn(ipr, *args, **kw)
    except NetlinkError as exc:
        if exc.code in ok:
            return None
        raise translate(exc, what, hint) from exc


# ---- reading --------------------------------------------------------------

def _link(m) -> dict:
    kind = m.get(("linkinfo", "kind"))
    flags = m.get("flags") or 0
    if m.get("ifname") == "lo":
        kind = "loopback"
    d = {
        "index": m.get("index"),
        "ifname": m.get("ifname"),
        "kind": kind or "other",
        "mac": m.get("address"),
        "mtu": m.get("mtu"),
        "state": m.get("operstate") or "UNKNOWN",
        "admin_up": bool(flags & 1),
        "master": m.get("master"),
        "link": m.get("link"),
        "link_netnsid": m.get("link_netnsid"),
        "alias": m.get("ifalias"),
        "details": {},
    }
    data = m.get(("linkinfo", "data"))
    if data is not None and kind in ("vxlan", "macvlan", "ipvlan", "vlan"):
        for key in ("vxlan_id", "vxlan_port", "vxlan_group", "vxlan_local", "macvlan_mode",
                    "ipvlan_mode", "vlan_id"):
            v = data.get(key)
            if v is not None:
                d["details"][key] = v
    return d


def _fam(f):
    return {socket.AF_INET: 4, socket.AF_INET6: 6}.get(f, f)


def links(ns) -> list[dict]:
    return [_link(m) for m in request(ns, f"listing links in {where(ns)}", lambda i: tuple(i.link("dump")))]


def link(ns, ifname) -> dict | None:
    """One link by name, or None."""
    msgs = request(ns, f"reading link {ifname!r}", lambda i: i.link("get", ifname=ifname),
                   ok=(errno.ENODEV, errno.EINVAL))
    return _link(msgs[0]) if msgs else None


def link_by_index(ns, index) -> dict | None:
    msgs = request(ns, f"reading link #{index}", lambda i: i.link("get", index=index),
                   ok=(errno.ENODEV, errno.EINVAL))
    return _link(msgs[0]) if msgs else None


def addrs(ns) -> list[dict]:
    out = []
    for m in request(ns, f"listing addresses in {where(ns)}", lambda i: tuple(i.addr("dump"))):
        out.append({"index": m.get("index"), "address": m.get("address"),
                    "prefixlen": m.get("prefixlen"), "family": _fam(m.get("family")),
                    "scope": m.get("scope")})
    return out


_PROTO = {2: "kernel", 3: "boot", 4: "static", 16: "dhcp"}
_SCOPE = {0: "universe", 200: "site", 253: "link", 254: "host"}


def routes(ns) -> list[dict]:
    out = []
    for fam in (socket.AF_INET, socket.AF_INET6):
        for m in request(ns, f"listing routes in {where(ns)}", lambda i: tuple(i.route("dump", family=fam, table=254))):
            if m.get("type") not in (None, 1):  # unicast only
                continue
            dst = m.get("dst")
            if fam == socket.AF_INET6 and (dst or "").startswith("fe80"):
                continue
            out.append({"dst": f"{dst}/{m.get('dst_len')}" if dst else "default",
                        "gateway": m.get("gateway"), "oif": m.get("oif"),
                        "scope": _SCOPE.get(m.get("scope"), str(m.get("scope"))),
                        "proto": _PROTO.get(m.get("proto"), str(m.get("proto"))),
                        "src": m.get("prefsrc"), "family": _fam(fam)})
    return out


def nsid_of(ns, other) -> int | None:
    """The id under which ``ns`` knows namespace ``other`` (``ip netns list-id``)."""
    fd = netns.open_fd(other)
    try:
        r = request(ns, "reading namespace ids", lambda i: i.get_netnsid(fd=fd))
    finally:
        import os
        os.close(fd)
    if not r or r.get("nsid") is None or not 0 <= r["nsid"] < 2**31:  # -1 (u32): no id
        return None
    return r["nsid"]
