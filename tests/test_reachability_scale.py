"""reachability() is right with many containers (issue 9 item 9): every pair gets an
answer from the kernel with bounded resources (no process per pair, no socket per
pair at once), and the answers agree with Docker's rules and with the real ping."""

from __future__ import annotations

import random

import pytest

import netteach as nt
from tests.conftest import needs_root, netteach_leftovers

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
