"""nt.inspect() and the Engine reader against a real dockerd (Debian's docker.io), started privately
in namespaces of its own (tests/dockerd_fixture.py): the machine's Docker, firewall and docker0 are
never touched. The scene: web (-p 8080:80), db (network backend), both (bridge + backend), nada (none)."""

from __future__ import annotations

import json
import sys
import re
import subprocess
import threading

import pytest

import netteach as nt
from netteach.compare import compare
from netteach.docker import engine
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.kernel]

SCENE = ("web", "db", "both", "nada")


def ipj(kns: str, *args: str):
    """`ip -j ...` inside a namespace file: the kernel's own answer, not netteach's."""
    out = subprocess.run(["nsenter", f"--net={kns}", "ip", "-j", *args], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out or "[]")


def test_engine_reads_names_ids_networks(real_docker):
    m = engine.connect(real_docker.url).model()
    sdk = {c.name: c for c in real_docker.client.containers.list()}
    assert sorted(c.name for c in m.containers) == sorted(SCENE) == sorted(sdk)
    for c in m.containers:
        assert c.id == sdk[c.name].id
    assert {n.name for n in m.networks} >= {"bridge", "backend", "host", "none"}
    backend = real_docker.client.networks.get("backend")
    assert m.network("backend").bridge == "br-" + backend.id[:12]
    assert m.network("backend").subnet == backend.attrs["IPAM"]["Config"][0]["Subnet"]
    assert sorted(e.network for e in m.container("both").endpoints) == ["backend", "bridge"]
    assert m.container("nada").endpoints == [] and m.container("nada").mode == "none"
    assert [str(p) for p in m.ports] == ["0.0.0.0:8080 -> web:80"]


def test_inspect_names_containers_and_networks(docker_env):
    snap = nt.inspect(processes=False)
    assert snap.docker is not None and snap.warnings == []
    host = snap.docker_host
    for name in SCENE:
        c = docker_env.client.containers.get(name)
        ns = snap.namespace(name)
        assert ns is not None, f"container {name} has no namespace in the snapshot"
        assert c.id[:12] in ns.note
        # the kernel's own view of that namespace: same addresses
        kns = f"/proc/{c.attrs['State']['Pid']}/ns/net"
        kernel_addrs = sorted(f"{a['local']}/{a['prefixlen']}" for l in ipj(kns, "addr") for a in l["addr_info"]
                              if a["family"] == "inet")
        assert sorted(a for i in ns.interfaces for a in i.addresses) == kernel_addrs
    g = snap.graph()
    backend = docker_env.client.networks.get("backend")
    assert g.nodes[f"if:{host}/br-{backend.id[:12]}"]["network"] == "backend"
    assert g.nodes[f"if:{host}/docker0"]["network"] == "bridge"
    assert g.nodes[f"netns:{host}"]["published"] == ["0.0.0.0:8080 -> web:80"]
    # every container's cable ends on its network's bridge
    assert snap.interface("both", "eth1").peer[0] == host
    peer = snap.interface(*snap.interface("db", "eth0").peer)
    assert peer.master == "br-" + backend.id[:12]


def test_ports_proxies_and_real_ruleset(docker_env):
    snap = nt.inspect(processes=False)
    web_ip = docker_env.client.containers.get("web").attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert {(p["host_ip"], p["host_port"], p["container_ip"], p["container_port"]) for p in snap.proxies} >= {
        ("0.0.0.0", 8080, web_ip, 80)}
    for p in snap.proxies:  # each is a real process: a docker-proxy
        with open(f"/proc/{p['pid']}/comm") as f:
            assert f.read().strip() == "docker-proxy"
    assert snap.docker.firewall == "iptables-nft"  # Debian 12's iptables is the nft one
    assert f"dnat to {web_ip}:80" in snap.nft and "chain DOCKER-USER" in snap.nft


def test_picture_names_everything(docker_env):
    snap = nt.inspect(processes=False)
    fig = snap.draw()
    texts = [t.get_text() for t in fig.axes[0].texts]
    for name in SCENE + ("docker0", "network bridge", "network backend", "published 0.0.0.0:8080 -> web:80"):
        assert name in texts, f"{name!r} is not in the picture"
    assert snap._repr_png_()[:4] == b"\x89PNG"


def test_inspect_during_churn_never_raises(docker_env):
    """Containers start and stop while nt.inspect() reads: no exception; a vanished one is noted."""
    stop = threading.Event()
    errors = []

    def churn():
        i = 0
        while not stop.is_set():
            try:
                c = docker_env.run(f"churn{i % 3}", command=["sleep", "100000"])
                c.remove(force=True)
            except Exception as exc:  # the daemon's answers are not what is tested here
                errors.append(exc)
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    try:
        snaps = [nt.inspect(processes=False) for _ in range(25)]
    finally:
        stop.set()
        t.join()
    for snap in snaps:
        for name in SCENE:  # the steady containers are always there
            assert snap.namespace(name) is not None
        for label in snap.vanished:
            assert label.startswith("churn")
    for c in docker_env.client.containers.list(all=True):
        if c.name.startswith("churn"):
            c.remove(force=True)


def test_inspect_without_docker_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    snap = nt.inspect(processes=False)
    assert snap.docker is None and snap.namespace("root") is not None and snap.warnings == []


def test_socket_without_permission(real_docker):
    """An ordinary user on a root-owned socket is told how to get access (checked in a child that drops root)."""
    import os

    os.chmod(real_docker.daemon.dir, 0o755)  # as /var/run is: the socket itself is what refuses
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nobody, no groups
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                engine.connect(real_docker.url)
                msg = "connected"
            except Exception as exc:
                msg = f"{type(exc).__name__} {exc}"
            os.write(w, msg.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        msg = f.read()
    os.waitpid(pid, 0)
    assert msg.startswith("PermissionDenied") and "'docker' group" in msg, msg


# ---- nt.docker_host(): the real host with DockerHost's verbs, read-only -------------------------

def _addresses(scene, name) -> list[tuple[str, str]]:
    nets = scene.client.containers.get(name).attrs["NetworkSettings"]["Networks"]
    return [(n, e["IPAddress"]) for n, e in sorted(nets.items()) if e.get("IPAddress")]


def _oracle_target(scene, src, dst):
    mine = _addresses(scene, src)
    if dst == "host":
        nets = scene.client.containers.get(src).attrs["NetworkSettings"]["Networks"]
        return next((nets[n]["Gateway"] for n, _ in mine if nets[n].get("Gateway")), None)
    theirs = _addresses(scene, dst)
    shared = [a for n, a in theirs if n in {m for m, _ in mine}]
    return (shared or [a for _, a in theirs] or [None])[0]


def test_reachability_equals_what_the_containers_really_reach(docker_env):
    """Every cell of the matrix, probed again with `docker exec` (busybox ping and wget inside)."""
    real = nt.docker_host()
    r = real.reachability()
    assert sorted(r.sources) == sorted(SCENE)
    assert sorted(r.services) == ["host:8080", "web:80"]
    for src in SCENE:
        for dst in SCENE:
            if src == dst:
                continue
            addr = _oracle_target(docker_env, src, dst)
            really = bool(addr) and docker_env.exec(src, ["ping", "-c", "1", "-W", "1", addr])[0] == 0
            assert r.can_ping(src, dst) == really, f"ping {src} -> {dst} ({addr})"
        for service in r.services:
            dst, port = service.split(":")
            addr = _oracle_target(docker_env, src, dst)
            # (busybox 1.35's wget -T crashes: timeout(1) bounds it instead)
            really = bool(addr) and docker_env.exec(src, ["timeout", "3", "wget", "-q", "-O", "-",
                                                          f"http://{addr}:{port}/"])[0] == 0
            assert r.can_get(src, service) == really, f"http {src} -> {service} ({addr})"
    # what Docker promises, for the record: networks isolated, published port open to all with an address
    assert r.can_ping("both", "db") and r.can_ping("both", "web") and not r.can_ping("web", "db")
    assert r.can_get("db", "host:8080") and not r.can_get("nada", "host:8080")


def test_trace_follows_a_packet_through_dockers_real_rules(docker_env):
    real = nt.docker_host()
    t = real.trace("db", "web", 80)  # backend -> bridge: Docker's isolation drops it
    assert not t.delivered
    assert "DOCKER-ISOLATION-STAGE-2" in t.verdict and t.hops[-1].namespace == "host"
    t = real.trace("both", "web", 80)  # same bridge: delivered to web's namespace
    assert t.delivered and t.hops[-1].namespace == "web"
    t = real.trace("db", "host", 8080)  # the published port, at the gateway: docker-proxy takes it
    assert t.delivered and "docker-proxy" in t.verdict


def _view(scene, real) -> dict:
    """Everything of Docker's that netteach must not change: links, addresses and routes of the host and
    every container, the host's ruleset (counters aside), `docker ps`, `docker network ls`."""
    import re

    spaces = {"host": real.engine.host_netns() or "/proc/self/ns/net"}
    for c in scene.client.containers.list():
        spaces[c.name] = f"/proc/{c.attrs['State']['Pid']}/ns/net"
    out = {}
    for name, kns in spaces.items():
        for what in ("link", "addr", "route"):
            out[f"{name} {what}"] = sorted(json.dumps({k: v for k, v in e.items() if k not in ("operstate",)},
                                                      sort_keys=True) for e in ipj(kns, what))
    nft = subprocess.run(["nsenter", f"--net={spaces['host']}", "nft", "list", "ruleset"], capture_output=True,
                         text=True, check=True).stdout
    out["ruleset"] = re.sub(r"counter packets \d+ bytes \d+", "counter", nft)
    out["docker ps"] = sorted((c.name, c.id, c.status, json.dumps(c.ports, sort_keys=True))
                              for c in scene.client.containers.list(all=True))
    out["docker network ls"] = sorted((n.name, n.id) for n in scene.client.networks.list())
    return out


def test_docker_host_changes_nothing_of_dockers(docker_env):
    real = nt.docker_host()
    before = _view(docker_env, real)
    real.ps(), real.networks(), real.inspect("both"), real.snapshot(), real.draw()
    real.reachability()
    real.trace("db", "host", 8080)
    nt.inspect(processes=False)
    after = _view(docker_env, real)
    for key in before:
        assert after[key] == before[key], f"{key} changed"


def test_docker_host_verbs_read_the_real_daemon(docker_env):
    real = nt.docker_host()
    ps = str(real.ps())
    for name in SCENE:
        assert name in ps
    assert "0.0.0.0:8080->80/tcp" in ps
    backend = docker_env.client.networks.get("backend")
    assert backend.id[:12] in str(real.networks()) and "br-" + backend.id[:12] in str(real.networks())
    info = real.inspect("both")
    sdk = docker_env.client.containers.get("both").attrs["NetworkSettings"]["Networks"]
    for net in ("bridge", "backend"):  # addresses read back from the kernel agree with Docker's
        assert info["NetworkSettings"]["Networks"][net]["IPAddress"] == sdk[net]["IPAddress"]
        assert info["NetworkSettings"]["Networks"][net]["Interface"] in ("eth0", "eth1")
    # Docker's rule for several networks: the default route goes via the network whose name sorts first
    assert info["NetworkSettings"]["Gateway"] == sdk["backend"]["Gateway"]
    with pytest.raises(nt.NoSuchContainer, match="ghost"):
        real.inspect("ghost")
    snap = real.snapshot()
    assert {n.name for n in snap.namespaces} == {"host", *SCENE}
    assert snap.namespace("web").note.startswith("container ")


def test_docker_host_without_a_daemon_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(nt.DockerNotFound, match="apt-get install docker.io"):
        nt.docker_host()


# ---- the same commands on a DockerHost: compared and drawn alike ----------------------------------

@pytest.fixture
def twin(lab_name, real_docker):
    """A DockerHost given the scene's commands."""
    dh = nt.DockerHost(lab_name)
    dh.run("web", publish={8080: 80}, serve=80)
    dh.network_create("backend")
    dh.run("db", network="backend", serve=80)
    dh.run("both")
    dh.network_connect("backend", "both")
    dh.run("nada", network="none")
    yield dh
    dh.destroy()


def test_compare_real_with_a_dockerhost(docker_env, twin):
    real = nt.inspect(processes=False)
    c = compare(real, "web", twin.snapshot(), "web", labels=("dockerd", "DockerHost"))
    assert c, c.table()  # address, MAC 02:42:<ip>, routes, veth name, bridge docker0, ip_forward: alike
    assert any(r.role == "container eth0: MAC" and r.a == "02:42:ac:11:00:02" for r in c.rows)
    c = compare(real, "db", twin.snapshot(), "db", labels=("dockerd", "DockerHost"))
    # only the user network's bridge differs: br- and the network id's first 12 hex digits, random on each
    assert [r.role for r in c.differences] == ["host end: enslaved to", "bridge: gateway address"], c.table()
    real_view = nt.docker_host().snapshot()  # named like a DockerHost: "host" and containers' names
    assert compare(real_view, "web", twin.snapshot(), "web")


def test_real_host_is_drawn_like_a_dockerhost(docker_env, twin):
    def labels(snap):
        texts = {t.get_text() for t in snap.draw().axes[0].texts}
        return {t for t in texts if not re.search(r"[0-9a-f]{12}", t)}  # ids and bridge names differ

    real, twin_snap = nt.docker_host().snapshot(), twin.snapshot()
    common = {"web", "db", "both", "nada", "host", "docker0", "eth0", "eth1", "network bridge",
              "network backend", "published 0.0.0.0:8080 -> web:80", "172.17.0.2/16", "172.18.0.2/16"}
    assert common <= labels(real) and common <= labels(twin_snap)
    for snap in (real, twin_snap):
        for name in ("web", "db", "both", "nada"):
            assert re.fullmatch(r"container [0-9a-f]{12} \(\w+\)", snap.namespace(name).note)


def test_doctor_reports_the_daemon_and_what_it_means(docker_env, capsys):
    from netteach.doctor import doctor

    caps = doctor(probe=False)
    d = caps.docker
    assert d["present"] and d["version"].startswith("20.10") and d["firewall"] == "iptables-nft"
    assert d["forward_policy"] == "drop"  # the private dockerd had to switch forwarding on itself
    assert d["br_netfilter"] and d["bridge_nf_call_iptables"] in ("0", "1")
    out = capsys.readouterr().out
    assert "dockerd 20.10" in out and "FORWARD policy drop" in out and "host='root' lab" in out


def test_doctor_without_docker(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    from netteach.doctor import doctor

    caps = doctor(show=False, probe=False)
    assert caps.docker == {"socket": f"{tmp_path}/docker.sock", "present": False}
    assert "apt-get install docker.io" in caps.table()


def test_inspect_while_process_namespaces_come_and_go():
    """Namespaces held only by short-lived processes vanish mid-read: never an exception."""
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            subprocess.run(["unshare", "-n", "sleep", "0.02"])

    threads = [threading.Thread(target=churn) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(8):
            snap = nt.inspect()
            assert snap.namespace("root") is not None
        # and reading them did not keep them alive: no socket of ours is left in another's namespace
        from netteach.kernel import rtnl

        assert not [ns for ns in rtnl._fast if isinstance(ns, str) and ns.startswith("/proc/")]
    finally:
        stop.set()
        for t in threads:
            t.join()


def test_root_mode_lab_on_a_docker_host_says_why_its_ping_fails(real_docker, lab_name):
    """A host="root" lab with a bridge, built in the (private) dockerd's own namespace: Docker's FORWARD
    policy drop + br_netfilter drop the bridged ping, and the failed ping says so."""
    code = f"""
import netteach as nt
with nt.Lab({lab_name!r}, host="root") as lab:
    lab.add_bridge("ntbr0"); lab.set_up("host", "ntbr0")
    for i in (1, 2):
        lab.add_netns(f"c{{i}}")
        lab.add_veth(f"ntv{{i}}", "eth0", peer_netns=f"c{{i}}")
        lab.set_master(f"ntv{{i}}", "ntbr0"); lab.set_up("host", f"ntv{{i}}")
        lab.add_addr(f"c{{i}}", "eth0", f"198.18.77.{{i}}/24"); lab.set_up(f"c{{i}}", "eth0")
    lab.sysctl("host", "net.bridge.bridge-nf-call-iptables", 1)
    print(repr(lab.ping("c1", "198.18.77.2")))
"""
    pid = engine.connect(real_docker.url).daemon.pid
    r = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0/1 answered" in r.stdout and "FORWARD chain has policy drop" in r.stdout, r.stdout
    # and nothing of the lab is left in that namespace
    links = ipj(f"/proc/{pid}/ns/net", "link")
    assert not [l for l in links if l["ifname"].startswith(("ntbr", "ntv"))]


def test_docker_on_iptables_legacy_is_said_and_read(real_docker, lab_name):
    """A dockerd whose rules are in the old x_tables backend: nft shows nothing, netteach says so and reads them."""
    from netteach.kernel import dockerd

    d = dockerd.start(iptables="legacy")
    try:
        image = d.import_busybox()
        import docker

        client = docker.DockerClient(base_url=d.url, version="auto")
        client.containers.run(image, ["sleep", "100000"], name="web", detach=True, ports={"80/tcp": 8080})
        client.close()
        snap = nt.inspect(processes=False, docker=d.url)
        assert snap.docker.firewall == "iptables-legacy"
        assert "-j DNAT --to-destination 172.17.0.2:80" in snap.iptables_legacy and "DOCKER" not in snap.nft
        assert "iptables-legacy" in snap.namespace(snap.docker_host).note
        facts = engine.host_facts(d.url)
        assert facts["firewall"] == "iptables-legacy" and facts["forward_policy"] == "drop"
    finally:
        d.stop()
