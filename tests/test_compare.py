"""compare(): two builds of one container, role by role; and the ruleset walker behind its nft rows.

The pure tests use the hand-written snapshots of tests/fixtures.py and recorded
``nft list ruleset`` texts; one kernel test compares notebook 03's hand-built
host with a DockerHost."""

from __future__ import annotations

import copy

import pytest

from netteach.compare import Comparison, compare
from netteach.ruleset import Packet, Ruleset, essential, nat_rules
from tests.conftest import needs_root
from tests.fixtures import bridge_lab

# what `nft list ruleset` shows in a DockerHost running `web` with -p 8080:80 (recorded)
DOCKER_RULESET = """table ip nat {
	chain PREROUTING {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local counter packets 1 bytes 60 jump DOCKER
	}

	chain OUTPUT {
		type nat hook output priority -100; policy accept;
		ip daddr != 127.0.0.0/8 fib daddr type local counter packets 0 bytes 0 jump DOCKER
	}

	chain POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 172.17.0.0/16 oifname != "docker0" counter packets 3 bytes 156 masquerade
		ip saddr 172.17.0.2 ip daddr 172.17.0.2 tcp dport 80 counter packets 0 bytes 0 masquerade
	}

	chain DOCKER {
		iifname "docker0" counter packets 0 bytes 0 return
		iifname != "docker0" tcp dport 8080 counter packets 1 bytes 60 dnat to 172.17.0.2:80
	}
}
table ip filter {
	chain INPUT {
		type filter hook input priority filter; policy accept;
	}

	chain FORWARD {
		type filter hook forward priority filter; policy drop;
		counter packets 22 bytes 1451 jump DOCKER-USER
		counter packets 22 bytes 1451 jump DOCKER-ISOLATION-STAGE-1
		oifname "docker0" ct state established,related counter packets 10 bytes 647 accept
		oifname "docker0" counter packets 1 bytes 60 jump DOCKER
		iifname "docker0" oifname != "docker0" counter packets 11 bytes 744 accept
		iifname "docker0" oifname "docker0" counter packets 0 bytes 0 accept
	}

	chain OUTPUT {
		type filter hook output priority filter; policy accept;
	}

	chain DOCKER {
		ip daddr 172.17.0.2 iifname != "docker0" oifname "docker0" tcp dport 80 counter packets 1 bytes 60 accept
	}

	chain DOCKER-ISOLATION-STAGE-1 {
		iifname "docker0" oifname != "docker0" counter packets 11 bytes 744 jump DOCKER-ISOLATION-STAGE-2
		counter packets 22 bytes 1451 return
	}

	chain DOCKER-ISOLATION-STAGE-2 {
		oifname "docker0" counter packets 0 bytes 0 drop
		counter packets 11 bytes 744 return
	}

	chain DOCKER-USER {
	}
}
"""

# what notebook 03 writes by hand (recorded)
HAND_NAT = """table ip nat {
	chain POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 172.17.0.0/16 oifname != "docker0" masquerade
	}

	chain PREROUTING {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump DOCKER
	}

	chain DOCKER {
		iifname "docker0" return
		iifname != "docker0" tcp dport 8080 dnat to 172.17.0.2:80
	}
"""
HAND_OUTPUT = """
	chain OUTPUT {
		type nat hook output priority -100; policy accept;
		ip daddr != 127.0.0.0/8 fib daddr type local jump DOCKER
	}
"""
HAND_FILTER = """table ip filter {
	chain FORWARD {
		type filter hook forward priority filter; policy drop;
		oifname "docker0" ct state established,related accept
		ip daddr 172.17.0.2 iifname != "docker0" oifname "docker0" tcp dport 80 accept
		iifname "docker0" oifname != "docker0" accept
	}
}
"""
HAND_RULESET = HAND_NAT + HAND_OUTPUT + "}\n" + HAND_FILTER


def docker_like(nft=""):
    """tests/fixtures.bridge_lab(1) renamed as Docker names things, plus an uplink to 'internet'."""
    from netteach.snapshot import Interface, Namespace

    snap = bridge_lab(1)
    host = snap.namespace("host")
    host.interface("br0").ifname = "docker0"
    veth = host.interface("veth1")
    veth.ifname, veth.master = "vethc18bcba", "docker0"
    c1 = snap.namespace("c1").interface("eth0")
    c1.peer, c1.mac = ("host", "vethc18bcba"), "02:42:ac:11:00:02"
    host.interfaces.append(Interface("host", "eth0", kind="veth", peer=("internet", "eth0"), state="UP",
                                     admin_up=True, addresses=["198.51.100.2/24"]))
    snap.namespaces.append(Namespace("internet", interfaces=[
        Interface("internet", "eth0", kind="veth", peer=("host", "eth0"), state="UP", admin_up=True,
                  addresses=["198.51.100.1/24", "203.0.113.10/24"])]))
    snap.nft = nft
    return snap


def row(c: Comparison, role: str):
    found = [r for r in c.rows if r.role == role]
    assert found, [r.role for r in c.rows]
    return found[0]


# ---- compare() on fixture snapshots --------------------------------------------------------------

def test_identical_builds_match_in_every_role():
    c = compare(docker_like(DOCKER_RULESET), "c1", docker_like(DOCKER_RULESET), "c1", ip_forward=("1", "1"))
    assert c, c.table()
    assert c.summary() == f"all {len(c.rows)} roles match"
    assert row(c, "container eth0: address/prefix").a == "172.17.0.2/16"
    assert row(c, "host end of the veth: name").a == "vethc18bcba (veth + 7 hex, like Docker)"
    assert row(c, "host end: addresses").a == "none"
    assert row(c, "bridge: gateway address").a == "docker0 172.17.0.1/16"
    assert row(c, "container routes").a == "default via 172.17.0.1 dev eth0; 172.17.0.0/16 dev eth0"


def test_hand_rules_and_docker_rules_do_the_same():
    c = compare(docker_like(HAND_RULESET), "c1", docker_like(DOCKER_RULESET), "c1",
                labels=("by hand", "docker"), ip_forward=("1", "1"))
    assert c, c.table()
    assert row(c, "nat POSTROUTING: container → internet (new)").a == "masquerade"
    assert row(c, "nat PREROUTING: internet → host:8080").b == "dnat to 172.17.0.2:80"
    assert row(c, "nat OUTPUT: the host itself → host:8080").a == "dnat to 172.17.0.2:80"
    assert row(c, "filter FORWARD: internet → container:22 (not published)").b == "drop"
    assert row(c, "filter FORWARD: internet → container (replies)").a == "accept"


def test_a_missing_output_rule_and_forward_policy_show_up():
    hand = HAND_NAT + "}\n"  # no OUTPUT chain, no filter table
    c = compare(docker_like(hand), "c1", docker_like(DOCKER_RULESET), "c1", labels=("by hand", "docker"))
    diff = {r.role: (r.a, r.b) for r in c.differences}
    assert diff == {
        "nat OUTPUT: the host itself → host:8080": ("no NAT", "dnat to 172.17.0.2:80"),
        "filter FORWARD: internet → container:22 (not published)": ("accept", "drop"),
    }
    assert "2 of" in c.summary() and "✗ differs" in c.table()
    assert "#f3d0d0" in c._repr_html_()


def test_interface_differences_are_named_by_role():
    a = docker_like()
    b = copy.deepcopy(a)
    veth = b.namespace("host").interface("vethc18bcba")
    veth.ifname, veth.addresses = "veth0", ["172.17.0.1/32"]
    b.namespace("c1").interface("eth0").peer = ("host", "veth0")
    b.namespace("c1").interface("eth0").mac = "aa:bb:cc:dd:ee:ff"
    b.namespace("c1").routes = [r for r in b.namespace("c1").routes if r.dst != "default"]
    c = compare(a, "c1", b, "c1", ip_forward=("1", "0"))
    assert {r.role for r in c.differences} == {
        "container eth0: MAC", "container routes", "host end of the veth: name", "host end: addresses",
        "host: net.ipv4.ip_forward"}
    assert row(c, "host end of the veth: name").b == "veth0 (not Docker's veth + 7 hex)"


def test_containers_of_different_names_and_addresses_compare_by_role():
    snap = bridge_lab(2)
    c = compare(snap, "c1", snap, "c2")
    assert row(c, "container routes").same  # same routes, each with its own address
    assert not row(c, "container eth0: address/prefix").same
    assert row(c, "container eth0: address/prefix").b == "172.17.0.3/16"


def test_a_missing_container_shows_dashes_instead_of_raising():
    c = compare(bridge_lab(1), "c1", bridge_lab(1), "nope")
    assert row(c, "container eth0: address/prefix").b == "—"
    assert not c


# ---- the ruleset walker ------------------------------------------------------------------------

def test_ruleset_follows_docker_chains():
    rs = Ruleset.parse(DOCKER_RULESET)
    assert len(rs.chains) == 11
    assert rs.chain("filter", "FORWARD").policy == "drop"
    assert rs.chain("nat", "PREROUTING").priority == -100
    new_in = Packet(saddr="203.0.113.10", daddr="172.17.0.2", iif="eth0", oif="docker0", dport=80)
    v = rs.filter("forward", new_in)
    assert v.action == "accept" and v.rule == \
        'ip daddr 172.17.0.2 iifname != "docker0" oifname "docker0" tcp dport 80 accept'
    assert "filter DOCKER" in v.path and "filter DOCKER-USER" in v.path
    # a container talking to itself through the host's port: the hairpin masquerade
    hairpin = Packet(saddr="172.17.0.2", daddr="172.17.0.2", iif="docker0", oif="docker0", dport=80)
    assert rs.nat("postrouting", hairpin).action == "masquerade"
    # from docker0, DOCKER returns: the userland proxy answers instead of DNAT
    from_bridge = Packet(saddr="172.17.0.3", daddr="198.51.100.2", iif="docker0", dport=8080)
    assert rs.nat("prerouting", from_bridge, local={"198.51.100.2"}).action is None


def test_ruleset_isolation_between_bridges():
    rs = Ruleset.parse(DOCKER_RULESET.replace('oifname "docker0" counter packets 0 bytes 0 drop',
                                              'oifname "br-123" drop'))
    p = Packet(saddr="172.17.0.2", daddr="10.10.0.2", iif="docker0", oif="br-123")
    v = rs.filter("forward", p)
    assert v.action == "drop" and v.rule == 'oifname "br-123" drop'


def test_ruleset_sets_goto_and_unknown_expressions():
    rs = Ruleset.parse("""table ip filter {
	set web {
		type ipv4_addr
		elements = { 10.0.0.1, 10.0.0.2 }
	}

	chain FORWARD {
		type filter hook forward priority filter - 5; policy drop;
		icmp type echo-request accept
		ip saddr @web tcp dport { 80, 443 } counter packets 0 bytes 0 goto WEB
		meta l4proto tcp iifname "br-*" log prefix "x " drop
		ct state established,new ip protocol icmp accept
	}

	chain WEB {
		tcp dport 443 accept
	}
}""")
    fwd = rs.chain("filter", "FORWARD")
    assert fwd.priority == -5 and rs.sets[("ip", "filter", "web")] == ["10.0.0.1", "10.0.0.2"]
    assert rs.filter("forward", Packet("10.0.0.2", "1.1.1.1", dport=443)).action == "accept"
    v = rs.filter("forward", Packet("10.0.0.2", "1.1.1.1", dport=80))  # goto WEB falls off: policy
    assert v.action == "drop" and v.rule is None
    assert rs.filter("forward", Packet("10.9.9.9", "1.1.1.1", iif="br-x", dport=22)).action == "drop"
    icmp = rs.filter("forward", Packet("10.9.9.9", "1.1.1.1", proto="icmp"))
    assert icmp.action == "accept"
    assert icmp.unknown == ["filter FORWARD: icmp type echo-request accept"]


def test_ruleset_empty_means_accept_and_no_nat():
    rs = Ruleset.parse("")
    assert repr(rs) == "<Ruleset: empty>"
    assert rs.filter("forward", Packet("1.1.1.1", "2.2.2.2")).action == "accept"
    assert rs.nat("postrouting", Packet("1.1.1.1", "2.2.2.2")).action is None


def test_essential_and_nat_rules():
    assert essential('tcp dport 8080 counter packets 1 bytes 60 dnat ip to 172.17.0.2:80 comment "x"') == \
        "tcp dport 8080 dnat to 172.17.0.2:80"
    assert [c for c, _ in nat_rules(DOCKER_RULESET)] == ["nat POSTROUTING", "nat POSTROUTING", "nat DOCKER"]


# ---- against the kernel ----------------------------------------------------------------------

@needs_root
@pytest.mark.kernel
def test_hand_built_host_matches_a_docker_host(lab_name, untouched_root):
    import netteach as nt
    from netteach.compare import compare_labs
    from tests import ch3_build

    with nt.Lab(lab_name) as lab, nt.DockerHost(lab_name + "d") as dh:
        ch3_build.hand_built(lab)
        dh.run("web", publish={8080: 80}, serve=80)
        c = compare_labs(lab, "c1", dh, "web", labels=("by hand", "docker"))
        assert c, c.table()
        assert row(c, "host: net.ipv4.ip_forward").a == "1"
        assert row(c, "host end of the veth: name").a == "veth7f3a2c1 (veth + 7 hex, like Docker)"
        # and a real difference is seen: the hand-built container loses its default route
        lab.delete_route("c1", "default")
        assert [r.role for r in compare_labs(lab, "c1", dh, "web").differences] == ["container routes"]
