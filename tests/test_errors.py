"""Every failure a student can cause is a NetteachError subclass that names what went wrong.

Regression tests for the wrong error classes found in review (issue 8, item 5): nft
failures and an unknown chain raised NoSuchInterface, every sysctl OSError (EPERM too)
became InvalidAddress, and NotOnThisMachine lived outside errors.py's tree.
"""

from __future__ import annotations

import pytest

import netteach as nt
from netteach import errors
from tests.conftest import needs_root, netteach_leftovers


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_every_netteach_error_is_in_the_one_tree():
    import netteach.check  # noqa: F401  (modules that might define errors of their own)
    import netteach.docker.host  # noqa: F401
    import netteach.doctor  # noqa: F401
    import netteach.lab  # noqa: F401

    subs = set(_all_subclasses(nt.NetteachError))
    assert nt.NotOnThisMachine in subs and nt.NoSuchChain in subs and nt.InvalidValue in subs
    for cls in subs:
        assert cls.__module__ == "netteach.errors", f"{cls.__name__} is defined outside errors.py"
        assert f"── {cls.__name__} " in errors.__doc__, f"{cls.__name__} is missing from the drawn tree"
        assert getattr(nt, cls.__name__) is cls, f"nt.{cls.__name__} is not exported"
    from netteach.doctor import NotOnThisMachine  # the old import path keeps working

    assert NotOnThisMachine is nt.NotOnThisMachine
    assert issubclass(nt.NotOnThisMachine, nt.MissingKernelFeature)
    assert issubclass(nt.NoSuchChain, LookupError) and issubclass(nt.InvalidValue, ValueError)


@needs_root
@pytest.mark.kernel
def test_sysctl_errors_say_what_the_kernel_said(lab):
    lab.add_netns("c1")
    with pytest.raises(nt.InvalidValue, match="rp_filter") as exc:  # the kernel: EINVAL
        lab.sysctl("c1", "net.ipv4.conf.all.rp_filter", "abc")
    assert not isinstance(exc.value, nt.InvalidAddress)
    with pytest.raises(nt.PermissionDenied, match="mc_forwarding") as exc:  # a read-only sysctl: EACCES
        lab.sysctl("c1", "net.ipv4.conf.all.mc_forwarding", 1)
    assert not isinstance(exc.value, nt.InvalidAddress)
    with pytest.raises(nt.InvalidName, match="no sysctl"):
        lab.sysctl("c1", "net.ipv4.no_such_thing", 1)
    assert lab.sysctl("c1", "net.ipv4.conf.all.rp_filter") in ("0", "1", "2")  # nothing changed


@needs_root
@pytest.mark.kernel
def test_nft_errors_are_not_interface_errors(lab):
    with pytest.raises(nt.NoSuchChain, match="NOPE") as exc:
        lab.nft("host", "chain ip filter NOPE")
    assert not isinstance(exc.value, nt.NoSuchInterface)
    with pytest.raises(nt.KernelError, match="nft list"):
        lab.nft("host", "bogus words here")


@needs_root
@pytest.mark.kernel
def test_unknown_docker_chain_is_no_such_chain(lab_name):
    with nt.DockerHost(lab_name) as dh:
        assert "DOCKER-USER" in dh.rules("DOCKER-USER")
        with pytest.raises(nt.NoSuchChain, match="DOCKER-USER") as exc:
            dh.rules("DOCKER-NOPE")
        assert not isinstance(exc.value, nt.NoSuchInterface)
    assert netteach_leftovers(lab_name) == []


def test_nt_doctor_stays_callable_after_its_module_is_imported():
    import netteach as nt
    import netteach.doctor  # binds the submodule to the package's name 'doctor'

    caps = nt.doctor(show=False)
    assert type(caps).__name__ == "Capabilities"
