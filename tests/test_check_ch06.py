"""Notebook 06's faults and self-checks on the real kernel: each exercise's fault breaks what the
check tests, the check names it, the fix makes it pass; and the load generator measures a path."""

from __future__ import annotations

import pytest

import netteach as nt
from netteach import faults, perf
from tests.conftest import needs_root, netteach_leftovers, problems

pytestmark = [needs_root, pytest.mark.kernel]


@pytest.fixture
def dh(lab_name, untouched_root):
    """Notebook 06's host: web (-p 8080:80, serves 80), w1, u1 and u2 on appnet, a site at 203.0.113.10."""
    dh = nt.DockerHost(lab_name)
    dh.run("web", publish=["8080:80"], serve=80)
    dh.run("w1")
    dh.network_create("appnet")
    dh.run("u1", network="appnet")
    dh.run("u2", network="appnet")
    dh.serve("internet", 80)
    yield dh
    dh.destroy()
    assert netteach_leftovers(lab_name) == []


def test_checks_are_exported_by_name():
    from netteach.check import ch06

    for name in ch06.__all__:
        assert getattr(nt.check, name) is getattr(ch06, name)


def test_all_pass_on_a_healthy_host(dh):
    for check in (nt.check.w1_reaches_internet, nt.check.published_port_answers, nt.check.u1_resolves):
        r = check(dh)
        assert r, r


def test_exercise_1_masquerade(dh):
    faults.exercise(dh, 1)
    assert "w1 gets no answer from http://203.0.113.10/" in problems(nt.check.w1_reaches_internet(dh))
    dh.exec("host", 'nft add rule ip nat POSTROUTING ip saddr 172.17.0.0/16 oifname != "docker0" counter masquerade')
    r = nt.check.w1_reaches_internet(dh)
    assert r, r


def test_exercise_2_replies_dropped(dh):
    faults.exercise(dh, 2)
    text = problems(nt.check.published_port_answers(dh))
    assert "the internet gets no answer from 198.51.100.2:8080" in text
    dh.exec("host", "nft flush chain ip filter DOCKER-USER")
    r = nt.check.published_port_answers(dh)
    assert r, r


def test_exercise_3_dns_redirect(dh):
    faults.exercise(dh, 3)
    text = problems(nt.check.u1_resolves(dh))
    assert "u1 cannot resolve 'u2'" in text and "u1 cannot resolve 'server.example'" in text
    res = dh._ctrs["u1"]["resolver"]
    from netteach.docker.rules import dns_rules

    dh.exec("u1", ["nft", "-f", "-"], input=dns_rules(res["udp"], res["tcp"]))
    r = nt.check.u1_resolves(dh)
    assert r, r
    with pytest.raises(nt.NetteachError, match="exercises 1, 2 and 3"):
        faults.exercise(dh, 4)


def test_dead_upstream_and_restart(dh):
    dh.kill(dh.upstream_dns)
    assert "u1 cannot resolve 'server.example'" in problems(nt.check.u1_resolves(dh))
    assert dh.internet_dns()
    r = nt.check.u1_resolves(dh)
    assert r, r


def test_measure_a_bridge_path(dh):
    perf.sink(dh, "u2", 5201)
    m = perf.measure(dh, "u1", dh._target("u1", "u2"), 5201, "bridge", mb=5, count=50)
    assert m.path == "bridge" and m.rtt_us > 0 and m.mbit_s > 0
    with pytest.raises(nt.NetteachError, match="is a sink listening there"):
        perf.measure(dh, "u1", dh._target("u1", "u2"), 5202, mb=1, count=5)
