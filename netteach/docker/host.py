"""``DockerHost``: a lab that does to the network what ``dockerd`` does.

>>> import netteach as nt
>>> dh = nt.DockerHost("doc-docker")
>>> web = dh.run("web", publish={8080: 80}, serve=80)    # docker run -d -p 8080:80 ...
>>> dh.network_create("backend", subnet="10.10.0.0/24")  # docker network create ...
'br-...'
>>> db = dh.run("db", network="backend")
>>> dh.http_get("internet", "host", 8080)
<HttpResult internet -> 198.51.100.2:8080: 200 'hello from web (you are 198.51.100.1)'>
>>> dh.reachability().can_ping("web", "db")               # two networks: isolated
False
>>> dh.destroy()

The host is a fresh Docker host, inside its own namespace: bridge ``docker0``
172.17.0.1/16, ``net.ipv4.ip_forward=1``, Docker's nftables chains (classic
layout, see :mod:`netteach.docker.rules`), and an uplink ``eth0``
198.51.100.2/24 to an ``internet`` namespace (198.51.100.1, plus a "server" at
203.0.113.10) that stands in for the outside world, so no packet ever leaves
the lab. Documentation address ranges (RFC 5737) are used for everything
outside.

What is reproduced: bridges and veths named as Docker names them, IPAM
(lowest free address, freed ones reused), MACs 02:42:<ip> (Docker <= 27),
gateway and default route, masquerade, ``-p`` with DNAT in PREROUTING and
OUTPUT, the filter accept, the hairpin masquerade and a userland proxy
process (``docker-proxy``), user-defined networks with name resolution and
isolation (DOCKER-ISOLATION-STAGE-1/2), ``host``, ``none`` and
``container:<x>`` modes, Docker's embedded DNS on user-defined networks (a
resolver per container listening inside its namespace, reached at
127.0.0.11:53 through Docker's nat rules there, see
:mod:`netteach.programs.dns_server`), network aliases, network options
(``enable_icc``, ``enable_ip_masquerade``, ``bridge.name``), ``--internal``
networks and ``-p IP:HOST:CONTAINER``. Deliberate differences: TCP ports
only; no IPv6.

Introduced in notebooks/03_configuration.ipynb.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shlex
import sys

from netteach import errors, kernel, names, probe
from netteach.docker import etcfiles, ipam
from netteach.docker import rules as dockerrules
from netteach.lab import HOST, Lab, _port, _serialised, _Text, heredoc

INTERNET = "internet"
UPLINK = ("198.51.100.2/24", "198.51.100.1/24")  # host eth0, internet eth0 (RFC 5737 TEST-NET-2)
INTERNET_SERVER = "203.0.113.10/24"  # "a server on the internet" (TEST-NET-3)
DEFAULT_NET = ("bridge", "docker0", "172.17.0.0/16")
RESERVED_RANGES = ["198.51.100.0/24", "203.0.113.0/24", "127.0.0.0/8"]
_NETNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
_PUBLISH = re.compile(r"^(?:(?P<ip>\d+\.\d+\.\d+\.\d+):)?(?P<host>\d+):(?P<ctr>\d+)(?:/tcp)?$")
DNS_ADDRESS = "127.0.0.11"  # Docker's embedded DNS server, as containers on user networks see it
# docker network create -o KEY=VALUE that netteach understands
NET_OPTIONS = ("com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade",
               "com.docker.network.bridge.name", "com.docker.network.driver.mtu")
MTU_OPTION = "com.docker.network.driver.mtu"

HOSTS_HEAD = etcfiles.HOSTS_HEAD  # (kept here too: older code imported it from this module)


def docker_mac(ip: str) -> str:
    """The MAC Docker (up to 27.x) derives from a container's IPv4 address.

    >>> docker_mac("172.17.0.2")
    '02:42:ac:11:00:02'
    """
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.ip_address(ip).packed)


class DockerHost(Lab):
    """A lab set up like a fresh Docker host; ``run``/``network_*`` act like the docker CLI."""

    def _setup(self, name: str, host: str = "isolated", mode: str | None = None):
        if host != "isolated":
            raise errors.InvalidName("a DockerHost always lives in its own namespace (host='isolated'); "
                                     "it never changes the machine's real Docker setup")
        super()._setup(name, host, mode)
        kind = self._st.extra.setdefault("kind", "docker")
        if kind != "docker":
            raise errors.Conflict(f"lab {name!r} is a plain Lab; destroy it (or use another name) "
                                  "to make a DockerHost")
        self._setup_host()

    # ---- the model (kept in the lab's state file, so a taken-over host keeps it) -----

    @property
    def _d(self) -> dict:
        return self._st.extra.setdefault("docker", {"networks": {}, "containers": {}})

    @property
    def _nets(self) -> dict:
        return self._d["networks"]

    @property
    def _ctrs(self) -> dict:
        return self._d["containers"]

    def _host(self):
        return self.kernel_name(HOST)

    def _setup_host(self):
        """docker0, ip_forward, Docker's chains, and the uplink to the internet (idempotent)."""
        name, bridge, subnet = DEFAULT_NET
        if name not in self._nets:
            self._nets[name] = {"id": secrets.token_hex(32), "bridge": bridge, "subnet": subnet,
                                "gateway": "172.17.0.1", "default": True}
            self._save()
        self.add_bridge(bridge)
        self.add_addr(HOST, bridge, "172.17.0.1/16")
        self.set_up(HOST, bridge)
        self.sysctl(HOST, "net.ipv4.ip_forward", 1)
        self.add_netns(INTERNET)
        # when the internet's DNS server is stopped (a dead upstream), lookups from the default bridge
        # must fail at once on "port unreachable", but every container is masqueraded to
        # 198.51.100.2 and ICMP errors to one address are rate limited (1/s)
        self.sysctl(INTERNET, "net.ipv4.icmp_ratelimit", 0)
        self.add_veth("eth0", "eth0", peer_netns=INTERNET)
        self.add_addr(HOST, "eth0", UPLINK[0])
        self.add_addr(INTERNET, "eth0", UPLINK[1])
        self.add_addr(INTERNET, "eth0", INTERNET_SERVER)
        self.set_up(HOST, "eth0")
        self.set_up(INTERNET, "eth0")
        self.add_route(HOST, "default", via=UPLINK[1].split("/")[0])
        self._write_files(HOST, hosts=HOSTS_HEAD, resolv=f"nameserver {UPLINK[1].split('/')[0]}\n")
        self._apply_rules()
        self._internet_dns()

    def _internet_dns(self):
        """The host's upstream DNS server: a stand-in public resolver at 198.51.100.1 in the internet.

        It knows ``server.example`` (203.0.113.10, both ways) and answers NXDOMAIN for every other
        name, at once. ``dh.kill(dh.upstream_dns)`` makes it a dead upstream.
        """
        import json

        pid = self._d.get("upstream_dns")
        if pid and any(p["pid"] == pid for p in self._st.procs):
            return
        d = self.own_path(f"/run/netteach/{self.name}.dns")
        path = os.path.join(d, f"{INTERNET}.json")
        server = INTERNET_SERVER.split("/")[0]
        kernel.write_file(path, json.dumps({"names": {"server.example": [server]},
                                            "ptr": {server: "server.example"}, "upstreams": []}))
        pid = self.spawn(INTERNET, [sys.executable, "-m", "netteach.programs.dns_server", path, "53", "53",
                                    "--listen", UPLINK[1].split("/")[0], "--authoritative"])
        self._d["upstream_dns"] = pid
        self._save()
        self._wait_listening(pid, 53)

    def internet_dns(self) -> int:
        """Start the internet's DNS server (the host's upstream) again, e.g. after ``dh.kill(dh.upstream_dns)``."""
        self._internet_dns()
        return self.upstream_dns

    @property
    def upstream_dns(self) -> int | None:
        """Pid of the internet's DNS server (the host's upstream), or None once killed."""
        pid = self._d.get("upstream_dns")
        return pid if pid and any(p["pid"] == pid for p in self._st.procs) else None

    def draw(self, **kwargs):
        """The picture of the Docker host: bridges, containers around it, veth cables, the internet."""
        kwargs.setdefault("title", f"Docker host {self.name!r}")
        return super().draw(**kwargs)

    def model(self):
        """Containers, networks and published ports as :class:`~netteach.docker.model.Model` (what
        ``nt.docker_host().model()`` gives for a real dockerd)."""
        from netteach.docker import model

        return model.from_state(self._d, source=f"DockerHost {self.name!r}")

    def _notes(self) -> dict:
        """Captions of the namespaces, as a real Docker host's are captioned (``container <id> (mode)``)."""
        m = self.model()
        notes = {INTERNET: "the internet (stand-in)", HOST: "Docker host"}
        for cname, c in self._ctrs.items():
            if c["netns"] == cname:
                notes[cname] = m.note(m.container(cname))
        for cname, c in self._ctrs.items():  # the host mode shares the host's namespace: say so
            if c["netns"] == HOST:
                notes[HOST] += f" + {cname}"
        return notes

    # ---- files under /etc/netns/<ns>/ that `ip netns exec` shows as /etc/... -----------

    def _etc_dir(self, netns: str) -> str:
        return f"/etc/netns/{self.kernel_name(netns)}"

    def _write_files(self, netns: str, hosts: str, resolv: str):
        """The container's /etc/hosts and /etc/resolv.conf, as dockerd writes them."""
        for fname, text in (("hosts", hosts), ("resolv.conf", resolv)):
            self._write_etc(self.kernel_name(netns), fname, text)

    def _remove_files(self, netns: str):
        from netteach import ownership

        d = f"/etc/netns/{self.kernel_name(netns)}"
        ownership.remove_path(d, self.name)
        if d in self._st.files:
            self._st.files.remove(d)

    def _user_net(self, network: str) -> bool:
        return not self._nets[network].get("default")

    def _refresh_names(self, cnames):
        """Rewrite hosts/resolv.conf of these containers from the model."""
        for cname in cnames:
            c = self._ctrs.get(cname)
            if c is None or c["netns"] != cname:
                continue  # host/container: modes use another namespace's files
            eps = c["endpoints"]
            first = next(iter(eps.values()), None)
            hosts = etcfiles.hosts(first["ip"] if first else None, c["hostname"], c.get("add_host"))
            # once on a user-defined network, the embedded DNS server stays (Docker: until restart)
            if any(self._user_net(n) for n in eps) or c.get("resolver"):
                resolv = etcfiles.resolv(embedded=DNS_ADDRESS)
                self._dns_records(cname)
            else:
                resolv = etcfiles.resolv(c.get("dns") or [UPLINK[1].split("/")[0]])
            self._write_files(cname, hosts, resolv)

    # ---- Docker's embedded DNS server --------------------------------------------------------

    def _dns_view(self, cname) -> dict:
        """What the embedded DNS answers ``cname``: names on its user networks, PTRs, upstreams."""
        c = self._ctrs[cname]
        names_, ptr = {}, {}
        for net in c["endpoints"]:
            if not self._user_net(net):
                continue  # the default bridge has no name resolution
            for other, oc in self._ctrs.items():
                ep = oc["endpoints"].get(net)
                if ep is None:
                    continue
                keys = [other, oc["id"][:12], f"{other}.{net}"] + list(oc.get("aliases", {}).get(net, []))
                for key in keys:
                    ips = names_.setdefault(key.lower(), [])
                    if ep["ip"] not in ips:
                        ips.append(ep["ip"])
                ptr[ep["ip"]] = f"{other}.{net}"
        upstreams = c.get("dns") or [UPLINK[1].split("/")[0]]
        return {"names": names_, "ptr": ptr, "upstreams": upstreams}

    def _dns_records(self, cname):
        """Write ``cname``'s view for its resolver and start the resolver if it has none yet."""
        import json

        d = self.own_path(f"/run/netteach/{self.name}.dns")
        path = os.path.join(d, f"{cname}.json")
        # the resolver re-reads it when it changes (and keeps its last good copy if it catches it half-written)
        kernel.write_file(path, json.dumps(self._dns_view(cname), sort_keys=True))
        c = self._ctrs[cname]
        r = c.get("resolver")
        if r and any(p["pid"] == r["pid"] for p in self._st.procs):
            return
        # dockerd listens on random ports inside the container's namespace, one per protocol
        taken = {c["spec"].get("serve")}
        udp = tcp = None
        while udp is None or udp in taken:
            udp = 32768 + secrets.randbelow(28232)
        while tcp is None or tcp in taken or tcp == udp:
            tcp = 32768 + secrets.randbelow(28232)
        pid = self.spawn(cname, [sys.executable, "-m", "netteach.programs.dns_server", path, str(udp), str(tcp)])
        c["resolver"] = {"pid": pid, "udp": udp, "tcp": tcp}
        self._save()
        self._wait_listening(pid, tcp)
        kns = self.kernel_name(cname)
        script = dockerrules.dns_rules(udp, tcp, DNS_ADDRESS)
        kernel.nft(kns, script)
        self._log(f"nft -f - <<'EOF'  # inside {kns}: Docker's DNS redirect to its resolver\n{script}EOF")

    def dig(self, container: str, name: str, qtype: str = "A", tcp: bool = False, server: str | None = None):
        """``docker exec CONTAINER dig [+tcp] [@SERVER] NAME TYPE``: one DNS query, the reply's flags and answers.

        Uses netteach's own small ``dig`` (dnslib), so it works where bind9-dnsutils is not installed.
        """
        argv = [sys.executable, "-m", "netteach.programs.dig", name, qtype]
        argv += ["+tcp"] if tcp else []
        argv += [f"@{server}"] if server else []
        return self.exec(container, argv)

    def dns_rules(self, container: str) -> str:
        """The nat rules inside a container that send 127.0.0.11:53 to its embedded DNS server."""
        c = self._ctr(container)
        if not c.get("resolver"):
            return _Text(f"# {container} is on no user-defined network: no embedded DNS, no rules\n")
        return self.nft(c["netns"])

    def _peers_of(self, cname) -> set:
        """Containers whose names files mention ``cname``: those on a shared user-defined network."""
        nets = {n for n in self._ctrs.get(cname, {}).get("endpoints", {}) if self._user_net(n)}
        return {o for o, oc in self._ctrs.items() if nets & set(oc["endpoints"])} if nets else set()

    # ---- firewall ---------------------------------------------------------------------

    def _apply_rules(self):
        nets = [dockerrules.Net(n["bridge"], n["subnet"], icc=n.get("icc", True),
                                internal=n.get("internal", False), masquerade=n.get("masquerade", True))
                for n in self._nets.values()]
        ports = []
        for c in self._ctrs.values():
            for host_port, cport in c.get("ports", {}).items():
                net, ep = next(iter(c["endpoints"].items()))
                ports.append(dockerrules.Port(int(host_port), ep["ip"], cport, self._nets[net]["bridge"],
                                              c.get("port_ips", {}).get(host_port)))
        if any(not n.icc for n in nets):  # ICC off is a FORWARD rule: bridged frames must pass it
            self._bridge_netfilter()
        script = dockerrules.rules(nets, ports)
        if script != getattr(self, "_rules_applied", None):
            kernel.nft(self._host(), script)
            self._rules_applied = script
            self._log(f"ip netns exec {self._host()} nft -f - {heredoc(script)}")

    def _bridge_netfilter(self):
        try:
            if str(self.sysctl(HOST, "net.bridge.bridge-nf-call-iptables")) != "1":
                self.sysctl(HOST, "net.bridge.bridge-nf-call-iptables", 1)
        except errors.NetteachError:
            raise errors.MissingKernelFeature(
                "enable_icc=false needs br_netfilter (net.bridge.bridge-nf-call-iptables), which this "
                "kernel lacks: traffic between two containers on one bridge never passes FORWARD "
                "(modprobe br_netfilter, or see nt.doctor())") from None

    def rules(self, chain: str | None = None) -> str:
        """Docker's nftables rules in the host: all, or one chain (``"FORWARD"``, ``"DOCKER"``, ``"POSTROUTING"``...)."""
        if chain is None:
            return self.nft(HOST)
        tables = [t for t, c, _ in dockerrules.CHAINS if c == chain]  # DOCKER is in nat and filter
        if tables:
            return _Text("".join(self.nft(HOST, f"chain ip {t} {chain}") for t in tables))
        raise errors.NoSuchChain(f"no chain {chain!r}; Docker's are: "
                                     + ", ".join(sorted({c for _, c, _ in dockerrules.CHAINS})))

    # ---- networks ---------------------------------------------------------------------

    def _net(self, network: str) -> dict:
        if not isinstance(network, str):
            raise errors.InvalidName(f"network {network!r}: give a network's name as a string, e.g. 'bridge'")
        if network not in self._nets:
            raise errors.NoSuchNetwork(f"network {network!r} not found (docker: Error response from "
                                       f"daemon: network {network} not found); it has: "
                                       f"{', '.join(self._nets)} - create it with "
                                       f"dh.network_create({network!r})")
        return self._nets[network]

    def _reserved(self) -> dict:
        return {r: f"the lab's {'internet' if not r.startswith('127') else 'loopback'} range {r}"
                for r in RESERVED_RANGES}

    def _free_subnet(self) -> str:
        return ipam.free_subnet({name: n["subnet"] for name, n in self._nets.items()}, self._reserved())

    def _overlap(self, net) -> str | None:
        return ipam.overlap(net, {name: n["subnet"] for name, n in self._nets.items()}, self._reserved())

    @_serialised
    def network_create(self, name: str, subnet: str | None = None, gateway: str | None = None,
                       options: dict | None = None, internal: bool = False) -> str:
        """``docker network create [--subnet S] [--gateway G] [-o KEY=VALUE] [--internal] NAME``.

        Returns the bridge's name (``br-`` + the first 12 hex digits of the network id,
        or ``com.docker.network.bridge.name``). ``options`` as Docker spells them:
        ``{"com.docker.network.bridge.enable_icc": "false"}`` drops traffic between
        the network's containers; ``enable_ip_masquerade: "false"`` leaves out the
        masquerade; ``com.docker.network.driver.mtu: "1400"`` gives the bridge and both ends of
        each container's veth that MTU. ``internal=True`` (``--internal``): no way in or out but the
        bridge itself, ``-p`` ignored.
        """
        self._alive()
        opts = {}
        for key, value in (options or {}).items():
            if key not in NET_OPTIONS:
                raise errors.InvalidName(f"network option {key!r} is not one netteach knows; it knows: "
                                         + ", ".join(NET_OPTIONS))
            if key == MTU_OPTION:  # -o com.docker.network.driver.mtu=1400: both ends of every veth
                if not str(value).isdigit() or not 68 <= int(value) <= 65535:
                    raise errors.InvalidValue(f"network option {key}={value!r}: an MTU is a number of bytes "
                                              "from 68 to 65535, e.g. '1400'")
                opts[key] = str(int(value))
                continue
            if key != "com.docker.network.bridge.name" and str(value).lower() not in ("true", "false"):
                raise errors.InvalidName(f"network option {key}={value!r}: use 'true' or 'false'")
            opts[key] = str(value).lower() if key != "com.docker.network.bridge.name" else str(value)
        custom_bridge = opts.get("com.docker.network.bridge.name")
        if custom_bridge is not None:
            names.ifname(custom_bridge)
            if custom_bridge in ("docker0", "eth0", "lo") or any(
                    n["bridge"] == custom_bridge for k, n in self._nets.items() if k != name):
                raise errors.Conflict(f"bridge name {custom_bridge!r} is already in use")
        if not isinstance(name, str) or not _NETNAME.fullmatch(name):
            raise errors.InvalidName(f"network name {name!r} is not allowed: letters, digits, '_', '.', '-'")
        if name in ("host", "none"):
            raise errors.Conflict(f"{name!r} is a pre-defined network mode, not a network you can create")
        want_subnet = None
        if subnet is not None:
            if not isinstance(subnet, str):
                raise errors.InvalidAddress(f"subnet {subnet!r}: give it as a string, e.g. '10.10.0.0/24'")
            try:
                want_subnet = ipaddress.ip_network(subnet)
            except ValueError:
                raise errors.InvalidAddress(f"subnet {subnet!r} is not a network like '10.10.0.0/24' "
                                            "(host bits must be zero)") from None
            if want_subnet.version != 4 or want_subnet.prefixlen > 30:
                raise errors.InvalidAddress(f"subnet {subnet!r}: use an IPv4 network of /30 or larger")
        if name in self._nets:
            n = self._nets[name]
            if ((want_subnet is None or str(want_subnet) == n["subnet"]) and gateway in (None, n["gateway"])
                    and opts == n.get("options", {}) and bool(internal) == n.get("internal", False)):
                self._network_in_kernel(name)  # a re-run cell: the kernel may lack it (a killed owner)
                return n["bridge"]
            raise errors.Conflict(f"network with name {name} already exists (subnet {n['subnet']})")
        net = want_subnet or ipaddress.ip_network(self._free_subnet())
        other = self._overlap(net)
        if other:
            raise errors.Conflict(f"subnet {net} overlaps {other if other.startswith('the') else 'network ' + repr(other)}"
                                  " (docker: Pool overlaps with other one on this address space)")
        gw = names.address(gateway) if gateway is not None else next(net.hosts())
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise errors.InvalidAddress(f"gateway {gw} is not a usable address of {net}")
        nid = secrets.token_hex(32)
        bridge = custom_bridge or "br-" + nid[:12]
        self._nets[name] = {"id": nid, "bridge": bridge, "subnet": str(net), "gateway": str(gw),
                            "options": opts, "internal": bool(internal),
                            "icc": opts.get("com.docker.network.bridge.enable_icc", "true") == "true",
                            "masquerade": opts.get("com.docker.network.bridge.enable_ip_masquerade", "true") == "true"}
        self._save()
        try:
            self._network_in_kernel(name)
        except BaseException:
            self._nets.pop(name, None)
            self._save()
            self.delete_link(HOST, bridge)
            raise
        return bridge

    def _network_in_kernel(self, name: str):
        """The network's bridge, up, with its gateway address, and the rules: made where missing."""
        n = self._nets[name]
        self.add_bridge(n["bridge"])
        if n.get("options", {}).get(MTU_OPTION):
            self.set_mtu(HOST, n["bridge"], int(n["options"][MTU_OPTION]))
        self.add_addr(HOST, n["bridge"], f"{n['gateway']}/{ipaddress.ip_network(n['subnet']).prefixlen}")
        self.set_up(HOST, n["bridge"])
        self._apply_rules()

    @_serialised
    def network_rm(self, name: str) -> None:
        """``docker network rm NAME``: refused while containers are attached, like Docker."""
        n = self._net(name)
        if n.get("default"):
            raise errors.Conflict(f"{name} is a pre-defined network and cannot be removed")
        users = [c for c, cc in self._ctrs.items() if name in cc["endpoints"]]
        if users:
            raise errors.Conflict(f"error while removing network: network {name} id {n['id'][:12]} has "
                                  f"active endpoints ({', '.join(users)}) - dh.network_disconnect or dh.rm them first")
        self.delete_link(HOST, n["bridge"])
        del self._nets[name]
        self.__dict__.get("_taken_cache", {}).pop(name, None)
        self.__dict__.get("_ipam_hint", {}).pop(name, None)
        self._save()
        self._apply_rules()

    def networks(self):
        """``docker network ls`` (plus subnet and gateway)."""
        rows = [("NETWORK ID", "NAME", "DRIVER", "BRIDGE", "SUBNET", "GATEWAY")]
        rows.append(("-", "host", "host", "-", "-", "-"))
        rows.append(("-", "none", "null", "-", "-", "-"))
        for name, n in self._nets.items():
            rows.append((n["id"][:12], name, "bridge" + (" (internal)" if n.get("internal") else ""),
                         n["bridge"], n["subnet"], n["gateway"]))
        return _table(rows)

    # ---- containers ----------------------------------------------------------------------

    def _ctr(self, name: str) -> dict:
        if not isinstance(name, str):
            raise errors.InvalidName(f"container {name!r}: give a container's name as a string, e.g. 'web'")
        if name not in self._ctrs:
            raise errors.NoSuchContainer(f"no such container: {name!r} (it has: "
                                         f"{', '.join(self._ctrs) or 'none'}) - start it with dh.run({name!r})")
        return self._ctrs[name]

    def _taken(self, network: str) -> set:
        """Addresses in use on a network (the gateway's too), kept in step by _attach/_detach."""
        cache = self.__dict__.setdefault("_taken_cache", {})
        if network not in cache:
            n = self._nets[network]
            cache[network] = {n["gateway"]} | {c["endpoints"][network]["ip"] for c in self._ctrs.values()
                                               if network in c["endpoints"]}
        return cache[network]

    def _release(self, network: str, ip: str):
        self._taken(network).discard(ip)
        hints = self.__dict__.setdefault("_ipam_hint", {})
        hints[network] = min(hints.get(network, 1 << 32), int(ipaddress.IPv4Address(ip)))

    def _allocate(self, network: str, want: str | None) -> str:
        n = self._nets[network]
        net = ipaddress.ip_network(n["subnet"])
        taken = self._taken(network)
        if want is not None:
            ip = names.address(want)
            if ip not in net or ip in (net.network_address, net.broadcast_address):
                raise errors.InvalidAddress(f"no configured subnet contains IP address {ip} "
                                            f"(network {network} is {net})")
            if str(ip) in taken:
                who = next((c for c, cc in self._ctrs.items()
                            if cc["endpoints"].get(network, {}).get("ip") == str(ip)), "the gateway")
                raise errors.Conflict(f"address {ip} is already in use on {network} (by {who})")
            return str(ip)
        # Docker's IPAM: the lowest free address, so freed ones are reused. Below the hint
        # every address is taken, so the search starts there (releases lower the hint).
        hints = self.__dict__.setdefault("_ipam_hint", {})
        ip = ipam.lowest_free(n["subnet"], taken, hints.get(network))
        if ip is None:
            raise errors.Conflict(f"no available IPv4 addresses on network {network} ({net})")
        hints[network] = int(ipaddress.IPv4Address(ip))
        return ip

    @_serialised
    def run(self, name: str, network: str = "bridge", publish: dict | None = None, ip: str | None = None,
            mac: str | None = None, serve: int | None = None, dns: list | None = None,
            hostname: str | None = None, add_host: dict | None = None,
            aliases: list | None = None) -> "Container":
        """``docker run -d --name NAME [--network N] [-p H:C] [--ip] [--mac-address] ...``.

        ``network`` is ``"bridge"`` (default), a user-defined network, ``"host"``,
        ``"none"`` or ``"container:<name>"``. ``publish={8080: 80}`` is ``-p 8080:80``;
        Docker's strings work too: ``publish=["8080:80", "127.0.0.1:8081:80"]``.
        ``aliases=["db-api"]`` is ``--network-alias db-api`` (user-defined networks only).
        ``serve=80`` starts a small web server on port 80 inside. Running the same
        cell again returns the running container.
        """
        self._alive()
        names.netns(name)
        if name in (HOST, INTERNET):
            raise errors.Conflict(f"{name!r} is a name the lab uses for itself; pick another container name")
        _check_run_args(network, None, ip, mac, serve, dns, hostname, add_host)
        if aliases is not None and (isinstance(aliases, str) or not isinstance(aliases, (list, tuple))):
            raise errors.InvalidValue(f"aliases={aliases!r}: give a list of names, e.g. aliases=['db-api']")
        publish, port_ips = self._parse_publish(publish)
        spec = {"network": network, "publish": {str(k): v for k, v in (publish or {}).items()},
                "ip": ip, "mac": mac, "serve": serve, "dns": list(dns or []), "hostname": hostname,
                "add_host": dict(add_host or {})}
        if port_ips:
            spec["port_ips"] = port_ips
        if aliases:
            for a in aliases:
                names.netns(a)  # a DNS label: letters, digits, '-', '.'
            spec["aliases"] = list(aliases)
        if name in self._ctrs:
            if self._ctrs[name]["spec"] == spec:
                if self._container_in_kernel(name):
                    return Container(self, name)
                # the model ran ahead of the kernel (its owner was killed mid-cell): make it again
                self._remove_container(name)
                return self.run(name, network=network, publish=publish, ip=ip, mac=mac, serve=serve,
                                dns=dns, hostname=hostname, add_host=add_host, aliases=aliases)
            raise errors.Conflict(f'the container name "{name}" is already in use by a container with '
                                  f"other options - remove it first with dh.rm({name!r})")
        mode, netns = self._mode(network)
        if aliases and (mode != "bridge" or not self._user_net(network)):
            raise errors.InvalidName("network-scoped aliases are supported only for containers in "
                                     "user-defined networks")
        if mode == "bridge" and self._nets[network].get("internal"):
            publish, port_ips = {}, {}  # docker ignores -p on an internal network, silently
        ports = self._check_publish(publish, mode)
        if serve is not None:
            _port(serve)
        for where, port in [(HOST, int(hp)) for hp in ports] + ([(netns, serve)] if serve and netns else []):
            who = self._listener(where, port)
            if who:  # the new server or docker-proxy would die on bind() while the old one still listens
                raise errors.Conflict(f"port {port} is already in use in namespace {where!r} ({who}); "
                                      "docker: bind: address already in use")
        if ip is not None and (mode != "bridge" or not self._user_net(network)):
            raise errors.InvalidAddress("user specified IP address is supported on user defined networks only")
        if mac is not None and (not isinstance(mac, str) or not _MAC.fullmatch(mac.lower())):
            raise errors.InvalidAddress(f"{mac!r} is not a MAC address like '02:42:ac:11:00:99'")
        for server in spec["dns"]:
            names.address(server)
        for hip in spec["add_host"].values():
            names.address(hip)
        cid = secrets.token_hex(32)
        c = {"id": cid, "mode": mode if mode != "bridge" else network, "netns": netns or name,
             "endpoints": {}, "ports": ports, "hostname": hostname or cid[:12], "dns": spec["dns"],
             "add_host": spec["add_host"], "spec": spec, "server": None, "proxies": [],
             "aliases": {network: list(aliases)} if aliases else {},
             "port_ips": {hp: ip for hp, ip in port_ips.items() if hp in ports}}
        self._ctrs[name] = c
        if netns is None:  # a namespace of its own, and its /etc/netns files: recorded first
            self._claim_netns(name)
            if self._etc_dir(name) not in self._st.files:
                self._st.files.append(self._etc_dir(name))
        self._save()
        try:
            if netns is None:
                self._ensure_netns(name)
                if mode == "none":
                    kernel.links_up(self.kernel_name(name), [1])
                self._log(self._ip(self.kernel_name(name), "link set lo up"))
                if mode == "bridge":
                    self._attach(name, network, ip, mac, default_route=True)
            self._refresh_names(self._peers_of(name) | {name})
            self._save()
            if ports:
                self._apply_rules()
                for host_port, cport in ports.items():
                    log = self._log_path(f"proxy.{host_port}")
                    pid = self.spawn(HOST, [sys.executable, "-m", "netteach.programs.docker_proxy",
                                            host_port, c["endpoints"][network]["ip"], str(cport),
                                            c["port_ips"].get(host_port, "0.0.0.0")], log=log)
                    c["proxies"].append(pid)
                    self._save()
                    self._wait_listening(pid, int(host_port), log=log,
                                         what=f"docker-proxy for port {host_port}")
            if serve is not None:
                c["server"] = self.serve(c["netns"], serve, name=name)
                self._save()
        except BaseException:
            self._remove_container(name)
            raise
        return Container(self, name)

    def _container_in_kernel(self, name: str) -> bool:
        """Does the kernel hold what the model says of this container (namespace, links, addresses,
        processes)? Asked when a cell runs ``dh.run`` again."""
        c = self._ctrs[name]
        if c["netns"] == name:
            kns = self.kernel_name(name)
            if kns not in self._st.netns or not kernel.netns_exists(kns):
                return False
            if c["endpoints"]:
                have = {a["address"] for a in kernel.dump(kns)["addrs"]}
                if any(ep["ip"] not in have for ep in c["endpoints"].values()):
                    return False
                if None in kernel.links_get(self._host(), [ep["veth"] for ep in c["endpoints"].values()]):
                    return False
            elif self._mode(c["spec"]["network"])[0] == "bridge":
                return False  # never attached
        procs = {p["pid"]: p for p in self._st.procs if p.get("pid")}
        pids = ([c["server"]] if c["spec"]["serve"] else []) + list(c.get("proxies", []))
        if (c["spec"]["serve"] and not c["server"]) or len(c.get("proxies", [])) != len(c["ports"]):
            return False
        return all(pid in procs and kernel.alive(pid, procs[pid]["start"]) for pid in pids)

    def _mode(self, network: str):
        """(mode, namespace to share or None)."""
        if network == "host":
            return "host", HOST
        if network == "none":
            return "none", None
        if isinstance(network, str) and network.startswith("container:"):
            other = network.split(":", 1)[1]
            return f"container:{other}", self._ctr(other)["netns"]
        if isinstance(network, str) and network in self._nets:
            return "bridge", None
        if isinstance(network, str) and ":" in network:
            raise errors.InvalidName(f"network mode {network!r} does not exist; use 'bridge', 'host', "
                                     "'none', 'container:<name>' or a network's name")
        self._net(network)  # raises NoSuchNetwork

    def _listener(self, netns: str, port: int) -> str | None:
        """Who the model says already listens on ``port`` inside lab namespace ``netns``."""
        for cname, c in self._ctrs.items():
            if c["netns"] == netns and c["spec"]["serve"] == port:
                return f"container {cname!r} serves it"
            if netns == HOST and str(port) in c["ports"]:
                return f"the docker-proxy of container {cname!r}"
        return None

    @staticmethod
    def _parse_publish(publish) -> tuple:
        """``{8080: 80}`` or Docker's ``["8080:80", "127.0.0.1:8081:80"]`` -> ({host: ctr}, {host: ip})."""
        if publish is None or isinstance(publish, dict):
            return publish, {}
        if isinstance(publish, str):
            publish = [publish]
        if not isinstance(publish, (list, tuple)):
            raise errors.InvalidValue(f"publish={publish!r}: give {{8080: 80}} or Docker's ['8080:80'] "
                                      "(docker run -p 8080:80)")
        ports, ips = {}, {}
        for item in publish:
            m = _PUBLISH.match(str(item))
            if not m:
                raise errors.InvalidName(f"-p {item!r}: use 'HOST:CONTAINER' or 'IP:HOST:CONTAINER', "
                                         "e.g. '8080:80' or '127.0.0.1:8081:80' (TCP only)")
            ports[int(m["host"])] = int(m["ctr"])
            if m["ip"] and m["ip"] != "0.0.0.0":
                ips[m["host"]] = str(names.address(m["ip"]))
        return ports, ips

    def _check_publish(self, publish, mode) -> dict:
        if publish is not None and not isinstance(publish, dict):
            raise errors.InvalidValue(f"publish={publish!r}: give a dict of host port to container port, "
                                        "e.g. publish={8080: 80} (docker run -p 8080:80)")
        if not publish:
            return {}
        if mode != "bridge":
            raise errors.Conflict(f"publish only works on bridge networks; with network mode {mode!r} "
                                  "there is nothing to publish (docker ignores or refuses -p there)")
        used = {hp: c for c, cc in self._ctrs.items() for hp in cc["ports"]}
        out = {}
        for hp, cp in publish.items():
            _port(hp), _port(cp)
            if str(hp) in used:
                raise errors.Conflict(f"Bind for 0.0.0.0:{hp} failed: port is already allocated "
                                      f"(published by {used[str(hp)]!r})")
            out[str(hp)] = cp
        return out

    def _attach(self, cname: str, network: str, ip=None, mac=None, default_route=False):
        """The endpoint: veth with its host end on the network's bridge, eth<N> inside, address, route."""
        n = self._net(network)
        c = self._ctrs[cname]
        host, ckns = self._host(), self.kernel_name(cname)
        ifname = f"eth{len(c['endpoints'])}"
        while any(e["ifname"] == ifname for e in c["endpoints"].values()):
            ifname = f"eth{int(ifname[3:]) + 1}"
        addr = self._allocate(network, ip)
        prefix = ipaddress.ip_network(n["subnet"]).prefixlen
        mac = (mac or docker_mac(addr)).lower()
        veth = "veth" + secrets.token_hex(4)[:7]
        # the model is saved by the caller; the veth lives in lab namespaces, removed with them
        c["endpoints"][network] = {"ip": addr, "mac": mac, "ifname": ifname, "veth": veth,
                                   "gateway": default_route}
        self._taken(network).add(addr)
        # one request makes the pair, enslaved and up, with eth<N> already inside (as dockerd does)
        kernel.veth_add(host, veth, ifname, peer_ns=ckns, up=True, master=n["bridge"],
                        peer_mac=mac)
        mtu = n.get("options", {}).get(MTU_OPTION)
        if mtu:  # the network's MTU on both ends, as libnetwork's bridge driver makes the pair
            kernel.link_set(host, veth, mtu=int(mtu))
            kernel.link_set(ckns, ifname, mtu=int(mtu))
        kernel.configure(ckns, ifname, f"{addr}/{prefix}", gateway=n["gateway"] if default_route else None)
        self._log(self._ip(host, f"link add {veth} type veth peer name {ifname} netns {ckns}"
                           + (f" mtu {mtu}" if mtu else "")))
        self._log(self._ip(host, f"link set {veth} master {n['bridge']} up"))
        self._log(self._ip(ckns, f"link set {ifname} address {mac} up"))
        self._log(self._ip(ckns, f"addr add {addr}/{prefix} dev {ifname}"))
        if default_route:
            self._log(self._ip(ckns, f"route add default via {n['gateway']}"))

    def _detach(self, cname: str, network: str):
        c = self._ctrs[cname]
        ep = c["endpoints"].pop(network)
        self._release(network, ep["ip"])
        if kernel.link_delete(self._host(), ep["veth"]):  # the default route through it goes too
            self._log(self._ip(self._host(), f"link delete {ep['veth']}"))
        self._update_gateway(cname)
        self._save()

    def _gateway_network(self, cname: str) -> str | None:
        """The network whose gateway is the container's default route, chosen as dockerd does.

        libnetwork sorts a container's endpoints (``Endpoint.Less``): by priority
        (netteach has none: all equal), endpoints on the swarm gateway network
        last (none here), internal networks last, then by network name; the
        first endpoint with a gateway gives the default route. So after
        ``docker network connect backend web`` a container of the default
        ``bridge`` network routes through ``backend`` ("backend" < "bridge").

        >>> sorted(["bridge", "backend"])[0]
        'backend'
        """
        eps = self._ctrs[cname]["endpoints"]
        order = sorted(eps, key=lambda n: (bool(self._nets[n].get("internal")), n))
        return next((n for n in order if not self._nets[n].get("internal")), None)

    def _update_gateway(self, cname: str):
        """Point the default route at the gateway of :meth:`_gateway_network` (as dockerd re-sorts
        a container's endpoints whenever one joins or leaves)."""
        c = self._ctrs[cname]
        want = self._gateway_network(cname)
        now = next((n for n, ep in c["endpoints"].items() if ep.get("gateway")), None)
        if want == now:
            return
        ckns = self.kernel_name(cname)
        if now is not None:
            c["endpoints"][now]["gateway"] = False
            if kernel.route_delete(ckns, "0.0.0.0/0"):
                self._log(self._ip(ckns, "route del default"))
        if want is not None:
            ep, gw = c["endpoints"][want], self._nets[want]["gateway"]
            ep["gateway"] = True
            kernel.route_add(ckns, "0.0.0.0/0", via=gw, dev=ep["ifname"])
            self._log(self._ip(ckns, f"route add default via {gw} dev {ep['ifname']}"))


    @_serialised
    def network_connect(self, network: str, container: str, aliases: list | None = None) -> None:
        """``docker network connect [--alias A] NETWORK CONTAINER``: one more interface (eth1, ...)."""
        self._net(network)
        c = self._ctr(container)
        if aliases:
            if not self._user_net(network):
                raise errors.InvalidName("network-scoped aliases are supported only for containers in "
                                         "user-defined networks")
            for a in aliases:
                names.netns(a)
        if c["netns"] != container or c["mode"] == "none":
            raise errors.Conflict(f"container {container!r} uses network mode {c['mode']!r}; only "
                                  "containers on bridge networks can be connected to more networks")
        if network in c["endpoints"]:
            return
        if aliases:
            c.setdefault("aliases", {})[network] = list(aliases)
        self._attach(container, network)
        self._update_gateway(container)
        self._save()
        self._refresh_names(self._peers_of(container) | {container})

    @_serialised
    def network_disconnect(self, network: str, container: str) -> None:
        """``docker network disconnect NETWORK CONTAINER``."""
        self._net(network)
        c = self._ctr(container)
        if network not in c["endpoints"]:
            raise errors.Conflict(f"container {container!r} is not connected to network {network!r}")
        if c["ports"] and next(iter(c["endpoints"])) == network:
            raise errors.Conflict(f"container {container!r} publishes ports through {network!r}; "
                                  "remove the container instead")
        peers = self._peers_of(container)
        c.get("aliases", {}).pop(network, None)  # reconnecting without --alias loses it, as in Docker
        self._detach(container, network)
        self._refresh_names(peers | {container})

    def _remove_container(self, name: str):
        c = self._ctrs.get(name)
        if c is None:
            return
        resolver = [c["resolver"]["pid"]] if c.get("resolver") else []
        for pid in ([c["server"]] if c.get("server") else []) + list(c.get("proxies", [])) + resolver:
            if any(p["pid"] == pid for p in self._st.procs):
                self.kill(pid)
        peers = self._peers_of(name) - {name}
        for network in list(c["endpoints"]):
            ep = c["endpoints"].pop(network)
            self._release(network, ep["ip"])
            kernel.link_delete(self._host(), ep["veth"])
            self._log(self._ip(self._host(), f"link delete {ep['veth']}"))
        del self._ctrs[name]
        self._save()
        if c["netns"] == name:
            kns = self.kernel_name(name)
            if kns in self._st.netns:
                kernel.netns_delete(kns)
                self._st.netns.remove(kns)
                self._log(f"ip netns delete {shlex.quote(kns)}")
            self._remove_files(name)
            self._save()
            kernel.remove_path(f"/run/netteach/{self.name}.dns/{name}.json")
        if c["ports"]:
            self._apply_rules()
        self._refresh_names(peers)

    @_serialised
    def rm(self, name: str) -> None:
        """``docker rm -f NAME``: stop its processes, remove its namespace, free its addresses."""
        self._ctr(name)
        users = [o for o, oc in self._ctrs.items() if oc["mode"] == f"container:{name}"]
        if users:
            raise errors.Conflict(f"containers {', '.join(users)} share {name!r}'s network namespace "
                                  f"(network='container:{name}'); remove them first")
        self._remove_container(name)

    # ---- looking at it -------------------------------------------------------------------

    def containers(self) -> list[str]:
        return list(self._ctrs)

    def _kns_of(self, who: str):
        """Kernel namespace of a container, "host" or "internet"."""
        if not isinstance(who, str):
            raise errors.InvalidName(f"{who!r}: give a container's name, 'host' or 'internet' as a string")
        if who in (HOST, INTERNET):
            return self.kernel_name(who)
        return self.kernel_name(self._ctr(who)["netns"])

    def exec(self, netns: str, command, timeout: float = 10, input: str | None = None):
        """``docker exec CONTAINER COMMAND`` (also ``"host"`` and ``"internet"``)."""
        if isinstance(netns, str) and netns in self._ctrs:
            from netteach.lab import _exec_args

            _exec_args(command, timeout, input)
            return probe.run(netns, self._kns_of(netns), command, timeout=timeout, input=input)
        if netns not in (HOST, INTERNET):
            self._ctr(netns)  # NoSuchContainer, naming the containers there are
        return super().exec(netns, command, timeout=timeout, input=input)

    def _addresses(self, who: str) -> list[tuple[str | None, str]]:
        """[(network, ip)] by which ``who`` can be addressed."""
        if who == HOST:
            return [(None, UPLINK[0].split("/")[0])]
        if who == INTERNET:
            return [(None, INTERNET_SERVER.split("/")[0])]
        c = self._ctr(who)
        if c["mode"] == "host":
            return self._addresses(HOST)
        if c["mode"].startswith("container:"):
            return self._addresses(c["mode"].split(":", 1)[1])
        return [(n, ep["ip"]) for n, ep in c["endpoints"].items()]

    def _target(self, src: str, dst: str, _known: dict | None = None) -> str | None:
        """The address ``src`` would use for ``dst``: its address on a shared network, else its first
        one; None if ``dst`` has no address (network none). ``_known``: addresses already looked up."""
        try:
            return str(ipaddress.ip_address(dst))
        except ValueError:
            pass
        known = {} if _known is None else _known
        for who in (src, dst):
            if who not in known:
                known[who] = self._addresses(who)
        mine = {n for n, _ in known[src]} if src in self._ctrs else set()
        for n, a in known[dst]:
            if n in mine:
                return a
        return known[dst][0][1] if known[dst] else None

    def _require_target(self, src, dst) -> str:
        target = self._target(src, dst)
        if target is None:
            raise errors.Conflict(f"container {dst!r} has no address (network mode none): nothing can reach it")
        return target

    def ping(self, src: str, dst: str, count: int = 1, timeout: float = 2) -> probe.PingResult:
        """``docker exec SRC ping DST``: DST is a container, "host", "internet" or an address."""
        kns = self._kns_of(src)
        if not isinstance(dst, str):
            raise errors.InvalidName(f"ping target {dst!r}: a container's name, 'host', 'internet' or an address")
        target = names.ping_target(self._require_target(src, dst))
        return probe.ping(src, kns, target, count=names.count(count), timeout=names.seconds(timeout, most=60))

    def http_get(self, src: str, dst: str, port: int = 80, timeout: float = 2) -> probe.HttpResult:
        """``curl http://DST:PORT/`` from SRC (a container, "host" or "internet")."""
        kns = self._kns_of(src)
        if not isinstance(dst, str):
            raise errors.InvalidName(f"destination {dst!r}: a container's name, 'host', 'internet' or an address")
        return probe.http_get_many([(src, kns, self._require_target(src, dst), _port(port))],
                                   names.seconds(timeout, most=60))[0]

    def trace(self, src: str, dst: str, port: int | None = None, proto: str | None = None):
        """One real packet from SRC (a container, "host" or "internet") to DST, hop by hop as the kernel saw it.

        ``dh.trace("internet", "host", 8080)``: a TCP SYN to the published port,
        through the DNAT, the bridge and FORWARD, to the container. See
        :meth:`Lab.trace <netteach.lab.Lab.trace>`.
        """
        from netteach import trace

        trace.check_request(port, proto)
        label = src if src in (HOST, INTERNET) else self._ctr(src)["netns"]
        return trace.run(self, src, dst, port=port, proto=proto, src_label=label,
                         addr=self._require_target(src, dst))

    def reachability(self, timeout: float = 1, among: list | None = None) -> "Reachability":
        """Who can reach whom: ping between every pair, and HTTP to every served or published port.

        ``among=["web", "db", "internet"]`` limits the matrix to those (published ports count
        when ``"host"`` is among them).

        Every pair gets a real ICMP echo from its source namespace (as ``ping``
        sends it) and every service a real ``GET /``, source by source with
        bounded resources (see :mod:`netteach.kernel.reach`), so the answer is
        right at 300 containers too. The neighbour (ARP) entries the probes
        make are removed again as it goes: the machine's neighbour table is
        shared by every namespace and small.
        """
        who = list(self._ctrs) + [HOST, INTERNET]
        if among is not None:
            for name in among:
                if name not in who:
                    self._ctr(name)  # raises NoSuchContainer, listing what there is
            who = [w for w in who if w in among]
        from netteach.progress import Progress

        known: dict = {}  # each one's addresses, looked up once (90,000 pairs at 300 containers)
        targets = {(s, d): self._target(s, d, known) for s in who for d in who if s != d}
        pings = [pair for pair, t in targets.items() if t is not None]
        no_address = {pair: False for pair, t in targets.items() if t is None}
        kns = {w: self._kns_of(w) for w in who}
        services = []  # (column label, dst, port)
        for cname, c in self._ctrs.items():
            if c["spec"]["serve"] and self._addresses(cname) and cname in who:
                services.append((f"{cname}:{c['spec']['serve']}", cname, c["spec"]["serve"]))
        for cname, c in self._ctrs.items():
            for hp in (c["ports"] if HOST in who else []):
                services.append((f"host:{hp}", HOST, int(hp)))
        http_jobs = [(s, label, dst, port) for s in who for label, dst, port in services]
        flush = [self.kernel_name(n) for n in self.namespaces]
        # a bar in a notebook when it takes a while (tens of containers), nothing in a script
        with Progress(len(pings) + len(http_jobs), "reachability") as bar:
            ping_res, http_res = probe.reach_many(
                [(kns[s], targets[(s, d)]) for s, d in pings],
                [(s, kns[s], self._target(s, dst, known), port) for s, _, dst, port in http_jobs],
                timeout=timeout, http_timeout=timeout + 1, flush=flush)
            bar.advance(len(pings) + len(http_jobs))
        return Reachability(
            sources=who,
            ping={**no_address, **{(s, d): bool(r) for (s, d), r in zip(pings, ping_res)}},
            services=[label for label, _, _ in services],
            http={(s, label): bool(r) for (s, label, _, _), r in zip(http_jobs, http_res)})

    def ps(self):
        """``docker ps``: name, network mode, addresses, published ports."""
        rows = [("CONTAINER ID", "NAME", "NETWORK", "ADDRESSES", "PORTS")]
        for name, c in self._ctrs.items():
            addrs = ", ".join(f"{ep['ip']} ({n})" for n, ep in c["endpoints"].items()) or "-"
            ports = ", ".join(f"0.0.0.0:{hp}->{cp}/tcp" for hp, cp in c["ports"].items())
            if c["spec"]["serve"] and not ports:
                ports = f"{c['spec']['serve']}/tcp"
            rows.append((c["id"][:12], name, c["mode"], addrs, ports))
        return _table(rows)

    def inspect(self, name: str) -> dict:
        """``docker inspect NAME``, the useful parts, with addresses read back from the kernel."""
        c = self._ctr(name)
        kns = self._kns_of(name)
        state = kernel.dump(kns)  # truth from the kernel: addresses, MACs, the default route
        live = {l["ifname"]: l for l in state["links"]}
        addrs = state["addrs"]
        gateway = next((r["gateway"] for r in state["routes"] if r["dst"] == "default"), None)
        nets = {}
        for net, ep in c["endpoints"].items():
            link = live.get(ep["ifname"], {})
            mine = [a for a in addrs if a["index"] == link.get("index") and a["family"] == 4]
            nets[net] = {"NetworkID": self._nets[net]["id"], "EndpointID": ep["veth"],
                         "Gateway": self._nets[net]["gateway"],
                         "IPAddress": mine[0]["address"] if mine else "",
                         "IPPrefixLen": mine[0]["prefixlen"] if mine else 0,
                         "MacAddress": link.get("mac", ""),
                         "Aliases": ([c["id"][:12]] + list(c.get("aliases", {}).get(net, [])))
                         if self._user_net(net) else None}
        first = next(iter(nets.values()), {})
        return {
            "Id": c["id"], "Name": "/" + name,
            "Config": {"Hostname": c["hostname"]},
            "HostConfig": {"NetworkMode": c["mode"] if c["mode"] != "bridge" else "bridge",
                           "PortBindings": {f"{cp}/tcp": [{"HostIp": "", "HostPort": hp}]
                                            for hp, cp in c["ports"].items()}},
            "NetworkSettings": {
                "SandboxKey": f"/run/netns/{kns}" if kns else "/proc/1/ns/net",
                "Ports": {f"{cp}/tcp": [{"HostIp": "0.0.0.0", "HostPort": hp}] for hp, cp in c["ports"].items()},
                "Gateway": gateway or "", "IPAddress": first.get("IPAddress", ""),
                "MacAddress": first.get("MacAddress", ""), "Networks": nets},
        }


def _check_run_args(network, publish, ip, mac, serve, dns, hostname, add_host):
    """``dh.run`` arguments, each of the right kind, before anything is recorded or made."""
    if not isinstance(network, str):
        raise errors.InvalidName(f"network={network!r}: give one network as a string ('bridge', 'host', "
                                 "'none', 'container:<name>' or a network's name)")
    if ip is not None:
        names.address(ip)
    if mac is not None and not isinstance(mac, str):
        raise errors.InvalidAddress(f"mac={mac!r}: give a MAC address as a string like '02:42:ac:11:00:99'")
    if serve is not None:
        names.port(serve)
    if dns is not None and (isinstance(dns, str) or not isinstance(dns, (list, tuple))):
        raise errors.InvalidValue(f"dns={dns!r}: give a list of addresses, e.g. dns=['198.51.100.1']")
    for server in dns or []:
        names.address(server)
    if hostname is not None:
        names.hostname(hostname, "hostname")
    if add_host is not None and not isinstance(add_host, dict):
        raise errors.InvalidValue(f"add_host={add_host!r}: give a dict of name to address, "
                                    "e.g. add_host={'db.local': '10.10.0.5'} (docker run --add-host)")
    for hname, hip in (add_host or {}).items():
        names.hostname(hname, "add_host name")
        names.address(hip)


class Container(str):
    """What ``dh.run`` returns: the container's name, with a few conveniences.

    >>> Container.__mro__[1] is str
    True
    """

    def __new__(cls, dh, name):
        self = super().__new__(cls, name)
        self.dh = dh
        return self

    @property
    def ip(self) -> str | None:
        a = self.dh._addresses(str(self))
        return a[0][1] if a else None

    def exec(self, command, timeout: float = 10):
        return self.dh.exec(str(self), command, timeout=timeout)

    def __repr__(self):
        c = self.dh._ctrs.get(str(self))
        if c is None:
            return f"<Container {str(self)} (removed)>"
        addrs = " ".join(ep["ip"] for ep in c["endpoints"].values())
        ports = " ".join(f"{hp}->{cp}" for hp, cp in c["ports"].items())
        return f"<Container {str(self)} {c['mode']} {addrs} {ports}".rstrip() + ">"


class Reachability:
    """Who reaches whom. ``r.ping[(a, b)]`` and ``r.http[(a, "web:80")]`` are booleans."""

    def __init__(self, sources, ping, services, http):
        self.sources, self.ping, self.services, self.http = sources, ping, services, http

    def can_ping(self, src, dst) -> bool:
        return self.ping[(src, dst)]

    def can_get(self, src, service) -> bool:
        return self.http[(src, service)]

    def table(self) -> str:
        mark = {True: "yes", False: "-", None: ""}
        rows = [("ping: from \\ to", *self.sources)]
        for s in self.sources:
            rows.append((s, *(mark[self.ping.get((s, d))] if s != d else "." for d in self.sources)))
        text = str(_table(rows))
        if self.services:
            rows = [("http: from \\ to", *self.services)]
            for s in self.sources:
                rows.append((s, *(mark[self.http[(s, svc)]] for svc in self.services)))
            text += "\n\n" + str(_table(rows))
        return text

    def __repr__(self):
        return self.table()

    def _repr_pretty_(self, p, cycle):
        p.text(self.table())

    def _repr_html_(self):
        def grid(title, cols, get):
            head = "".join(f"<th>{c}</th>" for c in cols)
            body = ""
            for s in self.sources:
                cells = ""
                for c in cols:
                    v = get(s, c)
                    color = "#cfe8cf" if v else ("#f3d0d0" if v is False else "#eee")
                    cells += f'<td style="background:{color};text-align:center">{"yes" if v else ("no" if v is False else "")}</td>'
                body += f"<tr><th style='text-align:left'>{s}</th>{cells}</tr>"
            return f"<table><caption>{title}</caption><tr><th>from \\ to</th>{head}</tr>{body}</table>"

        html = grid("ping", self.sources, lambda s, d: None if s == d else self.ping[(s, d)])
        if self.services:
            html += grid("http", self.services, lambda s, c: self.http[(s, c)])
        return html


def _table(rows) -> _Text:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return _Text("\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows))
