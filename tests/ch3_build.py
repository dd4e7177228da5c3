"""What notebook 03 builds by hand, as a helper for the chapter 3 kernel tests.

A plain Lab set up like ``docker run -p 8080:80`` on the default bridge:
docker0 172.17.0.1/16, container ``c1`` (172.17.0.2/16, Docker's MAC, host
end ``veth7f3a2c1`` on docker0, default route), an uplink to an ``internet``
namespace (198.51.100.0/24, server address 203.0.113.10), ip_forward,
masquerade, DNAT in PREROUTING and OUTPUT, and Docker's FORWARD policy.

``hand_built`` is the host as notebook 03 has it *before* the fix: without
Docker's intra-bridge accept (``INTRA_BRIDGE``), so with br_netfilter loaded a
second container's packets to c1 meet FORWARD's drop policy; the notebook then
adds ``INTRA_BRIDGE`` (and a userland proxy for 8080).
"""

MASQUERADE = """add table ip nat
add chain ip nat POSTROUTING { type nat hook postrouting priority srcnat; policy accept; }
flush chain ip nat POSTROUTING
add rule ip nat POSTROUTING ip saddr 172.17.0.0/16 oifname != "docker0" masquerade
"""

PUBLISH = """add chain ip nat PREROUTING { type nat hook prerouting priority dstnat; policy accept; }
add chain ip nat OUTPUT { type nat hook output priority -100; policy accept; }
add chain ip nat DOCKER
flush chain ip nat PREROUTING
flush chain ip nat OUTPUT
flush chain ip nat DOCKER
add rule ip nat PREROUTING fib daddr type local jump DOCKER
add rule ip nat OUTPUT ip daddr != 127.0.0.0/8 fib daddr type local jump DOCKER
add rule ip nat DOCKER iifname "docker0" return
add rule ip nat DOCKER iifname != "docker0" tcp dport 8080 dnat to 172.17.0.2:80
"""

FORWARD = """add table ip filter
add chain ip filter FORWARD { type filter hook forward priority filter; policy drop; }
flush chain ip filter FORWARD
add rule ip filter FORWARD oifname "docker0" ct state related,established accept
add rule ip filter FORWARD ip daddr 172.17.0.2 iifname != "docker0" oifname "docker0" tcp dport 80 accept
add rule ip filter FORWARD iifname "docker0" oifname != "docker0" accept
"""

# Docker's accept for traffic between two containers of one bridge (the lesson's fix)
INTRA_BRIDGE = 'add rule ip filter FORWARD iifname "docker0" oifname "docker0" accept\n'


def nft(lab, script):
    r = lab.exec("host", ["nft", "-f", "-"], input=script)
    assert r.ok, r


def base(lab, forward=True, masquerade=True):
    """docker0, the internet namespace and its uplink; ip_forward and masquerade unless told not to."""
    lab.add_bridge("docker0")
    lab.add_addr("host", "docker0", "172.17.0.1/16")
    lab.set_up("host", "docker0")
    lab.add_netns("internet")
    lab.add_veth("eth0", "eth0", peer_netns="internet")
    lab.add_addr("host", "eth0", "198.51.100.2/24")
    lab.add_addr("internet", "eth0", "198.51.100.1/24")
    lab.add_addr("internet", "eth0", "203.0.113.10/24")
    lab.set_up("host", "eth0")
    lab.set_up("internet", "eth0")
    lab.add_route("host", "default", via="198.51.100.1")
    lab.serve("internet", 80)
    if forward:
        lab.sysctl("host", "net.ipv4.ip_forward", 1)
    if masquerade:
        nft(lab, MASQUERADE)


def container(lab, name, veth, ip, mac, route=True):
    """A container namespace on docker0, as Docker plugs it in."""
    lab.add_netns(name)
    lab.add_veth(veth, "eth0", peer_netns=name)
    lab.set_master(veth, "docker0")
    lab.set_up("host", veth)
    lab.exec(name, f"ip link set eth0 address {mac}")
    lab.add_addr(name, "eth0", f"{ip}/16")
    lab.set_up(name, "eth0")
    if route:
        lab.add_route(name, "default", via="172.17.0.1")


def hand_built(lab):
    """The whole of notebook 03's hand-built host, with c1 serving port 80 published on 8080."""
    base(lab)
    container(lab, "c1", "veth7f3a2c1", "172.17.0.2", "02:42:ac:11:00:02")
    lab.serve("c1", 80)
    nft(lab, PUBLISH)
    nft(lab, FORWARD)
    return lab
