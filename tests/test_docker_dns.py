"""Docker's embedded DNS on a DockerHost, on the real kernel: a resolver per container listening
inside its namespace, Docker's nat rules there, and the answers Docker 20.10 gives."""

from __future__ import annotations

import os

import pytest

import netteach as nt
from tests.conftest import needs_root, netteach_leftovers

pytestmark = [needs_root, pytest.mark.kernel]


@pytest.fixture(scope="module")
def dns():
    name = f"dn{os.getpid() % 1000}"
    dh = nt.DockerHost(name)
    try:
        dh.network_create("appnet", subnet="10.20.0.0/24")
        dh.run("api", network="appnet", aliases=["db-api"])
        dh.run("api2", network="appnet", aliases=["db-api"])
        dh.run("client", network="appnet")
        dh.run("w1")
        yield dh
    finally:
        dh.destroy()
    assert netteach_leftovers(name) == []


def answers(r) -> list[str]:
    return [line.split()[-1] for line in r.stdout.splitlines() if line and not line.startswith(";")]


def test_resolv_conf_hosts_and_rules(dns):
    assert dns.exec("client", "cat /etc/resolv.conf").stdout == "nameserver 127.0.0.11\noptions ndots:0\n"
    hosts = dns.exec("client", "cat /etc/hosts").stdout
    assert "api" not in hosts.split(), "other containers are never in /etc/hosts"
    rules = str(dns.dns_rules("client"))
    res = dns._ctrs["client"]["resolver"]
    assert f"udp dport 53 counter packets" in rules and f"dnat to 127.0.0.11:{res['udp']}" in rules
    assert f"dnat to 127.0.0.11:{res['tcp']}" in rules and f"tcp sport {res['tcp']}" in rules
    listening = dns.exec("client", "ss -lnu; ss -lnt").stdout
    assert f"127.0.0.11:{res['udp']}" in listening and f"127.0.0.11:{res['tcp']}" in listening


def test_names_aliases_and_flags(dns):
    api = dns.inspect("api")["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
    api2 = dns.inspect("api2")["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
    short = dns.inspect("api")["Id"][:12]
    for name in ("api", "api.appnet", short, "API"):
        r = dns.dig("client", name)
        assert answers(r) == [api], (name, r)
    r = dns.dig("client", "db-api")
    assert sorted(answers(r)) == sorted([api, api2])
    assert "flags: qr rd ra;" in r.stdout, "recursion available, not authoritative (no aa)"
    ttls = [line.split()[1] for line in r.stdout.splitlines() if line and not line.startswith(";")]
    assert ttls == ["600", "600"]
    assert dns.exec("client", "getent hosts api").stdout.split() == [api, "api"]


def test_ptr_aaaa_and_tcp(dns):
    api = dns.inspect("api")["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
    assert answers(dns.dig("client", api, "PTR")) == ["api.appnet."]
    r = dns.dig("client", "api", "AAAA")
    assert "status: NOERROR" in r.stdout and "ANSWER: 0" in r.stdout
    assert answers(dns.dig("client", "api", tcp=True)) == [api]


def test_other_names_are_forwarded(dns):
    assert answers(dns.dig("client", "server.example")) == ["203.0.113.10"]
    assert "status: NXDOMAIN" in dns.dig("client", "nothing.example").stdout
    assert "status: NXDOMAIN" in dns.dig("client", "w1").stdout, "w1 is on the default bridge"


def test_default_bridge_has_no_embedded_dns(dns):
    assert dns.exec("w1", "cat /etc/resolv.conf").stdout == "nameserver 198.51.100.1\n"
    assert dns.exec("w1", "getent hosts api").returncode == 2
    assert "no embedded DNS" in str(dns.dns_rules("w1"))


def test_names_follow_containers(lab_name, untouched_root):
    with nt.DockerHost(lab_name) as dh:
        dh.network_create("appnet")
        dh.run("a", network="appnet")
        dh.run("b")
        assert dh.exec("a", "getent hosts b").returncode == 2
        dh.network_connect("appnet", "b", aliases=["bee"])
        b_ip = dh.inspect("b")["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
        assert dh.exec("a", "getent hosts bee").stdout.split() == [b_ip, "bee"]
        assert "nameserver 127.0.0.11" in dh.exec("b", "cat /etc/resolv.conf").stdout
        assert dh.inspect("b")["NetworkSettings"]["Networks"]["appnet"]["Aliases"][1:] == ["bee"]
        dh.network_disconnect("appnet", "b")
        assert dh.exec("a", "getent hosts b").returncode == 2
        dh.network_connect("appnet", "b")
        assert dh.exec("a", "getent hosts bee").returncode == 2, "reconnecting without --alias loses it"
        pid = dh._ctrs["a"]["resolver"]["pid"]
        dh.rm("a")
        assert not any(p["pid"] == pid for p in dh._st.procs)
        assert not os.path.exists(f"/run/netteach/{lab_name}.dns/a.json")
    assert netteach_leftovers(lab_name) == []
    assert not os.path.exists(f"/run/netteach/{lab_name}.dns")


def test_aliases_need_a_user_network(lab_name, untouched_root):
    with nt.DockerHost(lab_name) as dh:
        with pytest.raises(nt.NetteachError, match="user-defined networks"):
            dh.run("x", aliases=["y"])
        assert "x" not in dh.containers()
