"""Self-checks for notebook 05 (across hosts: a VXLAN overlay).

The lab of notebook 05: two Docker hosts ``node1`` and ``node2`` on an
underlay LAN (192.0.2.11 and .12), each with a bridge ``br0`` and a VXLAN
device (VNI 42) for the overlay 10.0.9.0/24, containers ``c1`` on node1 and
``c2`` on node2. Each check reads the kernel (links, ``ip -d link`` for the
VXLAN ids) and sends real pings, then names what is missing:

- :func:`overlay_third_container` -- exercise 1, ``c3`` on node2 joins the overlay;
- :func:`second_vni` -- exercise 2, a second overlay network (VNI 43) beside the first;
- :func:`jumbo_underlay` -- exercise 3, the other MTU fix: a bigger underlay MTU.

>>> _vxlan_info({"ifname": "vxlan0", "mtu": 1450, "master": "br0", "linkinfo": {"info_kind": "vxlan",
...              "info_data": {"id": 42, "remote": "192.0.2.12", "port": 4789}}})
{'ifname': 'vxlan0', 'vni': 42, 'remote': '192.0.2.12', 'port': 4789, 'mtu': 1450, 'master': 'br0'}
"""

from __future__ import annotations

import ipaddress
import json

from netteach import errors
from netteach.check import Result
from netteach.check.ch03 import _safe

__all__ = ["overlay_third_container", "second_vni", "jumbo_underlay"]

NODES = {"node1": "192.0.2.11", "node2": "192.0.2.12"}
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8


def _vxlan_info(link: dict) -> dict:
    data = link.get("linkinfo", {}).get("info_data", {})
    return {"ifname": link["ifname"], "vni": data.get("id"), "remote": data.get("remote"),
            "port": data.get("port"), "mtu": link.get("mtu"), "master": link.get("master")}


def _vxlans(lab, node: str) -> list[dict]:
    """The VXLAN devices of a node, read with ``ip -d -j link`` (VNI, remote, port, MTU, bridge)."""
    r = lab.exec(node, "ip -d -j link show type vxlan", timeout=30)
    if r.returncode != 0:  # say what failed rather than report a device as missing
        raise errors.KernelError(f"reading {node}'s VXLAN devices failed: {r.stderr.strip() or r.returncode}")
    return [_vxlan_info(link) for link in json.loads(r.stdout or "[]")]


def _eth(snap, name: str, subnet: str):
    """The container's interface with an address in ``subnet`` (or None)."""
    ns = snap.namespace(name)
    net = ipaddress.ip_network(subnet)
    for i in (ns.interfaces if ns else []):
        for a in i.addresses:
            if ":" not in a and ipaddress.ip_interface(a).ip in net:
                return i
    return None


def _need_container(lab, snap, name, node, address, bridge, problems) -> object:
    """``name`` exists, holds ``address``, its cable ends on ``bridge`` in ``node``, all up."""
    if snap.namespace(name) is None:
        problems.append(f"the lab has no namespace {name!r} (lab.add_netns({name!r}))")
        return None
    net = ipaddress.ip_interface(address).network
    eth = _eth(snap, name, str(net))
    if eth is None:
        problems.append(f"{name} has no address in {net} (lab.add_addr({name!r}, 'eth0', {address!r}))")
        return None
    if address not in eth.addresses:
        problems.append(f"{name}'s {eth.ifname} has {', '.join(eth.addresses)}, not {address}")
    end = snap.interface(*eth.peer) if eth.peer else None
    if end is None or end.netns != node:
        problems.append(f"{name}'s {eth.ifname} is not a veth whose other end is in {node!r} "
                        f"(lab.add_veth(..., netns={node!r}, peer_netns={name!r}))")
    elif end.master != bridge:
        problems.append(f"{name}'s cable end {end.ifname} in {node} is not plugged into {bridge} "
                        f"(lab.set_master({end.ifname!r}, {bridge!r}, netns={node!r}))")
    elif not end.admin_up:
        problems.append(f"{end.ifname} in {node} is down (lab.set_up({node!r}, {end.ifname!r}))")
    if not eth.admin_up:
        problems.append(f"{eth.ifname} in {name} is down (lab.set_up({name!r}, {eth.ifname!r}))")
    return eth


def _full_size_ping(lab, src: str, mtu: int, dst: str) -> bool:
    """A ping as big as ``src``'s MTU, with Don't Fragment: does it get through?"""
    r = lab.exec(src, ["ping", "-c", "1", "-W", "1", "-M", "do", "-s", str(mtu - 28), dst])
    return r.returncode == 0


def _need_tunnel(lab, vni: int, problems) -> dict:
    """{node: the VXLAN device with this VNI pointing at the other node}; problems for what is missing."""
    found = {}
    for node, ip in NODES.items():
        other = next(o for n, o in NODES.items() if n != node)
        devs = [d for d in _vxlans(lab, node) if d["vni"] == vni]
        if not devs:
            problems.append(f"{node} has no VXLAN device with VNI {vni} "
                            f"(lab.add_vxlan('vxlan1', {vni}, netns={node!r}, remote={other!r}, dev='eth0'))")
            continue
        d = devs[0]
        if d["remote"] != other:
            problems.append(f"{d['ifname']} (VNI {vni}) on {node} sends to {d['remote']}, not to the other node {other}")
        if d["port"] != 4789:
            problems.append(f"{d['ifname']} (VNI {vni}) on {node} uses UDP port {d['port']}, not 4789")
        if not d["master"]:
            problems.append(f"{d['ifname']} (VNI {vni}) on {node} is not plugged into a bridge")
        found[node] = d
    return found


# ---- exercise 1 ------------------------------------------------------------------------------------

@_safe
def overlay_third_container(lab, name: str = "c3", address: str = "10.0.9.4/24", node: str = "node2",
                            peers: tuple = ("10.0.9.2", "10.0.9.3")) -> Result:
    """Exercise 1: a container ``c3`` on node2, on the overlay (VNI 42), reaching c1 across the tunnel.

    Full-size packets must pass too: c3's MTU has to leave room for the 50
    bytes of VXLAN headers.
    """
    title = "overlay_third_container"
    snap = lab.snapshot()
    problems = []
    overlay = _need_tunnel(lab, 42, problems).get(node)
    bridge = overlay["master"] if overlay else "br0"
    eth = _need_container(lab, snap, name, node, address, bridge, problems)
    if eth is None or problems:
        return Result(title, problems)
    for peer in peers:
        if not lab.ping(name, peer):
            problems.append(f"ping {peer} from {name} gets no answer")
    if not problems and not _full_size_ping(lab, name, eth.mtu, peers[0]):
        problems.append(f"small pings pass but a full-size one ({eth.mtu} bytes, {name}'s MTU) to {peers[0]} "
                        f"is lost: the tunnel carries at most {overlay['mtu']} (lab.set_mtu({name!r}, "
                        f"{eth.ifname!r}, {overlay['mtu']}))")
    return Result(title, problems)


# ---- exercise 2 ------------------------------------------------------------------------------------

@_safe
def second_vni(lab, vni: int = 43, containers: tuple = (("b1", "node1", "10.0.10.2/24"),
                                                       ("b2", "node2", "10.0.10.3/24"))) -> Result:
    """Exercise 2: a second overlay network, VNI 43 and 10.0.10.0/24, with b1 on node1 and b2 on node2."""
    title = "second_vni"
    snap = lab.snapshot()
    problems = []
    tunnels = _need_tunnel(lab, vni, problems)
    first = {n: next((d for d in _vxlans(lab, n) if d["vni"] == 42), None) for n in NODES}
    for node, d in tunnels.items():
        if first[node] and d["master"] and d["master"] == first[node]["master"]:
            problems.append(f"on {node} VNI {vni} is plugged into {d['master']}, the bridge of VNI 42: "
                            "give the second network a bridge of its own, or the two networks are one")
    eths = {}
    for name, node, address in containers:
        bridge = tunnels[node]["master"] if node in tunnels and tunnels[node]["master"] else f"the VNI {vni} bridge"
        eths[name] = _need_container(lab, snap, name, node, address, bridge, problems)
    if problems:
        return Result(title, problems)
    (a, _, _), (b, _, addr_b) = containers
    if not lab.ping(a, addr_b.split("/")[0]):
        problems.append(f"ping {addr_b.split('/')[0]} from {a} gets no answer")
    return Result(title, problems)


# ---- exercise 3 ------------------------------------------------------------------------------------

@_safe
def jumbo_underlay(lab, underlay_mtu: int = 1550, containers: tuple = ("c1", "c2"),
                   subnet: str = "10.0.9.0/24") -> Result:
    """Exercise 3: the underlay carries 1550-byte packets, so the overlay and its containers keep 1500."""
    title = "jumbo_underlay"
    snap = lab.snapshot()
    problems = []
    host = snap.namespace("host")
    for node in NODES:
        ns = snap.namespace(node)
        eth0 = ns.interface("eth0") if ns else None
        if eth0 is None:
            problems.append(f"{node} has no eth0 on the underlay")
            continue
        if (eth0.mtu or 0) < underlay_mtu:
            problems.append(f"{node}'s eth0 has MTU {eth0.mtu}, less than {underlay_mtu} "
                            f"(lab.set_mtu({node!r}, 'eth0', {underlay_mtu}))")
        end = snap.interface(*eth0.peer) if eth0.peer else None
        if end is not None and (end.mtu or 0) < underlay_mtu:
            problems.append(f"the switch port {end.ifname} in {end.netns!r} has MTU {end.mtu}: "
                            f"every hop of the underlay must carry {underlay_mtu}")
        for d in _vxlans(lab, node):
            if d["vni"] == 42 and (d["mtu"] or 0) < 1500:
                problems.append(f"{d['ifname']} on {node} still has MTU {d['mtu']} "
                                f"(lab.set_mtu({node!r}, {d['ifname']!r}, 1500))")
    bridge = next((i for i in (host.interfaces if host else []) if i.kind == "bridge"), None)
    if bridge is not None and (bridge.mtu or 0) < underlay_mtu:
        problems.append(f"the LAN bridge {bridge.ifname} has MTU {bridge.mtu} (its ports' smallest)")
    for name in containers:
        eth = _eth(snap, name, subnet)
        if eth is None:
            problems.append(f"{name} has no address in {subnet}")
        elif eth.mtu != 1500:
            problems.append(f"{name}'s {eth.ifname} has MTU {eth.mtu}: with a jumbo underlay it keeps 1500 "
                            f"(lab.set_mtu({name!r}, {eth.ifname!r}, 1500))")
    if problems:
        return Result(title, problems)
    a, b = containers
    target = _eth(snap, b, subnet).addresses[0].split("/")[0]
    if not _full_size_ping(lab, a, 1500, target):
        problems.append(f"a 1500-byte ping with Don't Fragment from {a} to {b} ({target}) is lost")
    return Result(title, problems)
