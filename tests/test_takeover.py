"""A take-over converges (issue 9 item 10): the owner was killed after the model was
saved but before the kernel work; re-running the same cells in a new process must
make what the model describes, checked in the kernel."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import netteach as nt
from netteach import kernel
from tests.conftest import needs_root, netteach_leftovers

pytestmark = [needs_root, pytest.mark.kernel]

KILL_AT = """
import os, netteach as nt
from netteach import kernel
from netteach.lab import Lab
dh = nt.DockerHost({name!r})
real_veth_add, real_add_bridge = kernel.veth_add, Lab.add_bridge
def die(*a, **k):
    os.kill(os.getpid(), 9)  # killed after the model was saved, before the kernel work
{patch}
{cell}
"""


def _killed_child(name, patch, cell):
    r = subprocess.run([sys.executable, "-c", KILL_AT.format(name=name, patch=patch, cell=cell)],
                       cwd=os.path.dirname(os.path.dirname(__file__)), timeout=120)
    assert r.returncode == -9


def test_rerun_network_create_after_a_kill_makes_the_bridge(lab_name, untouched_root):
    _killed_child(lab_name, "Lab.add_bridge = lambda self, name, *a, **k: die() if name != 'docker0' "
                            "else real_add_bridge(self, name, *a, **k)",
                  'dh.network_create("backend", subnet="10.10.0.0/24")')
    dh = nt.DockerHost(lab_name)  # takes it over
    try:
        bridge = dh.network_create("backend", subnet="10.10.0.0/24")  # the same cell again
        link = kernel.link_get(dh._host(), bridge)
        assert link is not None, "re-running the cell left the network without its bridge"
        addrs = [a["address"] for a in kernel.dump(dh._host())["addrs"] if a["index"] == link["index"]]
        assert "10.10.0.1" in addrs and link["admin_up"]
        dh.run("db", network="backend")
        assert dh.ping("db", "10.10.0.1")
    finally:
        dh.destroy()
    assert netteach_leftovers(lab_name) == []


def test_rerun_run_after_a_kill_makes_the_container_and_its_server(lab_name, untouched_root):
    _killed_child(lab_name, "kernel.veth_add = die", 'dh.run("web", serve=80)')
    dh = nt.DockerHost(lab_name)
    try:
        web = dh.run("web", serve=80)  # the same cell again
        kns = dh.kernel_name("web")
        assert kernel.netns_exists(kns)
        assert web.ip in [a["address"] for a in kernel.dump(kns)["addrs"]]
        r = dh.http_get("host", "web", 80)
        assert r.status == 200 and "hello from web" in r.body
        assert dh.run("web", serve=80) == "web"  # and a third run changes nothing
    finally:
        dh.destroy()
    assert netteach_leftovers(lab_name) == []
