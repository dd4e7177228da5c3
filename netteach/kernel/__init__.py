"""The kernel layer: the only part of netteach that talks to the kernel.

Its interface is a small set of plain operations (strings, ints, dicts in and
out), so that it can later run in a helper process driven over a pipe.
A namespace argument ``ns`` is ``None`` (this process's root namespace), a
name under ``/run/netns`` or an absolute path to a namespace file.

Netlink requests go through plain sockets (:mod:`.fastnl`), usable from any
thread; what must change namespace or uses pyroute2 runs on the kernel thread
(:mod:`.worker`). So every call is safe from a Jupyter cell, whose thread has
a running asyncio loop, and that thread never leaves its namespace.

>>> from netteach import kernel
>>> kernel.netns_exists(None)
True
"""

from __future__ import annotations

import errno
import os

from netteach import errors

# Debian gives its users a PATH without the sbin folders, where nft, tc, conntrack and sysctl live: the kernel
# layer runs them by name, here and in the rootless helper (which inherits this environment).
_path = os.environ.get("PATH", os.defpath).split(os.pathsep)
os.environ["PATH"] = os.pathsep.join(_path + [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin") if d not in _path])

from netteach.kernel import netns as _netns  # noqa: E402
from netteach.kernel.procs import (alive, kill, marked, run, run_many, spawn, start_time, sysctl_get,  # noqa: F401
                                   sysctl_set, sysctls_set)
from netteach.kernel.procs import processes_named  # noqa: F401
from netteach.kernel.sockets import listening, tcp_requests  # noqa: F401
from netteach.kernel.worker import call as _call


from netteach.kernel import fastnl as _fl
from netteach.kernel import rtnl as _rtnl


# ---- namespaces ----------------------------------------------------------------

#: the namespace this process runs in, where a namespace argument means "move there"
#: (``None`` there means "do not move"): ``ip link set X netns 1`` in a root-mode lab
ROOT = _netns.path(None)


def netns_exists(ns) -> bool:
    """Does ``ns`` exist? If not (deleted by hand: ``ip netns del``), netteach's sockets into it are
    closed, so that the kernel really frees it (and its veth pairs) as it would without netteach."""
    if _netns.exists(ns):
        return True
    _rtnl.forget(ns)
    return False


def netns_list() -> list[str]:
    """Names of all named namespaces (``ip netns list``); lets go of namespaces deleted by hand."""
    _rtnl.forget_gone()
    return _netns.names()


def netns_inode(ns) -> int | None:
    return _netns.inode(ns)


def netns_held_by_processes() -> dict:
    """{inode: (pid, comm)} of every namespace a process is in (``lsns -t net``)."""
    return _netns.held_by_processes()


def netns_files(directory: str) -> list[str]:
    """Namespace files under a directory, e.g. Docker's /var/run/docker/netns."""
    return _netns.files_in(directory)


def netns_add(name: str, alias: str | None = None, sysctls: dict | None = None) -> bool:
    """``ip netns add name``; marks its ``lo`` with ``alias``; sets ``sysctls`` in it before
    anything uses it. False if it already existed."""
    if _netns.exists(name):
        return False
    _rtnl._raise_fd_limit()
    want = {k: str(v) for k, v in (sysctls or {}).items()}
    spare = _netns.spares.take()
    try:
        if spare is not None:  # a namespace made ahead of time: mark it, then name it
            fd, sock, done = spare
            if want and want != done:  # not what the spare thread wrote there already
                try:
                    sock.close()
                finally:
                    os.close(fd)
                spare = None
        if spare is not None:
            try:
                if alias:  # marked before it has a name: a named namespace is always marked
                    sock.transact([_fl.setlink(1, alias=alias)])
                    alias = None
                _netns.name_spare(name, fd)
            except BaseException:
                sock.close()
                raise
            finally:
                os.close(fd)
        else:
            def inside():  # on the kernel thread, inside the new namespace
                if want:
                    try:
                        _netns.write_sysctls(want)
                    except OSError as exc:
                        from netteach.kernel.procs import _sysctl_error

                        raise _sysctl_error(exc, ", ".join(want), "set " + ", ".join(want)) from None
                s = _fl.Socket()
                try:
                    if alias:  # marked before create() names it, as on the fast path
                        s.transact([_fl.setlink(1, alias=alias)])
                except BaseException:
                    s.close()
                    raise
                return s
            sock = _call(_netns.create, name, inside)
            alias = None
    except FileExistsError:
        raise errors.Conflict(f"/run/netns/{name} exists but holds no namespace; "
                              f"remove it with `rm /run/netns/{name}`") from None
    if alias:
        sock.transact([_fl.setlink(1, alias=alias)])
    _rtnl.adopt(name, sock)
    return True


def netns_delete(name: str) -> None:
    """``ip netns delete name`` (the kernel frees it once no process or socket uses it)."""
    _rtnl.forget(name)
    _netns.delete(name)


def forget(ns) -> None:
    """Close netteach's own sockets into ``ns`` (so a deleted namespace can really go)."""
    _rtnl.forget(ns)


# ---- links -----------------------------------------------------------------------

def _get(ns, ifname=None, index=0) -> dict | None:
    try:
        return _rtnl.fast(ns).link(name=ifname, index=index)
    except _fl.NetlinkError as exc:
        raise _rtnl.translate(exc, f"reading link {ifname or index!r} in {_rtnl.where(ns)}") from None


def _index(ns, ifname) -> int:
    link = _get(ns, ifname)
    if link is None:
        raise errors.NoSuchInterface(f"no interface {ifname!r} in {_rtnl.where(ns)}")
    return link["index"]


def link_get(ns, ifname: str) -> dict | None:
    """The link's attributes (plain dict), or None if there is no such link."""
    return _get(ns, ifname)


def links_get(ns, ifnames: list[str]) -> list[dict | None]:
    """Several links by name in one request batch (None where there is no such link)."""
    try:
        return _rtnl.fast(ns).links_named(ifnames)
    except _fl.NetlinkError as exc:
        raise _rtnl.translate(exc, f"reading links {ifnames} in {_rtnl.where(ns)}") from None


def link_by_index(ns, index: int) -> dict | None:
    """The link with this ifindex in ``ns``, or None."""
    return _get(ns, index=index)


def veth_add(ns, name: str, peer: str, peer_ns=None, *, up: bool = False,
             master: str | None = None, peer_mac: str | None = None) -> None:
    """``ip link add name [master M] [up] type veth peer name peer [netns peer_ns] [address MAC]``.

    (The peer cannot be set up in the same request: the kernel refuses with ENOTCONN.)
    """
    fd = None
    if peer_ns is not None and peer_ns != ns:
        fd = _netns.open_fd(peer_ns)
    try:
        req = _fl.newlink_veth(name, peer, peer_fd=fd, up=up,
                               master=_index(ns, master) if master else None, peer_mac=peer_mac)
        _rtnl.transact(ns, f"creating veth pair {name!r} <-> {peer!r} in {_rtnl.where(ns)}", [req])
    finally:
        if fd is not None:
            os.close(fd)


def link_add(ns, name: str, kind: str, **attrs) -> None:
    """``ip link add name type kind ...`` (bridge; vxlan, macvlan, ... with options)."""
    what = f"creating {kind} {name!r} in {_rtnl.where(ns)}"
    if not attrs:
        _rtnl.transact(ns, what, [_fl.newlink_kind(name, kind)])
    else:
        _rtnl.with_pyroute2(ns, what, lambda ipr: ipr.link("add", ifname=name, kind=kind, **attrs))


def link_set(ns, ifname: str, *, netns=None, master=None, nomaster=False, up=None,
             alias=None, mtu=None, mac=None, index: int | None = None, master_index: int | None = None) -> None:
    """``ip link set ifname [netns X] [master B | nomaster] [up|down] [alias A] [mtu M] [address MAC]``.

    ``index`` / ``master_index``, when the caller knows them, save a lookup each.
    """
    idx = index or _index(ns, ifname)
    kw = {"alias": alias, "mtu": int(mtu) if mtu is not None else None, "mac": mac}
    if master is not None:
        kw["master"] = master_index or _index(ns, master)
    if nomaster:
        kw["master"] = 0
    batch = [_fl.setlink(idx, up=up, **kw)]
    fd = _netns.open_fd(netns) if netns is not None else None
    try:
        if fd is not None:  # moving comes last: the other changes apply where the link is now
            batch.append(_fl.setlink(idx, netns_fd=fd))
        _rtnl.transact(ns, f"setting {ifname!r} in {_rtnl.where(ns)}"
                       + (f" and moving it into namespace {netns!r}" if netns else ""), batch)
    finally:
        if fd is not None:
            os.close(fd)


def links_up(ns, indexes: list[int]) -> None:
    """``ip link set ... up`` for several links of one namespace, in one request batch."""
    _rtnl.transact(ns, f"bringing links up in {_rtnl.where(ns)}", [_fl.setlink(i, up=True) for i in indexes])


def configure(ns, ifname: str, cidr: str, gateway: str | None = None) -> None:
    """In one request batch: ``lo`` and IFNAME up, ``addr add CIDR dev IFNAME``, and the default route."""
    import ipaddress

    iface = ipaddress.ip_interface(cidr)
    idx = _index(ns, ifname)
    batch = [_fl.setlink(1, up=True), _fl.setlink(idx, up=True),
             _fl.addr(True, idx, str(iface.ip), iface.network.prefixlen)]
    if gateway:
        batch.append(_fl.route(True, "0.0.0.0/0", via=gateway))
    _rtnl.transact(ns, f"configuring {ifname!r} in {_rtnl.where(ns)}", batch)


def link_delete(ns, ifname: str) -> bool:
    """``ip link delete ifname``; False if it was already gone."""
    link = _get(ns, ifname)
    if link is None:
        return False
    codes = _rtnl.transact(ns, f"deleting {ifname!r}", [_fl.dellink(link["index"])], ok=(errno.ENODEV,))
    return codes[0] == 0


# ---- a verb's check and its change in one call ------------------------------------------
# ``Lab`` reads the links a verb names, checks them, then changes them. Rootless, each
# call is a round trip to the helper: these read and change in one call, change only
# when the reading allows it (else nothing), and return what they read, from which the
# caller tells what was done or says what was wrong. ``owner``: only links carrying that
# alias may change (a root-host lab changes only its own links in the root namespace).

def _owned(link: dict, owner: str | None) -> bool:
    return owner is None or link.get("alias") == owner


def links_up_named(ns, ifnames: list[str], owner: str | None = None) -> tuple[list, bool]:
    """``ip link set IFNAME up`` for each named link that is down, in one request batch.

    Returns (the links as they were, None for a missing name; whether it changed them).
    Nothing changes if a name is missing or a link to bring up is not ``owner``'s.
    """
    links = links_get(ns, ifnames)
    down = [l for l in links if l is not None and not l["admin_up"]]
    if None in links or not down or not all(_owned(l, owner) for l in down):
        return links, False
    links_up(ns, [l["index"] for l in down])
    return links, True


def enslave(ns, ifname: str, bridge: str, owner: str | None = None) -> tuple[list, bool]:
    """``ip link set IFNAME master BRIDGE``, if both exist, BRIDGE is a bridge, IFNAME is
    neither a bridge nor ``lo`` nor already its port, and (with ``owner``) is ``owner``'s.

    Returns ([link, bridge] as they were, None for a missing name; whether it changed them).
    """
    link, br = links = links_get(ns, [ifname, bridge])
    if (link is None or br is None or br["kind"] != "bridge" or link["kind"] in ("bridge", "loopback")
            or link.get("master") == br["index"] or not _owned(link, owner)):
        return links, False
    link_set(ns, ifname, master=bridge, index=link["index"], master_index=br["index"])
    return links, True


def addr_add_named(ns, ifname: str, address: str, prefixlen: int,
                   owner: str | None = None) -> tuple[dict | None, bool | None]:
    """``ip addr add address/prefixlen dev ifname`` if the link exists (and is ``owner``'s).

    Returns (the link, None if missing; True if added, False if already there, None if not tried).
    """
    link = links_get(ns, [ifname])[0]
    if link is None or not _owned(link, owner):
        return link, None
    return link, addr_add(ns, ifname, address, prefixlen, index=link["index"])


# ---- addresses and routes ----------------------------------------------------------

def addr_add(ns, ifname: str, address: str, prefixlen: int, index: int | None = None) -> bool:
    """``ip addr add address/prefixlen dev ifname``; False if it was already there."""
    req = _fl.addr(True, index or _index(ns, ifname), address, prefixlen)
    return _rtnl.transact(ns, f"adding {address}/{prefixlen} to {ifname!r}", [req], ok=(errno.EEXIST,))[0] == 0


def route_add(ns, dst: str, via: str | None = None, dev: str | None = None) -> bool:
    """``ip route add dst [via G] [dev D]``; False if that exact route was already there."""
    req = _fl.route(True, dst, via=via, oif=_index(ns, dev) if dev else None)
    hint = (f"the gateway {via} must be on a subnet of an address of this namespace "
            "(add that address first)") if via else ""
    return _rtnl.transact(ns, f"adding route {dst} in {_rtnl.where(ns)}", [req], ok=(errno.EEXIST,),
                          hint=hint)[0] == 0


RT_SCOPE_NOWHERE = 255  # in a delete: "any scope", as `ip route del` sends it


def route_delete(ns, dst: str, via: str | None = None, dev: str | None = None) -> bool:
    """``ip route del dst [via G] [dev D]``; False if no such route was there.

    The request says scope "nowhere" (any), as ``ip`` does: with scope
    universe the kernel matches no on-link route (``dev`` only, scope link)
    and answers ESRCH, as if it were already gone.
    """
    oif = None
    if dev is not None:
        link = _get(ns, dev)
        if link is None:
            return False  # the interface is gone, and its routes with it
        oif = link["index"]
    kind, flags, body = _fl.route(False, dst, via=via, oif=oif)
    body = body[:6] + bytes([RT_SCOPE_NOWHERE]) + body[7:]  # rtmsg.rtm_scope
    return _rtnl.transact(ns, f"deleting route {dst}", [(kind, flags, body)],
                          ok=(errno.ESRCH, errno.ENOENT, errno.ENODEV))[0] == 0


# ---- reading everything -------------------------------------------------------------

def dump(ns) -> dict:
    """Links, addresses and routes of one namespace, as plain dicts."""
    sock = _rtnl.fast(ns)
    try:
        return {"links": sock.links(), "addrs": sock.addrs(), "routes": sock.routes()}
    except _fl.NetlinkError as exc:
        raise _rtnl.translate(exc, f"reading {_rtnl.where(ns)}") from None


def nsids(ns, others: list) -> dict:
    """{nsid: other} for each namespace in ``others`` that ``ns`` knows by an id.

    Empty if ``ns`` itself is gone meanwhile (a process namespace whose process ended).
    """
    if not netns_exists(ns):
        return {}
    sock = _rtnl.fast(ns)
    out = {}
    for other in others:
        if other == ns or not _netns.exists(other):
            continue
        fd = _netns.open_fd(other)
        try:
            i = sock.nsid(fd)
        except _fl.NetlinkError:
            i = None
        finally:
            os.close(fd)
        if i is not None:
            out[i] = other
    return out


# ---- nftables ---------------------------------------------------------------------

def nft(ns, script: str) -> None:
    """``nft -f -`` inside ``ns``: one atomic transaction; its error text if refused."""
    from netteach.kernel.procs import require_tool

    require_tool("nft", "nftables")
    rc, out, err = run(ns, ["nft", "-f", "-"], input=script)
    if rc != 0:
        raise errors.KernelError(f"nft refused the rules: {err.strip() or out.strip()}")


# ---- files of the lab machine (/etc/netns/<ns>/..., /run/netteach/...) ------------------------

OWNED_DIRS = ("/etc/netns/", "/run/netteach/")


def write_file(path: str, text: str) -> bool:
    """Write a file under /etc/netns/ or /run/netteach/ (making its directory).

    False if it already said that (a re-run cell). Rootless, the helper writes it:
    these directories are private to it.
    """
    if not os.path.normpath(path).startswith(OWNED_DIRS):
        raise errors.InvalidName(f"{path!r}: netteach only writes under /etc/netns/ and /run/netteach/")
    try:
        with open(path) as f:
            if f.read() == text:
                return False  # a re-run cell
    except FileNotFoundError:
        try:
            _make_dirs(os.path.dirname(path))
        except OSError as exc:
            raise errors.PermissionDenied(
                f"cannot make {os.path.dirname(path)!r}: {exc.strerror} - create /etc/netns once with "
                "`sudo mkdir -p /etc/netns` (ip netns exec reads a namespace's files from there)") from None
    # 0644 whatever the umask: everyone reads a container's hosts/resolv.conf, only root changes them
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with open(fd, "w") as f:
        os.fchmod(fd, 0o644)
        f.write(text)
    return True


def _make_dirs(d: str) -> None:
    """``mkdir -p`` with mode 0755 for each directory it makes, whatever the umask."""
    if os.path.isdir(d):
        return
    _make_dirs(os.path.dirname(d))
    try:
        os.mkdir(d, 0o755)
    except FileExistsError:
        return
    os.chmod(d, 0o755)  # mkdir's mode is masked by the umask


def remove_path(path: str) -> None:
    """Remove a file or directory under /etc/netns/ or /run/netteach/ (and /etc/netns itself once empty)."""
    import contextlib
    import shutil

    path = os.path.normpath(path)
    if not path.startswith(OWNED_DIRS):
        return  # only places netteach writes to
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    with contextlib.suppress(OSError):  # /etc/netns itself, once empty, as before netteach
        os.rmdir(os.path.dirname(path))


def firewall_state(spaces: list) -> list[dict]:
    """Each namespace's ``nft -j list ruleset`` and forwarding sysctls (see :mod:`.nftables`)."""
    from netteach.kernel import nftables

    return nftables.state_many(spaces)


# ---- one traced packet (see :mod:`.nftrace`) -------------------------------------------------

def trace_packet(src, spaces: dict, dst: str, proto: str = "icmp", port: int | None = None) -> dict:
    """Send one packet from ``spaces[src]`` and collect the kernel's nftables trace events in each namespace."""
    from netteach.kernel import nftrace

    return nftrace.trace(src, spaces, dst, proto, port)


def trace_rulesets(spaces: dict) -> dict:
    """{label: ``nft -a list ruleset``} of each namespace (rule texts by the handles trace events name)."""
    from netteach.kernel import nftrace

    return nftrace.rulesets(spaces)


def route_get(jobs: list[dict]) -> list[dict]:
    """The kernel's route for each {ns, dst, src?, iif?} (``ip -j route get``)."""
    from netteach.kernel import nftrace

    return nftrace.route_get(jobs)


def bridge_fdb(ns, bridge: str) -> list[dict]:
    """``bridge -j fdb show br BRIDGE`` inside ``ns``."""
    from netteach.kernel import nftrace

    return nftrace.fdb(ns, bridge)


def conntrack_entries(ns, proto: str, ident: int) -> list[dict] | None:
    """Conntrack entries of a traced packet (by source port or ICMP id); None without the tool."""
    from netteach.kernel import nftrace

    return nftrace.conntrack(ns, proto, ident)


def listeners(ns, proto: str, port: int) -> list[str]:
    """Programs listening on ``proto`` ``port`` inside ``ns``."""
    from netteach.kernel import nftrace

    return nftrace.listeners(ns, proto, port)


def nft_list(ns, what: str = "ruleset") -> str:
    """``nft list ruleset`` (or ``"chain ip filter FORWARD"``, ``"table ip nat"``) inside ``ns``."""
    from netteach.kernel.procs import require_tool

    require_tool("nft", "nftables")
    rc, out, err = run(ns, ["nft", "list", *what.split()])
    if rc != 0:
        text = f"nft list {what} in {_rtnl.where(ns)}: {err.strip() or out.strip()}"
        if "No such file or directory" in err:  # what nft says of a table or chain that is not there
            raise errors.NoSuchChain(text + " - `nft list tables` shows what exists")
        raise errors.KernelError(text)
    return out


def iptables_legacy_save(ns) -> str:
    """``iptables-legacy-save`` inside ``ns`` (the rules of the old x_tables backend); "" if the tool is missing."""
    import shutil

    if not shutil.which("iptables-legacy-save"):
        return ""
    # only where legacy tables exist: listing them must not load the x_tables modules
    rc, out, err = run(ns, ["sh", "-c", "grep -q . /proc/net/ip_tables_names && exec iptables-legacy-save"])
    return out if rc == 0 else ""


# ---- probes ---------------------------------------------------------------------------------

def reach_many(echoes: list, tcp: list, timeout: float = 1.0, tcp_timeout: float = 2.0,
               flush: list | None = None) -> tuple[list[bool], list[dict]]:
    """ICMP echoes ``(ns, address)`` and TCP requests ``(ns, address, port, payload)`` in one sweep that
    keeps the machine's neighbour table from overflowing (:mod:`.reach`)."""
    from netteach.kernel import reach

    return reach.sweep([(ns, str(a)) for ns, a in echoes], [(ns, str(a), int(p), d) for ns, a, p, d in tcp],
                       timeout=timeout, tcp_timeout=tcp_timeout, flush=flush)


# ---- rootless: while this process uses a helper, every function above runs there --------------
# (keep this last: functions defined below it would not be forwarded)
from netteach.kernel import helper as _helper  # noqa: E402
from netteach.kernel.helper import local_path  # noqa: E402,F401

_helper.install(globals())
