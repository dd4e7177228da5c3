"""Read ``nft list ruleset`` text and follow one packet through it, as the kernel would.

Two hosts can hold very different rules (Docker's ``DOCKER``, ``DOCKER-USER``
and isolation chains, or three hand-written lines) that do the same thing to
a packet. :meth:`Ruleset.nat` and :meth:`Ruleset.filter` answer the question
that matters: *what happens to this packet at this hook?*

>>> rs = Ruleset.parse('''
... table ip nat {
...     chain PREROUTING {
...         type nat hook prerouting priority dstnat; policy accept;
...         fib daddr type local counter packets 3 bytes 180 jump DOCKER
...     }
...     chain DOCKER {
...         iifname "docker0" return
...         iifname != "docker0" tcp dport 8080 dnat to 172.17.0.2:80
...     }
... }
... table ip filter {
...     chain FORWARD {
...         type filter hook forward priority filter; policy drop;
...         iifname "docker0" oifname != "docker0" accept
...     }
... }''')
>>> rs
<Ruleset: 3 chains (nat PREROUTING, nat DOCKER, filter FORWARD)>
>>> web = Packet(iif="eth0", saddr="198.51.100.1", daddr="198.51.100.2", dport=8080)
>>> rs.nat("prerouting", web, local={"198.51.100.2"})
<Verdict dnat to 172.17.0.2:80 (nat PREROUTING -> nat DOCKER)>
>>> rs.filter("forward", Packet(iif="docker0", oif="eth0", saddr="172.17.0.2", daddr="203.0.113.10"))
<Verdict accept (filter FORWARD)>
>>> rs.filter("forward", Packet(iif="eth0", oif="docker0", saddr="203.0.113.10", daddr="172.17.0.2"))
<Verdict drop (filter FORWARD policy)>

Only the match expressions Docker and the notebooks use are understood
(interface names, addresses, ports, protocols, ``ct state``, ``fib daddr
type``, named sets written inline); a rule with anything else counts as not
matching and is listed in :attr:`Verdict.unknown`, so an answer is never
silently made up.

Introduced in notebooks/03_configuration.ipynb (comparing a hand-built host with Docker's).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import shlex
from dataclasses import dataclass, field

PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
_NAT_ACTIONS = ("dnat", "snat", "masquerade", "redirect")
_FINAL = ("accept", "drop", "reject")


@dataclass
class Packet:
    """The parts of a packet (and of its conntrack entry) that rules look at.

    ``iif`` is empty for a packet the host itself sends (hook output);
    ``oif`` is empty before routing (hook prerouting).
    """

    saddr: str
    daddr: str
    iif: str = ""
    oif: str = ""
    proto: str = "tcp"  # tcp, udp, icmp
    dport: int | None = None
    sport: int | None = None
    ct: str = "new"  # new, established, related, invalid


@dataclass
class Chain:
    """One chain: its hook (None for a regular chain), priority, policy and rules (as text)."""

    family: str
    table: str
    name: str
    type: str | None = None
    hook: str | None = None
    priority: int = 0
    policy: str = "accept"
    rules: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.table} {self.name}"


@dataclass
class Verdict:
    """What a hook does to a packet: ``action`` ("accept", "drop", "dnat to 172.17.0.2:80",
    "masquerade", or None when no NAT rule applied) and the chains it went through."""

    action: str | None
    path: list[str] = field(default_factory=list)
    rule: str | None = None  # the rule that decided, as nft lists it (None: a policy or nothing)
    unknown: list[str] = field(default_factory=list)  # rules skipped: expressions not understood

    def __str__(self):
        return self.action or "nothing"

    def __repr__(self):
        how = " -> ".join(self.path) + (" policy" if self.rule is None and self.action else "")
        return f"<Verdict {self} ({how})>" if how else f"<Verdict {self}>"


def _strip(rule: str) -> str:
    """A rule without its counters and comment: what it matches and does."""
    rule = re.sub(r"\bcounter packets \d+ bytes \d+", "", rule)
    rule = re.sub(r"\bcounter\b", "", rule)
    rule = re.sub(r'\bcomment "[^"]*"', "", rule)
    rule = re.sub(r"\b(dnat|snat) ip to\b", r"\1 to", rule)
    return " ".join(rule.split())


def essential(rule: str) -> str:
    """A rule as nft lists it, without counters and comments.

    >>> essential('ip saddr 172.17.0.0/16 oifname != "docker0" counter packets 3 bytes 156 masquerade')
    'ip saddr 172.17.0.0/16 oifname != "docker0" masquerade'
    """
    return _strip(rule)


class Ruleset:
    """The chains of one ``nft list ruleset``, keyed by (family, table, chain)."""

    def __init__(self, chains: list[Chain], sets: dict | None = None):
        self.chains = {(c.family, c.table, c.name): c for c in chains}
        self.sets = sets or {}  # (family, table, name) -> list of element strings

    @classmethod
    def parse(cls, text: str) -> "Ruleset":
        """Parse what ``nft list ruleset`` (or ``lab.nft()``) prints."""
        chains, sets = [], {}
        family = table = None
        chain: Chain | None = None
        in_set = None
        for raw in (text or "").splitlines():
            line = raw.strip()
            if not line:
                continue
            m = re.match(r"table (\w+) (\S+) \{$", line)
            if m and chain is None and in_set is None:
                family, table = m.groups()
                continue
            m = re.match(r"(?:set|map) (\S+) \{$", line)
            if m and table and chain is None:
                in_set = (family, table, m.group(1))
                sets[in_set] = []
                continue
            if in_set is not None:
                if line == "}":
                    in_set = None
                else:
                    m = re.match(r"elements = \{(.*)\}$", line)
                    if m:
                        sets[in_set] += [e.strip() for e in m.group(1).split(",") if e.strip()]
                continue
            m = re.match(r"chain (\S+) \{$", line)
            if m and table:
                chain = Chain(family, table, m.group(1))
                continue
            if line == "}":
                if chain is not None:
                    chains.append(chain)
                    chain = None
                else:
                    family = table = None
                continue
            if chain is None:
                continue
            m = re.match(r"type (\w+) hook (\w+)(?: device \S+)? priority ([^;]+);(?: policy (\w+);)?", line)
            if m:
                chain.type, chain.hook = m.group(1), m.group(2)
                chain.priority = _priority(m.group(3))
                chain.policy = m.group(4) or "accept"
                continue
            chain.rules.append(line)
        return cls(chains, sets)

    def __repr__(self):
        names = ", ".join(c.label for c in self.chains.values())
        return f"<Ruleset: {len(self.chains)} chains ({names})>" if self.chains else "<Ruleset: empty>"

    def chain(self, table: str, name: str, family: str = "ip") -> Chain | None:
        return self.chains.get((family, table, name))

    def base_chains(self, hook: str, type: str) -> list[Chain]:
        """The chains attached to a hook, in the order the kernel runs them."""
        found = [c for c in self.chains.values() if c.hook == hook and c.type == type
                 and c.family in ("ip", "inet")]
        return sorted(found, key=lambda c: c.priority)

    # ---- following a packet --------------------------------------------------------------

    def filter(self, hook: str, packet: Packet, local=()) -> Verdict:
        """The filter verdict at ``hook`` ("forward", "input", "output"): accept or drop."""
        path, unknown, decided = [], [], None
        for base in self.base_chains(hook, "filter"):
            action, rule = self._run(base, packet, set(local), path, unknown, 0)
            if action is None or action == "return":
                action, rule = base.policy, None
            if action in ("drop", "reject"):
                return Verdict(action, path, rule, unknown)
            decided = rule
        return Verdict("accept", path, decided, unknown)

    def nat(self, hook: str, packet: Packet, local=()) -> Verdict:
        """The NAT a new connection gets at ``hook`` ("prerouting", "output", "postrouting").

        ``local`` holds the host's own addresses (for ``fib daddr type local``).
        ``action`` is None when no NAT rule applies.
        """
        path, unknown = [], []
        for base in self.base_chains(hook, "nat"):
            action, rule = self._run(base, packet, set(local), path, unknown, 0)
            if action and action.startswith(_NAT_ACTIONS):
                return Verdict(action, path, rule, unknown)
            if action == "drop":
                return Verdict("drop", path, rule, unknown)
        return Verdict(None, path, None, unknown)

    def _run(self, chain: Chain, pkt: Packet, local: set, path: list, unknown: list, depth: int):
        path.append(chain.label)
        if depth > 16:
            return "return", None
        for rule in chain.rules:
            try:
                matched, action = self._match(chain, rule, pkt, local)
            except _Unknown:
                unknown.append(f"{chain.label}: {_strip(rule)}")
                continue
            if not matched or action is None:
                continue
            verb = action.split()[0]
            if verb in ("jump", "goto"):
                target = self.chains.get((chain.family, chain.table, action.split()[1]))
                if target is None:
                    continue
                got, how = self._run(target, pkt, local, path, unknown, depth + 1)
                if got is not None and got != "return":
                    return got, how
                if verb == "goto":
                    return "return", None
                continue
            if verb == "return":
                return "return", _strip(rule)
            if verb == "continue":
                continue
            return action, _strip(rule)
        return None, None

    def _match(self, chain: Chain, rule: str, p: Packet, local: set):
        """(does the rule match, its action or None)."""
        try:
            t = shlex.split(rule)
        except ValueError:
            raise _Unknown() from None
        i, ok = 0, True

        def value():
            """[op,] a value or a { set }, from position i; returns (negated, [values])."""
            nonlocal i
            neg = False
            if i < len(t) and t[i] in ("!=", "=="):
                neg = t[i] == "!="
                i += 1
            if i < len(t) and t[i] == "{":
                vals = []
                i += 1
                while i < len(t) and t[i] != "}":
                    vals += [v for v in t[i].split(",") if v]
                    i += 1
                i += 1
                return neg, vals
            if i >= len(t):
                raise _Unknown()
            v = t[i]
            i += 1
            if v.startswith("@"):
                elements = self.sets.get((chain.family, chain.table, v[1:]))
                if elements is None:
                    raise _Unknown()
                return neg, list(elements)
            return neg, v.split(",")

        def check(neg, hit):
            nonlocal ok
            ok = ok and (hit != neg)

        while i < len(t):
            w = t[i]
            i += 1
            if w == "meta" and i < len(t) and t[i] in ("iifname", "oifname", "iif", "oif", "l4proto"):
                continue  # "meta iifname" = "iifname"
            if w in ("iifname", "oifname", "iif", "oif"):
                neg, vals = value()
                name = p.iif if w.startswith("i") else p.oif
                check(neg, any(fnmatch.fnmatchcase(name, v) for v in vals))
            elif w == "ip" and i < len(t) and t[i] in ("saddr", "daddr"):
                which = t[i]
                i += 1
                neg, vals = value()
                addr = ipaddress.ip_address(p.saddr if which == "saddr" else p.daddr)
                check(neg, any(_in(addr, v) for v in vals))
            elif (w == "ip" and i < len(t) and t[i] == "protocol") or w == "l4proto":
                if w == "ip":
                    i += 1
                neg, vals = value()
                check(neg, p.proto in vals)
            elif w in ("tcp", "udp") and i < len(t) and t[i] in ("dport", "sport"):
                which = t[i]
                i += 1
                neg, vals = value()
                port = p.dport if which == "dport" else p.sport
                hit = port is not None and any(_port_in(port, v) for v in vals)
                ok = ok and p.proto == w and (hit != neg)
            elif w == "ct" and i < len(t) and t[i] == "state":
                i += 1
                neg, vals = value()
                check(neg, p.ct in vals)
            elif w == "fib" and t[i:i + 2] == ["daddr", "type"]:
                i += 2
                neg, vals = value()
                ip = ipaddress.ip_address(p.daddr)
                kind = "local" if (p.daddr in local or ip.is_loopback) else "unicast"
                check(neg, kind in vals)
            elif w == "counter":
                if t[i:i + 1] == ["packets"]:
                    i += 4
            elif w == "log":
                while i < len(t) and t[i] in ("prefix", "level", "flags"):
                    i += 2
            elif w == "comment":
                i += 1
            elif w in ("accept", "drop", "return", "continue"):
                return ok, w
            elif w == "reject":
                return ok, "reject"
            elif w in ("jump", "goto") and i < len(t):
                return ok, f"{w} {t[i]}"
            elif w == "masquerade":
                return ok, "masquerade"
            elif w in ("dnat", "snat"):
                rest = [x for x in t[i:] if x not in ("ip", "to")]
                return ok, f"{w} to {rest[0]}" if rest else w
            elif w == "redirect":
                rest = [x for x in t[i:] if x != "to"]
                return ok, f"redirect to {rest[0]}" if rest else "redirect"
            else:
                raise _Unknown()
        return ok, None


class _Unknown(Exception):
    """A rule holds an expression this module does not understand."""


def _in(addr, text: str) -> bool:
    try:
        if "-" in text:
            lo, hi = (ipaddress.ip_address(x) for x in text.split("-"))
            return lo <= addr <= hi
        return addr in ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _Unknown() from None


def _port_in(port: int, text: str) -> bool:
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-"))
            return lo <= port <= hi
        return port == int(text)
    except ValueError:
        raise _Unknown() from None


def _priority(text: str) -> int:
    """``dstnat``, ``filter - 5``, ``-100`` -> a number.

    >>> _priority("filter - 5"), _priority("dstnat"), _priority("-100")
    (-5, -100, -100)
    """
    parts = text.split()
    base = PRIORITIES.get(parts[0])
    if base is None:
        try:
            return int("".join(parts))
        except ValueError:
            return 0
    if len(parts) == 3 and parts[1] in "+-" and parts[2].isdigit():
        return base + int(parts[2]) * (1 if parts[1] == "+" else -1)
    return base


def nat_rules(text: str) -> list[tuple[str, str]]:
    """Every NAT rule of a ruleset text as (chain label, essential rule).

    >>> nat_rules('table ip nat {\\n chain DOCKER {\\n  tcp dport 8080 counter dnat to 172.17.0.2:80\\n }\\n}')
    [('nat DOCKER', 'tcp dport 8080 dnat to 172.17.0.2:80')]
    """
    rs = Ruleset.parse(text)
    return [(c.label, _strip(r)) for c in rs.chains.values() for r in c.rules
            if re.search(r"\b(dnat|snat|masquerade|redirect)\b", r)]
