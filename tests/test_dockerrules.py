"""docker.rules.rules(): the nft script dockerd's classic layout amounts to. Pure: no root, no kernel."""

from __future__ import annotations

import re

from netteach.docker.rules import CHAINS, MANAGED, Net, Port, rules

DOCKER0 = Net("docker0", "172.17.0.0/16")
BACK = Net("br-0123456789ab", "10.10.0.0/24")
WEB = Port(8080, "172.17.0.2", 80, "docker0")
API = Port(9090, "10.10.0.3", 5000, "br-0123456789ab")


def added(script: str) -> dict:
    """{(table, chain): [rule, ...]} in the order the script adds them."""
    out = {(t, c): [] for t, c, _ in CHAINS}
    for line in script.splitlines():
        if m := re.match(r"add rule ip (\S+) (\S+) (.*)$", line):
            out[(m.group(1), m.group(2))].append(m.group(3).replace("counter ", ""))
    return out


def declared(script: str) -> dict:
    """{(table, chain): spec} of the chains the script declares inside `table ip T { ... }`."""
    out, table = {}, None
    for line in script.splitlines():
        if m := re.match(r"table ip (\S+) \{$", line):
            table = m.group(1)
        elif m := re.match(r"\s+chain (\S+) \{ (.*)\}$", line):
            out[(table, m.group(1))] = m.group(2).strip()
    return out


def test_every_chain_is_declared_in_its_table_with_its_hook():
    d = declared(rules([], []))
    assert set(d) == {(t, c) for t, c, _ in CHAINS}
    assert d[("nat", "PREROUTING")].startswith("type nat hook prerouting")
    assert d[("nat", "OUTPUT")].startswith("type nat hook output")
    assert d[("nat", "POSTROUTING")].startswith("type nat hook postrouting")
    assert d[("filter", "FORWARD")] == "type filter hook forward priority filter; policy drop;"
    for chain in ("DOCKER", "DOCKER-USER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2"):
        assert d[("filter", chain)] == "", f"{chain} is a regular chain (jumped to, no hook)"
    assert d[("nat", "DOCKER")] == ""


def test_docker_user_is_created_but_never_flushed_or_filled():
    script = rules([DOCKER0, BACK], [WEB, API])
    assert "flush chain ip filter DOCKER-USER" not in script
    assert added(script)[("filter", "DOCKER-USER")] == []
    assert ("filter", "DOCKER-USER") not in MANAGED
    # nor are filter INPUT/OUTPUT touched (they are not Docker's)
    assert not any(f"ip filter {c}" in line for c in ("INPUT", "OUTPUT") for line in script.splitlines()
                   if not line.startswith(" "))


def test_managed_chains_are_flushed_before_any_rule_is_added():
    script = rules([DOCKER0], [WEB]).splitlines()
    flushes = [i for i, l in enumerate(script) if l.startswith("flush chain")]
    adds = [i for i, l in enumerate(script) if l.startswith("add rule")]
    tables = [i for i, l in enumerate(script) if l.startswith("table ")]
    assert max(tables) < min(flushes) and max(flushes) < min(adds)
    assert [l.split()[-2:] for l in (script[i] for i in flushes)] == [[t, c] for t, c in MANAGED]
    assert {("nat", c) for c in ("PREROUTING", "OUTPUT", "POSTROUTING", "DOCKER")} <= set(MANAGED)
    assert {("filter", c) for c in ("FORWARD", "DOCKER", "DOCKER-ISOLATION-STAGE-1",
                                    "DOCKER-ISOLATION-STAGE-2")} <= set(MANAGED)


def test_no_networks_still_hooks_docker_chains():
    r = added(rules([], []))
    assert r[("nat", "PREROUTING")] == ["fib daddr type local jump DOCKER"]
    assert r[("nat", "OUTPUT")] == ["ip daddr != 127.0.0.0/8 fib daddr type local jump DOCKER"]
    assert r[("filter", "FORWARD")] == ["jump DOCKER-USER", "jump DOCKER-ISOLATION-STAGE-1"]
    assert r[("filter", "DOCKER-ISOLATION-STAGE-1")] == ["return"]
    assert r[("filter", "DOCKER-ISOLATION-STAGE-2")] == ["return"]
    assert r[("nat", "POSTROUTING")] == r[("nat", "DOCKER")] == r[("filter", "DOCKER")] == []


def test_default_bridge_masquerade_return_and_forward():
    r = added(rules([DOCKER0], []))
    assert r[("nat", "POSTROUTING")] == ['ip saddr 172.17.0.0/16 oifname != "docker0" masquerade']
    assert r[("nat", "DOCKER")] == ['iifname "docker0" return']
    assert r[("filter", "FORWARD")] == [
        "jump DOCKER-USER",
        "jump DOCKER-ISOLATION-STAGE-1",
        'oifname "docker0" ct state related,established accept',
        'oifname "docker0" jump DOCKER',
        'iifname "docker0" oifname != "docker0" accept',
        'iifname "docker0" oifname "docker0" accept',
    ]


def test_published_port_dnat_hairpin_and_filter_accept():
    r = added(rules([DOCKER0, BACK], [WEB, API]))
    assert r[("nat", "DOCKER")] == [
        'iifname "docker0" return',
        'iifname "br-0123456789ab" return',
        'iifname != "docker0" tcp dport 8080 dnat to 172.17.0.2:80',
        'iifname != "br-0123456789ab" tcp dport 9090 dnat to 10.10.0.3:5000',
    ], "returns first: from a bridge the userland proxy answers"
    assert r[("nat", "POSTROUTING")][2:] == [
        "ip saddr 172.17.0.2 ip daddr 172.17.0.2 tcp dport 80 masquerade",
        "ip saddr 10.10.0.3 ip daddr 10.10.0.3 tcp dport 5000 masquerade",
    ]
    assert r[("filter", "DOCKER")] == [
        'ip daddr 172.17.0.2 iifname != "docker0" oifname "docker0" tcp dport 80 accept',
        'ip daddr 10.10.0.3 iifname != "br-0123456789ab" oifname "br-0123456789ab" tcp dport 5000 accept',
    ]


def test_isolation_stages_one_rule_per_bridge_then_return():
    r = added(rules([DOCKER0, BACK], []))
    assert r[("filter", "DOCKER-ISOLATION-STAGE-1")] == [
        'iifname "docker0" oifname != "docker0" jump DOCKER-ISOLATION-STAGE-2',
        'iifname "br-0123456789ab" oifname != "br-0123456789ab" jump DOCKER-ISOLATION-STAGE-2',
        "return",
    ]
    assert r[("filter", "DOCKER-ISOLATION-STAGE-2")] == [
        'oifname "docker0" drop', 'oifname "br-0123456789ab" drop', "return"]
    # FORWARD: DOCKER-USER before isolation, both before any accept
    fwd = r[("filter", "FORWARD")]
    assert fwd[:2] == ["jump DOCKER-USER", "jump DOCKER-ISOLATION-STAGE-1"]
    assert len(fwd) == 2 + 4 * 2


def test_every_rule_counts():
    """Each rule carries a counter, so `nft list ruleset` shows students which rule a packet hit."""
    lines = [l for l in rules([DOCKER0, BACK], [WEB, API]).splitlines() if l.startswith("add rule")]
    assert lines and all(" counter " in l for l in lines)


def test_pure_and_deterministic():
    nets, ports = [DOCKER0, BACK], [WEB]
    first = rules(nets, ports)
    assert rules(list(nets), list(ports)) == first
    assert nets == [DOCKER0, BACK] and ports == [WEB], "inputs are not changed"
    assert first.endswith("\n") and "\n\n" not in first
    # removing a network or port removes exactly its rules
    smaller = rules([DOCKER0], [])
    assert "br-0123456789ab" not in smaller and "8080" not in smaller
    assert set(smaller.splitlines()) < set(first.splitlines())


# ---- options of notebook 07 (docker_facts_ch4_7.md), pure: no root needed ----------------------

QUIET = Net("br-quiet000000", "172.19.0.0/16", icc=False)
VAULT = Net("br-vault000000", "172.20.0.0/16", internal=True)


def _rules(script, chain):
    return [line.split(f" {chain} ", 1)[1] for line in script.splitlines()
            if line.startswith("add rule") and line.split()[4] == chain]


def test_icc_off_drops_inside_the_bridge_last():
    fwd = _rules(rules([DOCKER0, QUIET], []), "FORWARD")
    assert 'iifname "br-quiet000000" oifname "br-quiet000000" counter accept' not in fwd
    assert fwd[-1] == 'iifname "br-quiet000000" oifname "br-quiet000000" counter drop'
    assert 'iifname "br-quiet000000" oifname != "br-quiet000000" counter accept' in fwd  # egress stays


def test_internal_network_has_no_way_out():
    script = rules([DOCKER0, VAULT], [])
    stage1 = _rules(script, "DOCKER-ISOLATION-STAGE-1")
    assert stage1[:2] == ['ip saddr != 172.20.0.0/16 oifname "br-vault000000" counter drop',
                          'ip daddr != 172.20.0.0/16 iifname "br-vault000000" counter drop']
    fwd = _rules(script, "FORWARD")
    assert 'iifname "br-vault000000" oifname "br-vault000000" counter accept' in fwd
    assert not [r for r in fwd if "br-vault000000" in r and ("ct state" in r or "jump DOCKER" in r)]
    assert not [r for r in _rules(script, "POSTROUTING") if "172.20.0.0/16" in r]


def test_publish_on_one_host_address():
    script = rules([DOCKER0], [Port(8081, "172.17.0.3", 80, "docker0", "127.0.0.1")])
    assert added(script)[("nat", "DOCKER")][-1].replace("dnat", "counter dnat") == ('ip daddr 127.0.0.1 iifname != "docker0" tcp dport 8081 '
                                            'counter dnat to 172.17.0.3:80')


def test_masquerade_can_be_switched_off():
    script = rules([Net("br-x", "10.9.0.0/24", masquerade=False)], [])
    assert not [r for r in _rules(script, "POSTROUTING") if "masquerade" in r]


def test_dns_rules_redirect_both_protocols():
    from netteach.docker.rules import dns_rules

    script = dns_rules(40001, 40002)
    assert _rules(script, "DOCKER_OUTPUT") == [
        "ip daddr 127.0.0.11 tcp dport 53 counter dnat to 127.0.0.11:40002",
        "ip daddr 127.0.0.11 udp dport 53 counter dnat to 127.0.0.11:40001"]
    assert _rules(script, "OUTPUT") == ["ip daddr 127.0.0.11 counter jump DOCKER_OUTPUT"]
