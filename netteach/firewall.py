"""What a namespace's nftables ruleset says it publishes and masquerades, read from ``nft -j`` data.

This only *reads* the rules (which ports a DNAT rule names, which sources a
masquerade rule names) to label a picture and to choose which packets to
send; what the kernel really does to a packet is what
:mod:`netteach.trace` asks the kernel.

>>> rules = [
...     {"rule": {"family": "ip", "table": "nat", "chain": "DOCKER", "handle": 5, "expr": [
...         {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "docker0"}},
...         {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
...         {"counter": {"packets": 0, "bytes": 0}},
...         {"dnat": {"addr": "172.17.0.2", "port": 80}}]}},
...     {"rule": {"family": "ip", "table": "nat", "chain": "POSTROUTING", "handle": 7, "expr": [
...         {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
...                    "right": {"prefix": {"addr": "172.17.0.0", "len": 16}}}},
...         {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "docker0"}},
...         {"masquerade": None}]}}]
>>> published(rules)
[{'proto': 'tcp', 'port': 8080, 'to': '172.17.0.2', 'to_port': 80}]
>>> masquerades(rules)
['172.17.0.0/16']
>>> summary(rules, {"net.ipv4.ip_forward": "1"})
['forwards (ip_forward=1)', 'publishes tcp 8080→172.17.0.2:80', 'masquerades 172.17.0.0/16']
"""

from __future__ import annotations


def _rules(ruleset) -> list[dict]:
    return [o["rule"] for o in ruleset or [] if isinstance(o, dict) and "rule" in o]


def _value(v):
    if isinstance(v, dict) and "prefix" in v:
        return f"{v['prefix']['addr']}/{v['prefix']['len']}"
    if isinstance(v, dict) and "set" in v:
        return ",".join(str(_value(x)) for x in v["set"])
    return v


def _matches(rule) -> list[tuple]:
    """(what, op, value) of each match: what is e.g. "tcp dport", "ip saddr", "iifname"."""
    out = []
    for e in rule.get("expr", []):
        m = e.get("match") if isinstance(e, dict) else None
        if not m:
            continue
        left = m.get("left") or {}
        if "payload" in left:
            what = f"{left['payload'].get('protocol')} {left['payload'].get('field')}"
        elif "meta" in left:
            what = left["meta"].get("key")
        else:
            continue
        out.append((what, m.get("op"), _value(m.get("right"))))
    return out


def published(ruleset) -> list[dict]:
    """Every DNAT rule that names a destination port: {proto, port, to, to_port}."""
    out = []
    for r in _rules(ruleset):
        for e in r.get("expr", []):
            d = e.get("dnat") if isinstance(e, dict) else None
            if not d or not isinstance(d.get("addr"), str):
                continue
            for what, op, val in _matches(r):
                if what in ("tcp dport", "udp dport") and op == "==" and isinstance(val, int):
                    item = {"proto": what.split()[0], "port": val, "to": d["addr"], "to_port": d.get("port", val)}
                    if item not in out:
                        out.append(item)
    return out


def dnat_targets(ruleset) -> set[str]:
    """Every address a DNAT rule sends packets to.

    >>> sorted(dnat_targets([{"rule": {"expr": [{"dnat": {"addr": "172.17.0.2", "port": 80}}]}}]))
    ['172.17.0.2']
    """
    return {e["dnat"]["addr"] for r in _rules(ruleset) for e in r.get("expr", [])
            if isinstance(e, dict) and isinstance(e.get("dnat"), dict) and isinstance(e["dnat"].get("addr"), str)}


def masquerades(ruleset) -> list[str]:
    """The source each masquerade (or snat) rule names ("all" when it names none)."""
    out = []
    for r in _rules(ruleset):
        if not any(isinstance(e, dict) and ("masquerade" in e or "snat" in e) for e in r.get("expr", [])):
            continue
        m = _matches(r)
        src = [val for what, op, val in m if what == "ip saddr" and op == "=="]
        dst = [val for what, op, val in m if what == "ip daddr" and op == "=="]
        port = [val for what, op, val in m if what in ("tcp dport", "udp dport") and op == "=="]
        item = str(src[0]) if src else "all"
        if dst:  # e.g. Docker's hairpin rule: a container reaching itself through its published port
            item += f" → {dst[0]}" + (f":{port[0]}" if port else "")
        if item not in out:
            out.append(item)
    return out


def summary(ruleset, sysctls: dict, routes_between: bool = True) -> list[str]:
    """Short lines for a namespace's picture: forwarding, published ports, masquerade.

    Forwarding is mentioned only where there is something to route between
    (``routes_between``: more than one interface besides ``lo``).
    """
    lines = []
    if routes_between and sysctls.get("net.ipv4.ip_forward") == "1":
        lines.append("forwards (ip_forward=1)")
    for p in published(ruleset):
        lines.append(f"publishes {p['proto']} {p['port']}→{p['to']}:{p['to_port']}")
    for m in masquerades(ruleset):
        lines.append(f"masquerades {m}")
    return lines
