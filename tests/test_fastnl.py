"""The rtnetlink encoder/decoder on its own (no root), and the benchmark script as a smoke test (root)."""

import socket
import struct
import subprocess
import sys

import pytest

from netteach.kernel import fastnl
from tests.conftest import needs_root


def test_attributes_round_trip_with_padding():
    buf = fastnl._str(fastnl.IFLA_IFNAME, "veth0") + fastnl._u32(fastnl.IFLA_MTU, 1400)
    assert len(buf) % 4 == 0
    a = fastnl.attrs(buf)
    assert fastnl._cstr(a[fastnl.IFLA_IFNAME]) == "veth0" and fastnl._u(a[fastnl.IFLA_MTU]) == 1400


def test_veth_request_nests_the_peer_with_its_namespace():
    mtype, flags, body = fastnl.newlink_veth("v1", "eth0", peer_fd=7, up=True, master=4,
                                             peer_mac="02:42:ac:11:00:02")
    assert mtype == fastnl.RTM_NEWLINK and flags & fastnl.NLM_F_CREATE and flags & fastnl.NLM_F_EXCL
    _, _, index, iflags, change = struct.unpack_from("BxHiII", body, 0)
    assert iflags & fastnl.IFF_UP and change & fastnl.IFF_UP
    top = fastnl.attrs(body, 16)
    assert fastnl._cstr(top[fastnl.IFLA_IFNAME]) == "v1" and fastnl._u(top[fastnl.IFLA_MASTER]) == 4
    info = fastnl.attrs(top[fastnl.IFLA_LINKINFO])
    assert fastnl._cstr(info[fastnl.IFLA_INFO_KIND]) == "veth"
    peer = fastnl.attrs(fastnl.attrs(info[fastnl.IFLA_INFO_DATA])[fastnl.VETH_INFO_PEER], 16)
    assert fastnl._cstr(peer[fastnl.IFLA_IFNAME]) == "eth0"
    assert fastnl._u(peer[fastnl.IFLA_NET_NS_FD]) == 7
    assert peer[fastnl.IFLA_ADDRESS] == bytes([2, 0x42, 0xac, 0x11, 0, 2])


def test_route_and_address_requests():
    mtype, _, body = fastnl.route(True, "0.0.0.0/0", via="10.0.0.1")
    family, dst_len, _, _, table, proto, scope, rtype, _ = struct.unpack_from("BBBBBBBBI", body, 0)
    assert (mtype, family, dst_len, table, proto, scope, rtype) == (
        fastnl.RTM_NEWROUTE, socket.AF_INET, 0, 254, 3, 0, 1)
    assert fastnl.attrs(body, 12)[fastnl.RTA_GATEWAY] == bytes([10, 0, 0, 1])
    mtype, _, body = fastnl.addr(True, 5, "10.0.0.2", 24)
    assert struct.unpack_from("BBBBI", body, 0) == (socket.AF_INET, 24, 0, 0, 5)


def test_parse_link_reads_what_netteach_uses():
    body = fastnl._ifinfo(index=3, flags=fastnl.IFF_UP) + fastnl.link_attrs(name="eth0", master=2, mtu=1500,
                                                                           mac="02:00:00:00:00:01")
    body += fastnl._attr(fastnl.IFLA_OPERSTATE, bytes([6])) + fastnl._nest(
        fastnl.IFLA_LINKINFO, fastnl._str(fastnl.IFLA_INFO_KIND, "veth"))
    link = fastnl.parse_link(body)
    assert link["index"] == 3 and link["ifname"] == "eth0" and link["kind"] == "veth"
    assert link["state"] == "UP" and link["admin_up"] and link["master"] == 2
    assert link["mac"] == "02:00:00:00:00:01" and link["mtu"] == 1500


@needs_root
@pytest.mark.kernel
def test_benchmark_script_runs_and_reports_every_figure():
    r = subprocess.run([sys.executable, "-m", "benchmarks.lab_scale", "--rounds", "1", "--n", "5",
                        "--sizes", "3"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for figure in ("build 5 containers", "tear them down", "DockerHost.run x5", "snapshot()", "draw()",
                   "peak RSS", "per-container cost"):
        assert figure in r.stdout
