"""Who owns which kernel objects: taking a lab, tearing it down, listing and cleaning up labs.

A lab's objects carry its marker (``netteach lab=NAME`` as the alias of each
namespace's ``lo`` and of each link it makes in the root namespace; the
environment variable ``NETTEACH_LAB=NAME`` in each process it starts) and are
listed in its state file (:mod:`netteach.state`), written before they are
made. Teardown and cleanup remove only what carries the marker: a namespace
without it is never ours, whatever its name.

>>> marker("ch2"), kernel_netns_name("ch2", "c1")
('netteach lab=ch2', 'nt-ch2.c1')

Taking a lab (:func:`claim`): if its state file names a live owner in another
process, ``LabInUse``; if the owner died (a killed Jupyter kernel), this
process takes it over as it is in the kernel; re-running cells converges.

Root-mode sysctls: each root lab records the value it needs and the
machine's original value; the original is restored only when the last lab
that needs the key is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading

from netteach import errors, kernel, state

MARK_PREFIX = "netteach lab="
ALLOWED_ROOTS = ("/etc/netns/", state.STATE_DIR.rstrip("/") + "/")

_registry: dict = {}  # lab name -> the Lab object of this process
_registry_lock = threading.RLock()


def marker(lab: str) -> str:
    return f"{MARK_PREFIX}{lab}"


def kernel_netns_name(lab: str, name: str) -> str:
    """The name ``ip netns`` shows for namespace ``name`` of lab ``lab``.

    >>> kernel_netns_name("ch2", "my-container")
    'nt-ch2.my-container'
    """
    return f"nt-{lab}.{name}"


def me() -> tuple[int, int | None]:
    return os.getpid(), kernel.start_time(os.getpid())


def claim(name: str, host: str, notes: list) -> state.LabState:
    """Take lab ``name`` for this process (new, ours, or taken over); returns its state.

    Appends a note to ``notes`` when it takes the lab over from a dead owner.
    """
    pid, start = me()
    with state.locked():
        st = state.read(name)
        if isinstance(st, Exception):
            raise errors.Conflict(f"lab {name!r} has a state file that cannot be read ({st}); remove the "
                                  "lab with nt.cleanup() (it finds the lab's objects by their marker)")
        if st is not None:
            if kernel.alive(st.owner_pid, st.owner_start) and st.owner_pid != pid:
                raise errors.LabInUse(
                    f"lab {name!r} belongs to another running process (pid {st.owner_pid}, "
                    "perhaps another notebook). Use another lab name, or stop that process "
                    "and run nt.cleanup()")
            if st.host != host:
                raise errors.Conflict(
                    f"lab {name!r} exists with host={st.host!r}; remove it with "
                    f"nt.cleanup(all=True) or use host={st.host!r}")
            if st.owner_pid != pid:
                notes.append(f"# took over lab {name!r} from pid {st.owner_pid}, which is gone")
            st.owner_pid, st.owner_start = pid, start
        else:
            st = state.LabState(name=name, host=host, owner_pid=pid, owner_start=start)
        state.save(st)
    register_atexit()
    return st


# ---- root-mode sysctls, shared between labs ------------------------------------------------

def _root_sysctl_records(key: str, but: str) -> list:
    """[ns, key, original, ...] records of ``key`` in the root namespace held by other labs."""
    out = []
    for other in state.all_names():
        if other == but:
            continue
        st = state.load(other)
        if st is not None:
            out += [r for r in st.sysctls if r[0] is None and r[1] == key]
    return out


def need_root_sysctl(st: state.LabState, key: str, current: str) -> None:
    """Record that lab ``st`` needs root sysctl ``key``; the machine's original value is kept once."""
    if any(r[0] is None and r[1] == key for r in st.sysctls):
        return
    with state.locked():
        others = _root_sysctl_records(key, st.name)
        original = others[0][2] if others else current  # another lab changed it first: its original
        st.sysctls.append([None, key, original])
        state.save(st)


def _restore_sysctl(st: state.LabState, ns, key: str, old) -> None:
    if ns is None and _root_sysctl_records(key, st.name):
        return  # another lab still needs the value: the last one restores the original
    with contextlib.suppress(errors.NetteachError, OSError):
        kernel.sysctl_set(ns, key, old)


# ---- teardown -----------------------------------------------------------------------------

def allowed_path(path: str, lab: str) -> str | None:
    """``path`` normalised, if a lab may own it: under ``/etc/netns/nt-LAB.*`` or the state directory.

    Symlinks, ``..`` and the state directory's own files (state files, the lock) are refused.

    >>> allowed_path("/etc/netns/nt-ch2.c1", "ch2")
    '/etc/netns/nt-ch2.c1'
    >>> allowed_path("/etc/netns/../../x", "ch2") is None, allowed_path("/etc/netns/nt-other.c1", "ch2") is None
    (True, True)
    """
    if not isinstance(path, str) or "\0" in path or not path.startswith("/"):
        return None
    norm = os.path.normpath(path)
    if norm != path.rstrip("/") and norm != path:
        return None  # '..', '//' or '.' in it: not a path netteach wrote
    etc = f"/etc/netns/{kernel_netns_name(lab, '')}"
    run = ALLOWED_ROOTS[1]
    if norm.startswith(etc):
        pass
    elif norm.startswith(run) and len(norm) > len(run):
        top = norm[len(run):].split("/", 1)[0]
        if top.endswith((".json", ".tmp")) or top.startswith("."):
            return None  # the state files and the lock are not a lab's to remove
    else:
        return None
    with contextlib.suppress(OSError):
        if os.path.realpath(norm) != norm:
            return None  # through a symlink: it could point anywhere
    return norm


def remove_path(path: str, lab: str) -> None:
    norm = allowed_path(path, lab)
    if norm is None:
        return  # only places netteach writes to, for this lab
    kernel.remove_path(norm)  # (in the helper's file system when rootless)


def kill_processes(name: str, procs: list, netns: list | None = None) -> None:
    """Stop the lab's processes: those recorded, and any other carrying its marker inside one of
    the lab's namespaces (a lab of the same name elsewhere - another sandbox, a rootless helper's
    private /run - is not this one)."""
    for p in reversed(procs):
        if p.get("pid"):
            kernel.kill(p["pid"], p.get("start"))
    inodes = {kernel.netns_inode(k) for k in (netns or [])} - {None}
    for pid, start in kernel.marked(name):
        try:
            ino = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            continue
        if ino in inodes:
            kernel.kill(pid, start)


def teardown(st: state.LabState) -> None:
    """Remove what state ``st`` lists, checking markers; then its state file. Caller holds the lock."""
    mark = marker(st.name)
    kill_processes(st.name, st.procs, st.netns)
    for r in reversed(st.routes):
        ns, dst, via = r[:3]
        dev = r[3] if len(r) > 3 else None
        with contextlib.suppress(errors.NetteachError):
            kernel.route_delete(ns, dst, via=via, dev=dev)
    for ns, ifname in reversed(st.links):
        link = kernel.link_get(ns, ifname) if kernel.netns_exists(ns) else None
        if link is not None and link.get("alias") == mark:
            kernel.link_delete(ns, ifname)
    for ns, key, old in reversed(st.sysctls):
        _restore_sysctl(st, ns, key, old)
    for kns in reversed(st.netns):
        if not kernel.netns_exists(kns):
            kernel.netns_delete(kns)  # at most an empty file left by a half-made namespace
        elif (kernel.link_get(kns, "lo") or {}).get("alias") == mark:
            kernel.netns_delete(kns)  # unmarked means not ours: leave it
    for path in reversed(st.files):
        remove_path(path, st.name)
    state.remove(st.name)


# ---- listing and cleanup --------------------------------------------------------------------

class LabInfo(tuple):
    """One row of :func:`labs`: (name, host, owner_pid, alive, namespaces)."""

    __slots__ = ()

    def __new__(cls, name, host, owner_pid, alive, namespaces):
        return super().__new__(cls, (name, host, owner_pid, alive, namespaces))

    name = property(lambda s: s[0])
    host = property(lambda s: s[1])
    owner_pid = property(lambda s: s[2])
    alive = property(lambda s: s[3])
    namespaces = property(lambda s: s[4])

    def __repr__(self):
        who = "state unreadable" if self.owner_pid is None else \
            f"pid {self.owner_pid} " + ("alive" if self.alive else "gone")
        return f"<Lab {self.name} host={self.host} owner {who}: {len(self.namespaces)} netns>"


class LabList(list):
    def __repr__(self):
        if not self:
            return "no netteach labs on this machine"
        rows = [f"{'lab':<16} {'host':<9} {'owner pid':>9}  {'owner':<6} namespaces"]
        for i in self:
            owner = "?" if i.owner_pid is None else ("alive" if i.alive else "gone")
            rows.append(f"{i.name:<16} {i.host:<9} {str(i.owner_pid or '?'):>9}  {owner:<6} "
                        f"{' '.join(i.namespaces)}")
        return "\n".join(rows)

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


def _marked_netns(lab: str) -> list[str]:
    """Kernel names of the namespaces whose ``lo`` carries lab's marker."""
    prefix, mark = kernel_netns_name(lab, ""), marker(lab)
    return [k for k in kernel.netns_list()
            if k.startswith(prefix) and (kernel.link_get(k, "lo") or {}).get("alias") == mark]


def labs() -> LabList:
    """The netteach labs on this machine, with their owner pid and whether it is alive.

    A lab whose state file cannot be read is listed too (owner ``?``), with the
    namespaces that carry its marker: ``nt.cleanup()`` removes it.
    """
    out = LabList()
    for name in state.all_names():
        st = state.read(name)
        prefix = kernel_netns_name(name, "")
        if isinstance(st, Exception):
            out.append(LabInfo(name, "?", None, False, [k[len(prefix):] for k in _marked_netns(name)]))
        elif st is not None:
            out.append(LabInfo(st.name, st.host, st.owner_pid, kernel.alive(st.owner_pid, st.owner_start),
                               [n[len(prefix):] for n in st.netns]))
    return out


def _forget_here(name: str):
    """The lab object of this process, if any, is destroyed (its objects are gone)."""
    with _registry_lock:
        lab = _registry.pop(name, None)
    if lab is not None:
        lab._destroyed = True


def _unreadable_state(name: str) -> state.LabState:
    """What a lab whose state file is torn owns, found by markers: namespaces, links, files."""
    st = state.LabState(name=name, host="?", owner_pid=0, owner_start=None)
    st.netns = _marked_netns(name)
    mark = marker(name)
    st.links = [[None, l["ifname"]] for l in kernel.dump(None)["links"] if l.get("alias") == mark]
    st.files = [os.path.join("/etc/netns", k) for k in st.netns]
    with contextlib.suppress(FileNotFoundError):  # its processes' logs
        st.files += [os.path.join(state.STATE_DIR, n) for n in os.listdir(state.state_dir())
                     if n.startswith(f"{name}.") and n.endswith(".log")]
    return st


def cleanup(all: bool = False) -> list[str]:
    """Remove labs whose owner process is gone (or every lab with ``all=True``).

    Only objects netteach marked as its own are removed: namespaces listed in a
    lab's state file or whose ``lo`` carries the ``netteach lab=NAME`` alias,
    root-namespace links with that alias, and processes whose environment has
    ``NETTEACH_LAB=NAME``. A lab whose state file cannot be read has no owner
    that could be checked: it is removed by its markers. Returns the names removed.
    """
    from netteach.kernel import helper
    from netteach.kernel.features import capabilities

    caps = capabilities()
    if helper.current() is None and not (caps["net_admin"] and caps["sys_admin"]):
        raise errors.PermissionDenied(
            "removing the machine's netteach labs needs root (`sudo netteach cleanup`); rootless labs "
            "never need it: they vanish with the notebook kernel that made them")
    removed = []
    with state.locked():
        for name in state.all_names():
            st = state.read(name)
            if st is None:
                continue
            if isinstance(st, Exception):
                st = _unreadable_state(name)
            elif not all and kernel.alive(st.owner_pid, st.owner_start):
                continue
            if st.owner_pid == os.getpid() or st.owner_pid == 0:
                _forget_here(name)
            teardown(st)
            removed.append(name)
        live = set(state.all_names())
        # orphans with no state file (it was lost): marked namespaces, root links, processes
        for kns in kernel.netns_list():
            if not kns.startswith("nt-"):
                continue
            alias = (kernel.link_get(kns, "lo") or {}).get("alias") or ""
            if alias.startswith(MARK_PREFIX):
                lab_name = alias[len(MARK_PREFIX):]
                if lab_name not in live and kns.startswith(kernel_netns_name(lab_name, "")):
                    kill_processes(lab_name, [], [kns])
                    kernel.netns_delete(kns)
                    remove_path(os.path.join("/etc/netns", kns), lab_name)
                    removed.append(lab_name)
        for link in kernel.dump(None)["links"]:
            alias = link.get("alias") or ""
            if alias.startswith(MARK_PREFIX) and alias[len(MARK_PREFIX):] not in live:
                kernel.link_delete(None, link["ifname"])
                removed.append(alias[len(MARK_PREFIX):])
        _remove_stale_temp_files()
    return sorted(set(removed))


def _remove_stale_temp_files():
    """Temporary state files of writers that died before renaming them."""
    with contextlib.suppress(FileNotFoundError):
        for n in os.listdir(state.state_dir()):
            if n.startswith(".") and n.endswith(".tmp"):
                parts = n.split(".")
                if len(parts) >= 4 and parts[-3].isdigit() and not kernel.alive(int(parts[-3]), None):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(state.state_dir(), n))


# ---- at interpreter exit -----------------------------------------------------------------------

_atexit_done = False


def register_atexit():
    global _atexit_done
    if not _atexit_done:
        atexit.register(destroy_all)
        _atexit_done = True


def destroy_all():
    """At interpreter exit (a Jupyter kernel shut down or restarted): remove this process's labs."""
    for lab in list(_registry.values()):
        with contextlib.suppress(Exception):
            lab.destroy()
