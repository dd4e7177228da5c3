"""Docker's pure parts: IPAM and the /etc files, without root (the model: test_docker_model.py)."""

from __future__ import annotations

import ipaddress

import pytest

import netteach as nt
from netteach.docker import etcfiles, ipam


def test_new_networks_take_dockers_pools_in_order():
    taken = {"bridge": "172.17.0.0/16"}
    assert ipam.free_subnet(taken) == "172.18.0.0/16"
    taken.update({f"n{x}": f"172.{x}.0.0/16" for x in range(18, 32)})
    assert ipam.free_subnet(taken) == "192.168.0.0/20"  # the 172.16/12 pools are used up
    with pytest.raises(nt.Conflict, match="no free address pool"):
        ipam.free_subnet({**taken, "all192": "192.168.0.0/16"})


def test_overlap_names_the_network_or_the_reserved_range():
    subnets = {"backend": "10.10.0.0/24"}
    assert ipam.overlap(ipaddress.ip_network("10.10.0.128/25"), subnets) == "backend"
    assert ipam.overlap(ipaddress.ip_network("198.51.100.0/25"), subnets,
                        {"198.51.100.0/24": "the internet"}) == "the internet"
    assert ipam.overlap(ipaddress.ip_network("10.20.0.0/24"), subnets) is None


def test_lowest_free_address_reuses_freed_ones():
    taken = {"10.0.0.1", "10.0.0.2", "10.0.0.4"}
    assert ipam.lowest_free("10.0.0.0/29", taken) == "10.0.0.3"
    assert ipam.lowest_free("10.0.0.0/29", taken | {"10.0.0.3", "10.0.0.5", "10.0.0.6"}) is None  # .7: broadcast
    start = int(ipaddress.IPv4Address("10.0.0.4"))
    assert ipam.lowest_free("10.0.0.0/29", taken, start) == "10.0.0.5"  # a hint skips a full prefix


def test_etc_files_as_dockerd_writes_them():
    text = etcfiles.hosts("172.17.0.2", "6013bf07c581", {"gw": "172.17.0.1"})
    assert text.startswith("127.0.0.1\tlocalhost\n") and text.endswith("172.17.0.2\t6013bf07c581\n172.17.0.1\tgw\n")
    assert etcfiles.hosts() == etcfiles.HOSTS_HEAD  # network none: no address line
    assert etcfiles.resolv(["1.1.1.1", "9.9.9.9"]) == "nameserver 1.1.1.1\nnameserver 9.9.9.9\n"
    assert etcfiles.resolv(embedded="127.0.0.11") == "nameserver 127.0.0.11\noptions ndots:0\n"
