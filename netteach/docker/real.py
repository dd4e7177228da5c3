"""``nt.docker_host()``: this machine's real dockerd, with DockerHost's verbs, read-only.

>>> RealDockerHost.__doc__.splitlines()[0]
'A read-only view of a real dockerd: ``ps``, ``inspect``, ``networks``, ``reachability``, ``trace``, the picture.'

Everything Docker *means* comes from its Engine API (:mod:`netteach.docker.engine`,
GET requests only); everything the kernel *holds* (interfaces, addresses,
routes, rules) is read from the kernel. Nothing here changes Docker's
objects: no container, network, interface, address, route or rule of
Docker's is created, changed or removed. Probes (``reachability``) are sent
only from inside containers' namespaces, only to that machine's container
addresses and published ports; ``trace`` marks its one packet with a
temporary nftables table of netteach's own (``netteach_trace``, removed
afterwards), never a rule in Docker's chains.

The namespaces are named as a :class:`~netteach.docker.host.DockerHost` names
them (``"host"`` and the containers' names), so the picture, ``trace`` and
``compare`` read the same for both.

Introduced in notebooks/08_your_docker_host.ipynb.
"""

from __future__ import annotations

import ipaddress

from netteach import errors, probe
from netteach.docker import engine as _engine

HOST = "host"


class RealDockerHost:
    """A read-only view of a real dockerd: ``ps``, ``inspect``, ``networks``, ``reachability``, ``trace``, the picture."""

    def __init__(self, url: str | None = None):
        self.engine = _engine.connect(url)
        self.name = str(self.engine.daemon)
        self._model = None

    def __repr__(self):
        return f"<RealDockerHost {self.engine.daemon} at {self.engine.url}>"

    # ---- Docker's side (Engine API) ------------------------------------------------------

    def model(self, fresh: bool = True):
        """Containers, networks and published ports now (:class:`~netteach.docker.model.Model`)."""
        if fresh or self._model is None:
            self._model = self.engine.model()
        return self._model

    def containers(self) -> list[str]:
        return [c.name for c in self.model().containers]

    def _ctr(self, name):
        c = self.model(fresh=False).container(name) or self.model().container(name)
        if c is None:
            raise errors.NoSuchContainer(f"no such container: {name!r} on {self.engine.daemon} (it has: "
                                         f"{', '.join(self.containers()) or 'none'})")
        return c

    # ---- the kernel's side -----------------------------------------------------------------

    def kernel_name(self, label: str):
        """The kernel namespace of "host" or of a container (a /proc/<pid>/ns/net path; None: this one's)."""
        if label == HOST:
            return self.engine.host_netns()
        m = self.model(fresh=False)
        c = self._ctr(label)
        kns = self.engine.netns_of(c, m)
        if kns == "":
            raise errors.NoSuchNamespace(f"container {label!r} has no namespace of its own now (stopped?)")
        return kns

    def _spaces(self, m) -> tuple[list, dict]:
        spaces, notes = [(HOST, self.engine.host_netns())], {}
        for c in m.containers:
            if c.mode == "host" or c.shares or not c.running:
                continue
            kns = self.engine.netns_of(c, m)
            if kns:
                spaces.append((c.name, kns))
                notes[c.name] = m.note(c)
        return spaces, notes

    @property
    def namespaces(self) -> list[str]:
        return [label for label, _ in self._spaces(self.model(fresh=False))[0]]

    def snapshot(self):
        """The Docker host and its containers' namespaces, read from the kernel, named like a DockerHost's."""
        from netteach import inspection

        m = self.model()
        spaces, notes = self._spaces(m)
        try:
            snap = inspection.read(spaces, notes=notes)
            inspection._add_docker(snap, {"model": m, "host": spaces[0][1], "host_label": HOST}, spaces)
        finally:
            inspection.release(spaces)
        return snap

    def graph(self):
        return self.snapshot().graph()

    def draw(self, **kwargs):
        """The picture: drawn as a DockerHost is (host, bridges with their networks, containers, published ports)."""
        return self.snapshot().draw(**kwargs)

    def _repr_png_(self):
        from netteach.draw import to_png

        return to_png(self.draw())

    # ---- docker ps / network ls / inspect ---------------------------------------------------

    def ps(self):
        """``docker ps``: name, network mode, addresses, published ports (same columns as ``DockerHost.ps``)."""
        from netteach.docker.host import _table

        rows = [("CONTAINER ID", "NAME", "NETWORK", "ADDRESSES", "PORTS")]
        for c in self.model().containers:
            addrs = ", ".join(f"{e.ip} ({e.network})" for e in c.endpoints if e.ip) or "-"
            rows.append((c.short_id, c.name, c.mode, addrs, ", ".join(p.spec for p in c.ports)))
        return _table(rows)

    def networks(self):
        """``docker network ls`` (plus bridge, subnet and gateway)."""
        from netteach.docker.host import _table

        rows = [("NETWORK ID", "NAME", "DRIVER", "BRIDGE", "SUBNET", "GATEWAY")]
        for n in self.model().networks:
            rows.append((n.short_id, n.name, n.driver, n.bridge or "-", n.subnet or "-", n.gateway or "-"))
        return _table(rows)

    def inspect(self, name: str) -> dict:
        """``docker inspect NAME``, the network parts, with addresses and MACs read back from the kernel."""
        from netteach import kernel

        c = self._ctr(name)
        raw = self.engine.api.inspect_container(c.id)
        kns = self.kernel_name(name)
        state = kernel.dump(kns)
        by_mac = {l["mac"]: l for l in state["links"] if l.get("mac")}
        nets = {}
        for net, e in (raw.get("NetworkSettings") or {}).get("Networks", {}).items():
            link = by_mac.get((e.get("MacAddress") or "").lower(), {})
            mine = [a for a in state["addrs"] if a["index"] == link.get("index") and a["family"] == 4]
            nets[net] = {**e, "IPAddress": mine[0]["address"] if mine else "",
                         "IPPrefixLen": mine[0]["prefixlen"] if mine else 0,
                         "MacAddress": link.get("mac", ""), "Interface": link.get("ifname")}
        gateway = next((r["gateway"] for r in state["routes"] if r["dst"] == "default"), None)
        ns = raw.get("NetworkSettings") or {}
        return {"Id": raw["Id"], "Name": raw["Name"], "Config": {"Hostname": raw["Config"]["Hostname"]},
                "HostConfig": {"NetworkMode": raw["HostConfig"]["NetworkMode"],
                               "PortBindings": raw["HostConfig"].get("PortBindings") or {}},
                "NetworkSettings": {"SandboxKey": ns.get("SandboxKey", ""), "Ports": ns.get("Ports") or {},
                                    "Gateway": gateway or "", "Networks": nets}}

    # ---- probes from inside the containers ---------------------------------------------------

    def _addresses(self, who: str) -> list[tuple[str | None, str]]:
        c = self._ctr(who)
        if c.shares:
            return self._addresses(c.shares)
        return [(e.network, e.ip) for e in c.endpoints if e.ip]

    def _target(self, src: str, dst: str) -> str | None:
        """The address ``src`` would use for ``dst``: on a shared network if any; "host" is the gateway of
        ``src``'s first network (the host's address on that bridge)."""
        try:
            return str(ipaddress.ip_address(dst))
        except ValueError:
            pass
        mine = self._addresses(src)
        if dst == HOST:
            m = self.model(fresh=False)
            for net, _ in mine:
                n = m.network(net)
                if n is not None and n.gateway:
                    return n.gateway
            return None
        addrs = self._addresses(dst)
        nets = {n for n, _ in mine}
        return next((a for n, a in addrs if n in nets), addrs[0][1] if addrs else None)

    def reachability(self, timeout: float = 2):
        """Who reaches whom, probed from inside each container: ping every other container, and HTTP to
        every published port (at the host's address on the source's network, and at the container's)."""
        from concurrent.futures import ThreadPoolExecutor

        from netteach.docker.host import Reachability

        m = self.model()
        who = [c.name for c in m.containers if c.running and c.mode != "host"]
        kns = {w: self.kernel_name(w) for w in who}
        pairs = [(s, d) for s in who for d in who if s != d]
        targets = {(s, d): self._target(s, d) for s, d in pairs}
        services = []  # (label, dst, port)
        for c in m.containers:
            for p in c.ports:
                if p.proto == "tcp":
                    services.append((f"{c.name}:{p.container_port}", c.name, p.container_port))
                    services.append((f"{HOST}:{p.host_port}", HOST, p.host_port))
        services = list(dict.fromkeys(services))
        http_jobs = [(s, label, self._target(s, dst), port) for s in who for label, dst, port in services]
        pings = [(s, d) for s, d in pairs if targets[(s, d)]]
        with ThreadPoolExecutor(1) as pool:
            pinging = pool.submit(probe.ping_many, [(s, kns[s], targets[(s, d)]) for s, d in pings],
                                  timeout=timeout)
            runnable = [j for j in http_jobs if j[2]]
            http_res = probe.http_get_many([(s, kns[s], addr, port) for s, _, addr, port in runnable],
                                           timeout=timeout + 1)
            ping_res = pinging.result()
        http = {(s, label): False for s, label, _, _ in http_jobs}
        http.update({(s, label): bool(r) for (s, label, _, _), r in zip(runnable, http_res)})
        ping = {pair: False for pair in pairs}
        ping.update({pair: bool(r) for pair, r in zip(pings, ping_res)})
        return Reachability(sources=who, ping=ping, services=[label for label, _, _ in services], http=http)

    def trace(self, src: str, dst: str, port: int | None = None, proto: str | None = None):
        """One real packet from container SRC to DST (a container, "host" or an address), hop by hop.

        ``real.trace("db", "host", 8080)``: a TCP SYN to a published port. The
        packet is marked by a temporary table of netteach's own, removed
        afterwards; Docker's rules are only read.
        """
        from netteach import trace

        trace.check_request(port, proto)
        c = self._ctr(src)
        label = c.shares or src
        addr = self._target(src, dst)
        if addr is None:
            raise errors.Conflict(f"{dst!r} has no address {src!r} could reach (network mode none?)")
        return trace.run(self, src, dst, port=port, proto=proto, src_label=label, addr=addr)

    def _alive(self):
        return True


def docker_host(url: str | None = None) -> RealDockerHost:
    """``nt.docker_host()``: this machine's dockerd (``$DOCKER_HOST`` or /var/run/docker.sock), read-only.

    Raises :class:`~netteach.errors.DockerNotFound` (with how to get one) where
    no daemon answers.
    """
    return RealDockerHost(url)
