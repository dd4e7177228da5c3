"""Self-checks for notebook 06 (troubleshooting): each confirms with real traffic that a fault set by
:func:`netteach.faults.exercise` is fixed -- and that the fix did not break something else.

- :func:`w1_reaches_internet` -- exercise 1;
- :func:`published_port_answers` -- exercise 2;
- :func:`u1_resolves` -- exercise 3.

>>> _seen_as("hello from internet (you are 198.51.100.2)\\n")
'198.51.100.2'
"""

from __future__ import annotations

import re

from netteach.check import Result
from netteach.check.ch03 import _safe

__all__ = ["w1_reaches_internet", "published_port_answers", "u1_resolves"]

SITE, UPLINK = "203.0.113.10", "198.51.100.2"
RES = "RES_OPTIONS='timeout:1 attempts:1' "


def _seen_as(body: str) -> str | None:
    m = re.search(r"you are ([\d.]+)", body or "")
    return m.group(1) if m else None


@_safe
def w1_reaches_internet(dh, container: str = "w1") -> Result:
    """Exercise 1: w1 gets an answer from the internet's web site, which sees the host's address."""
    title = "w1_reaches_internet"
    r = dh.http_get(container, SITE, 80, timeout=3)
    if not r:
        return Result(title, [f"{container} gets no answer from http://{SITE}/ (dh.trace({container!r}, "
                              "'internet', 80) follows the request; and the reply?)"])
    if _seen_as(r.body) != UPLINK:
        return Result(title, [f"the site sees {container} as {_seen_as(r.body)}, not as the host {UPLINK}: "
                              "is the masquerade rule back in nat POSTROUTING?"])
    return Result(title, [])


@_safe
def published_port_answers(dh, port: int = 8080, container: str = "web") -> Result:
    """Exercise 2: the internet gets web's answer on host:8080, and web still reaches the internet."""
    title = "published_port_answers"
    problems = []
    r = dh.http_get("internet", UPLINK, port, timeout=3)
    if not r:
        problems.append(f"the internet gets no answer from {UPLINK}:{port} "
                        f"(dh.trace('internet', 'host', {port}) follows the request; and the reply?)")
    elif not (r.body or "").startswith(f"hello from {container}"):
        problems.append(f"{UPLINK}:{port} is answered by something else than {container}: {r.body.strip()!r}")
    if not dh.ping(container, SITE):
        problems.append(f"{container} no longer reaches the internet ({SITE})")
    return Result(title, problems)


@_safe
def u1_resolves(dh, container: str = "u1", peer: str = "u2") -> Result:
    """Exercise 3: u1 resolves its peer (embedded DNS) and an internet name (forwarded), through 127.0.0.11."""
    title = "u1_resolves"
    problems = []
    if "nameserver 127.0.0.11" not in dh.exec(container, "cat /etc/resolv.conf").stdout:
        problems.append(f"{container}'s resolv.conf no longer names 127.0.0.11: put Docker's back, not another server")
    for name in (peer, "server.example"):
        if dh.exec(container, RES + f"getent hosts {name}").returncode != 0:
            problems.append(f"{container} cannot resolve {name!r}")
    if not problems and "dnat to 127.0.0.11:" not in dh.exec(container, "nft list chain ip nat DOCKER_OUTPUT").stdout:
        problems.append(f"{container} resolves, but not through Docker's redirect in DOCKER_OUTPUT")
    return Result(title, problems)
