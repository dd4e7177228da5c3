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

import contextlib
import functools
import os
import re
import shlex
import threading

from netteach import errors, kernel, names, ownership, probe, state
from netteach.kernel import helper
from netteach.ownership import _registry, _registry_lock, kernel_netns_name  # noqa: F401

HOST = "host"
#: set in every namespace a lab makes (see ``Lab._fresh_sysctls``)
FRESH_SYSCTLS = {"net.ipv4.ip_forward": 0, "net.ipv4.conf.all.forwarding": 0}
_marker = ownership.marker


def _serialised(method):
    """One verb at a time per lab: threads of a notebook may share a lab (and its state)."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


def _random_mac() -> str:
    """A random locally administered unicast MAC (02:...)."""
    import secrets

    return "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))


_port = names.port  # kept: docker/host.py and older code import it from here


def _exec_args(command, timeout, input):
    names.command(command)
    names.seconds(timeout)
    names.text_input(input)


def heredoc(body: str) -> str:
    """``<<'EOF'`` + body + ``EOF``, with a delimiter that no line of the body is.

    >>> print(heredoc("a\\nEOF\\nb"))
    <<'EOF_1'
    a
    EOF
    b
    EOF_1
    """
    lines = body.rstrip("\n").split("\n")
    delim, n = "EOF", 0
    while delim in lines:
        n += 1
        delim = f"EOF_{n}"
    return f"<<'{delim}'\n" + "\n".join(lines) + f"\n{delim}"


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
        with _registry_lock:  # one object per lab name in a process, even with threads
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
                return lab
            lab = super().__new__(cls)
            lab.name, lab.host, lab._destroyed, lab._ready = name, host, False, False
            lab._lock = threading.RLock()
            lab._setup_error = None
            lab._gone = False
            lab.mode = None  # chosen by _setup
            _registry[name] = lab
            return lab

    def __init__(self, name: str, host: str = "isolated", mode: str | None = None):
        with self._lock:  # a second thread asking for the same lab waits until it is ready
            if self._ready:
                return
            if self._setup_error is not None:
                raise self._setup_error
            try:
                self._setup(name, host, mode)
            except BaseException as exc:
                self._setup_error = exc
                self._destroyed = True
                with _registry_lock:
                    if _registry.get(name) is self:
                        del _registry[name]
                raise
            self._ready = True

    def _setup(self, name: str, host: str, mode: str | None = None):
        """Make (or take over) the lab; subclasses add their own setup after this."""
        if host not in ("isolated", "root"):
            raise errors.InvalidName(f"host={host!r}: use 'isolated' (default, a namespace of the "
                                     "lab's own) or 'root' (the machine's own namespace)")
        self.commands = Commands()
        self._marker = _marker(name)
        self.mode = _choose_mode(mode, self)
        if self.mode == "rootless":
            self.commands.append("# rootless: these commands run inside the lab's helper process "
                                 f"(open a shell there with `netteach shell {name}`)")
        try:
            self._acquire()
        except BaseException:
            self._destroyed = True
            _release_helper()
            raise

    # ---- ownership (the state file, take-over: netteach.ownership) -----------------------

    def _acquire(self):
        self._st = ownership.claim(self.name, self.host, self.commands)
        if self.host == "isolated":
            try:
                self._ensure_netns(HOST)
            except BaseException:
                if self._st.netns == [self.kernel_name(HOST)]:  # a new lab: leave nothing behind
                    with state.locked():
                        ownership.teardown(self._st)
                raise

    def _save(self):
        with self._lock:
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
        """The ``ip`` command line, every word shell-quoted (no word of ``args`` holds a blank)."""
        words = " ".join(shlex.quote(w) for w in args.split())
        return f"ip {words}" if kns is None else f"ip -n {shlex.quote(kns)} {words}"

    def _log(self, cmd: str):
        self.commands.append(cmd)

    def _link(self, netns: str, kns, ifname: str) -> dict:
        return self._links(netns, kns, ifname)[0]

    def _links(self, netns: str, kns, *ifnames: str) -> list[dict]:
        """The named links of a namespace, asked in one go; NoSuchInterface names what is there."""
        for ifname in ifnames:
            names.ifname(ifname)
        return self._present(netns, kns, ifnames, kernel.links_get(kns, list(ifnames)))

    def _present(self, netns: str, kns, ifnames, links) -> list[dict]:
        """``links`` as read for ``ifnames``; NoSuchInterface, naming what is there, for the first missing."""
        for ifname, link in zip(ifnames, links):
            if link is None:
                here = [l["ifname"] for l in kernel.dump(kns)["links"]]
                raise errors.NoSuchInterface(
                    f"no interface {ifname!r} in namespace {netns!r} (it has: {', '.join(here)})")
        return links

    def _owner(self, kns):
        """The alias a link must carry for the kernel layer to change it (only in the root namespace)."""
        return self._marker if kns is None else None

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
            kernel.netns_add(kns, alias=self._marker, sysctls=FRESH_SYSCTLS)
        except BaseException:
            if not kernel.netns_exists(kns):  # roll back the intent
                self._st.netns.remove(kns)
                self._save()
            raise
        self._log(f"ip netns add {shlex.quote(kns)}")
        self._fresh_sysctls(kns)
        return True

    def _fresh_sysctls(self, kns):
        """Log that forwarding is off in a namespace the lab just made, as on a machine that just booted.

        ``kernel.netns_add`` sets ``FRESH_SYSCTLS`` inside it before anything uses it.

        The kernel does not start a new namespace from its defaults: it copies
        the initial namespace's IPv4 settings (unless ``net.core.devconf_inherit_init_net``
        says otherwise), so on a machine running Docker a new namespace would
        already forward. Lessons must not depend on the machine they run on.
        """
        self._log(f"ip netns exec {shlex.quote(kns)} sysctl -qw "
                  + " ".join(f"{k}={v}" for k, v in FRESH_SYSCTLS.items()))

    @_serialised
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

    @_serialised
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
        before = (list(self._st.links), list(self._st.extra["veths"]) if "veths" in self._st.extra else None)
        if not recorded:
            self._st.extra.setdefault("veths", []).append([name, peer])
        self._record_root_links(kns, name)
        self._record_root_links(pkns, peer)
        try:  # the first run just makes it; a name already taken is looked at only then
            kernel.veth_add(kns, name, peer, peer_ns=kernel.ROOT if pkns is None and kns is not None else pkns)
        except BaseException as exc:
            try:
                if isinstance(exc, errors.Conflict) and self._find_veth_pair(kns, name, peer, pkns):
                    return
            except BaseException:
                self._forget_veth(before)
                raise
            self._forget_veth(before)
            raise
        self._mark_root_links(kns, name)
        self._mark_root_links(pkns, peer)
        where = "" if pkns == kns else f" netns {pkns if pkns else 1}"
        self._log(self._ip(kns, f"link add {name} type veth peer name {peer}{where}"))

    def _forget_veth(self, before):
        """Nothing was made: drop the intent recorded for it."""
        self._st.links = before[0]
        if before[1] is None:
            self._st.extra.pop("veths", None)
        else:
            self._st.extra["veths"] = before[1]
        self._save()

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

    @_serialised
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

    @_serialised
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

    @_serialised
    def set_master(self, ifname: str, bridge: str, netns: str = HOST) -> None:
        """``ip link set IFNAME master BRIDGE``: plug an interface into a bridge (a switch port)."""
        kns = self._ns(netns)
        for n in (ifname, bridge):
            names.ifname(n)
        # read, checked and changed in one call (one round trip when rootless); the kernel layer
        # changes nothing when a check below would refuse
        (link, br), _ = kernel.enslave(kns, ifname, bridge, owner=self._owner(kns))
        self._present(netns, kns, (ifname, bridge), (link, br))
        if br["kind"] != "bridge":
            raise errors.Conflict(f"{bridge!r} in {netns!r} is a {br['kind']}, not a bridge")
        if link["kind"] == "bridge":
            raise errors.Conflict(f"{ifname!r} is itself a bridge: Linux cannot plug a bridge into a bridge; "
                                  "join them with a veth pair (one end in each) instead")
        if link["kind"] == "loopback" or ifname == "lo":
            raise errors.Conflict(f"{ifname!r} is the loopback interface, which never joins a bridge; "
                                  "plug a veth end into the bridge instead")
        if link.get("master") == br["index"]:
            return
        self._owned_in_root(kns, link, ifname, "enslave")  # enslave() made the change iff we get here
        self._log(self._ip(kns, f"link set {ifname} master {bridge}"))

    @_serialised
    def set_up(self, netns: str, ifname: str) -> None:
        """``ip -n NETNS link set IFNAME up``; also brings the namespace's ``lo`` up."""
        kns = self._ns(netns)
        names.ifname(ifname)
        wanted = ["lo", ifname] if kns is not None and ifname != "lo" else [ifname]
        # read and brought up in one call (one round trip when rootless)
        links, _ = kernel.links_up_named(kns, wanted, owner=self._owner(kns))
        self._present(netns, kns, wanted[::-1], links[::-1])
        lo, link = links if len(links) == 2 else (None, links[0])
        if not link["admin_up"]:
            self._owned_in_root(kns, link, ifname, "bring up")
        # links_up_named() brought up what was down (the check above is its condition)
        for name, was in (("lo", lo), (ifname, link)):
            if was and not was["admin_up"]:
                self._log(self._ip(kns, f"link set {name} up"))

    @_serialised
    def set_down(self, netns: str, ifname: str) -> None:
        """``ip -n NETNS link set IFNAME down``."""
        kns = self._ns(netns)
        link = self._link(netns, kns, ifname)
        if link["admin_up"]:
            self._owned_in_root(kns, link, ifname, "bring down")
            kernel.link_set(kns, ifname, up=False)
            self._log(self._ip(kns, f"link set {ifname} down"))

    @_serialised
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

    @_serialised
    def add_addr(self, netns: str, ifname: str, cidr: str) -> None:
        """``ip -n NETNS addr add CIDR dev IFNAME``, e.g. ``add_addr("c1", "eth0", "10.0.0.2/24")``."""
        iface = names.interface_cidr(cidr)
        kns = self._ns(netns)
        names.ifname(ifname)
        # read, checked and added in one call (one round trip when rootless)
        link, added = kernel.addr_add_named(kns, ifname, str(iface.ip), iface.network.prefixlen,
                                            owner=self._owner(kns))
        self._present(netns, kns, (ifname,), (link,))
        self._owned_in_root(kns, link, ifname, "add an address to")
        if added:  # None (not tried) only for a missing or foreign link: refused above
            self._log(self._ip(kns, f"addr add {iface} dev {ifname}"))

    @_serialised
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
        record = [None, net, via, dev]
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

    @_serialised
    def delete_route(self, netns: str, dst: str, via: str | None = None, dev: str | None = None) -> None:
        """``ip -n NETNS route del DST [via GATEWAY] [dev IFNAME]``."""
        net = names.route_dst(dst)
        kns = self._ns(netns)
        if via is not None:
            via = str(names.address(via))
        if dev is not None:
            names.ifname(dev)
        if kns is None:  # root namespace: only routes this lab made, exactly as it made them
            mine = [r for r in self._st.routes if r[1] == net and via in (None, r[2])
                    and dev in (None, r[3] if len(r) > 3 else None)]
            if not mine:
                raise errors.Conflict(f"the route to {dst} in the root namespace was not made by lab "
                                      f"{self.name!r}; netteach leaves it alone")
            via, dev = mine[0][2], mine[0][3] if len(mine[0]) > 3 else None
        deleted = kernel.route_delete(kns, net, via=via, dev=dev)
        if kns is None:
            self._st.routes = [r for r in self._st.routes if not (r[1] == net and r[2] == via and
                                                                   (r[3] if len(r) > 3 else None) == dev)]
            self._save()
        if deleted:
            parts = [dst] + (["via", via] if via else []) + (["dev", dev] if dev else [])
            self._log(self._ip(kns, "route del " + " ".join(parts)))

    @_serialised
    def sysctl(self, netns: str, key: str, value=None):
        """``sysctl -w KEY=VALUE`` inside a namespace; with no value, read it.

        ``lab.sysctl("host", "net.ipv4.ip_forward", 1)`` lets the host route.
        Only network keys (``net.*``), which every namespace has its own
        copy of, can be set: ``kernel.*`` or ``vm.*`` would change the whole
        machine. In ``host="root"`` mode the machine's old value comes back
        when the last lab that set the key is destroyed.
        """
        names.sysctl(key)
        kns = self._ns(netns)
        if value is not None:
            value = names.sysctl_value(key, value)
        current = kernel.sysctl_get(kns, key)
        if value is None:
            return current
        if kns is None:  # even if it already has the value: another lab may restore it under us
            ownership.need_root_sysctl(self._st, key, current)
        if value == current:
            return None
        kernel.sysctl_set(kns, key, value)
        prefix = "" if kns is None else f"ip netns exec {shlex.quote(kns)} "
        self._log(f"{prefix}sysctl -w {shlex.quote(f'{key}={value}')}")
        return None

    @_serialised
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
        if not isinstance(filename, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", filename):
            raise errors.InvalidName(f"file name {filename!r}: use a plain name like 'resolv.conf' or 'hosts'")
        if self._write_etc(kns, filename, text):
            d = shlex.quote(f"/etc/netns/{kns}")
            f = shlex.quote(f"/etc/netns/{kns}/{filename}")
            self._log(f"mkdir -p {d} && cat > {f} {heredoc(text)}")

    def _write_etc(self, kns: str, filename: str, text: str) -> bool:
        """Write /etc/netns/KNS/FILENAME (the lab owns the directory); False if it already said that.

        The directory is made 0755 and the file 0644 whatever the umask: every
        user reads them, only root may change a container's hosts or resolv.conf.
        """
        if not isinstance(text, str) or "\0" in text:
            raise errors.InvalidName(f"the text for {filename!r} must be a string (without NUL bytes), "
                                     f"not {type(text).__name__}")
        d = self.own_path(f"/etc/netns/{kns}")
        return kernel.write_file(os.path.join(d, filename), text)

    # ---- running things ----------------------------------------------------------------------------

    def exec(self, netns: str, command, timeout: float = 10, input: str | None = None) -> probe.ExecResult:
        """``ip netns exec NETNS COMMAND``: run a command inside a namespace.

        ``command`` is a shell string (``"ip -br addr"``) or an argv list.
        Returns an ``ExecResult`` (``.stdout``, ``.stderr``, ``.returncode``).
        """
        kns = self._ns(netns)
        _exec_args(command, timeout, input)
        return probe.run(netns, kns, command, timeout=timeout, input=input)

    def ping(self, netns: str, target: str, count: int = 1, timeout: float = 2) -> probe.PingResult:
        """``ip netns exec NETNS ping -c COUNT -W TIMEOUT TARGET``: truthy when answered.

        It waits 2 s for a reply: ARP asks again after 1 s, so one lost ARP
        exchange (a cable that just came up) does not make the first ping fail.
        """
        kns = self._ns(netns)
        target = names.ping_target(target)
        r = probe.ping(netns, kns, target, count=names.count(count), timeout=names.seconds(timeout, most=60))
        if not r and self.host == "root":
            r.hint = self._root_forward_hint()
        return r

    def _root_forward_hint(self) -> str:
        """Why bridged traffic of a host="root" lab may be dropped: the machine's FORWARD policy (Docker's)."""
        from netteach.docker.model import forward_policy

        try:
            bnf = kernel.sysctl_get(None, "net.bridge.bridge-nf-call-iptables")
        except errors.NetteachError:  # no br_netfilter: bridged frames never meet FORWARD
            bnf = "0"
        try:
            nft = kernel.nft_list(None, "ruleset")
        except errors.NetteachError:
            nft = ""
        policy = forward_policy(nft, kernel.iptables_legacy_save(None))
        if policy != "drop":
            return ""
        bridged = ("br_netfilter sends the frames a bridge switches through it (bridge-nf-call-iptables=1), "
                   if bnf == "1" else "")
        return ("the machine's FORWARD chain has policy drop (Docker sets it) and " + bridged
                + "this host='root' lab's traffic crosses it: use an isolated lab (the default), or accept "
                "your bridge's traffic with `iptables -I DOCKER-USER -i BRIDGE -o BRIDGE -j ACCEPT` "
                "(and delete that rule afterwards)")

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
        address, port = str(names.address(address)), names.port(port)
        return probe.http_get_many([(netns, kns, address, port)], names.seconds(timeout, most=60))[0]

    @_serialised
    def serve(self, netns: str, port: int = 80, name: str | None = None) -> int:
        """Start a small web server inside a namespace (answers ``hello from NAME``); returns its pid.

        Waits until it listens. The lab stops it on destroy() (or ``lab.kill(pid)``).
        """
        import sys

        self._ns(netns)
        port = _port(port)
        if name is not None and (not isinstance(name, str) or not name.isprintable() or len(name) > 64):
            raise errors.InvalidName(f"server name {name!r}: use a short printable text, e.g. 'web'")
        log = self._log_path(f"{netns}.{port}")
        pid = self.spawn(netns, [sys.executable, "-m", "netteach.programs.http_server", str(port),
                                 name or netns], log=log)
        self._wait_listening(pid, port, log=log, what=f"the web server on port {port} in {netns!r}")
        return pid

    def _log_path(self, what: str) -> str:
        """A fresh log file (stderr of a process the lab starts) that destroy() removes."""
        path = self.own_path(os.path.join(state.STATE_DIR, f"{self.name}.{what}.log"))
        with contextlib.suppress(OSError):  # what an earlier process wrote there is not this one's
            os.unlink(kernel.local_path(path))
        return path

    def _wait_listening(self, pid: int, port: int, timeout: float = 30, log: str | None = None,
                        what: str | None = None):
        """Wait until process ``pid`` listens on ``port``; if it dies or never listens, say why."""
        import time

        what = what or f"the server for port {port}"
        deadline = time.monotonic() + timeout
        ready = f"listening on port {port}"
        start = next(p for p in self._st.procs if p["pid"] == pid)["start"]

        def output() -> str:  # what the process wrote (its stderr) since it started
            with contextlib.suppress(OSError):
                with open(kernel.local_path(log), errors="replace") as f:
                    return f.read()
            return ""

        # the port alone does not tell: another process of the namespace may hold it
        while not (kernel.listening(pid, port) and (log is None or ready in output())):
            dead = not kernel.alive(pid, start)
            if (not dead and time.monotonic() > deadline and kernel.listening(pid, port)
                    and (log is None or ready in output())):
                break  # it got there just now (a loaded machine: Python starts slowly)
            if dead or time.monotonic() > deadline:
                self.kill(pid)
                said = (output().strip().splitlines() or [""])[-1] if log else ""
                if dead:
                    raise errors.Conflict(f"{what} did not start: " + (said or "it exited at once") +
                                          (" - stop what uses that port, or pick another" if "in use" in said else ""))
                raise errors.KernelError(f"{what} started but was not listening after {timeout:g} s"
                                         + (f" ({said})" if said else "") + "; it was stopped")
            time.sleep(0.005)

    def nft(self, netns: str = HOST, what: str = "ruleset") -> str:
        """``nft list ruleset`` inside a namespace (or ``what="chain ip filter FORWARD"``)."""
        return _Text(kernel.nft_list(self._ns(netns), what))

    @_serialised
    def spawn(self, netns: str, command, log: str | None = None) -> int:
        """Start a long-running process inside a namespace; the lab stops it on destroy().

        Returns its pid. ``command`` is a shell string or an argv list.
        """
        kns = self._ns(netns)
        names.command(command)
        argv = ["sh", "-c", f"exec {command}"] if isinstance(command, str) else [str(a) for a in command]
        intent = {"pid": None, "start": None, "argv": argv}  # recorded before it starts
        self._st.procs.append(intent)
        self._save()
        try:  # its environment carries the lab's marker: cleanup finds it even if killed right now
            info = kernel.spawn(kns, argv, log_path=log, mark=self.name)
        except BaseException:
            self._st.procs.remove(intent)
            self._save()
            raise
        intent.update(info)
        self._save()
        return info["pid"]

    @_serialised
    def kill(self, pid: int) -> None:
        """Stop a process this lab started (by pid; never any other)."""
        for p in list(self._st.procs):
            if p["pid"] == pid:
                kernel.kill(p["pid"], p["start"])
                self._st.procs.remove(p)
                self._save()
                return
        raise errors.Conflict(f"pid {pid} was not started by lab {self.name!r}; netteach only stops its own")

    @_serialised
    def own_path(self, path: str) -> str:
        """Let ``destroy()`` remove a file or directory that something run in the lab will write.

        Only paths under ``/run/netteach/`` or the lab's own ``/etc/netns/nt-LAB.*``
        can be owned (no ``..``, no symlinks, not the state files).
        Returns the path, e.g. for a CNI plugin's IPAM ``dataDir``:
        ``lab.own_path(f"/run/netteach/cni-{lab.name}")`` (notebooks/01_basics.ipynb).
        """
        self._alive()
        norm = ownership.allowed_path(path, self.name)
        if norm is None:
            raise errors.InvalidName(f"{path!r}: a lab can only own plain paths under /run/netteach/ or "
                                     f"/etc/netns/{kernel_netns_name(self.name, '')}* (the only places "
                                     "destroy() removes), e.g. f'/run/netteach/cni-{lab.name}'")
        path = norm
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
        with self._lock:
            if self._destroyed:
                return
            if not self._gone:
                with state.locked():
                    ownership.teardown(self._st)
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


def _choose_mode(mode: str | None, new=None) -> str:
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
        others = [lab.name for lab in _registry.values()
                  if lab is not new and not lab._destroyed and lab.mode not in (mode, None)]
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


# ---- ownership lives in netteach.ownership; these names stay importable from here -------------------

from netteach.ownership import (  # noqa: E402,F401
    LabInfo,
    LabList,
    cleanup,
    destroy_all as _destroy_all,
    labs,
    register_atexit as _register_atexit,
    teardown,
)


def _remove_path(path: str, lab: str | None = None):
    """Remove a file or directory a lab owns (kept for old callers; see ownership.remove_path)."""
    import os as _os

    if lab is None:  # the lab is in the path: /etc/netns/nt-LAB.NS
        base = _os.path.basename(_os.path.normpath(path))
        lab = base[3:].split(".", 1)[0] if base.startswith("nt-") else ""
    ownership.remove_path(path, lab)
