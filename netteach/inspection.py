"""Read namespaces back from the kernel into a :class:`~netteach.snapshot.Snapshot`.

``read_lab(lab)`` reads one lab; :func:`inspect_machine` (``nt.inspect()``)
reads the whole machine: the root namespace, every named one (``ip netns``),
Docker's (``/var/run/docker/netns``) and those only a process holds.

>>> import netteach as nt
>>> snap = nt.inspect()
>>> snap.namespace("root").interface("lo").kind
'loopback'
"""

from __future__ import annotations

import ipaddress

from netteach import errors, kernel
from netteach.snapshot import Interface, Namespace, Route, Snapshot

DOCKER_NETNS_DIR = "/var/run/docker/netns"


def _keep_address(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    return not (ip.version == 6 and (ip.is_link_local or ip.is_loopback))


def _settling(dumps: dict, links: dict, peer: dict) -> set:
    """Namespaces holding a veth that is set up, with its peer set up, but not yet UP.

    The kernel reports carrier changes through a work queue that may lag by up
    to a second after a burst of changes: such a state is a moment, not a fact.
    """
    out = set()
    for (label, idx), l in links.items():
        p = peer.get((label, idx))
        if p and l["admin_up"] and links[p]["admin_up"] and l["state"] != "UP":
            out.add(label)
    return out


def read(spaces: list[tuple[str, object]], lab: str | None = None, notes: dict | None = None) -> Snapshot:
    """Dump each ``(label, kernel ns)`` and join them: veth peers across namespaces, bridge ports."""
    import time

    dumps, vanished = {}, []
    for label, kns in spaces:
        d = _dump(kns)
        if d is not None:
            dumps[label] = d
        elif kns is not None:
            vanished.append(label)  # a container that stopped while we read: left out, and said so
    deadline = time.monotonic() + 1.5
    while True:
        snap, links, peer = _join(spaces, dumps, lab, notes or {})
        late = _settling(dumps, links, peer)
        if not late or time.monotonic() > deadline:
            snap.vanished = vanished
            _add_firewall(snap, spaces)
            return snap
        time.sleep(0.02)
        for label, kns in spaces:
            if label in late:
                d = _dump(kns)
                if d is not None:
                    dumps[label]["links"] = d["links"]


def _dump(kns) -> dict | None:
    """One namespace's links, addresses and routes; None if it is gone (or going) meanwhile."""
    if not kernel.netns_exists(kns):
        return None
    try:
        return kernel.dump(kns)
    except (errors.NoSuchNamespace, errors.KernelError, OSError):
        if kernel.netns_exists(kns):
            raise
        return None


def _join(spaces, dumps, lab, notes):
    kns_of = dict(spaces)
    label_of = {kns: label for label, kns in spaces}
    links = {(label, l["index"]): l for label, d in dumps.items() for l in d["links"]}
    peer: dict = {}  # (label, index) -> (label, index)

    for (label, idx), l in links.items():  # veths whose peer is in the same namespace
        if l["kind"] == "veth" and l.get("link") and l.get("link_netnsid") is None:
            peer[(label, idx)] = (label, l["link"])
    # across namespaces the kernel names the peer's namespace by a per-namespace id;
    # ask for those ids in the namespaces with most such veths first, then use symmetry
    crossing = {}
    for (label, idx), l in links.items():
        if l["kind"] == "veth" and l.get("link") and l.get("link_netnsid") is not None:
            crossing.setdefault(label, []).append(idx)
    for label in sorted(crossing, key=lambda k: -len(crossing[k])):
        todo = [i for i in crossing[label] if (label, i) not in peer]
        if not todo:
            continue
        try:
            ids = kernel.nsids(kns_of[label], [k for k in kns_of.values() if k != kns_of[label]])
        except (errors.NetteachError, OSError):  # that namespace went away meanwhile
            continue
        for idx in todo:
            l = links[(label, idx)]
            other = label_of.get(ids.get(l["link_netnsid"]), None) if l["link_netnsid"] in ids else None
            if other is not None and (other, l["link"]) in links:
                peer[(label, idx)] = (other, l["link"])
                peer[(other, l["link"])] = (label, idx)

    namespaces = []
    for label, kns in spaces:
        if label not in dumps:
            continue
        d = dumps[label]
        byidx = {l["index"]: l for l in d["links"]}
        addrs: dict = {}
        for a in d["addrs"]:
            if _keep_address(a["address"]):
                addrs.setdefault(a["index"], []).append(f"{a['address']}/{a['prefixlen']}")
        ifs = []
        alias_of_lo = None
        for l in d["links"]:
            p = peer.get((label, l["index"]))
            ifs.append(Interface(
                netns=label, ifname=l["ifname"], kind=l["kind"], index=l["index"], mac=l["mac"],
                mtu=l["mtu"], state=l["state"], admin_up=l["admin_up"],
                addresses=addrs.get(l["index"], []),
                master=byidx[l["master"]]["ifname"] if l.get("master") in byidx else None,
                peer=(p[0], links[p]["ifname"]) if p else None,
                alias=l.get("alias"), details=l.get("details") or {}))
            if l["kind"] == "loopback":
                alias_of_lo = l.get("alias")
        routes = []
        for r in d["routes"]:
            if r["dst"].startswith(("fe80", "ff00")):
                continue
            routes.append(Route(netns=label, dst=r["dst"], gateway=r["gateway"],
                                dev=byidx[r["oif"]]["ifname"] if r.get("oif") in byidx else None,
                                scope=r["scope"], proto=r["proto"], src=r["src"]))
        owner = alias_of_lo.split("=", 1)[1] if (alias_of_lo or "").startswith("netteach lab=") else None
        namespaces.append(Namespace(
            name=label, interfaces=ifs, routes=routes,
            kernel_name=kns if isinstance(kns, str) else None,
            lab=lab or owner, note=notes.get(label, "")))
    return Snapshot(namespaces=namespaces, lab=lab), links, peer


def _add_firewall(snap: Snapshot, spaces) -> None:
    """Each namespace's nftables ruleset (``nft -j``) and forwarding sysctls, into the snapshot."""
    kns_of = dict(spaces)
    for _ in range(5):  # a namespace that vanishes meanwhile (a process ending) is left without them
        found = [ns for ns in snap.namespaces if ns.name in kns_of and kernel.netns_exists(kns_of[ns.name])]
        try:
            states = kernel.firewall_state([kns_of[ns.name] for ns in found])
        except errors.NoSuchNamespace:
            continue
        for ns, state in zip(found, states):
            ns.ruleset = state["ruleset"]
            ns.sysctls = state["sysctls"]
        return


def read_lab(lab) -> Snapshot:
    """The snapshot of one lab: its namespaces under their lab-level names."""
    snap = read([(n, lab.kernel_name(n)) for n in lab.namespaces], lab=lab.name, notes=lab._notes())
    if hasattr(lab, "model"):  # a DockerHost: Docker's names on the picture, as for a real dockerd
        snap.docker, snap.docker_host = lab.model(), "host"
    return snap


def inspect_machine(processes: bool = True, docker: bool | str = True) -> Snapshot:
    """``nt.inspect()``: every network namespace on this machine, read from the kernel.

    The root namespace is called ``"root"``; named ones keep their ``ip netns``
    name; namespaces held only by a process are ``"pid <pid> (<command>)"``
    (skip those with ``processes=False``). Where a dockerd answers (on
    ``$DOCKER_HOST`` or /var/run/docker.sock; ``docker=`` another socket, or
    False), its containers' namespaces are called by the container's name and
    noted with its short id, bridges carry their network's name, and the
    snapshot holds Docker's model (``snap.docker``: containers, networks,
    published ports), its ``docker-proxy`` processes and its firewall ruleset.
    A dockerd living in a namespace of its own (a private test daemon) has
    that namespace called ``"host"``. Without Docker (or when it cannot be
    read: ``snap.warnings`` says why) the rest is read all the same.
    Namespaces that vanish while they are read (a container stopping) are
    left out and listed in ``snap.vanished``.
    """
    spaces: list = [("root", None)]
    notes = {"root": "the machine's own namespace"}
    seen = {kernel.netns_inode(None)}
    warnings: list = []
    dock = _docker_spaces(docker, warnings) if docker else None
    if dock is not None:
        for label, kns, note in dock["spaces"]:
            ino = kernel.netns_inode(kns)
            if ino is None or ino in seen:
                continue
            seen.add(ino)
            spaces.append((label, kns))
            notes[label] = note
    for name in kernel.netns_list():
        ino = kernel.netns_inode(name)
        if ino not in seen:
            seen.add(ino)
            spaces.append((name, name))
    for path in kernel.netns_files(DOCKER_NETNS_DIR):
        ino = kernel.netns_inode(path)
        if ino not in seen:
            seen.add(ino)
            label = "docker:" + path.rsplit("/", 1)[1]
            spaces.append((label, path))
            notes[label] = "a Docker container's namespace"
    if processes:
        for ino, (pid, comm) in sorted(kernel.netns_held_by_processes().items(), key=lambda x: x[1]):
            if ino not in seen:
                seen.add(ino)
                label = f"pid {pid} ({comm})"
                spaces.append((label, f"/proc/{pid}/ns/net"))
                notes[label] = "held only by a process"
    try:
        snap = read(spaces, notes=notes)
        snap.warnings = warnings
        if dock is not None:
            _add_docker(snap, dock, spaces)
    finally:
        release(spaces)
    return snap


def release(spaces) -> None:
    """Close the sockets reading left open in namespaces netteach does not own (a process's, a
    container's): cached, they would keep such a namespace alive after its process ends."""
    for _, kns in spaces:
        if isinstance(kns, str) and kns.startswith("/"):
            kernel.forget(kns)


def _docker_spaces(docker, warnings: list, host_label: str = "host") -> dict | None:
    """Docker's model and the namespaces to read for it, or None (no daemon, or unreadable: see warnings)."""
    from netteach.docker import engine as _engine

    url = docker if isinstance(docker, str) else None
    if not _engine.present(url) and not (url or "").startswith(("tcp:", "http")):
        return None
    try:
        eng = _engine.connect(url)
        m = eng.model()
    except errors.NetteachError as exc:
        warnings.append(f"Docker not read: {exc}")
        return None
    try:
        host = eng.host_netns()
        spaces = []
        if host is not None:
            spaces.append((host_label, host, ""))
        for c in m.containers:
            if c.mode == "host" or c.shares or not c.running:
                continue
            kns = eng.netns_of(c, m)
            if kns:
                spaces.append((c.name, kns, m.note(c)))
        return {"model": m, "host": host, "host_label": host_label if host else "root", "spaces": spaces}
    finally:
        eng.close()


def _add_docker(snap: Snapshot, dock: dict, spaces: list) -> None:
    """Docker's model, docker-proxy processes and firewall rules into the snapshot."""
    from netteach.docker import model as _model

    m, host = dock["model"], dock["host"]
    label = dock["host_label"]
    nft = ""
    try:
        nft = kernel.nft_list(host, "ruleset")
    except errors.NetteachError as exc:
        snap.warnings.append(f"Docker's nftables rules not read: {exc}")
    legacy = kernel.iptables_legacy_save(host)
    m.firewall = _model.firewall_of(nft, legacy)
    snap.docker, snap.docker_host, snap.nft, snap.iptables_legacy = m, label, nft, legacy
    host_ino = kernel.netns_inode(host)
    snap.proxies = []
    for p in kernel.processes_named("docker-proxy"):
        fwd = _model.proxy_of(p["argv"])
        if fwd and p["netns"] == host_ino:
            snap.proxies.append({"pid": p["pid"], **fwd})
    ns = snap.namespace(label)
    if ns is not None:
        fw = {"iptables-legacy": "iptables-legacy (nft does not show it)"}.get(m.firewall, m.firewall)
        ns.note = f"Docker host: {m.source}" + (f", {fw}" if fw else "")
    for c in m.containers:  # interface names inside containers: the kernel knows them, Docker does not
        cns = snap.namespace(c.name)
        for e in c.endpoints:
            i = next((i for i in (cns.interfaces if cns else []) if e.ip and f"{e.ip}/{e.prefixlen}" in i.addresses),
                     None)
            e.ifname = i.ifname if i else None
