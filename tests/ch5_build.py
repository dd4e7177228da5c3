"""The lab of notebook 05, built as the notebook builds it: two nodes on a LAN, a VXLAN overlay."""

from __future__ import annotations


def underlay(lab):
    lab.add_bridge("lan")
    lab.set_up("host", "lan")
    for i, node in ((1, "node1"), (2, "node2")):
        lab.add_netns(node)
        lab.add_veth(f"port{i}", "eth0", peer_netns=node)
        lab.set_master(f"port{i}", "lan")
        lab.set_up("host", f"port{i}")
        lab.add_addr(node, "eth0", f"192.0.2.1{i}/24")
        lab.set_up(node, "eth0")


def overlay(lab, vni=42, bridge="br0", vxlan="vxlan0", subnet="10.0.9", names=("c1", "c2"), mtu=1450):
    for i, node, remote in ((1, "node1", "192.0.2.12"), (2, "node2", "192.0.2.11")):
        lab.add_bridge(bridge, netns=node)
        lab.add_vxlan(vxlan, vni, netns=node, remote=remote, dev="eth0")
        lab.set_master(vxlan, bridge, netns=node)
        lab.set_up(node, vxlan)
        lab.set_up(node, bridge)
        c = names[i - 1]
        container(lab, c, node, f"{subnet}.{i + 1}/24", bridge, mtu)


def container(lab, name, node, address, bridge="br0", mtu=1450):
    lab.add_netns(name)
    lab.add_veth(f"v-{name}", "eth0", netns=node, peer_netns=name)
    lab.set_master(f"v-{name}", bridge, netns=node)
    lab.set_up(node, f"v-{name}")
    if mtu:
        lab.set_mtu(name, "eth0", mtu)
    lab.add_addr(name, "eth0", address)
    lab.set_up(name, "eth0")


def build(lab, mtu=1450):
    underlay(lab)
    overlay(lab, mtu=mtu)
    return lab
