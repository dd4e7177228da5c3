"""Shared fixtures. Kernel tests need root and a real kernel; CI runs them as root."""

from __future__ import annotations

import itertools
import os
import subprocess

import pytest

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to make namespaces")
_counter = itertools.count()


def sh(cmd: str) -> str:
    """A shell command on the test machine (root namespace), its stdout."""
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, check=True).stdout


def root_view() -> dict:
    """What an isolated lab must never change: the root namespace's links, addresses,
    routes, a few sysctls and the nft ruleset, plus the names of foreign namespaces."""
    sysctls = ["net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.all.rp_filter",
               "net.ipv4.tcp_fin_timeout"]
    return {
        "links": sh("ip -o link show | sed -E 's/^[0-9]+: //'"),
        "addrs": sh("ip -o addr show | sed -E 's/^[0-9]+: //; s/valid_lft.*//'"),
        "routes": sh("ip route show table all"),
        "sysctls": sh("sysctl " + " ".join(sysctls)),
        "nft": sh("nft list ruleset 2>/dev/null || true"),
        "netns": sorted(n for n in sh("ip netns list").split() if not n.startswith("nt-") and n[0] != "("),
    }


def netteach_leftovers(lab: str | None = None) -> list[str]:
    """Every netteach object still on the machine (of one lab, or of any)."""
    prefix = f"nt-{lab}." if lab else "nt-"
    out = [f"netns {n}" for n in sh("ip netns list").split() if n.startswith(prefix)]
    marker = f"netteach lab={lab}" if lab else "netteach lab="
    out += [f"root link {l}" for l in sh("ip -o link show").splitlines() if marker in l]
    state_dir = "/run/netteach"
    if os.path.isdir(state_dir):
        files = os.listdir(state_dir)
        out += [f"state {f}" for f in files if lab is None or f.startswith(f"{lab}.")]
    return out


@pytest.fixture
def lab_name(request):
    """A fresh lab name, unique in this run."""
    return f"t{os.getpid() % 1000}-{next(_counter)}"


@pytest.fixture
def untouched_root():
    """Asserts the test left the root namespace exactly as it found it."""
    before = root_view()
    yield before
    after = root_view()
    for key in before:
        assert after[key] == before[key], f"root namespace {key} changed by an isolated lab"


@pytest.fixture
def lab(lab_name, untouched_root):
    """An isolated lab, destroyed afterwards; asserts nothing of it is left."""
    import netteach as nt

    lab = nt.Lab(lab_name)
    yield lab
    lab.destroy()
    assert netteach_leftovers(lab_name) == []


# a real, private dockerd for the tests that read one (session scope: started once)
from tests.dockerd_fixture import docker_env, real_docker  # noqa: E402,F401


def problems(result):
    """A failing self-check's problems as one line (asserting that the check did fail)."""
    assert not result, result
    return "; ".join(result.problems)
