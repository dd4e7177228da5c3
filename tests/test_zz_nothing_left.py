"""Runs last (files run in name order): after the whole suite the machine holds
no netteach object at all - no namespace, marked link or state file (processes are
checked where they are started: test_lab, test_ownership)."""

import os

from tests.conftest import needs_root, netteach_leftovers, sh


@needs_root
def test_machine_holds_no_netteach_object():
    assert netteach_leftovers() == []
    assert not os.path.exists("/run/netteach"), "state directory left behind"
    assert not [n for n in sh("ip netns list").split() if n.startswith("nt-")]
