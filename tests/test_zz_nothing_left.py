"""Runs last (files run in name order): after the whole suite the machine holds
no netteach object at all - no namespace, marked link, state file or process."""

import os

from tests.conftest import needs_root, netteach_leftovers, sh


@needs_root
def test_machine_holds_no_netteach_object():
    assert netteach_leftovers() == []
    assert not os.path.exists("/run/netteach"), "state directory left behind"
    assert not [n for n in sh("ip netns list").split() if n.startswith("nt-")]
    # no process of ours is still running inside a namespace of ours
    mine = [p for p in os.listdir("/proc") if p.isdigit()
            and os.path.exists(f"/proc/{p}/cmdline")
            and b"nt-" in open(f"/proc/{p}/cmdline", "rb").read() and int(p) != os.getpid()]
    assert mine == []
