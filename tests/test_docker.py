"""DockerHost against the real kernel: for each behaviour, what the kernel holds (`ip -j`, `nft`)
and what traffic does. Read-only checks share one scene built once per module; tests that
change things build their own small DockerHost."""

from __future__ import annotations

import copy
import json
import os
import re
import time

import pytest

import netteach as nt
from tests.conftest import needs_root, netteach_leftovers, sh

pytestmark = [needs_root, pytest.mark.kernel]

HEX12, HEX7 = re.compile(r"^br-[0-9a-f]{12}$"), re.compile(r"^veth[0-9a-f]{7}$")


# ---- reading the kernel ------------------------------------------------------------------

def ipj(kns: str, *args: str):
    """`ip -j -n NS ...` parsed: the kernel's own answer, not netteach's."""
    return json.loads(sh(f"ip -j -n {kns} " + " ".join(args)) or "[]")


def links(kns) -> dict:
    return {l["ifname"]: l for l in ipj(kns, "-d", "link", "show")}


def addrs(kns, ifname) -> list[str]:
    return [f"{a['local']}/{a['prefixlen']}" for l in ipj(kns, "addr", "show", "dev", ifname)
            for a in l["addr_info"] if a["family"] == "inet"]


def default_gw(kns):
    return next((r.get("gateway") for r in ipj(kns, "route", "show") if r["dst"] == "default"), None)


def nft_chains(kns) -> dict:
    """{(table, chain): chain object} from `nft -j list ruleset` inside ``kns``."""
    out = json.loads(sh(f"ip netns exec {kns} nft -j list ruleset"))["nftables"]
    return {(o["chain"]["table"], o["chain"]["name"]): o["chain"] for o in out if "chain" in o}


def nft_rules(kns) -> dict:
    """{(table, chain): [rule, ...]} from `nft -s list ruleset` (no counter values) inside ``kns``."""
    rules, table, chain = {}, None, None
    for line in sh(f"ip netns exec {kns} nft -s list ruleset").splitlines():
        line = line.strip()
        if m := re.match(r"table ip (\S+) \{", line):
            table = m.group(1)
        elif m := re.match(r"chain (\S+) \{", line):
            chain = m.group(1)
            rules[(table, chain)] = []
        elif line and line != "}" and not line.startswith("type "):
            rules[(table, chain)].append(re.sub(r"\bcounter ", "", line))
    return rules


def drop_counter(kns, bridge) -> int:
    """Packets counted by DOCKER-ISOLATION-STAGE-2's `oifname BRIDGE drop`."""
    out = json.loads(sh(f"ip netns exec {kns} nft -j list chain ip filter DOCKER-ISOLATION-STAGE-2"))
    for o in out["nftables"]:
        exprs = o.get("rule", {}).get("expr", [])
        if {"drop": None} in exprs and any(e.get("match", {}).get("right") == bridge for e in exprs):
            return next(e["counter"]["packets"] for e in exprs if "counter" in e)
    raise AssertionError(f"no drop rule for {bridge}")


def netns_inode(kns) -> int:
    return os.stat(f"/run/netns/{kns}").st_ino


def running(pid: int, start: int | None) -> bool:
    """Is this exact process alive (not a zombie, same start time)? Read from /proc directly."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z" and (start is None or int(fields[19]) == start)


def lab_files(lab: str) -> list[str]:
    return [d for d in (os.listdir("/etc/netns") if os.path.isdir("/etc/netns") else [])
            if d.startswith(f"nt-{lab}.")]


def lab_netns(lab: str) -> list[str]:
    return sorted(n for n in sh("ip netns list").split() if n.startswith(f"nt-{lab}."))


def assert_gone(dh, name, procs):
    """Nothing of DockerHost ``dh`` (already destroyed) is left: netns, files, state, processes."""
    assert netteach_leftovers(name) == []
    assert lab_netns(name) == []
    assert lab_files(name) == []
    for p in procs:
        assert not running(p["pid"], p["start"]), f"process {p['argv']} (pid {p['pid']}) still runs"


# ---- one scene for the read-only checks ----------------------------------------------------

BRIDGE = {"w1", "w2", "web", "side"}  # containers on the default bridge (side shares web's namespace)
NETS = {"w1": {"bridge"}, "w2": {"bridge"}, "web": {"bridge", "backend"}, "side": {"bridge", "backend"},
        "db": {"backend"}, "api": {"backend"}, "f1": {"front"}}
HOSTISH = {"host", "hostc"}  # hostc runs with network="host"


@pytest.fixture(scope="module")
def scene():
    """w1 (serves 80), w2, web (-p 8080:80, serves 80) on the default bridge; backend 10.10.0.0/24
    with db, api (serves 80) and web connected too; front (automatic subnet) with f1; lonely
    (none), side (container:web), hostc (host)."""
    name = f"dk{os.getpid() % 1000}s"
    dh = nt.DockerHost(name)
    try:
        dh.run("w1", serve=80)
        dh.run("w2")
        dh.run("web", publish={8080: 80}, serve=80)
        dh.network_create("backend", subnet="10.10.0.0/24")
        dh.run("db", network="backend")
        dh.run("api", network="backend", serve=80)
        dh.network_connect("backend", "web")
        dh.network_create("front")
        dh.run("f1", network="front")
        dh.run("lonely", network="none")
        dh.run("side", network="container:web")
        dh.run("hostc", network="host")
        yield dh
    finally:
        procs = list(dh._st.procs)
        dh.destroy()
    assert_gone(dh, name, procs)


@pytest.fixture(scope="module")
def reach(scene):
    return scene.reachability()


def kns(dh, who):
    return dh.kernel_name(who)


def expected_ping(s, d) -> bool:
    if "lonely" in (s, d):
        return False
    if s == "internet":  # no route to any container network: only the host's own address
        return d in HOSTISH
    if d == "internet" or s in HOSTISH or d in HOSTISH:
        return True
    return bool(NETS[s] & NETS[d])


def test_reachability_matches_dockers_rules(scene, reach):
    who = list(scene.containers()) + ["host", "internet"]
    assert reach.sources == who
    wrong = {(s, d): reach.ping[(s, d)] for s in who for d in who
             if s != d and reach.ping[(s, d)] != expected_ping(s, d)}
    assert wrong == {}, reach.table()
    assert sorted(reach.services) == ["api:80", "host:8080", "w1:80", "web:80"]
    for s in who:
        for svc in reach.services:
            dst = svc.split(":")[0]
            want = s != "lonely" if dst == "host" else (s == dst or expected_ping(s, dst))
            assert reach.http[(s, svc)] == want, (s, svc, reach.table())
    assert reach.ping[("web", "w2")] and reach.can_ping("db", "web") and not reach.can_ping("db", "w1")
    assert reach.can_get("internet", "host:8080") and not reach.can_get("internet", "w1:80")


def test_reachability_table_prints(reach):
    text = reach.table()
    assert repr(reach) == text
    ping_part, http_part = text.split("\n\n")
    head, *rows = ping_part.splitlines()
    assert head.split()[:4] == ["ping:", "from", "\\", "to"] and head.split()[4:] == reach.sources
    assert [r.split()[0] for r in rows] == reach.sources
    w1 = next(r.split()[1:] for r in rows if r.split()[0] == "w1")
    assert w1[reach.sources.index("w2")] == "yes" and w1[reach.sources.index("db")] == "-"
    assert w1[reach.sources.index("w1")] == "."
    assert "host:8080" in http_part.splitlines()[0]
    assert "<table>" in reach._repr_html_()


def test_default_bridge_reaches_peers_and_internet_but_not_by_name(scene, reach):
    w1, w2 = kns(scene, "w1"), kns(scene, "w2")
    assert addrs(w1, "eth0") == ["172.17.0.2/16"] and addrs(w2, "eth0") == ["172.17.0.3/16"]
    assert default_gw(w2) == "172.17.0.1"
    assert reach.ping[("w1", "w2")] and reach.ping[("w2", "w1")] and reach.ping[("w2", "internet")]
    assert scene.exec("w2", "ping -c1 -W1 172.17.0.2").ok
    # no name resolution on the default bridge; resolv.conf is the host's
    assert scene.exec("w2", "cat /etc/resolv.conf").stdout == "nameserver 198.51.100.1\n"
    r = scene.exec("w2", "getent hosts w1")
    assert r.returncode == 2 and r.stdout == ""
    assert not scene.exec("w2", "ping -c1 -W1 w1").ok
    # the internet has no route back to 172.17.0.0/16: replies only come back thanks to masquerade
    assert [r["dst"] for r in ipj(kns(scene, "internet"), "route")] == ["198.51.100.0/24", "203.0.113.0/24"]
    assert 'ip saddr 172.17.0.0/16 oifname != "docker0" masquerade' in nft_rules(kns(scene, "host"))[("nat", "POSTROUTING")]


# a DNS query to the lab's resolver: refused (ICMP port unreachable), or "timeout" if no ICMP came
DNS_PROBE = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(8); "
             "s.connect(('198.51.100.1', 53)); s.send(b'\\0' * 12)\n"
             "try:\n    s.recv(512); print('answered')\n"
             "except ConnectionRefusedError:\n    print('refused')\n"
             "except socket.timeout:\n    print('timeout')")


def test_unknown_names_fail_at_once(scene):
    """The host's upstream, a DNS server in the internet at 198.51.100.1, answers NXDOMAIN for
    unknown names: a lookup fails at once from the default bridge (asking it directly), from a user
    network (the embedded DNS forwards and passes the answer on) and from the host."""
    for who in ("w1", "w2", "w1", "web", "host", "db", "w1"):
        assert scene.exec(who, "getent hosts no-such-name").returncode == 2
    assert scene.exec("db", "getent hosts server.example").stdout.split() == ["203.0.113.10", "server.example"]
    r = scene.dig("db", "no-such-name")
    assert "status: NXDOMAIN" in r.stdout and "SERVER: 127.0.0.11#53" in r.stdout


def test_dead_upstream(lab_name, untouched_root):
    """With the upstream stopped, the default bridge's lookups fail at once on the ICMP "port
    unreachable" (not rate-limited by the internet namespace); the embedded DNS, like Docker's,
    sends no reply at all (never SERVFAIL)."""
    import sys

    with nt.DockerHost(lab_name) as dh:
        dh.network_create("appnet")
        dh.run("w1")
        dh.run("u1", network="appnet")
        dh.kill(dh.upstream_dns)
        assert dh.upstream_dns is None
        assert sysctl(kns(dh, "internet"), "net.ipv4.icmp_ratelimit") == "0"
        for _ in range(3):
            r = dh.exec("w1", [sys.executable, "-c", DNS_PROBE])
            assert r.stdout.strip() == "refused", r
            assert dh.exec("w1", "getent hosts no-such-name").returncode == 2
        r = dh.dig("u1", "no-such-name")
        assert r.returncode == 9 and "no servers could be reached" in r.stdout
        assert dh.dig("u1", "w1").returncode == 9, "w1 is on the default bridge: forwarded, unanswered"
    assert netteach_leftovers(lab_name) == []


def test_user_network_resolves_names(scene, reach):
    assert scene.exec("db", "getent hosts web").stdout.split() == ["10.10.0.4", "web"]
    assert scene.exec("db", "getent hosts api").stdout.split() == ["10.10.0.3", "api"]
    assert scene.exec("api", "getent hosts db").stdout.split() == ["10.10.0.2", "db"]
    r = scene.exec("db", "ping -c1 -W1 api")
    assert r.ok and "(10.10.0.3)" in r.stdout
    assert scene.exec("web", "getent hosts db").stdout.split() == ["10.10.0.2", "db"]
    assert "nameserver 127.0.0.11" in scene.exec("db", "cat /etc/resolv.conf").stdout
    assert scene.exec("db", "getent hosts w1").returncode == 2, "w1 is on another network"
    assert reach.ping[("db", "api")] and reach.http[("db", "api:80")]


def test_two_networks_cannot_talk(scene, reach):
    host = kns(scene, "host")
    for s, d in [("db", "w1"), ("w1", "db"), ("f1", "db"), ("db", "f1"), ("w2", "f1"), ("f1", "w2")]:
        assert not reach.ping[(s, d)], (s, d)
    assert not reach.http[("w2", "api:80")] and not reach.http[("f1", "web:80")]
    # the packet is dropped by DOCKER-ISOLATION-STAGE-2 (its counter moves)
    before = drop_counter(host, "docker0")
    assert not scene.ping("db", "172.17.0.2", timeout=1)
    assert drop_counter(host, "docker0") > before


def test_container_on_two_networks_talks_to_both(scene, reach):
    web = kns(scene, "web")
    assert addrs(web, "eth0") == ["172.17.0.4/16"] and addrs(web, "eth1") == ["10.10.0.4/24"]
    assert default_gw(web) == "10.10.0.1"  # dockerd's order: "backend" before "bridge"
    for other in ("w1", "w2", "db", "api"):
        assert reach.ping[("web", other)] and reach.ping[(other, "web")], other
    assert reach.http[("web", "api:80")] and reach.http[("db", "web:80")] and reach.http[("w2", "web:80")]


def test_published_port_from_internet_host_and_hairpin(scene):
    host = kns(scene, "host")
    r = scene.http_get("internet", "host", 8080)
    assert r.status == 200 and r.body == "hello from web (you are 198.51.100.1)\n", "DNAT keeps the source"
    r = scene.http_get("host", "host", 8080)  # OUTPUT chain DNAT
    assert r.status == 200 and r.body.startswith("hello from web")
    assert scene.http_get("host", "127.0.0.1", 8080).body.startswith("hello from web"), "docker-proxy"
    for src in ("w1", "web", "side", "db", "f1"):  # another container, the container itself (hairpin)
        r = scene.http_get(src, "host", 8080)
        assert r.status == 200 and r.body.startswith("hello from web"), (src, r)
    # the kernel: DNAT in the DOCKER chain, jumped to from PREROUTING and OUTPUT, hairpin masquerade
    rules = nft_rules(host)
    assert 'iifname != "docker0" tcp dport 8080 dnat to 172.17.0.4:80' in rules[("nat", "DOCKER")]
    assert "ip saddr 172.17.0.4 ip daddr 172.17.0.4 tcp dport 80 masquerade" in rules[("nat", "POSTROUTING")]
    assert 'ip daddr 172.17.0.4 iifname != "docker0" oifname "docker0" tcp dport 80 accept' in rules[("filter", "DOCKER")]
    # the docker-proxy process listens on 0.0.0.0:8080 in the host's namespace
    proxy = scene._ctrs["web"]["proxies"][0]
    assert os.stat(f"/proc/{proxy}/ns/net").st_ino == netns_inode(host)
    ss = sh(f"ip netns exec {host} ss -Hltnp 'sport = :8080'")
    assert "0.0.0.0:8080" in ss and f"pid={proxy}," in ss


def test_unpublished_port_not_reachable_from_outside(scene, reach):
    assert reach.http[("host", "w1:80")] and reach.http[("w2", "w1:80")], "the server does run"
    assert not reach.http[("internet", "w1:80")] and not reach.http[("internet", "api:80")]
    assert not scene.http_get("internet", "host", 80, timeout=1), "port 80 is not published on the host"
    # even a neighbour with a route to 172.17.0.0/16 gets only to published ports (FORWARD policy drop)
    internet = kns(scene, "internet")
    sh(f"ip -n {internet} route add 172.17.0.0/16 via 198.51.100.2")
    try:
        assert not scene.http_get("internet", "172.17.0.2", 80, timeout=1)
        assert scene.http_get("internet", "172.17.0.4", 80, timeout=1), "classic layout: published = open"
    finally:
        sh(f"ip -n {internet} route del 172.17.0.0/16")


def test_none_has_only_lo(scene, reach):
    lonely = kns(scene, "lonely")
    assert list(links(lonely)) == ["lo"]
    assert "UP" in links(lonely)["lo"]["flags"]
    assert ipj(lonely, "-4", "route") == []
    assert not any(reach.ping[(s, d)] for s in reach.sources for d in reach.sources
                   if s != d and "lonely" in (s, d))
    assert not scene.ping("lonely", "172.17.0.1") and not scene.ping("lonely", "internet")
    with pytest.raises(nt.Conflict, match="no address"):
        scene.ping("w1", "lonely")


def test_container_mode_shares_the_namespace(scene):
    web = kns(scene, "web")
    assert kns(scene, "side") not in sh("ip netns list").split(), "no namespace of its own"
    me = "readlink /proc/self/ns/net"
    assert scene.exec("side", me).stdout == scene.exec("web", me).stdout == f"net:[{netns_inode(web)}]\n"
    assert "172.17.0.4/16" in scene.exec("side", "ip -4 -br addr").stdout
    side = scene.run("side", network="container:web")
    assert side.ip == "172.17.0.4" and repr(side) == "<Container side container:web>"
    assert scene.inspect("side")["NetworkSettings"]["SandboxKey"] == f"/run/netns/{web}"


def test_host_mode_sees_the_hosts_interfaces(scene):
    host = kns(scene, "host")
    me = "readlink /proc/self/ns/net"
    assert scene.exec("hostc", me).stdout == f"net:[{netns_inode(host)}]\n"
    seen = {l.split()[0].split("@")[0] for l in scene.exec("hostc", "ip -br link").stdout.splitlines()}
    assert seen == set(links(host)) and {"docker0", "eth0"} <= seen
    assert "198.51.100.2/24" in scene.exec("hostc", "ip -4 -br addr").stdout


def test_ipam_order_and_docker_macs(scene):
    expect = {"w1": ("172.17.0.2/16", "02:42:ac:11:00:02"), "w2": ("172.17.0.3/16", "02:42:ac:11:00:03"),
              "web": ("172.17.0.4/16", "02:42:ac:11:00:04"), "db": ("10.10.0.2/24", "02:42:0a:0a:00:02"),
              "api": ("10.10.0.3/24", "02:42:0a:0a:00:03"), "f1": ("172.18.0.2/16", "02:42:ac:12:00:02")}
    for c, (cidr, mac) in expect.items():
        assert addrs(kns(scene, c), "eth0") == [cidr], c
        assert links(kns(scene, c))["eth0"]["address"] == mac, c
    assert links(kns(scene, "web"))["eth1"]["address"] == "02:42:0a:0a:00:04"
    host = kns(scene, "host")
    assert addrs(host, "docker0") == ["172.17.0.1/16"]
    assert addrs(host, scene._nets["backend"]["bridge"]) == ["10.10.0.1/24"]
    assert addrs(host, scene._nets["front"]["bridge"]) == ["172.18.0.1/16"], "first free pool"


def test_bridge_and_veth_names(scene):
    host = kns(scene, "host")
    hl = links(host)
    bridges = {n for n, l in hl.items() if l.get("linkinfo", {}).get("info_kind") == "bridge"}
    want = {"docker0"} | {"br-" + scene._nets[n]["id"][:12] for n in ("backend", "front")}
    assert bridges == want and all(HEX12.match(b) for b in want - {"docker0"})
    veths = {n: l for n, l in hl.items() if l.get("linkinfo", {}).get("info_kind") == "veth" and n != "eth0"}
    assert all(HEX7.match(n) for n in veths) and len(veths) == 7  # w1 w2 web*2 db api f1
    # each host end is a port of its network's bridge; its peer is eth<N> inside the container
    for cname in ("w1", "w2", "web", "db", "api", "f1"):
        inside = links(kns(scene, cname))
        for i, (net, ep) in enumerate(scene._ctrs[cname]["endpoints"].items()):
            v = veths[ep["veth"]]
            assert v["master"] == scene._nets[net]["bridge"]
            assert "UP" in v["flags"]
            assert ep["ifname"] == f"eth{i}" and inside[f"eth{i}"]["link_index"] == v["ifindex"]
            assert v["link_index"] == inside[f"eth{i}"]["ifindex"]
        assert set(inside) == {"lo"} | {f"eth{i}" for i in range(len(scene._ctrs[cname]["endpoints"]))}


def test_nft_ruleset_has_dockers_chains(scene):
    host = kns(scene, "host")
    chains = nft_chains(host)
    for t, c, hook in [("nat", "PREROUTING", "prerouting"), ("nat", "OUTPUT", "output"),
                       ("nat", "POSTROUTING", "postrouting"), ("filter", "FORWARD", "forward")]:
        assert chains[(t, c)]["hook"] == hook and chains[(t, c)]["type"] == ("nat" if t == "nat" else "filter")
    assert chains[("filter", "FORWARD")]["policy"] == "drop"
    for t, c in [("nat", "DOCKER"), ("filter", "DOCKER"), ("filter", "DOCKER-USER"),
                 ("filter", "DOCKER-ISOLATION-STAGE-1"), ("filter", "DOCKER-ISOLATION-STAGE-2")]:
        assert "hook" not in chains[(t, c)], (t, c)
    rules = nft_rules(host)
    b, f = scene._nets["backend"]["bridge"], scene._nets["front"]["bridge"]
    assert rules[("nat", "PREROUTING")] == ["fib daddr type local jump DOCKER"]
    assert rules[("nat", "OUTPUT")] == ["ip daddr != 127.0.0.0/8 fib daddr type local jump DOCKER"]
    assert rules[("nat", "POSTROUTING")][:3] == [
        'ip saddr 172.17.0.0/16 oifname != "docker0" masquerade',
        f'ip saddr 10.10.0.0/24 oifname != "{b}" masquerade',
        f'ip saddr 172.18.0.0/16 oifname != "{f}" masquerade']
    assert rules[("nat", "DOCKER")][:3] == [f'iifname "{x}" return' for x in ("docker0", b, f)]
    assert rules[("filter", "FORWARD")][:6] == [
        "jump DOCKER-USER", "jump DOCKER-ISOLATION-STAGE-1",
        'oifname "docker0" ct state established,related accept', 'oifname "docker0" jump DOCKER',
        'iifname "docker0" oifname != "docker0" accept', 'iifname "docker0" oifname "docker0" accept']
    assert rules[("filter", "DOCKER-ISOLATION-STAGE-1")] == [
        f'iifname "{x}" oifname != "{x}" jump DOCKER-ISOLATION-STAGE-2' for x in ("docker0", b, f)] + ["return"]
    assert rules[("filter", "DOCKER-ISOLATION-STAGE-2")] == [f'oifname "{x}" drop' for x in ("docker0", b, f)] + ["return"]
    assert rules[("filter", "DOCKER-USER")] == []
    assert sysctl(host, "net.ipv4.ip_forward") == "1"
    # dh.rules(): the same, per chain
    assert "jump DOCKER-ISOLATION-STAGE-2" in scene.rules("DOCKER-ISOLATION-STAGE-1")
    assert "table ip nat" in scene.rules("DOCKER") and "table ip filter" in scene.rules("DOCKER")
    with pytest.raises(nt.NoSuchChain, match="DOCKER-USER"):
        scene.rules("NOPE")


def sysctl(kns, key):
    return sh(f"ip netns exec {kns} sysctl -n {key}").strip()


def test_inspect_matches_the_kernel(scene):
    host = kns(scene, "host")
    web = kns(scene, "web")
    i = scene.inspect("web")
    ns = i["NetworkSettings"]
    assert i["Name"] == "/web" and i["HostConfig"]["NetworkMode"] == "bridge"
    assert os.stat(ns["SandboxKey"]).st_ino == netns_inode(web)
    assert f"{ns['IPAddress']}/16" == addrs(web, "eth0")[0]
    assert ns["MacAddress"] == links(web)["eth0"]["address"]
    assert ns["Gateway"] == default_gw(web)
    assert ns["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    hl = links(host)
    for net, ifname in (("bridge", "eth0"), ("backend", "eth1")):
        n = ns["Networks"][net]
        assert f"{n['IPAddress']}/{n['IPPrefixLen']}" == addrs(web, ifname)[0]
        assert n["MacAddress"] == links(web)[ifname]["address"]
        assert n["NetworkID"] == scene._nets[net]["id"]
        assert hl[n["EndpointID"]]["master"] == scene._nets[net]["bridge"]
        assert hl[n["EndpointID"]]["ifindex"] == links(web)[ifname]["link_index"]
    # Docker 20.10 lists the short id (and --network-alias names) as aliases on user networks
    assert ns["Networks"]["backend"]["Aliases"] == [i["Id"][:12]] and ns["Networks"]["bridge"]["Aliases"] is None
    assert scene.inspect("lonely")["NetworkSettings"]["Networks"] == {}
    assert scene.inspect("hostc")["NetworkSettings"]["SandboxKey"] == f"/run/netns/{host}"
    with pytest.raises(nt.NoSuchContainer):
        scene.inspect("nosuch")


def test_ps_and_networks_list_everything(scene):
    rows = str(scene.ps()).splitlines()
    assert rows[0].split() == ["CONTAINER", "ID", "NAME", "NETWORK", "ADDRESSES", "PORTS"]
    by_name = {r.split()[1]: r for r in rows[1:]}
    assert list(by_name) == scene.containers() == ["w1", "w2", "web", "db", "api", "f1", "lonely", "side", "hostc"]
    assert by_name["web"].split()[0] == scene._ctrs["web"]["id"][:12]
    assert "172.17.0.4 (bridge), 10.10.0.4 (backend)" in by_name["web"] and "0.0.0.0:8080->80/tcp" in by_name["web"]
    assert "container:web" in by_name["side"] and " none " in by_name["lonely"] and " host " in by_name["hostc"]
    nets = str(scene.networks())
    for n in ("backend", "front"):
        assert f"{scene._nets[n]['bridge']}  {scene._nets[n]['subnet']}" in nets


def test_rerun_is_idempotent_and_the_object_is_the_same(scene):
    host = kns(scene, "host")

    def state():
        return (sh(f"ip -n {host} -br link; ip -n {host} -br addr; ip -n {host} route; ip netns list | grep nt-{scene.name}. | sort; "
                   f"ip netns exec {host} nft -s list ruleset"), copy.deepcopy(scene._d),
                [p["pid"] for p in scene._st.procs])

    before, n = state(), len(scene.commands)
    assert nt.DockerHost(scene.name) is scene
    web = scene.run("web", publish={8080: 80}, serve=80)
    assert web == "web" and web.ip == "172.17.0.4"
    assert scene.run("w1", serve=80) == "w1" and scene.run("lonely", network="none") == "lonely"
    assert scene.network_create("backend", subnet="10.10.0.0/24") == scene._nets["backend"]["bridge"]
    scene.network_connect("backend", "web")
    assert state() == before and len(scene.commands) == n
    with pytest.raises(nt.Conflict, match="other options"):
        scene.run("web", serve=81)
    assert state() == before


# ---- tests that change things: each its own DockerHost ----------------------------------------

@pytest.fixture
def dh(lab_name):
    d = nt.DockerHost(lab_name)
    yield d
    procs = list(d._st.procs)
    d.destroy()
    assert_gone(d, lab_name, procs)


def test_ipam_reuses_the_lowest_free_address(dh):
    a, b = dh.run("a"), dh.run("b")
    assert (a.ip, b.ip) == ("172.17.0.2", "172.17.0.3")
    dh.rm("a")
    assert lab_netns(dh.name) == sorted(f"nt-{dh.name}.{n}" for n in ("b", "host", "internet"))
    c = dh.run("c")
    assert c.ip == "172.17.0.2"
    assert addrs(dh.kernel_name("c"), "eth0") == ["172.17.0.2/16"]
    assert links(dh.kernel_name("c"))["eth0"]["address"] == "02:42:ac:11:00:02"
    assert dh.network_create("n1") and dh.network_create("n2")
    assert [dh._nets[n]["subnet"] for n in ("n1", "n2")] == ["172.18.0.0/16", "172.19.0.0/16"]
    d = dh.run("d", network="n2", ip="172.19.5.5")
    assert addrs(dh.kernel_name("d"), "eth0") == ["172.19.5.5/16"]
    assert dh.run("e", network="n2").ip == "172.19.0.2"


def test_docker_user_rule_survives_and_blocks(dh):
    host = dh.kernel_name("host")
    a, b = dh.run("a"), dh.run("b")
    sh(f"ip netns exec {host} nft add rule ip filter DOCKER-USER ip saddr {b.ip} counter drop")
    assert dh.ping("a", "internet") and not dh.ping("b", "internet", timeout=1)
    dh.run("web", publish={8080: 80}, serve=80)  # rewrites Docker's chains
    dh.network_create("backend")
    dh.run("db", network="backend")
    rules = nft_rules(host)
    assert rules[("filter", "DOCKER-USER")] == [f"ip saddr {b.ip} drop"]
    assert rules[("filter", "FORWARD")][0] == "jump DOCKER-USER"
    assert not dh.http_get("b", "internet", 80, timeout=1).status
    assert not dh.ping("b", "internet", timeout=1) and dh.ping("a", "internet") and dh.ping("db", "internet")
    dh.rm("web")
    assert nft_rules(host)[("filter", "DOCKER-USER")] == [f"ip saddr {b.ip} drop"]


def test_bad_input_is_refused_and_nothing_is_half_made(dh):
    dh.run("web", publish={8080: 80}, serve=80)
    dh.network_create("backend", subnet="10.10.0.0/24")
    dh.run("db", network="backend")
    dh.run("side", network="container:web")
    dh.run("hostc", network="host", serve=9000)
    host = dh.kernel_name("host")

    def state():
        return (sh(f"ip -n {host} -br link"), lab_netns(dh.name), lab_files(dh.name),
                sh(f"ip netns exec {host} nft -s list ruleset"), copy.deepcopy(dh._d),
                [p["pid"] for p in dh._st.procs])

    before = state()
    bad = [
        (lambda: dh.network_create("b2", subnet="10.10.0.128/25"), nt.Conflict, "overlaps network 'backend'"),
        (lambda: dh.network_create("b3", subnet="172.17.5.0/24"), nt.Conflict, "overlaps network 'bridge'"),
        (lambda: dh.network_create("b4", subnet="198.51.100.0/25"), nt.Conflict, "internet"),
        (lambda: dh.network_create("backend", subnet="10.20.0.0/24"), nt.Conflict, "already exists"),
        (lambda: dh.network_create("b5", subnet="10.30.0.1/24"), nt.InvalidAddress, "host bits"),
        (lambda: dh.run("x", network="backend", ip="10.99.0.5"), nt.InvalidAddress, "no configured subnet"),
        (lambda: dh.run("x", network="backend", ip="10.10.0.2"), nt.Conflict, r"in use on backend \(by db\)"),
        (lambda: dh.run("x", network="backend", ip="10.10.0.1"), nt.Conflict, "the gateway"),
        (lambda: dh.run("x", ip="172.17.0.50"), nt.InvalidAddress, "user defined networks only"),
        (lambda: dh.run("x", publish={8080: 81}), nt.Conflict, "already allocated"),
        (lambda: dh.run("x", publish={9000: 80}), nt.Conflict, "9000 is already in use.*hostc"),
        (lambda: dh.run("x", network="container:web", serve=80), nt.Conflict, "80 is already in use.*web"),
        (lambda: dh.run("x", network="host", serve=8080), nt.Conflict, "docker-proxy"),
        (lambda: dh.run("x", network="nosuch"), nt.NoSuchNetwork, "network_create"),
        (lambda: dh.run("x", network="bogus:web"), nt.InvalidName, "does not exist"),
        (lambda: dh.run("x", network="container:nosuch"), nt.NoSuchContainer, "nosuch"),
        (lambda: dh.run("x", network="host", publish={9100: 80}), nt.Conflict, "bridge networks"),
        (lambda: dh.run("web", serve=81), nt.Conflict, "other options"),
        (lambda: dh.run("host"), nt.Conflict, "lab uses"),
        (lambda: dh.network_rm("backend"), nt.Conflict, "active endpoints \\(db\\)"),
        (lambda: dh.network_rm("bridge"), nt.Conflict, "pre-defined"),
        (lambda: dh.network_rm("nosuch"), nt.NoSuchNetwork, "nosuch"),
        (lambda: dh.rm("web"), nt.Conflict, "side share"),
        (lambda: dh.rm("nosuch"), nt.NoSuchContainer, "nosuch"),
        (lambda: dh.network_connect("backend", "side"), nt.Conflict, "container:web"),
    ]
    for call, exc, match in bad:
        with pytest.raises(exc, match=match) as info:
            call()
        assert isinstance(info.value, nt.NetteachError)
        assert state() == before, f"{match!r} left something behind"
    assert dh.http_get("internet", "host", 8080).body.startswith("hello from web"), "still working"


def test_rm_and_network_rm_remove_everything(dh):
    host = dh.kernel_name("host")
    dh.network_create("backend")
    dh.run("web", network="backend", publish={8080: 80}, serve=80)
    dh.run("db", network="backend")
    c = dh._ctrs["web"]
    procs = [p for p in dh._st.procs if p["pid"] in (c["server"], *c["proxies"])]
    veth, bridge = c["endpoints"]["backend"]["veth"], dh._nets["backend"]["bridge"]
    assert len(procs) == 2 and all(running(p["pid"], p["start"]) for p in procs)
    assert os.path.isdir(f"/etc/netns/{dh.kernel_name('web')}")
    dh.rm("web")
    assert f"nt-{dh.name}.web" not in lab_netns(dh.name)
    assert not os.path.exists(f"/etc/netns/{dh.kernel_name('web')}")
    assert not any(running(p["pid"], p["start"]) for p in procs)
    assert veth not in links(host)
    assert not any("8080" in r for r in nft_rules(host)[("nat", "DOCKER")])
    assert sh(f"ip netns exec {host} ss -Hltn 'sport = :8080'") == ""
    assert dh.exec("db", "getent hosts web").returncode == 2, "the name is gone from the peers"
    assert dh.containers() == ["db"]
    dh.rm("db")
    dh.network_rm("backend")
    assert bridge not in links(host)
    assert not any(bridge in r for rs in nft_rules(host).values() for r in rs)
    assert lab_netns(dh.name) == [f"nt-{dh.name}.host", f"nt-{dh.name}.internet"]
    assert lab_files(dh.name) == [f"nt-{dh.name}.host"]
    assert dh._nets.keys() == {"bridge"} and dh._ctrs == {}


def test_destroy_leaves_nothing_and_the_root_untouched(lab_name, untouched_root):
    dh = nt.DockerHost(lab_name)
    dh.run("web", publish={8080: 80}, serve=80)
    dh.network_create("backend")
    dh.run("db", network="backend", serve=80)
    dh.run("side", network="container:web")
    dh.run("hostc", network="host", serve=9000)
    procs = list(dh._st.procs)
    # web's server + docker-proxy, db's server, hostc's server, db's embedded DNS, the internet's DNS
    assert len(procs) == 6 and all(running(p["pid"], p["start"]) for p in procs)
    assert sorted(lab_files(lab_name)) == [f"nt-{lab_name}.{n}" for n in ("db", "host", "web")]
    dh.destroy()
    assert_gone(dh, lab_name, procs)
    dh.destroy()  # twice is fine
    with pytest.raises(nt.NetteachError, match="destroyed"):
        dh.run("again")
    again = nt.DockerHost(lab_name)  # a new one, fresh
    try:
        assert again is not dh and again.containers() == []
    finally:
        again.destroy()
    assert netteach_leftovers(lab_name) == []


def test_network_connect_moves_the_default_route_as_dockerd_does(dh):
    """libnetwork sorts a container's endpoints (Endpoint.Less: priority, then network name) and
    the first one's gateway is the default route. Observed on Docker 20.10: after
    `docker network connect backend both`, `default via 172.18.0.1 dev eth1`."""
    dh.run("both")
    dh.network_create("backend")  # 172.18.0.0/16
    dh.network_create("zeta", subnet="10.77.0.0/24")
    both = dh.kernel_name("both")
    assert sh(f"ip -n {both} route show default").split()[:5] == ["default", "via", "172.17.0.1", "dev", "eth0"]
    dh.network_connect("backend", "both")  # "backend" < "bridge": it takes the default route
    assert sh(f"ip -n {both} route show default").split()[:5] == ["default", "via", "172.18.0.1", "dev", "eth1"]
    assert dh.inspect("both")["NetworkSettings"]["Gateway"] == "172.18.0.1"
    dh.network_connect("zeta", "both")  # "zeta" sorts last: nothing changes
    assert default_gw(both) == "172.18.0.1"
    dh.network_disconnect("backend", "both")  # the next in order, "bridge", takes over
    assert sh(f"ip -n {both} route show default").split()[:5] == ["default", "via", "172.17.0.1", "dev", "eth0"]
    assert len(ipj(both, "route", "show", "default")) == 1
    dh.run("www", publish={8081: 80}, serve=80)
    dh.network_connect("backend", "www")  # a published container keeps answering the internet
    assert default_gw(dh.kernel_name("www")) == "172.18.0.1"
    assert dh.http_get("internet", "host", 8081)


def test_network_mtu_option_sets_the_bridge_and_both_veth_ends(dh):
    """`docker network create -o com.docker.network.driver.mtu=1400` (there is no `docker run --mtu`):
    the kernel holds 1400 on the bridge and both ends of the container's veth, and a DF packet
    bigger than that is refused while one that fits passes."""
    bridge = dh.network_create("narrow", options={"com.docker.network.driver.mtu": 1400})
    dh.run("n1", network="narrow")
    n1, host = dh.kernel_name("n1"), dh.kernel_name("host")
    eth0 = links(n1)["eth0"]
    assert eth0["mtu"] == 1400
    assert links(host)[bridge]["mtu"] == 1400
    ep = dh.inspect("n1")["NetworkSettings"]["Networks"]["narrow"]
    assert links(host)[ep["EndpointID"]]["mtu"] == 1400
    gw = ep["Gateway"]
    assert dh.exec("n1", f"ping -c1 -W1 -M do -s 1372 {gw}").ok
    big = dh.exec("n1", f"ping -c1 -W1 -M do -s 1472 {gw}")
    assert not big.ok and "mtu=1400" in big.stderr + big.stdout
    dh.run("plain")
    assert links(dh.kernel_name("plain"))["eth0"]["mtu"] == 1500  # other networks keep 1500
    for bad in ("abc", "12", 70000):
        with pytest.raises(nt.InvalidValue, match="MTU"):
            dh.network_create(f"bad{bad}", options={"com.docker.network.driver.mtu": bad})
    assert "bad12" not in dh._nets
