"""The model of Docker's objects, filled from Engine API JSON and from DockerHost state: no root needed."""

from __future__ import annotations

import pytest

from netteach.docker import engine, model

NET_BRIDGE = {"Name": "bridge", "Id": "a" * 64, "Driver": "bridge", "Internal": False,
              "IPAM": {"Config": [{"Subnet": "172.17.0.0/16"}]},
              "Options": {"com.docker.network.bridge.name": "docker0",
                          "com.docker.network.bridge.enable_icc": "true",
                          "com.docker.network.driver.mtu": "1500"}}
NET_BACKEND = {"Name": "backend", "Id": "609621cb1e35" + "b" * 52, "Driver": "bridge", "Internal": True,
               "IPAM": {"Config": [{"Subnet": "fd00::/64"}, {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]},
               "Options": {"com.docker.network.bridge.enable_icc": "false"}}
NET_HOST = {"Name": "host", "Id": "c" * 64, "Driver": "host", "IPAM": {"Config": []}, "Options": {}}


def ctr(name, cid, mode, nets, ports=None, pid=100):
    return {"Id": cid + "0" * (64 - len(cid)), "Name": "/" + name, "State": {"Pid": pid, "Running": True},
            "Config": {"Hostname": cid[:12]}, "HostConfig": {"NetworkMode": mode},
            "NetworkSettings": {"SandboxKey": f"/var/run/docker/netns/{cid[:12]}", "Ports": ports or {},
                                "Networks": nets}}


WEB = ctr("web", "6013bf07c581", "default",
          {"bridge": {"IPAddress": "172.17.0.2", "IPPrefixLen": 16, "MacAddress": "02:42:AC:11:00:02",
                      "Gateway": "172.17.0.1"}},
          ports={"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
                 "443/tcp": None})
BOTH = ctr("both", "5b3d174e3ceb", "default",
           {"bridge": {"IPAddress": "172.17.0.3", "IPPrefixLen": 16, "Gateway": "172.17.0.1"},
            "backend": {"IPAddress": "172.18.0.3", "IPPrefixLen": 16, "Gateway": "172.18.0.1",
                        "Aliases": ["5b3d174e3ceb", "both-alias"]}})
SIDE = ctr("side", "99aa", "container:6013bf07c581" + "0" * 52, {}, pid=101)
NADA = ctr("nada", "2da6f8bdb119", "none", {"none": {"IPAddress": ""}})


def test_from_engine_names_ids_modes_ports():
    m = model.from_engine([WEB, BOTH, SIDE, NADA], [NET_BRIDGE, NET_BACKEND, NET_HOST], source="dockerd 20.10")
    assert [c.name for c in m.containers] == ["both", "nada", "side", "web"]
    web = m.container("web")
    assert web.short_id == "6013bf07c581" and web.mode == "bridge" and web.pid == 100
    assert web.endpoints[0].mac == "02:42:ac:11:00:02"  # lower case, as the kernel prints it
    # 0.0.0.0 and :: bindings of one port are one line; exposed-but-unpublished ports are none
    assert [str(p) for p in m.ports] == ["0.0.0.0:8080 -> web:80"]
    assert m.container("side").mode == "container:web" and m.container("side").shares == "web"
    assert m.container("nada").endpoints == [] and m.container("nada").mode == "none"
    assert m.container("both").endpoint("backend").aliases == ["both-alias"]
    assert m.container("6013bf07c581") is web  # a short id finds it too
    assert m.note(web) == "container 6013bf07c581 (bridge) + side"


def test_networks_bridge_names_options():
    m = model.from_engine([WEB, BOTH], [NET_BRIDGE, NET_BACKEND, NET_HOST])
    assert m.bridge_networks() == {"docker0": "bridge", "br-609621cb1e35": "backend"}
    bridge, backend = m.network("bridge"), m.network("backend")
    assert bridge.gateway == "172.17.0.1"  # not in its IPAM config: taken from its endpoints
    assert bridge.mtu == 1500 and bridge.icc
    assert backend.subnet == "172.18.0.0/16" and backend.internal and not backend.icc
    assert m.network("host").bridge is None


def test_round_trip_and_dockerhost_state():
    m = model.from_engine([WEB, BOTH], [NET_BRIDGE, NET_BACKEND])
    assert model.Model.from_dict(m.to_dict()) == m
    state = {"networks": {"bridge": {"id": "d" * 64, "bridge": "docker0", "subnet": "172.17.0.0/16",
                                     "gateway": "172.17.0.1", "default": True}},
             "containers": {"web": {"id": "e" * 64, "mode": "bridge", "hostname": "eeee",
                                    "endpoints": {"bridge": {"ip": "172.17.0.2", "mac": "02:42:ac:11:00:02",
                                                             "ifname": "eth0", "veth": "veth1234567"}},
                                    "ports": {"8080": 80}}}}
    dm = model.from_state(state, source="DockerHost 'x'")
    assert [str(p) for p in dm.ports] == ["0.0.0.0:8080 -> web:80"]
    assert dm.container("web").endpoints[0].prefixlen == 16 and dm.bridge_networks() == {"docker0": "bridge"}


@pytest.mark.parametrize("version,ok", [("20.10.24+dfsg1", True), ("28.2.2", True), ("29.0.0", True),
                                        ("19.03.15", False), ("30.0.0", False), ("garbage", False)])
def test_supported_versions(version, ok):
    assert engine.supported(version) is ok


def test_no_daemon_says_what_to_do(tmp_path):
    with pytest.raises(engine.DockerNotFound, match="apt-get install docker.io"):
        engine.connect(f"unix://{tmp_path}/docker.sock")
    # a socket file nobody listens on: left over from a stopped daemon
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "dead.sock"))
    s.close()
    with pytest.raises(engine.DockerNotFound, match="left over"):
        engine.connect(f"unix://{tmp_path}/dead.sock")
