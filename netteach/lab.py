"""``Lab``: a set of real namespaces and links that netteach owns, one verb per ``ip`` command.

>>> import netteach as nt
>>> with nt.Lab("doc-lab") as lab:
...     lab.add_netns("my-container")             # ip netns add ...
...     lab.add_veth("veth0", "veth1")            # ip link add veth0 type veth peer name veth1
...     lab.set_netns("veth1", "my-container")    # ip link set veth1 netns ...
...     lab.add_addr("my-container", "veth1", "10.0.0.2/24")
...     lab.add_addr("host", "veth0", "10.0.0.1/24")
...     lab.set_up("my-container", "veth1"); lab.set_up("host", "veth0")
...     bool(lab.ping("my-container", "10.0.0.1"))
True

By default the lab's "host" is a namespace of its own (``host="isolated"``),
so nothing on the machine itself changes. ``host="root"`` makes the machine's
root namespace the lab's host: netteach then only adds objects it marks as
its own (``ip link`` shows ``alias netteach lab=NAME``) and restores the
sysctls it changed.

Every verb is idempotent: re-running a cell converges to the same state;
asking for something that contradicts what exists raises ``Conflict``.

Ownership: ``/run/netteach/<lab>.json`` lists what the lab made (written
before it is made) and the process that owns it. ``Lab(name)`` again in the
same process returns the same lab; if the owner died (a killed or restarted
Jupyter kernel), the new process *takes the lab over* as it is in the kernel
(re-run your cells to converge, or ``destroy()`` it); if the owner is alive
elsewhere (a second notebook), it raises ``LabInUse`` naming that pid.

Introduced in notebooks/00_start_here.ipynb.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import threading

from netteach import errors, kernel, names, probe, state
from netteach.kernel import helper

HOST = "host"
#: set in every namespace a lab makes (see ``Lab._fresh_sysctls``)
FRESH_SYSCTLS = {"net.ipv4.ip_forward": 0, "net.ipv4.conf.all.forwarding": 0}
_registry: dict[str, "Lab"] = {}
_registry_lock = threading.RLock()


def _marker(lab: str) -> str:
    return f"netteach lab={lab}"


def kernel_netns_name(lab: str, name: str) -> str:
    """The name ``ip netns`` shows for namespace ``name`` of lab ``lab``.

    >>> kernel_netns_name("ch2", "my-container")
    'nt-ch2.my-container'
    """
    return f"nt-{lab}.{name}"


def _me() -> tuple[int, int | None]:
    return os.getpid(), kernel.start_time(os.getpid())


def _random_mac() -> str:
    """A random locally administered unicast MAC (02:...)."""
    import secrets

    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


def _port(port) -> int:
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise errors.InvalidAddress(f"port {port!r} is not a TCP port number (1-65535)")
    return port


class _Text(str):
    """A string that a notebook shows as plain lines, not as a quoted repr."""

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


class Commands(list):
    """The ``ip``/``nft`` commands equivalent to what the lab did, in order.

    Printed as a shell script you can paste into a root terminal.
    """

    def __str__(self):
        return "\n".join(self)

    def __repr__(self):
        return "\n".join(self) if self else "# (no commands yet)"

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


class Lab:
    """A network lab: real namespaces, links and routes that netteach owns and cleans up.

    ``Lab("ch2")`` creates the lab, or returns it if this process already has
    it. See the module docstring for ownership and host modes.
    """

    def __new__(cls, name: str, host: str = "isolated", mode: str | None = None):
        names.lab(name)
        with _registry_lock:
            lab = _registry.get(name)
            if lab is not None and not lab._destroyed:
                if type(lab) is not cls:
                    raise errors.Conflict(
                        f"lab {name!r} already exists here as a {type(lab).__name__}; destroy it first "
                        f"or use another name for the {cls.__name__}")
                if lab.host != host:
                    raise errors.Conflict(
                        f"lab {name!r} already exists here with host={lab.host!r}; "
                        f"destroy it first (lab.destroy()) to rebuild it with host={host!r}")
                if mode is not None and lab.mode != mode:
                    raise errors.Conflict(
                        f"lab {name!r} already exists here in {lab.mode} mode; destroy it first "
                        f"(lab.destroy()) to rebuild it with mode={mode!r}")
                lab._reattached = True
                return lab
            return super().__new__(cls)

    def __init__(self, name: str, host: str = "isolated", mode: str | None = None):
        if getattr(self, "_reattached", False):
            return
        if host not in ("isolated", "root"):
            raise errors.InvalidName(f"host={host!r}: use 'isolated' (default, a namespace of the "
                                     "lab's own) or 'root' (the machine's own namespace)")
        self.name = name
        self.host = host
        self.commands = Commands()
        self._destroyed = False
        self._gone = False
        self._reattached = False
        self._marker = _marker(name)
        self.mode = _choose_mode(mode)
        if self.mode == "rootless":
            self.commands.append("# rootless: these commands run inside the lab's helper process "
                                 f"(open a shell there with `netteach shell {name}`)")
        try:
            self._acquire()
        except BaseException:
            _release_helper()
            raise
        with _registry_lock:
            _registry[name] = self

    # ---- ownership -------------------------------------------------------------------

    def _acquire(self):
        pid, start = _me()
        with state.locked():
            st = state.load(self.name)
            if st is not None:
                owner_alive = kernel.alive(st.owner_pid, st.owner_start)
                if owner_alive and st.owner_pid != pid:
                    raise errors.LabInUse(
                        f"lab {self.name!r} belongs to another running process (pid {st.owner_pid}, "
                        "perhaps another notebook). Use another lab name, or stop that process "
                        f"and run nt.cleanup()")
                if st.host != self.host:
                    raise errors.Conflict(
                        f"lab {self.name!r} exists with host={st.host!r}; remove it with "
                        f"nt.cleanup(all=True) or use host={st.host!r}")
                if st.owner_pid != pid:
                    self.commands.append(f"# took over lab {self.name!r} from pid {st.owner_pid}, "
                                         "which is gone")
                st.owner_pid, st.owner_start = pid, start
            else:
                st = state.LabState(name=self.name, host=self.host, owner_pid=pid, owner_start=start)
            self._st = st
            state.save(st)
        _register_atexit()
        if self.host == "isolated":
            try:
                self._ensure_netns(HOST)
            except BaseException:
                if self._st.netns == [self.kernel_name(HOST)]:  # a new lab: leave nothing behind
                    with state.locked():
                        teardown(self._st)
                raise

    def _save(self):
        state.save(self._st)

    def _alive(self):
        if self._gone:
            raise errors.HelperGone(helper.GONE)
        if self._destroyed:
            raise errors.NetteachError(f"lab {self.name!r} was destroyed; create it again with "
                                       f"nt.Lab({self.name!r})")

    # ---- names ---------------------------------------------------------------------------

    def kernel_name(self, netns: str):
        """What the kernel calls a lab namespace (None = the machine's root namespace)."""
        if netns == HOST and self.host == "root":
            return None
        return kernel_netns_name(self.name, netns)

    @property
    def namespaces(self) -> list[str]:
        """The lab-level names of this lab's namespaces, "host" first."""
        prefix = kernel_netns_name(self.name, "")
        out = [n[len(prefix):] for n in self._st.netns]
        if self.host == "root":
            out.insert(0, HOST)
        return out

    def _notes(self) -> dict:
        """{namespace: note} shown in snapshots and pictures (DockerHost names its containers)."""
        return {}

    def _ns(self, netns: str, must_exist: bool = True):
        """Check a lab-level namespace name and return its kernel name."""
        self._alive()
        names.netns(netns)
        kns = self.kernel_name(netns)
        if must_exist and kns is not None and (kns not in self._st.netns or not kernel.netns_exists(kns)):
            others = ", ".join(repr(n) for n in self.namespaces) or "none"
            raise errors.NoSuchNamespace(
                f"no namespace {netns!r} in lab {self.name!r} (it has: {others}) - "
                f"create it with lab.add_netns({netns!r})")
        return kns

    def _ip(self, kns, args: str) -> str:
        return f"ip {args}" if kns is None else f"ip -n {kns} {args}"

    def _log(self, cmd: str):
        self.commands.append(cmd)

    def _link(self, netns: str, kns, ifname: str) -> dict:
        return self._links(netns, kns, ifname)[0]

    def _links(self, netns: str, kns, *ifnames: str) -> list[dict]:
        """The named links of a namespace, asked in one go; NoSuchInterface names what is there."""
        for ifname in ifnames:
            names.ifname(ifname)
        links = kernel.links_get(kns, list(ifnames))
        for ifname, link in zip(ifnames, links):
            if link is None:
                here = [l["ifname"] for l in kernel.dump(kns)["links"]]
                raise errors.NoSuchInterface(
                    f"no interface {ifname!r} in namespace {netns!r} (it has: {', '.join(here)})")
        return links

    def _owned_in_root(self, kns, link: dict, ifname: str, verb: str):
        """In host='root' mode, only change links this lab made (never the machine's own)."""
        if kns is None and link.get("alias") != self._marker:
            raise errors.Conflict(
                f"{ifname!r} in the root namespace does not belong to lab {self.name!r}; netteach "
                f"will not {verb} the machine's own interfaces - use an interface the lab made")

    # ---- namespaces ------------------------------------------------------------------------

    def _claim_netns(self, netns: str):
        """Record a namespace as the lab's (not yet saved); Conflict if one of that name is not ours."""
        kns = self.kernel_name(netns)
        if kns in self._st.netns:
            return kns
        if kernel.netns_exists(kns):
            lo = kernel.link_get(kns, "lo") or {}
            if lo.get("alias") != self._marker:
                raise errors.Conflict(
                    f"a namespace {kns!r} exists that lab {self.name!r} did not make; "
                    f"netteach leaves it alone - remove it (`ip netns del {kns}`) or pick another name")
        self._st.netns.append(kns)
        return kns

    def _ensure_netns(self, netns: str) -> bool:
        """Make the namespace unless it exists; the state file records it first."""
        kns = self.kernel_name(netns)
        if kns in self._st.netns and kernel.netns_exists(kns):
            return False
        if kns not in self._st.netns:
            self._claim_netns(netns)
            self._save()
        try:
            kernel.netns_add(kns, alias=self._marker)
        except BaseException:
            if not kernel.netns_exists(kns):  # roll back the intent
                self._st.netns.remove(kns)
                self._save()
            raise
        self._log(f"ip netns add {kns}")
        self._fresh_sysctls(kns)
        return True

    def _fresh_sysctls(self, kns):
        """Forwarding off in a namespace the lab just made, as on a machine that just booted.

        The kernel does not start a new namespace from its defaults: it copies
        the initial namespace's IPv4 settings (unless ``net.core.devconf_inherit_init_net``
        says otherwise), so on a machine running Docker a new namespace would
        already forward. Lessons must not depend on the machine they run on.
        """
        kernel.sysctls_set(kns, FRESH_SYSCTLS)
        self._log(f"ip netns exec {kns} sysctl -qw "
                  + " ".join(f"{k}={v}" for k, v in FRESH_SYSCTLS.items()))

    def add_netns(self, netns: str) -> None:
        """``ip netns add NAME``: a new network namespace, with only ``lo`` (DOWN)."""
        self._alive()
        names.netns(netns)
        if netns == HOST:
            return  # the lab's host always exists
        self._ensure_netns(netns)

    # ---- links -------------------------------------------------------------------------------

    def _peer_name(self, kns, link: dict, expect=None):
        """(kernel ns, ifname) of the other end of veth ``link`` found in ``kns``.

        ``expect`` is the namespace the peer is probably in: asked first, so
        the usual case costs one request instead of one per lab namespace.
        """
        if link.get("kind") != "veth" or not link.get("link"):
            return None
        where = kns
        nsid = link.get("link_netnsid")
        if nsid is not None:  # the peer is in another namespace: which one?
            where = kernel.nsids(kns, [expect]).get(nsid) if expect != kns else None
            if where is None:
                candidates = [self.kernel_name(n) for n in self.namespaces] + [None]
                where = kernel.nsids(kns, candidates).get(nsid, "?")
            if where == "?":
                return "?", "?"  # outside this lab
        peer = kernel.link_by_index(where, link["link"])
        return (where, peer["ifname"]) if peer else None

    def _find_veth_pair(self, kns, name: str, peer: str, pkns) -> bool:
        """Does the pair name<->peer already exist (a re-run cell)?

        Looks where the ends would be made (``kns``, ``pkns``); a name taken
        there by something else is a Conflict. A pair the lab made whose two
        ends were both moved away is found through the lab's record of pairs.
        """
        for where, ifname, other, expect in ((kns, name, peer, pkns), (pkns, peer, name, kns)):
            link = kernel.link_get(where, ifname)
            if link is None:
                continue
            found = self._peer_name(where, link, expect)
            if found is not None and found[1] == other:
                return True
            netns = self._label(where)
            what = f"its peer is {found[1]!r}" if found else f"it is a {link['kind']}"
            raise errors.Conflict(
                f"{ifname!r} already exists in namespace {netns!r} but {what}, not {other!r}; "
                f"delete it first (lab.delete_link({netns!r}, {ifname!r})) or pick other names")
        if [name, peer] in self._st.extra.get("veths", []):
            for n in self.namespaces:
                where = self.kernel_name(n)
                link = kernel.link_get(where, name)
                found = link and self._peer_name(where, link)
                if found and found[1] == peer:
                    return True
        return False

    def _label(self, kns) -> str:
        for n in self.namespaces:
            if self.kernel_name(n) == kns:
                return n
        return str(kns)

    def add_veth(self, name: str, peer: str, netns: str = HOST, peer_netns: str | None = None) -> None:
        """``ip link add NAME type veth peer name PEER``: a virtual cable, both ends in ``netns``.

        Move one end elsewhere with :meth:`set_netns`, or make it there at once
        with ``peer_netns=`` (``... peer name PEER netns PEER_NETNS``).
        """
        names.ifname(name)
        names.ifname(peer)
        kns = self._ns(netns)
        pkns = kns if peer_netns is None else self._ns(peer_netns)
        if name == peer and pkns == kns:
            raise errors.InvalidName(f"the two ends of a veth pair need different names, not {name!r} twice")
        recorded = [name, peer] in self._st.extra.get("veths", [])
        if recorded and self._find_veth_pair(kns, name, peer, pkns):
            return
        if not recorded:
            self._st.extra.setdefault("veths", []).append([name, peer])
        self._record_root_links(kns, name)
        self._record_root_links(pkns, peer)
        try:  # the first run just makes it; a name already taken is looked at only then
            kernel.veth_add(kns, name, peer, peer_ns=kernel.ROOT if pkns is None and kns is not None else pkns)
        except errors.Conflict:
            if self._find_veth_pair(kns, name, peer, pkns):
                return
            raise
        self._mark_root_links(kns, name)
        self._mark_root_links(pkns, peer)
        where = "" if pkns == kns else f" netns {pkns if pkns else 1}"
        self._log(self._ip(kns, f"link add {name} type veth peer name {peer}{where}"))

    def _record_root_links(self, kns, *ifnames):
        if kns is None:  # outside the lab's namespaces: remember to remove them
            for ifname in ifnames:
                if [None, ifname] not in self._st.links:
                    self._st.links.append([None, ifname])
            self._save()

    def _mark_root_links(self, kns, *ifnames):
        if kns is None:
            for ifname in ifnames:
                kernel.link_set(None, ifname, alias=self._marker)

    def add_bridge(self, name: str, netns: str = HOST) -> None:
        """``ip link add NAME type bridge``: a virtual switch in ``netns`` (the lab host by default).

        The bridge also gets a fixed MAC address (``ip link set NAME address ...``), as
        dockerd gives docker0 one: otherwise the kernel gives a bridge the lowest MAC
        of its ports, which changes as containers come and go and leaves their ARP
        caches pointing at a gateway MAC that no longer exists.
        """
        names.ifname(name)
        kns = self._ns(netns)
        link = kernel.link_get(kns, name)
        if link is not None:
            if link["kind"] != "bridge":
                raise errors.Conflict(f"{name!r} already exists in {netns!r} as a {link['kind']}, "
                                      "not a bridge; pick another name")
            self._owned_in_root(kns, link, name, "reuse")
            return
        self._record_root_links(kns, name)
        kernel.link_add(kns, name, "bridge")
        self._mark_root_links(kns, name)
        mac = _random_mac()
        kernel.link_set(kns, name, mac=mac)
        self._log(self._ip(kns, f"link add {name} type bridge"))
        self._log(self._ip(kns, f"link set {name} address {mac}"))

    def set_netns(self, ifname: str, netns: str, from_netns: str = HOST) -> None:
        """``ip link set IFNAME netns NETNS``: move an interface (e.g. one veth end) into a namespace."""
        names.ifname(ifname)
        src, dst = self._ns(from_netns), self._ns(netns)
        if src == dst:
            return
        link = kernel.link_get(src, ifname)
        if link is None:
            if kernel.link_get(dst, ifname) is not None:
                return  # already moved: a re-run cell
            self._link(from_netns, src, ifname)  # raises NoSuchInterface, listing what is there
        self._owned_in_root(src, link, ifname, "move")
        if kernel.link_get(dst, ifname) is not None:
            raise errors.Conflict(f"namespace {netns!r} already has an interface {ifname!r}; "
                                  "rename one of them first")
        self._record_root_links(dst, ifname)  # into the root namespace: remove it on destroy()
        # netns=None would mean "stay": the root namespace is named by its path
        kernel.link_set(src, ifname, netns=kernel.ROOT if dst is None else dst, index=link["index"])
        self._mark_root_links(dst, ifname)
        self._log(self._ip(src, f"link set {ifname} netns {dst if dst else 1}"))

    def set_master(self, ifname: str, bridge: str, netns: str = HOST) -> None:
        """``ip link set IFNAME master BRIDGE``: plug an interface into a bridge (a switch port)."""
        kns = self._ns(netns)
        link, br = self._links(netns, kns, ifname, bridge)
        if br["kind"] != "bridge":
            raise errors.Conflict(f"{bridge!r} in {netns!r} is a {br['kind']}, not a bridge")
        if link.get("master") == br["index"]:
            return
        self._owned_in_root(kns, link, ifname, "enslave")
        kernel.link_set(kns, ifname, master=bridge, index=link["index"], master_index=br["index"])
        self._log(self._ip(kns, f"link set {ifname} master {bridge}"))

    def set_up(self, netns: str, ifname: str) -> None:
        """``ip -n NETNS link set IFNAME up``; also brings the namespace's ``lo`` up."""
        kns = self._ns(netns)
        if kns is not None and ifname != "lo":
            link, lo = self._links(netns, kns, ifname, "lo")
        else:
            link, lo = self._link(netns, kns, ifname), None
        todo = []
        if lo and not lo["admin_up"]:
            todo.append(("lo", lo["index"]))
        if not link["admin_up"]:
            self._owned_in_root(kns, link, ifname, "bring up")
            todo.append((ifname, link["index"]))
        if todo:
            kernel.links_up(kns, [i for _, i in todo])
            for name, _ in todo:
                self._log(self._ip(kns, f"link set {name} up"))

    def set_down(self, netns: str, ifname: str) -> None:
        """``ip -n NETNS link set IFNAME down``."""
        kns = self._ns(netns)
        link = self._link(netns, kns, ifname)
        if link["admin_up"]:
            self._owned_in_root(kns, link, ifname, "bring down")
            kernel.link_set(kns, ifname, up=False)
            self._log(self._ip(kns, f"link set {ifname} down"))

    def delete_link(self, netns: str, ifname: str) -> None:
        """``ip -n NETNS link delete IFNAME`` (a veth takes its peer with it)."""
        kns = self._ns(netns)
        link = kernel.link_get(kns, names.ifname(ifname))
        if link is None:
            return
        self._owned_in_root(kns, link, ifname, "delete")
        kernel.link_delete(kns, ifname)
        self._log(self._ip(kns, f"link delete {ifname}"))

    def add_vxlan(self, name: str, vni: int, netns: str = HOST, remote: str | None = None,
                  local: str | None = None, dev: str | None = None, port: int = 4789) -> None:
        """``ip link add NAME type vxlan id VNI remote R local L dev DEV dstport 4789``: a tunnel end.

        Ethernet frames sent into NAME leave ``dev`` wrapped in UDP to ``remote``
        (port 4789, the IANA VXLAN port), tagged with the VXLAN network id ``vni``.
        With ``dev`` the kernel sets NAME's MTU to ``dev``'s minus the 50 bytes
        the outer headers take. Introduced in notebooks/05_multi_host.ipynb.
        """
        names.ifname(name)
        kns = self._ns(netns)
        if not isinstance(vni, int) or not 0 < vni < 1 << 24:
            raise errors.InvalidName(f"VNI {vni!r}: a VXLAN network id is a number from 1 to 16777215")
        port = _port(port)
        attrs = {"vxlan_id": vni, "vxlan_port": port}
        if remote is not None:
            attrs["vxlan_group"] = str(names.address(remote))
        if local is not None:
            attrs["vxlan_local"] = str(names.address(local))
        if dev is not None:
            attrs["vxlan_link"] = self._link(netns, kns, dev)["index"]
        link = kernel.link_get(kns, name)
        if link is not None:
            if link["kind"] != "vxlan":
                raise errors.Conflict(f"{name!r} already exists in {netns!r} as a {link['kind']}; pick another name")
            return  # a re-run cell
        self._record_root_links(kns, name)
        kernel.link_add(kns, name, "vxlan", **attrs)
        self._mark_root_links(kns, name)
        opts = "".join(f" {k} {v}" for k, v in (("remote", remote), ("local", local), ("dev", dev)) if v)
        self._log(self._ip(kns, f"link add {name} type vxlan id {vni}{opts} dstport {port}"))

    def add_macvlan(self, name: str, parent: str, netns: str = HOST, mode: str = "bridge") -> None:
        """``ip link add NAME link PARENT type macvlan mode bridge``: a child with its own MAC on PARENT's LAN.

        Docker's ``macvlan`` driver makes one per container and moves it into the
        container (:meth:`set_netns`). Children reach each other and the LAN, never
        the parent's own host. Introduced in notebooks/04_modes_and_drivers.ipynb.
        """
        self._add_child(name, parent, netns, "macvlan", {"macvlan_mode": mode},
                        ("private", "vepa", "bridge", "passthru"), mode)

    def add_ipvlan(self, name: str, parent: str, netns: str = HOST, mode: str = "l2") -> None:
        """``ip link add NAME link PARENT type ipvlan mode l2``: a child sharing PARENT's MAC.

        Raises MissingKernelFeature where the kernel has no ipvlan (``nt.doctor()``).
        """
        self._add_child(name, parent, netns, "ipvlan", {"ipvlan_mode": {"l2": 0, "l3": 1, "l3s": 2}.get(mode)},
                        ("l2", "l3", "l3s"), mode)

    def _add_child(self, name, parent, netns, kind, attrs, modes, mode):
        names.ifname(name)
        if mode not in modes:
            raise errors.InvalidName(f"{kind} mode {mode!r}: use one of {', '.join(modes)}")
        kns = self._ns(netns)
        link = kernel.link_get(kns, name)
        if link is not None:
            if link["kind"] != kind:
                raise errors.Conflict(f"{name!r} already exists in {netns!r} as a {link['kind']}; pick another name")
            return
        attrs = dict(attrs, link=self._link(netns, kns, parent)["index"])
        self._record_root_links(kns, name)
        try:
            kernel.link_add(kns, name, kind, **attrs)
        except errors.NetteachError as exc:
            if "not supported" in str(exc).lower() or "unknown" in str(exc).lower():
                raise errors.MissingKernelFeature(f"this kernel cannot make {kind} links ({exc}); "
                                                  "nt.doctor() lists what it has") from None
            raise
        self._mark_root_links(kns, name)
        self._log(self._ip(kns, f"link add {name} link {parent} type {kind} mode {mode}"))

    def set_mtu(self, netns: str, ifname: str, mtu: int) -> None:
        """``ip -n NETNS link set IFNAME mtu MTU``: the largest packet the interface sends."""
        kns = self._ns(netns)
        link = self._link(netns, kns, ifname)
        if not isinstance(mtu, int) or not 68 <= mtu <= 65535:
            raise errors.InvalidName(f"MTU {mtu!r}: an IPv4 interface's MTU is a number from 68 to 65535")
        if link["mtu"] == mtu:
            return
        self._owned_in_root(kns, link, ifname, "change the MTU of")
        kernel.link_set(kns, ifname, mtu=mtu, index=link["index"])
        self._log(self._ip(kns, f"link set {ifname} mtu {mtu}"))

    def capture(self, netns: str, ifname: str, count: int = 10, filter: str | None = None,
                timeout: float = 2):
        """``tcpdump -i IFNAME -c COUNT FILTER`` inside a namespace, without tcpdump.

        Starts listening at once; send traffic, then show the result (reading it
        waits at most ``timeout`` s for missing packets). Packets come decoded by
        scapy (VXLAN too): ``cap[0].summary()``, ``cap[0].layers()``. Introduced in
        notebooks/05_multi_host.ipynb.
        """
        from netteach import capture
        from netteach.kernel import capture as kcap

        flt = capture.parse_filter(filter)  # a bad filter fails before anything is opened
        kns = self._ns(netns)
        self._link(netns, kns, ifname)
        return capture.Capture(netns, ifname, kcap.open_socket(kns, ifname), int(count),
                               flt.text if flt else None, timeout)

    # ---- addresses, routes, sysctls -------------------------------------------------------------

    def add_addr(self, netns: str, ifname: str, cidr: str) -> None:
        """``ip -n NETNS addr add CIDR dev IFNAME``, e.g. ``add_addr("c1", "eth0", "10.0.0.2/24")``."""
        iface = names.interface_cidr(cidr)
        kns = self._ns(netns)
        link = self._link(netns, kns, ifname)
        self._owned_in_root(kns, link, ifname, "add an address to")
        if kernel.addr_add(kns, ifname, str(iface.ip), iface.network.prefixlen, index=link["index"]):
            self._log(self._ip(kns, f"addr add {iface} dev {ifname}"))

    def add_route(self, netns: str, dst: str, via: str | None = None, dev: str | None = None) -> None:
        """``ip -n NETNS route add DST [via GATEWAY] [dev IFNAME]``; DST may be ``"default"``."""
        net = names.route_dst(dst)
        kns = self._ns(netns)
        if via is None and dev is None:
            raise errors.InvalidAddress(f"a route to {dst} needs a gateway (via='10.0.0.1') "
                                        "or an interface (dev='eth0')")
        if via is not None:
            via = str(names.address(via))
        if dev is not None:
            self._link(netns, kns, dev)
        record = [None, net, via]
        new_record = kns is None and record not in self._st.routes
        if new_record:  # root namespace: remember it before making it, to remove it later
            self._st.routes.append(record)
            self._save()
        if not kernel.route_add(kns, net, via=via, dev=dev):  # a route to dst was there already
            if new_record:  # not ours: never remove it
                self._st.routes.remove(record)
                self._save()
            shown = "default" if net in ("0.0.0.0/0", "::/0") else net  # as the kernel dump names it
            for r in kernel.dump(kns)["routes"]:
                if r["dst"] == shown and via is not None and r["gateway"] != via:
                    raise errors.Conflict(
                        f"namespace {netns!r} already has a route to {dst} via {r['gateway']}; remove "
                        f"it first with lab.delete_route({netns!r}, {dst!r})")
            return
        parts = [dst] + (["via", via] if via else []) + (["dev", dev] if dev else [])
        self._log(self._ip(kns, "route add " + " ".join(parts)))

    def delete_route(self, netns: str, dst: str) -> None:
        """``ip -n NETNS route del DST``."""
        net = names.route_dst(dst)
        kns = self._ns(netns)
        if kns is None and not any(r[1] == net for r in self._st.routes):
            raise errors.Conflict(f"the route to {dst} in the root namespace was not made by lab "
                                  f"{self.name!r}; netteach leaves it alone")
        if kernel.route_delete(kns, net):
            self._log(self._ip(kns, f"route del {dst}"))

    def sysctl(self, netns: str, key: str, value=None):
        """``sysctl -w KEY=VALUE`` inside a namespace; with no value, read it.

        ``lab.sysctl("host", "net.ipv4.ip_forward", 1)`` lets the host route.
        In ``host="root"`` mode the old value is restored by ``destroy()``.
        """
        names.sysctl(key)
        kns = self._ns(netns)
        current = kernel.sysctl_get(kns, key)
        if value is None:
            return current
        if str(value) == current:
            return None
        if kns is None and not any(s[1] == key for s in self._st.sysctls):
            self._st.sysctls.append([None, key, current])
            self._save()
        kernel.sysctl_set(kns, key, value)
        prefix = "" if kns is None else f"ip netns exec {kns} "
        self._log(f"{prefix}sysctl -w {key}={value}")
        return None

    def write_etc(self, netns: str, filename: str, text: str) -> None:
        """Write ``/etc/netns/NETNS/FILENAME``: what ``ip netns exec NETNS`` shows as ``/etc/FILENAME``.

        ``ip netns exec`` (and so :meth:`exec`) runs the command in a mount
        namespace of its own where every file of ``/etc/netns/<netns>/`` is
        bind-mounted over the same name in ``/etc``: that is how a lab
        container gets its own ``resolv.conf`` and ``hosts`` (Docker bind-mounts
        its own copies into the container the same way). ``destroy()`` removes
        the directory.

        >>> import netteach as nt
        >>> with nt.Lab("doc-etc") as lab:
        ...     lab.add_netns("c1")
        ...     lab.write_etc("c1", "resolv.conf", "nameserver 198.51.100.1\\n")
        ...     print(lab.exec("c1", "cat /etc/resolv.conf").stdout, end="")
        nameserver 198.51.100.1

        Introduced in notebooks/03_configuration.ipynb.
        """
        kns = self._ns(netns)
        if kns is None:
            raise errors.Conflict("the root namespace's files are the machine's own /etc; netteach "
                                  "leaves them alone - write files for the lab's other namespaces")
        if not isinstance(filename, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", filename):
            raise errors.InvalidName(f"file name {filename!r}: use a plain name like 'resolv.conf' or 'hosts'")
        if self._write_etc(kns, filename, text):
            d = f"/etc/netns/{kns}"
            body = text.rstrip("\n")
            self._log(f"mkdir -p {d} && cat > {d}/{filename} <<'EOF'\n{body}\nEOF")

    def _write_etc(self, kns: str, filename: str, text: str) -> bool:
        """Write /etc/netns/KNS/FILENAME (the lab owns the directory); False if it already said that."""
        d = self.own_path(f"/etc/netns/{kns}")
        return kernel.write_file(os.path.join(d, filename), text)

    # ---- running things ----------------------------------------------------------------------------

    def exec(self, netns: str, command, timeout: float = 10, input: str | None = None) -> probe.ExecResult:
        """``ip netns exec NETNS COMMAND``: run a command inside a namespace.

        ``command`` is a shell string (``"ip -br addr"``) or an argv list.
        Returns an ``ExecResult`` (``.stdout``, ``.stderr``, ``.returncode``).
        """
        return probe.run(netns, self._ns(netns), command, timeout=timeout, input=input)

    def ping(self, netns: str, target: str, count: int = 1, timeout: float = 1) -> probe.PingResult:
        """``ip netns exec NETNS ping -c COUNT TARGET``: truthy when answered."""
        return probe.ping(netns, self._ns(netns), target, count=count, timeout=timeout)

    def trace(self, src: str, dst: str, port: int | None = None, proto: str | None = None):
        """Send one real packet from ``src`` to ``dst`` and show what the kernel did to it, hop by hop.

        ``dst`` is an address or a namespace of the lab. Without ``port`` an ICMP
        echo request, with one a TCP SYN (``proto="udp"``: a UDP datagram).
        Returns a :class:`~netteach.trace.Trace`: ``.delivered``, ``.hops``,
        ``.verdict``; ``.draw()`` shows the path on the lab's picture.
        ``lab.trace("c1", "10.0.0.2")``
        """
        from netteach import trace

        self._ns(src)
        return trace.run(self, src, dst, port=port, proto=proto)

    def http_get(self, netns: str, address: str, port: int = 80, timeout: float = 2) -> probe.HttpResult:
        """``curl http://ADDRESS:PORT/`` from inside a namespace: truthy when answered."""
        kns = self._ns(netns)
        return probe.http_get_many([(netns, kns, str(names.address(address)), int(port))], timeout)[0]

    def serve(self, netns: str, port: int = 80, name: str | None = None) -> int:
        """Start a small web server inside a namespace (answers ``hello from NAME``); returns its pid.

        Waits until it listens. The lab stops it on destroy() (or ``lab.kill(pid)``).
        """
        import sys
        import time

        self._ns(netns)
        port = _port(port)
        pid = self.spawn(netns, [sys.executable, "-m", "netteach.programs.http_server", str(port),
                                 name or netns])
        self._wait_listening(pid, port)
        return pid

    def _wait_listening(self, pid: int, port: int, timeout: float = 10):
        import time

        deadline = time.monotonic() + timeout
        while not kernel.listening(pid, port):
            info = next(p for p in self._st.procs if p["pid"] == pid)
            if not kernel.alive(pid, info["start"]) or time.monotonic() > deadline:
                self.kill(pid)
                raise errors.Conflict(f"the server for port {port} did not start (is the port "
                                      "already in use in that namespace?)")
            time.sleep(0.005)

    def nft(self, netns: str = HOST, what: str = "ruleset") -> str:
        """``nft list ruleset`` inside a namespace (or ``what="chain ip filter FORWARD"``)."""
        return _Text(kernel.nft_list(self._ns(netns), what))

    def spawn(self, netns: str, command, log: str | None = None) -> int:
        """Start a long-running process inside a namespace; the lab stops it on destroy().

        Returns its pid. ``command`` is a shell string or an argv list.
        """
        kns = self._ns(netns)
        argv = ["sh", "-c", f"exec {command}"] if isinstance(command, str) else [str(a) for a in command]
        info = kernel.spawn(kns, argv, log_path=log)
        self._st.procs.append(info)
        self._save()
        return info["pid"]

    def kill(self, pid: int) -> None:
        """Stop a process this lab started (by pid; never any other)."""
        for p in list(self._st.procs):
            if p["pid"] == pid:
                kernel.kill(p["pid"], p["start"])
                self._st.procs.remove(p)
                self._save()
                return
        raise errors.Conflict(f"pid {pid} was not started by lab {self.name!r}; netteach only stops its own")

    def own_path(self, path: str) -> str:
        """Let ``destroy()`` remove a file or directory that something run in the lab will write.

        Only paths under ``/run/netteach/`` or ``/etc/netns/`` can be owned.
        Returns the path, e.g. for a CNI plugin's IPAM ``dataDir``:
        ``lab.own_path(f"/run/netteach/cni-{lab.name}")`` (notebooks/01_basics.ipynb).
        """
        self._alive()
        path = os.path.normpath(path)
        if not path.startswith(("/etc/netns/", "/run/netteach/")):
            raise errors.InvalidName(f"{path!r}: a lab can only own paths under /run/netteach/ "
                                     "or /etc/netns/ (the only places destroy() removes)")
        if path not in self._st.files:
            self._st.files.append(path)
            self._save()
        return path

    # ---- reading the kernel back -----------------------------------------------------------------------

    def snapshot(self):
        """Read the lab's namespaces back from the kernel into a :class:`~netteach.snapshot.Snapshot`."""
        from netteach import inspection

        self._alive()
        return inspection.read_lab(self)

    def graph(self):
        """The networkx graph of :meth:`snapshot` (schema in API.md)."""
        from netteach import graph

        return graph.to_graph(self.snapshot())

    def draw(self, **kwargs):
        """A matplotlib Figure of what the kernel holds now."""
        from netteach import draw

        kwargs.setdefault("title", f"lab {self.name!r} ({self.host} host)")
        return draw.draw(self.graph(), **kwargs)

    def _repr_png_(self):
        if self._destroyed:
            return None
        from netteach import draw

        return draw.to_png(self.draw())

    def __repr__(self):
        if self._destroyed:
            return f"<Lab {self.name} (destroyed)>"
        mode = " rootless" if self.mode == "rootless" else ""
        return f"<Lab {self.name} host={self.host}{mode}: {', '.join(self.namespaces)}>"

    # ---- lifecycle -------------------------------------------------------------------------------------

    def destroy(self) -> None:
        """Remove every object of this lab and stop every process it started. Safe to call twice."""
        if self._destroyed:
            return
        if not self._gone:
            with state.locked():
                teardown(self._st)
        self._destroyed = True
        with _registry_lock:
            if _registry.get(self.name) is self:
                del _registry[self.name]
        if self.mode == "rootless":
            _release_helper()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False


# ---- modes: root (this process talks to the kernel) or rootless (a helper does) ------------------

MODES = ("root", "rootless")


def _privileged() -> bool:
    from netteach.kernel.features import capabilities

    caps = capabilities()
    return caps["net_admin"] and caps["sys_admin"]


def _choose_mode(mode: str | None) -> str:
    """The lab's mode: as asked, else root when this process may, else rootless.

    One process uses one mode at a time (its kernel calls go to one place):
    asking for the other while labs of the first exist is a Conflict.
    """
    if mode is not None and mode not in MODES:
        raise errors.InvalidName(f"mode={mode!r}: use 'root' (this process builds the lab; needs root) "
                                 "or 'rootless' (a helper in a user namespace builds it)")
    if mode is None:
        mode = "rootless" if helper.current() is not None or not _privileged() else "root"
    with _registry_lock:
        others = [lab.name for lab in _registry.values() if not lab._destroyed and lab.mode != mode]
    if others:
        raise errors.Conflict(
            f"this process already has {'root' if mode == 'rootless' else 'rootless'}-mode labs "
            f"({', '.join(others)}); one process uses one mode at a time - destroy them first, "
            f"or ask for mode={'root' if mode == 'rootless' else 'rootless'!r}")
    if mode == "root":
        if not _privileged():
            raise errors.PermissionDenied(
                "building a lab in root mode needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN): use "
                "nt.Lab(name) (rootless by default when not root), or start JupyterLab with "
                "`./bootstrap.sh lab --root`. nt.doctor() shows what this machine allows.")
        helper.stop()  # no rootless lab is left (checked above): its helper goes
    else:
        helper.start()
    return mode


def _release_helper():
    """Stop the helper once no rootless lab of this process is left (nothing is kept running)."""
    with _registry_lock:
        if any(lab.mode == "rootless" and not lab._destroyed for lab in _registry.values()):
            return
    helper.stop()


def _helper_gone(h):
    """The helper died: its labs are gone with it; their next verb says so."""
    with _registry_lock:
        for name, lab in list(_registry.items()):
            if lab.mode == "rootless":
                lab._gone = True
                del _registry[name]


helper._on_gone.append(_helper_gone)


# ---- teardown, listing, cleanup (also for labs whose process is gone) ----------------------------------

def teardown(st: state.LabState) -> None:
    """Remove what state ``st`` lists, checking markers; then its state file. Caller holds the lock."""
    marker = _marker(st.name)
    for p in reversed(st.procs):
        kernel.kill(p["pid"], p.get("start"))
    for ns, dst, via in reversed(st.routes):
        kernel.route_delete(ns, dst, via=via)
    for ns, ifname in reversed(st.links):
        link = kernel.link_get(ns, ifname) if kernel.netns_exists(ns) else None
        if link is not None and link.get("alias") == marker:
            kernel.link_delete(ns, ifname)
    for ns, key, old in reversed(st.sysctls):
        with contextlib.suppress(errors.NetteachError, OSError):
            kernel.sysctl_set(ns, key, old)
    for kns in reversed(st.netns):
        if kernel.netns_exists(kns):
            lo = kernel.link_get(kns, "lo") or {}
            if lo.get("alias") not in (marker, None):
                continue  # not ours after all: leave it
        kernel.netns_delete(kns)
    for path in reversed(st.files):
        _remove_path(path)
    state.remove(st.name)


def _remove_path(path: str):
    kernel.remove_path(path)


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
        who = f"pid {self.owner_pid} " + ("alive" if self.alive else "gone")
        return f"<Lab {self.name} host={self.host} owner {who}: {len(self.namespaces)} netns>"


class LabList(list):
    def __repr__(self):
        if not self:
            return "no netteach labs on this machine"
        rows = [f"{'lab':<16} {'host':<9} {'owner pid':>9}  {'owner':<6} namespaces"]
        for i in self:
            rows.append(f"{i.name:<16} {i.host:<9} {i.owner_pid:>9}  {'alive' if i.alive else 'gone':<6} "
                        f"{' '.join(i.namespaces)}")
        return "\n".join(rows)

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


def labs() -> LabList:
    """The netteach labs on this machine, with their owner pid and whether it is alive."""
    out = LabList()
    for name in state.all_names():
        st = state.load(name)
        if st is None:
            continue
        prefix = kernel_netns_name(st.name, "")
        out.append(LabInfo(st.name, st.host, st.owner_pid, kernel.alive(st.owner_pid, st.owner_start),
                           [n[len(prefix):] for n in st.netns]))
    return out


def cleanup(all: bool = False) -> list[str]:
    """Remove labs whose owner process is gone (or every lab with ``all=True``).

    Only objects netteach marked as its own are removed: namespaces listed in a
    lab's state file or whose ``lo`` carries the ``netteach lab=NAME`` alias,
    and root-namespace links with that alias. Returns the names removed.
    """
    removed = []
    me = os.getpid()
    with state.locked():
        for name in state.all_names():
            st = state.load(name)
            if st is None:
                continue
            if all or not kernel.alive(st.owner_pid, st.owner_start):
                if st.owner_pid == me:
                    lab = _registry.get(name)
                    if lab is not None:
                        lab._destroyed = True
                        _registry.pop(name, None)
                teardown(st)
                removed.append(name)
        live = {n for n in state.all_names()}
        # orphans with no state file (it was lost): marked namespaces and root links
        for kns in kernel.netns_list():
            if not kns.startswith("nt-"):
                continue
            alias = (kernel.link_get(kns, "lo") or {}).get("alias") or ""
            if alias.startswith("netteach lab="):
                lab_name = alias.split("=", 1)[1]
                if lab_name not in live:
                    kernel.netns_delete(kns)
                    removed.append(lab_name)
        for link in kernel.dump(None)["links"]:
            alias = link.get("alias") or ""
            if alias.startswith("netteach lab=") and alias.split("=", 1)[1] not in live:
                kernel.link_delete(None, link["ifname"])
                removed.append(alias.split("=", 1)[1])
    return sorted(set(removed))


_atexit_done = False


def _register_atexit():
    global _atexit_done
    if not _atexit_done:
        atexit.register(_destroy_all)
        _atexit_done = True


def _destroy_all():
    """At interpreter exit (a Jupyter kernel shut down or restarted): remove this process's labs."""
    for lab in list(_registry.values()):
        with contextlib.suppress(Exception):
            lab.destroy()
