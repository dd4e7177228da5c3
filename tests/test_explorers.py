"""The explorers' logic against the real kernel: dropdown choices from the lab, the probe a click makes,
the picture redrawn; the trace explorer's hop-by-hop highlight (once lab.trace exists)."""

from __future__ import annotations

import html
import re

import pytest

import netteach as nt
from netteach.widgets import ReachabilityExplorer, TraceExplorer, hop_nodes, reach, reach_choices
from tests.conftest import needs_root, netteach_leftovers

pytestmark = [needs_root, pytest.mark.kernel]


@pytest.fixture(scope="module")
def dh():
    name = "tx"
    dh = nt.DockerHost(name)
    dh.run("web", publish={8080: 80}, serve=80)
    dh.run("db")
    dh.run("off", network="none")
    yield dh
    dh.destroy()
    assert netteach_leftovers(name) == []


def test_choices_come_from_the_docker_host(dh):
    c = reach_choices(dh)
    assert c["sources"] == ["web", "db", "off", "host", "internet"]
    assert ("web", "web") in c["destinations"]
    assert c["ports"] == [("ping", None), ("HTTP :80", 80), ("HTTP :8080", 8080)]


def test_a_probe_answers_from_the_kernel(dh):
    r = reach(dh, "internet", "host", 8080, trace=False)
    assert r.ok and r.result.status == 200 and "hello from web" in r.result.body
    r = reach(dh, "db", "web", trace=False)
    assert r.ok and r.result.received == 1
    assert not reach(dh, "web", "host", 9999, trace=False).ok  # nothing listens there: refused by the kernel


def test_clicking_probe_redraws_and_reports(dh):
    x = ReachabilityExplorer(dh)
    box = x.widget()
    ui = x._ui
    before = ui["image"].value
    assert before[:4] == b"\x89PNG" and "press probe" in ui["text"].value and ui["port"].label == "ping"
    ui["src"].value, ui["dst"].value, ui["port"].value = "internet", "host", 8080
    ui["go"].click()  # what a student's click does
    assert x.last is not None and x.last.ok, x.status()
    assert "✓ HTTP internet -&gt; host:8080" in ui["text"].value and not ui["go"].disabled
    assert x.last.trace.delivered and x.last.path and ui["image"].value != before  # the path, highlighted
    assert box is ui["box"]


def test_a_student_error_is_shown_not_raised(dh):
    x = ReachabilityExplorer(dh, draw=False)
    assert x.probe("web", "off", None) is None
    assert x.status().startswith("✗ ") and "no address" in x.status()


def test_lab_destinations_are_the_kernels_addresses(lab):
    lab.add_netns("c1")
    lab.add_veth("v1", "eth0", peer_netns="c1")
    lab.add_addr("host", "v1", "10.9.0.1/24")
    lab.add_addr("c1", "eth0", "10.9.0.2/24")
    lab.set_up("host", "v1")
    lab.set_up("c1", "eth0")
    c = reach_choices(lab, ports=[80])
    assert c["sources"] == ["host", "c1"]
    assert ("c1 (10.9.0.2)", "10.9.0.2") in c["destinations"] and ("host (10.9.0.1)", "10.9.0.1") in c["destinations"]
    x = ReachabilityExplorer(lab, draw=False)
    assert x.probe("c1", "10.9.0.1").ok
    assert not x.probe("c1", "10.9.0.1", 80).ok  # no server: the kernel refuses


def test_trace_explorer_steps_hop_by_hop(dh):
    t = dh.trace("internet", "host", 8080)
    x = TraceExplorer(t)
    x.widget()
    ui = x._ui
    assert x.position == 0 and ui["prev"].disabled and re.search(r"→ +1/", ui["text"].value)
    seen = [ui["image"].value]
    for i in range(1, len(t.hops)):
        ui["next"].click()
        assert x.position == i and re.search(rf"→ +{i + 1}/", ui["text"].value)
        assert html.escape(t.hops[i].detail) in ui["current"].value  # the hop's rule, shown on its own
        assert set(hop_nodes(t, i)) <= set(t.path) and f"netns:{t.hops[i].namespace}" in hop_nodes(t, i)
        seen.append(ui["image"].value)
    assert ui["next"].disabled and html.escape(t.verdict) in ui["text"].value
    # a hop in another namespace is drawn differently
    changes = [i for i in range(1, len(t.hops)) if t.hops[i].namespace != t.hops[i - 1].namespace]
    assert changes and all(seen[i] != seen[i - 1] for i in changes)
    ui["prev"].click()
    assert x.position == len(t.hops) - 2
