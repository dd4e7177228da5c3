"""Probe what this kernel and machine can do, by trying it in a throw-away namespace.

Nothing is guessed from version numbers: each feature is created once, in a
namespace of its own that is removed again at once.
"""

from __future__ import annotations

import os
import shutil

from netteach import errors
from netteach.kernel import procs

PROBE_NS = "nt-_doctor.probe"
PROBE_MARKER = "netteach lab=_doctor"

CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21


def capabilities() -> dict:
    """Effective capabilities of this process: {"net_admin": bool, "sys_admin": bool}."""
    eff = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    eff = int(line.split()[1], 16)
    except OSError:
        pass
    return {"net_admin": bool(eff >> CAP_NET_ADMIN & 1), "sys_admin": bool(eff >> CAP_SYS_ADMIN & 1)}


def user_namespaces() -> bool:
    """Can an unprivileged process make a user namespace here (the rootless route)?"""
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    argv = [unshare, "--user", "--map-root-user", "--net", "--mount", "true"]
    if os.geteuid() == 0:  # probe as nobody: root can always do it
        setpriv = shutil.which("setpriv")
        if not setpriv:
            return False
        argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    rc, _, _ = procs.run(None, argv, timeout=5)
    return rc == 0


def tools() -> dict:
    """{tool: path or None} for the commands netteach uses."""
    return {t: shutil.which(t) for t in ("ip", "nft", "ping", "tc", "nsenter", "tcpdump")}


LINK_KINDS = ("veth", "bridge", "vxlan", "macvlan", "ipvlan", "vlan", "dummy", "vrf", "wireguard")


def probe_kernel() -> dict:
    """{feature: True/False} for link kinds, nftables NAT and netem, tried for real."""
    from netteach import kernel

    out = {}
    if kernel.netns_exists(PROBE_NS):  # left by a probe that was killed
        kernel.netns_delete(PROBE_NS)
    kernel.netns_add(PROBE_NS, alias=PROBE_MARKER)
    try:
        for kind in LINK_KINDS:
            name = f"p-{kind}"[:15]
            try:
                if kind == "veth":
                    kernel.veth_add(PROBE_NS, "p-veth", "p-veth1")
                elif kind in ("macvlan", "ipvlan", "vlan"):
                    attrs = {"link": _index(PROBE_NS, "p-veth")}
                    attrs.update({"macvlan": {"macvlan_mode": "bridge"}, "ipvlan": {"ipvlan_mode": 0},
                                  "vlan": {"vlan_id": 10}}[kind])
                    kernel.link_add(PROBE_NS, name, kind, **attrs)
                elif kind == "vxlan":
                    kernel.link_add(PROBE_NS, name, kind, vxlan_id=42, vxlan_port=4789)
                elif kind == "vrf":
                    kernel.link_add(PROBE_NS, name, kind, vrf_table=10)
                else:
                    kernel.link_add(PROBE_NS, name, kind)
                out[kind] = kernel.link_get(PROBE_NS, "p-veth" if kind == "veth" else name) is not None
            except errors.NetteachError:
                out[kind] = False
        if shutil.which("nft"):
            rc, _, _ = procs.run(PROBE_NS, ["nft", "-f", "-"], input=(
                "table ip probe {\n chain post { type nat hook postrouting priority 100; masquerade; }\n"
                " chain pre { type nat hook prerouting priority -100; tcp dport 8080 dnat to 10.0.0.2:80; }\n"
                "}\n"))
            out["nft nat"] = rc == 0
        else:
            out["nft nat"] = False
        if shutil.which("tc"):
            rc, _, _ = procs.run(PROBE_NS, ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
            out["netem"] = rc == 0
            rc, _, _ = procs.run(PROBE_NS, ["tc", "qdisc", "replace", "dev", "lo", "root", "tbf",
                                            "rate", "1mbit", "burst", "32kbit", "latency", "50ms"])
            out["tbf"] = rc == 0
        else:
            out["netem"] = out["tbf"] = False
        out["br_netfilter"] = os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables")
    finally:
        kernel.netns_delete(PROBE_NS)
    return out


def _index(ns, ifname):
    from netteach import kernel

    link = kernel.link_get(ns, ifname)
    if link is None:
        raise errors.NoSuchInterface(ifname)
    return link["index"]
