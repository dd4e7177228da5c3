"""nt.inspect() of the whole machine, nt.doctor(), and the `netteach` command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import netteach as nt
from tests.conftest import needs_root, netteach_leftovers, sh

pytestmark = [needs_root, pytest.mark.kernel]


def test_inspect_sees_root_named_and_process_namespaces(lab):
    lab.add_netns("c1")
    lab.add_veth("v1", "eth0")
    lab.set_netns("eth0", "c1")
    # a namespace that only a process holds (as Docker's containers are, seen from `ip netns`)
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        for _ in range(100):
            if os.readlink(f"/proc/{holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            __import__("time").sleep(0.02)
        snap = nt.inspect()
        names = [ns.name for ns in snap.namespaces]
        assert names[0] == "root"
        root_links = sh("ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1").split()
        assert sorted(i.ifname for i in snap.namespace("root").interfaces) == sorted(root_links)
        host = snap.namespace(lab.kernel_name("host"))
        assert host is not None and host.lab == lab.name
        assert snap.interface(lab.kernel_name("c1"), "eth0").peer == (lab.kernel_name("host"), "v1")
        held = [ns for ns in snap.namespaces if ns.name.startswith(f"pid {holder.pid} ")]
        assert len(held) == 1 and held[0].note == "held only by a process"
        assert [i.ifname for i in held[0].interfaces] == ["lo"]
    finally:
        holder.kill()
        holder.wait()


def test_doctor_probes_for_real_and_leaves_nothing():
    before = sh("ip netns list")
    caps = nt.doctor(show=False)
    assert caps.root and caps.real_labs
    assert caps.has("veth") and caps.has("bridge"), "CI kernels have veth and bridge"
    assert set(caps.features) >= {"veth", "bridge", "vxlan", "macvlan", "ipvlan", "vlan", "nft nat", "netem"}
    assert caps.tools["ip"] and caps.tools["nft"] and caps.tools["ping"]
    # what is missing comes with advice
    for feat in caps.missing:
        assert any(feat in a for a in caps.advice())
    assert "real labs: yes" in caps.table()
    assert sh("ip netns list") == before


def test_doctor_prints_a_table(capsys):
    nt.doctor()
    out = capsys.readouterr().out
    assert "kernel: veth" in out and "tool: ip" in out


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "netteach", *args], capture_output=True, text=True,
                          timeout=60)


def test_cli_doctor_labs_cleanup_demo(tmp_path):
    r = run_cli("doctor")
    assert r.returncode == 0 and "real labs: yes" in r.stdout
    png = tmp_path / "demo.png"
    r = run_cli("demo", "--png", str(png))
    assert r.returncode == 0, r.stderr
    assert "1/1 answered" in r.stdout and png.read_bytes()[:4] == b"\x89PNG"
    assert "ip netns add nt-demo.c1" in r.stdout
    assert netteach_leftovers("demo") == []
    r = run_cli("labs")
    assert r.returncode == 0
    r = run_cli("cleanup")
    assert r.returncode == 0
    assert not os.path.exists("/run/netteach"), "cleanup with nothing to do must not leave a state dir"


def test_cli_reports_errors_without_traceback():
    r = subprocess.run([sys.executable, "-c", "from netteach.cli import main; import sys; "
                        "sys.argv=['netteach']; main(['cleanup', '--bogus'])"], capture_output=True, text=True)
    assert r.returncode != 0 and "unrecognized arguments" in r.stderr
