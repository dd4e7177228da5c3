"""The chapter 3 self-checks against the real kernel: each one passes on a solved lab and names
exactly what is missing on a wrong one."""

from __future__ import annotations

import pytest

import netteach as nt
from tests import ch3_build
from tests.conftest import needs_root, netteach_leftovers, problems

pytestmark = [needs_root, pytest.mark.kernel]


@pytest.fixture
def dh(lab_name, untouched_root):
    """A DockerHost running ``web`` (-p 8080:80, serving 80), destroyed afterwards."""
    dh = nt.DockerHost(lab_name)
    dh.run("web", publish={8080: 80}, serve=80)
    yield dh
    dh.destroy()
    assert netteach_leftovers(lab_name) == []


def test_checks_are_exported_by_name():
    from netteach.check import ch03

    for name in ch03.__all__:
        assert getattr(nt.check, name) is getattr(ch03, name)


# ---- exercise 1 -------------------------------------------------------------------------------

def test_second_published_port_missing(dh):
    text = problems(nt.check.second_published_port(dh))
    assert "nothing answers on 198.51.100.2:8081 from the internet" in text
    assert "no DNAT rule sends tcp port 8081" in text
    assert "the host itself gets no answer on 198.51.100.2:8081" in text


def test_second_published_port_from_the_same_container(lab_name, untouched_root):
    with nt.DockerHost(lab_name) as dh:
        dh.run("web", publish={8080: 80, 8081: 80}, serve=80)
        text = problems(nt.check.second_published_port(dh))
    assert "198.51.100.2:8081 is answered by web, the same container as port 8080" in text


def test_second_published_port_done(dh):
    dh.run("web2", publish={8081: 80}, serve=80)
    r = nt.check.second_published_port(dh)
    assert r, r
    assert repr(r) == "✓ second_published_port: done"


# ---- exercise 2 -------------------------------------------------------------------------------

def test_fixed_ip_on_the_default_bridge(dh):
    dh.run("db")
    text = problems(nt.check.fixed_ip_network(dh))
    assert "no bridge with 10.10.0.1/24 in the host" in text
    assert "db has 172.17.0.3/16, not an address on 10.10.0.0/24" in text


def test_fixed_ip_without_the_container(dh):
    dh.network_create("backend", subnet="10.10.0.0/24")
    assert problems(nt.check.fixed_ip_network(dh)) == "no container 'db' (docker run --name db ...)"


def test_fixed_ip_wrong_address_and_mac(dh):
    dh.network_create("backend", subnet="10.10.0.0/24")
    dh.run("db", network="backend")
    text = problems(nt.check.fixed_ip_network(dh))
    assert "db has 10.10.0.2/24 on 10.10.0.0/24, not 10.10.0.10/24 (docker run --ip 10.10.0.10)" in text
    assert "db's eth0 has MAC 02:42:0a:0a:00:02, not 02:00:00:00:00:db" in text
    assert "default route" not in text and "gateway" not in text


def test_fixed_ip_no_default_route(dh):
    dh.network_create("backend", subnet="10.10.0.0/24")
    dh.run("db", network="backend", ip="10.10.0.10", mac="02:00:00:00:00:db")
    dh.delete_route("db", "default")
    assert problems(nt.check.fixed_ip_network(dh)) == "db has no default route"


def test_fixed_ip_done(dh):
    dh.network_create("backend", subnet="10.10.0.0/24")
    dh.run("db", network="backend", ip="10.10.0.10", mac="02:00:00:00:00:db")
    r = nt.check.fixed_ip_network(dh)
    assert r, r


# ---- exercise 3 -------------------------------------------------------------------------------

def test_c2_missing(lab):
    ch3_build.base(lab)
    assert problems(nt.check.c2_reaches_internet(lab)) == \
        f"no namespace 'c2' in lab '{lab.name}' (lab.add_netns('c2'))"


def test_c2_without_route_forward_or_masquerade(lab):
    ch3_build.base(lab, forward=False, masquerade=False)
    ch3_build.container(lab, "c2", "veth3c9e1d2", "172.17.0.3", "02:42:ac:11:00:03", route=False)
    text = problems(nt.check.c2_reaches_internet(lab))
    assert "c2 has no default route" in text
    assert "ip_forward is 0 in the host" in text
    assert "no masquerade rule in the host's nat POSTROUTING covers 172.17.0.3" in text
    assert "c2 cannot ping the internet (203.0.113.10)" in text
    assert "eth0" not in text  # its own interface is right


def test_c2_plugged_in_wrong(lab):
    ch3_build.base(lab)
    lab.add_netns("c2")
    lab.add_veth("to-c2", "eth0", peer_netns="c2")
    lab.add_addr("host", "to-c2", "172.17.0.1/32")
    lab.add_addr("c2", "eth0", "172.17.0.3/16")
    lab.set_up("c2", "eth0")
    text = problems(nt.check.c2_reaches_internet(lab))
    assert "c2's eth0 has MAC" in text and "Docker would give it 02:42:ac:11:00:03" in text
    assert "c2's host end to-c2 is not enslaved to docker0" in text
    assert "c2's host end to-c2 has an address (172.17.0.1/32); Docker's host ends have none" in text
    assert "c2's host end is called to-c2; Docker names it veth + 7 hex digits" in text
    assert "c2's host end to-c2 is down" in text


def test_c2_seen_without_nat(lab):
    """Forwarded but not masqueraded: a route back in the internet lets it answer 172.17.0.3 itself."""
    ch3_build.base(lab, masquerade=False)
    ch3_build.container(lab, "c2", "veth3c9e1d2", "172.17.0.3", "02:42:ac:11:00:03")
    lab.add_route("internet", "172.17.0.0/16", via="198.51.100.2")
    text = problems(nt.check.c2_reaches_internet(lab))
    assert "the internet sees c2 as 172.17.0.3, not as the host's 198.51.100.2" in text


def test_c2_done(lab):
    ch3_build.hand_built(lab)
    ch3_build.container(lab, "c2", "veth3c9e1d2", "172.17.0.3", "02:42:ac:11:00:03")
    r = nt.check.c2_reaches_internet(lab)
    assert r, r


def test_third_container_as_the_notebook_asks(lab):
    """Notebook 03 asks for c3 at 172.17.0.4 in a lab that already has c2 and the intra-bridge accept."""
    ch3_build.hand_built(lab)
    ch3_build.container(lab, "c2", "veth3c9e1d2", "172.17.0.3", "02:42:ac:11:00:03")
    ch3_build.nft(lab, ch3_build.INTRA_BRIDGE)
    r = nt.check.c2_reaches_internet(lab, container="c3", address="172.17.0.4/16")
    assert problems(r) == f"no namespace 'c3' in lab '{lab.name}' (lab.add_netns('c3'))"
    ch3_build.container(lab, "c3", "veth5b8e0a7", "172.17.0.4", "02:42:ac:11:00:04")
    r = nt.check.c2_reaches_internet(lab, container="c3", address="172.17.0.4/16")
    assert r, r
    assert lab.ping("c3", "172.17.0.2") and lab.ping("c2", "172.17.0.4")  # neighbours on docker0


# ---- exercise 4 -------------------------------------------------------------------------------

def user_rule(dh, rule):
    r = dh.exec("host", ["nft", "-f", "-"], input=f"flush chain ip filter DOCKER-USER\n"
                                                     f"add rule ip filter DOCKER-USER {rule}\n")
    assert r.ok, r


def test_docker_user_empty(dh):
    text = problems(nt.check.docker_user_block(dh))
    assert "DOCKER-USER is empty" in text
    assert "web still reaches the internet (ping 203.0.113.10 is answered)" in text


def test_docker_user_drops_the_replies_too(dh):
    user_rule(dh, "ip saddr 172.17.0.2 drop")
    assert problems(nt.check.docker_user_block(dh)) == (
        "the internet no longer reaches web's published port 198.51.100.2:8080: drop only what web "
        "starts (ct state new), not its replies")


def test_docker_user_drops_everyone(dh):
    dh.run("web2")
    user_rule(dh, 'iifname "docker0" oifname "eth0" ct state new drop')
    assert problems(nt.check.docker_user_block(dh)) == (
        "web2 can no longer reach the internet either: match only web's traffic (172.17.0.2)")


def test_docker_user_not_the_place(dh):
    dh.exec("host", ["nft", "insert", "rule", "ip", "filter", "FORWARD", "ip", "saddr", "172.17.0.2",
                     "ct", "state", "new", "drop"])
    text = problems(nt.check.docker_user_block(dh))
    assert "DOCKER-USER is empty" in text
    assert "web is cut off, but not by a DOCKER-USER rule" in text


def test_docker_user_done(dh):
    dh.run("web2")
    user_rule(dh, "ip saddr 172.17.0.2 ct state new drop")
    r = nt.check.docker_user_block(dh)
    assert r, r


# ---- robustness -------------------------------------------------------------------------------

def test_checks_never_raise_on_a_destroyed_lab(lab_name):
    lab = nt.Lab(lab_name)
    lab.destroy()
    for name in ("second_published_port", "fixed_ip_network", "c2_reaches_internet", "docker_user_block"):
        r = getattr(nt.check, name)(lab)
        assert not r and "was destroyed" in repr(r)


def test_checks_on_a_bare_lab_name_what_is_missing(lab):
    assert "no 'internet' namespace" in repr(nt.check.second_published_port(lab))
    assert "no 'internet' namespace" in repr(nt.check.docker_user_block(lab))


# ---- what chapter 3 added to the package: Lab.write_etc, Capabilities.require ----------------------

def test_write_etc_is_what_ip_netns_exec_shows_and_goes_with_the_lab(lab_name, untouched_root):
    import os

    lab = nt.Lab(lab_name)
    lab.add_netns("c1")
    lab.write_etc("c1", "hosts", "203.0.113.10\tapi.example\n")
    lab.write_etc("c1", "hosts", "203.0.113.10\tapi.example\n")  # a re-run cell: nothing new
    d = f"/etc/netns/{lab.kernel_name('c1')}"
    assert os.path.isfile(f"{d}/hosts")
    assert lab.exec("c1", "cat /etc/hosts").stdout == "203.0.113.10\tapi.example\n"
    assert lab.exec("host", "grep -c api.example /etc/hosts").stdout.strip() == "0"
    assert sum(f"cat > {d}/hosts" in c for c in lab.commands) == 1
    with pytest.raises(nt.InvalidName):
        lab.write_etc("c1", "../passwd", "x")
    with pytest.raises(nt.NoSuchNamespace):
        lab.write_etc("nope", "hosts", "x")
    lab.destroy()
    assert not os.path.exists(d)
    assert netteach_leftovers(lab_name) == []


def test_require_stops_a_notebook_with_a_message_not_a_traceback():
    from netteach.doctor import Capabilities, NotOnThisMachine

    caps = Capabilities(True, True, True, True, features={"nft nat": False}, tools={"ip": "/usr/sbin/ip"})
    with pytest.raises(NotOnThisMachine) as exc:
        caps.require("nft nat", notebook="notebook 03")
    assert isinstance(exc.value, nt.MissingKernelFeature)
    shown = exc.value._render_traceback_()
    assert len(shown) == 1 and "notebook 03 needs it, so it stops here - nothing was built" in shown[0]
