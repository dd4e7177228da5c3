"""``nt.doctor()``: what this machine lets netteach do, and what to do about the rest.

>>> caps = Capabilities(root=False, net_admin=False, sys_admin=False, user_namespaces=False,
...                     features={}, tools={"ip": "/usr/sbin/ip"})
>>> caps.real_labs
False
>>> caps.mode
'neither'
>>> Capabilities(root=False, net_admin=False, sys_admin=False, user_namespaces=True).mode
'rootless'
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from netteach.errors import NotOnThisMachine  # noqa: F401  (was defined here; kept importable)
from netteach.kernel import features as _features

WHY = {
    "veth": "every container's cable",
    "bridge": "docker0 and user-defined networks",
    "vxlan": "multi-host overlay (notebook 05)",
    "macvlan": "macvlan networks (notebook 04)",
    "ipvlan": "ipvlan networks (notebook 04)",
    "vlan": "802.1q sub-interfaces (macvlan trunking)",
    "dummy": "dummy uplinks (optional)",
    "vrf": "VRF routing tables (optional)",
    "wireguard": "encrypted overlays (optional)",
    "nft nat": "masquerade and -p publishing (notebook 03)",
    "netem": "delay/loss emulation (notebook 06)",
    "tbf": "bandwidth limits (notebook 06)",
    "br_netfilter": "bridge traffic through the firewall (notebook 07)",
}
TOOLS = {"ip": "iproute2", "nft": "nftables", "ping": "iputils-ping", "tc": "iproute2",
         "nsenter": "util-linux", "tcpdump": "tcpdump"}
NEEDED_TOOLS = ("ip", "nft", "ping")


@dataclass
class Capabilities:
    """What :func:`doctor` found. ``real_labs`` says whether ``nt.Lab`` can build here."""

    root: bool
    net_admin: bool
    sys_admin: bool
    user_namespaces: bool
    features: dict = field(default_factory=dict)  # feature -> True/False (empty: not probed)
    tools: dict = field(default_factory=dict)  # tool -> path or None
    docker: dict = field(default_factory=dict)  # a dockerd here: engine.host_facts() (empty: not checked)

    @property
    def mode(self) -> str:
        """Which labs this machine allows this user: ``"root"``, ``"rootless"`` or ``"neither"``."""
        if self.net_admin and self.sys_admin:  # (root without these capabilities cannot build)
            return "root"
        return "rootless" if self.user_namespaces else "neither"

    @property
    def real_labs(self) -> bool:
        return self.mode != "neither" and bool(self.tools.get("ip"))

    @property
    def missing(self) -> list[str]:
        return ([f for f, ok in self.features.items() if not ok]
                + [t for t in NEEDED_TOOLS if not self.tools.get(t)])

    def has(self, feature: str) -> bool:
        """``caps.has("macvlan")``: True if the kernel made one when probed."""
        return bool(self.features.get(feature))

    def require(self, *features: str, notebook: str = "this notebook") -> "Capabilities":
        """Stop "Run All" here, with a message instead of a traceback, if a kernel feature is missing.

        A notebook's first cell calls ``caps.require("nft nat")``: on a machine
        without it, nothing gets built and the student reads why and what to do.
        Returns the capabilities, so ``caps = nt.doctor(show=False).require(...)`` works.

        >>> tools = {"ip": "/usr/sbin/ip", "nft": "/usr/sbin/nft", "ping": "/usr/bin/ping"}
        >>> Capabilities(True, True, True, True, features={"nft nat": True}, tools=tools).require("nft nat")
        <Capabilities: mode root; real labs yes; missing: nothing>
        >>> Capabilities(True, True, True, True, features={"nft nat": False}, tools=tools).require("nft nat")
        Traceback (most recent call last):
        ...
        netteach.errors.NotOnThisMachine: this machine cannot do nft nat (masquerade and -p publishing (notebook 03)): this notebook needs it, so it stops here - nothing was built. nt.doctor() lists what is missing and what to do.
        """
        missing = [f for f in features if not self.has(f)]
        if missing:
            why = "; ".join(f"{f} ({WHY[f]})" if f in WHY else f for f in missing)
            raise NotOnThisMachine(f"this machine cannot do {why}: {notebook} needs it, so it "
                                   "stops here - nothing was built. nt.doctor() lists what is missing "
                                   "and what to do.")
        return self

    def advice(self) -> list[str]:
        out = []
        if self.mode == "rootless":
            out.append("not root, but unprivileged user namespaces work: labs are built rootless, "
                       "in a helper process of your own (nt.Lab(name) does it)")
        elif self.mode == "neither":
            from netteach.kernel.helper import userns_blocker

            out.append("not root, and no user namespaces for rootless labs: " + userns_blocker()
                       + " Or run as root: `./bootstrap.sh lab --root`.")
        for tool, pkg in TOOLS.items():
            if not self.tools.get(tool) and tool in NEEDED_TOOLS:
                out.append(f"{tool} missing: apt-get install {pkg}")
        out += docker_advice(self.docker)
        for feat, ok in self.features.items():
            if not ok:
                out.append(f"{feat} not available in this kernel ({WHY.get(feat, '')}); the cells "
                           "that need it will say so and skip")
        return out

    def table(self) -> str:
        yes = lambda b: "yes" if b else "NO"  # noqa: E731
        rows = [("root", yes(self.root)), ("CAP_NET_ADMIN", yes(self.net_admin)),
                ("CAP_SYS_ADMIN", yes(self.sys_admin)),
                ("user namespaces (rootless)", yes(self.user_namespaces))]
        for feat in WHY:
            if feat in self.features:
                rows.append((f"kernel: {feat}", f"{'yes' if self.features[feat] else 'no':<4} {WHY[feat]}"))
        if not self.features:
            rows.append(("kernel features", "not probed (nt.doctor() tries each, as root or rootless)"))
        for tool in TOOLS:
            rows.append((f"tool: {tool}", self.tools.get(tool) or f"missing (apt-get install {TOOLS[tool]})"))
        d = self.docker
        if d:
            if not d.get("present"):
                rows.append(("docker", f"no dockerd ({d.get('socket')} absent) - nt.inspect() shows the "
                                       "kernel only; apt-get install docker.io for notebook 08"))
            elif d.get("error"):
                rows.append(("docker", f"not read: {d['error']}"))
            else:
                rows.append(("docker", f"dockerd {d['version']} (API {d['api']}) on {d['socket']}"))
                rows.append(("docker: firewall", f"{d['firewall']}, FORWARD policy {d['forward_policy'] or '-'}"))
                rows.append(("docker: br_netfilter", "loaded, bridge-nf-call-iptables="
                             f"{d['bridge_nf_call_iptables']}" if d["br_netfilter"] else "not loaded"))
        width = max(len(r[0]) for r in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        lines.append("")
        lines.append("mode: " + {"root": "root - nt.Lab(...) builds real namespaces here as root",
                                 "rootless": "rootless - nt.Lab(...) builds real namespaces in a user "
                                             "namespace of your own (no root needed)",
                                 "neither": "neither - no real labs here; see below"}[self.mode])
        lines.append("real labs: " + ("yes" if self.real_labs else "no - see below"))
        lines += [f"  * {a}" for a in self.advice()]
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        miss = ", ".join(self.missing) or "nothing"
        return f"<Capabilities: mode {self.mode}; real labs {'yes' if self.real_labs else 'no'}; missing: {miss}>"


def docker_advice(d: dict) -> list[str]:
    """What a dockerd on the machine means for ``host="root"`` labs (isolated labs are unaffected).

    >>> docker_advice({"present": True, "version": "20.10.24", "api": "1.41", "socket": "/var/run/docker.sock",
    ...                "firewall": "iptables-nft", "forward_policy": "drop", "br_netfilter": True,
    ...                "bridge_nf_call_iptables": "1"})[0][:60]
    "dockerd's FORWARD policy is drop and br_netfilter sends brid"
    """
    if not d.get("present") or d.get("error") or "version" not in d:
        return []
    out = []
    if d.get("forward_policy") == "drop":
        if d.get("br_netfilter") and d.get("bridge_nf_call_iptables") == "1":
            out.append("dockerd's FORWARD policy is drop and br_netfilter sends bridged frames through it "
                       "(bridge-nf-call-iptables=1): in a host='root' lab, traffic between two containers on "
                       "one bridge is dropped (a failed lab.ping says so). Use isolated labs (the default, "
                       "unaffected), or accept the lab's bridge: `iptables -I DOCKER-USER -i BRIDGE -o BRIDGE "
                       "-j ACCEPT`, deleted afterwards.")
        else:
            out.append("dockerd's FORWARD policy is drop: a host='root' lab that routes between its "
                       "namespaces through the machine is dropped there; isolated labs are unaffected")
    if d.get("firewall") == "iptables-legacy":
        out.append("Docker's rules are in iptables-legacy: `nft list ruleset` does not show them "
                   "(nt.inspect() reads them with iptables-legacy-save: snap.iptables_legacy)")
    return out


def _probe_rootless() -> dict:
    """The kernel features probed inside a helper (started for it, unless a lab already has one)."""
    from netteach.errors import NetteachError
    from netteach.kernel import helper

    mine = helper.current() is None
    try:
        return helper.start().call("features.probe_kernel", (), {})
    except NetteachError:
        return {}
    finally:
        if mine:
            helper.stop()


def doctor(show: bool = True, probe: bool = True, docker: bool | str = True) -> Capabilities:
    """Check what this machine allows: privileges, kernel features (probed), tools.

    Prints the table (``show=False`` to only return it) and returns a
    :class:`Capabilities`, whose ``mode`` says which labs this machine allows:
    ``root``, ``rootless`` (a helper in a user namespace) or ``neither`` (and
    the advice says why and the exact fix). Kernel features are probed for
    real, in a throw-away namespace (inside the helper when rootless). A
    dockerd on the machine (``$DOCKER_HOST`` or /var/run/docker.sock;
    ``docker=`` another socket, or False) is reported with its version,
    firewall backend, FORWARD policy and br_netfilter, and what that means
    for ``host="root"`` labs.
    """
    caps = _features.capabilities()
    root = os.geteuid() == 0
    c = Capabilities(root=root, net_admin=caps["net_admin"], sys_admin=caps["sys_admin"],
                     user_namespaces=_features.user_namespaces(), tools=_features.tools())
    if probe and c.mode == "root" and c.tools.get("ip"):
        c.features = _features.probe_kernel()
    elif probe and c.mode == "rootless" and c.tools.get("ip"):
        c.features = _probe_rootless()
    if docker:
        from netteach.docker import engine

        try:
            c.docker = engine.host_facts(docker if isinstance(docker, str) else None)
        except Exception as exc:  # doctor must always finish: say what failed instead
            c.docker = {"present": True, "error": f"{type(exc).__name__}: {exc}"}
    if show:
        print(c.table())
    return c


class _CallableModule(type(os)):
    """Importing ``netteach.doctor`` makes the package attribute ``nt.doctor`` this module
    (Python binds a submodule to its package's name), hiding the function of the same name;
    calling the module calls the function, so ``nt.doctor()`` works whatever was imported first."""

    def __call__(self, *args, **kwargs):
        return doctor(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
