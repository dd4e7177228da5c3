"""reachability() is right with many containers (issue 9 item 9): every pair gets an
answer from the kernel with bounded resources (no process per pair, no socket per
pair at once), and the answers agree with Docker's rules and with the real ping."""

from __future__ import annotations

import random
import re

import pytest

import netteach as nt
from tests.conftest import needs_root, netteach_leftovers, sh

pytestmark = [needs_root, pytest.mark.kernel]


def test_reachability_of_100_containers_is_right(lab_name, untouched_root):
    dh = nt.DockerHost(lab_name)
    try:
        dh.network_create("backend", subnet="10.10.0.0/16")
        for i in range(100):
            dh.run(f"c{i}", network="bridge" if i % 2 == 0 else "backend", serve=80 if i % 25 == 0 else None)
        r = dh.reachability()
        net = {c: next(iter(dh._ctrs[c]["endpoints"])) for c in dh.containers()}

        def docker_says(s, d):
            if s == "internet":
                return d == "host"
            if s == "host" or d in ("host", "internet"):
                return True
            return net[s] == net[d]

        pairs = [(s, d) for s in r.sources for d in r.sources if s != d]
        wrong = [(s, d) for s, d in pairs if r.can_ping(s, d) != docker_says(s, d)]
        assert wrong == [], f"{len(wrong)} of {len(pairs)} pairs wrong, e.g. {wrong[:5]}"
        for s, d in random.Random(1).sample(pairs, 10):  # the real ping command agrees
            assert bool(dh.ping(s, d)) == r.can_ping(s, d), (s, d)
        served = [svc for svc in r.services]
        assert all(r.can_get(c, svc) == (net[c] == net[svc.split(":")[0]])
                   for c in dh.containers() for svc in served)
    finally:
        dh.destroy()
    assert netteach_leftovers(lab_name) == []


def _echoes_sent(ns: str) -> int:
    """ICMP echo requests this namespace has sent (``OutEchos`` of its /proc/net/snmp)."""
    lines = [l.split() for l in sh(f"ip netns exec {ns} cat /proc/net/snmp").splitlines() if l.startswith("Icmp:")]
    return int(lines[1][lines[0].index("OutEchos")])


def _kernel_losses() -> tuple[int, int]:
    """The machine's count of refused neighbours and of packets dropped on a full input queue."""
    fulls = int(re.search(r"table_fulls (\d+)", sh("ip -s ntable show name arp_cache")).group(1))
    drops = sum(int(line.split()[1], 16) for line in open("/proc/net/softnet_stat"))
    return fulls, drops


def _learnt_neighbours(ns: str) -> list[str]:
    return [l for l in sh(f"ip -n {ns} -4 neigh show").splitlines()
            if l.strip() and "PERMANENT" not in l and "NOARP" not in l]


def test_reachability_probes_each_pair_once_and_gives_the_neighbour_table_back(lab_name, untouched_root):
    """The machine's neighbour table is shared by every namespace and holds 1024 entries: the sweep
    makes room by giving back the entries of the sources it is done with, not by flushing everything
    and trying every unanswered pair again (which sent the pairs Docker isolates three times), and
    leaves no entry of its own behind."""
    dh = nt.DockerHost(lab_name)
    try:
        dh.network_create("backend", subnet="10.10.0.0/16")
        for i in range(40):
            dh.run(f"c{i}", network="bridge" if i % 2 == 0 else "backend", serve=80 if i % 20 == 0 else None)
        spaces = [dh.kernel_name(n) for n in dh.namespaces]
        before, losses = sum(_echoes_sent(ns) for ns in spaces), _kernel_losses()
        r = dh.reachability()
        sent, lost = sum(_echoes_sent(ns) for ns in spaces) - before, _kernel_losses() != losses
        net = {c: next(iter(dh._ctrs[c]["endpoints"])) for c in dh.containers()}
        pairs = [(s, d) for s in dh.containers() for d in dh.containers() if s != d]
        assert [(s, d) for s, d in pairs if r.can_ping(s, d) != (net[s] == net[d])] == []
        assert [(c, svc) for c in dh.containers() for svc in r.services
                if r.can_get(c, svc) != (net[c] == net[svc.split(":")[0]])] == []
        answered = sum(r.can_ping(s, d) for s in r.sources for d in r.sources if s != d)
        every = len(r.sources) * (len(r.sources) - 1)
        # once per pair, unless the kernel dropped packets for want of room meanwhile (other tests on
        # the machine can fill its table too): then a pair not answered may be tried again
        assert answered <= sent <= (3 * every if lost else every), (sent, every, lost)
        left = {ns: _learnt_neighbours(ns) for ns in spaces}
        # (a late TCP acknowledgement may resolve a neighbour again after the clean-up)
        assert sum(map(len, left.values())) <= 4, {ns: v for ns, v in left.items() if v}
    finally:
        dh.destroy()
    assert netteach_leftovers(lab_name) == []


def test_reachability_on_a_network_without_icc_is_right(lab_name, untouched_root):
    """enable_icc=false: every probe between its containers is dropped, GETs included (their SYN is
    sent again after 1 s, when the sweep may have moved on): the host still reaches every one of
    them, and what is dropped is said so. (The previous sweep said some of the host's GETs failed.)"""
    dh = nt.DockerHost(lab_name)
    try:
        dh.network_create("quiet", subnet="10.11.0.0/16",
                          options={"com.docker.network.bridge.enable_icc": "false"})
        for i in range(60):
            dh.run(f"c{i}", network="quiet", serve=80 if i % 4 == 0 else None)
        r = dh.reachability()
        cs = dh.containers()
        assert [(a, b) for a in cs for b in cs if a != b and r.can_ping(a, b)] == []
        assert [(a, s) for a in cs for s in r.services if not s.startswith(f"{a}:") and r.can_get(a, s)] == []
        assert all(r.can_ping("host", c) and r.can_ping(c, "host") and r.can_ping(c, "internet") for c in cs)
        assert [s for s in r.services if not r.can_get("host", s)] == []
        spaces = [dh.kernel_name(n) for n in dh.namespaces]
        assert sum(len(_learnt_neighbours(ns)) for ns in spaces) <= 4
    finally:
        dh.destroy()
    assert netteach_leftovers(lab_name) == []
