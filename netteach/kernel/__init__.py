"""The kernel layer: the only part of netteach that talks to the kernel.

Its interface is a small set of plain operations (strings, ints, dicts in and
out), so that it can later run in a helper process driven over a pipe.
A namespace argument ``ns`` is ``None`` (this process's root namespace), a
name under ``/run/netns`` or an absolute path to a namespace file.

Each operation runs on the dedicated kernel thread (see :mod:`.worker`), so
calls are safe from a Jupyter cell, whose thread has a running asyncio loop.

>>> from netteach import kernel
>>> kernel.netns_exists(None)
True
"""

from __future__ import annotations

import errno

from netteach import errors
from netteach.kernel import netns as _netns
from netteach.kernel.procs import alive, kill, run, run_many, spawn, start_time, sysctl_get, sysctl_set  # noqa: F401
from netteach.kernel.sockets import listening, tcp_requests  # noqa: F401
from netteach.kernel.worker import call as _call


def _rtnl():
    # pyroute2 loads on first kernel use, not at `import netteach`
    from netteach.kernel import rtnl
    return rtnl


# ---- namespaces ----------------------------------------------------------------

def netns_exists(ns) -> bool:
    return _netns.exists(ns)


def netns_list() -> list[str]:
    """Names of all named namespaces (``ip netns list``)."""
    return _netns.names()


def netns_inode(ns) -> int | None:
    return _netns.inode(ns)


def netns_held_by_processes() -> dict:
    """{inode: (pid, comm)} of every namespace a process is in (``lsns -t net``)."""
    return _netns.held_by_processes()


def netns_files(directory: str) -> list[str]:
    """Namespace files under a directory, e.g. Docker's /var/run/docker/netns."""
    return _netns.files_in(directory)


def netns_add(name: str, alias: str | None = None) -> bool:
    """``ip netns add name``; marks its ``lo`` with ``alias``. False if it already existed."""
    if _netns.exists(name):
        return False

    def work():
        rtnl = _rtnl()
        from pyroute2 import IPRoute

        def inside():
            ipr = IPRoute()
            if alias:
                ipr.link("set", index=1, ifalias=alias)
            return ipr
        try:
            ipr = _netns.create(name, inside)
        except FileExistsError:
            raise errors.Conflict(f"/run/netns/{name} exists but holds no namespace; "
                                  f"remove it with `rm /run/netns/{name}`") from None
        rtnl.adopt(name, ipr)
    _call(work)
    return True


def netns_delete(name: str) -> None:
    """``ip netns delete name`` (the kernel frees it once no process or socket uses it)."""
    def work():
        _rtnl().forget(name)
        _netns.delete(name)
    _call(work)


def forget(ns) -> None:
    """Close netteach's own socket into ``ns`` (so a deleted namespace can really go)."""
    _call(lambda: _rtnl().forget(ns))


# ---- links -----------------------------------------------------------------------

def _index(rtnl, ns, ifname) -> int:
    ipr = rtnl.sock(ns)
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise errors.NoSuchInterface(f"no interface {ifname!r} in {rtnl.where(ns)}")
    return found[0]


def link_get(ns, ifname: str) -> dict | None:
    """The link's attributes (plain dict), or None if there is no such link."""
    return _call(lambda: _rtnl().link(ns, ifname))


def link_by_index(ns, index: int) -> dict | None:
    """The link with this ifindex in ``ns``, or None."""
    return _call(lambda: _rtnl().link_by_index(ns, index))


def veth_add(ns, name: str, peer: str, peer_ns=None) -> None:
    """``ip link add name type veth peer name peer [netns peer_ns]``."""
    def work():
        rtnl = _rtnl()
        spec = {"ifname": peer}
        fd = None
        if peer_ns is not None and peer_ns != ns:
            fd = _netns.open_fd(peer_ns)
            spec["net_ns_fd"] = fd
        try:
            rtnl.request(ns, f"creating veth pair {name!r} <-> {peer!r} in {rtnl.where(ns)}",
                         lambda ipr: ipr.link("add", ifname=name, kind="veth", peer=spec))
        finally:
            if fd is not None:
                import os
                os.close(fd)
    _call(work)


def link_add(ns, name: str, kind: str, **attrs) -> None:
    """``ip link add name type kind ...`` (bridge, vxlan, macvlan, ...)."""
    def work():
        rtnl = _rtnl()
        rtnl.request(ns, f"creating {kind} {name!r} in {rtnl.where(ns)}",
                     lambda ipr: ipr.link("add", ifname=name, kind=kind, **attrs))
    _call(work)


def link_set(ns, ifname: str, *, netns=None, master=None, nomaster=False, up=None,
             alias=None, mtu=None, mac=None) -> None:
    """``ip link set ifname [netns X] [master B | nomaster] [up|down] [alias A] [mtu M] [address MAC]``."""
    def work():
        rtnl = _rtnl()
        idx = _index(rtnl, ns, ifname)
        kw = {}
        if master is not None:
            kw["master"] = _index(rtnl, ns, master)
        if nomaster:
            kw["master"] = 0
        if alias is not None:
            kw["ifalias"] = alias
        if mtu is not None:
            kw["mtu"] = int(mtu)
        if mac is not None:
            kw["address"] = mac
        if up is not None:
            kw["state"] = "up" if up else "down"
        what = f"setting {ifname!r} in {rtnl.where(ns)}"
        if kw:
            rtnl.request(ns, what, lambda ipr: ipr.link("set", index=idx, **kw))
        if netns is not None:
            fd = _netns.open_fd(netns)
            try:
                rtnl.request(ns, f"moving {ifname!r} into namespace {netns!r}",
                             lambda ipr: ipr.link("set", index=idx, net_ns_fd=fd))
            finally:
                import os
                os.close(fd)
    _call(work)


def link_delete(ns, ifname: str) -> bool:
    """``ip link delete ifname``; False if it was already gone."""
    def work():
        rtnl = _rtnl()
        r = rtnl.request(ns, f"deleting {ifname!r}", lambda ipr: ipr.link("del", ifname=ifname) or True,
                         ok=(errno.ENODEV,))
        return bool(r)
    return _call(work)


# ---- addresses and routes ----------------------------------------------------------

def addr_add(ns, ifname: str, address: str, prefixlen: int) -> bool:
    """``ip addr add address/prefixlen dev ifname``; False if it was already there."""
    def work():
        rtnl = _rtnl()
        idx = _index(rtnl, ns, ifname)
        r = rtnl.request(ns, f"adding {address}/{prefixlen} to {ifname!r}",
                         lambda ipr: ipr.addr("add", index=idx, address=address,
                                              prefixlen=prefixlen) or True,
                         ok=(errno.EEXIST,))
        return bool(r)
    return _call(work)


def addr_delete(ns, ifname: str, address: str, prefixlen: int) -> bool:
    def work():
        rtnl = _rtnl()
        idx = _index(rtnl, ns, ifname)
        return bool(rtnl.request(ns, f"removing {address}/{prefixlen} from {ifname!r}",
                                 lambda ipr: ipr.addr("del", index=idx, address=address,
                                                      prefixlen=prefixlen) or True,
                                 ok=(errno.EADDRNOTAVAIL, errno.ENOENT)))
    return _call(work)


def route_add(ns, dst: str, via: str | None = None, dev: str | None = None) -> bool:
    """``ip route add dst [via G] [dev D]``; False if that exact route was already there."""
    def work():
        rtnl = _rtnl()
        kw = {"dst": dst, "proto": 3}  # proto boot, as `ip route add` sets it
        if via:
            kw["gateway"] = via
        if dev:
            kw["oif"] = _index(rtnl, ns, dev)
        hint = (f"the gateway {via} must be on a subnet of an address of this namespace "
                "(add that address first)") if via else ""
        r = rtnl.request(ns, f"adding route {dst} in {rtnl.where(ns)}",
                         lambda ipr: ipr.route("add", **kw) or True, hint=hint, ok=(errno.EEXIST,))
        return bool(r)
    return _call(work)


def route_delete(ns, dst: str, via: str | None = None, dev: str | None = None) -> bool:
    def work():
        rtnl = _rtnl()
        kw = {"dst": dst}
        if via:
            kw["gateway"] = via
        return bool(rtnl.request(ns, f"deleting route {dst}",
                                 lambda ipr: ipr.route("del", **kw) or True,
                                 ok=(errno.ESRCH, errno.ENOENT, errno.ENODEV)))
    return _call(work)


# ---- reading everything -------------------------------------------------------------

def dump(ns) -> dict:
    """Links, addresses and routes of one namespace, as plain dicts."""
    def work():
        rtnl = _rtnl()
        return {"links": rtnl.links(ns), "addrs": rtnl.addrs(ns), "routes": rtnl.routes(ns)}
    return _call(work)


def nsids(ns, others: list) -> dict:
    """{nsid: other} for each namespace in ``others`` that ``ns`` knows by an id."""
    def work():
        rtnl = _rtnl()
        out = {}
        for other in others:
            if other == ns:
                continue
            try:
                i = rtnl.nsid_of(ns, other)
            except (OSError, errors.NetteachError):
                continue
            if i is not None:
                out[i] = other
        return out
    return _call(work)


# ---- nftables ---------------------------------------------------------------------

def nft(ns, script: str) -> None:
    """``nft -f -`` inside ``ns``: one atomic transaction; its error text if refused."""
    from netteach.kernel.procs import require_tool

    require_tool("nft", "nftables")
    rc, out, err = run(ns, ["nft", "-f", "-"], input=script)
    if rc != 0:
        raise errors.KernelError(f"nft refused the rules: {err.strip() or out.strip()}")


def nft_list(ns, what: str = "ruleset") -> str:
    """``nft list ruleset`` (or ``"chain ip filter FORWARD"``, ``"table ip nat"``) inside ``ns``."""
    rc, out, err = run(ns, ["nft", "list", *what.split()])
    if rc != 0:
        raise errors.NoSuchInterface(f"nft list {what}: {err.strip()}")
    return out
