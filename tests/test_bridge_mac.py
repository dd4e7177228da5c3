"""A bridge keeps its MAC while ports come and go (else containers' ARP caches go stale)."""

import pytest

from tests.conftest import needs_root

pytestmark = [needs_root, pytest.mark.kernel]


def test_bridge_mac_is_fixed_while_ports_join(lab):
    lab.add_bridge("br0")
    mac = lab.snapshot().interface("host", "br0").mac
    assert f"link set br0 address {mac}" in str(lab.commands)
    for i in range(6):  # random port MACs: without a fixed address one would soon be lower
        lab.add_netns(f"c{i}")
        lab.add_veth(f"v{i}", "eth0", peer_netns=f"c{i}")
        lab.set_master(f"v{i}", "br0")
        assert lab.snapshot().interface("host", "br0").mac == mac
