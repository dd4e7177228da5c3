"""A lesson's first ping must not fail at random (issue 9 item 20).

The cause: a one-packet ping waits 1 s for its reply, and ARP waits exactly 1 s
before it asks again. Whenever the first ARP request or its answer is lost -
here because the cable's other end comes up only after the ping started, on a
busy machine because a just-connected veth's queue is switched on by the
kernel's link-watch work a moment late - the echo request leaves only after
ARP's second try, and the ping has given up by then: 0/1 once, 1/1 on every
re-run. ``lab.ping`` waits 2 s by default, which covers one ARP retry.
"""

from __future__ import annotations

import threading

import pytest

from netteach import kernel
from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.kernel]


def test_first_ping_survives_a_lost_first_arp_request(lab):
    lab.add_netns("pod1")
    lab.add_bridge("cni0")
    lab.add_addr("host", "cni0", "10.22.0.1/24")
    lab.set_up("host", "cni0")
    lab.add_veth("veth1", "eth0", peer_netns="pod1")
    lab.set_master("veth1", "cni0")
    lab.add_addr("pod1", "eth0", "10.22.0.5/24")
    lab.set_up("pod1", "eth0")  # the host end is still down: the first ARP request is lost
    kns = lab.kernel_name("pod1")

    def host_end_up_once_arp_is_waiting():
        # no timing: wait until the kernel holds an unanswered ARP entry for the gateway
        while not any("10.22.0.1" in line and "INCOMPLETE" in line
                      for line in kernel.run(kns, ["ip", "neigh"])[1].splitlines()):
            pass
        lab.set_up("host", "veth1")

    t = threading.Thread(target=host_end_up_once_arp_is_waiting)
    t.start()
    result = lab.ping("pod1", "10.22.0.1")
    t.join()
    assert result, f"the first ping failed: {result.output}"
