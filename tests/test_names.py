"""Names and addresses are checked before anything reaches the kernel (no root needed)."""

import pytest

import netteach as nt
from netteach import names


@pytest.mark.parametrize("bad", ["", "x" * 16, "a/b", "a b", "a:b", ".", "..", "eth0%"])
def test_bad_interface_names(bad):
    with pytest.raises(nt.InvalidName):
        names.ifname(bad)


def test_interface_name_limit_is_in_bytes():
    assert names.ifname("x" * 15) == "x" * 15
    with pytest.raises(nt.InvalidName, match="16 bytes"):
        names.ifname("é" * 8)  # 8 characters, 16 bytes


@pytest.mark.parametrize("bad", ["UPPER", "-x", "with.dot", "x" * 25, "a_b"])
def test_bad_lab_names(bad):
    with pytest.raises(nt.InvalidName):
        names.lab(bad)


@pytest.mark.parametrize("bad", ["10.0.0.2", "10.0.0.300/24", "10.0.0.2/33", "hello/8"])
def test_bad_cidrs(bad):
    with pytest.raises(nt.InvalidAddress):
        names.interface_cidr(bad)


def test_route_destination_with_host_bits_suggests_network():
    with pytest.raises(nt.InvalidAddress, match="did you mean '10.0.0.0/24'"):
        names.route_dst("10.0.0.5/24")
    assert names.route_dst("default") == "0.0.0.0/0"


def test_errors_are_builtin_kinds_too():
    assert issubclass(nt.InvalidName, ValueError)
    assert issubclass(nt.NoSuchNamespace, LookupError)
    assert issubclass(nt.PermissionDenied, PermissionError)


def test_import_is_cheap():
    import subprocess
    import sys

    code = ("import sys, netteach; "
            "print([m for m in ('pyroute2', 'matplotlib', 'networkx') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
