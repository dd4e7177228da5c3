"""Faults for notebook 06's exercises: each breaks a DockerHost in one hidden way, with the commands
a careless admin (or a bad script) might have typed. The student diagnoses with ``dh.trace``,
``dh.capture``, ``nft`` counters and ``ss``, fixes it, and ``nt.check...`` confirms.

    from netteach import faults
    faults.exercise(dh, 1)       # then: nt.check.w1_reaches_internet(dh)

The host must be notebook 06's: ``web`` (-p 8080:80, serving 80) and ``w1`` on the default bridge,
``u1`` and ``u2`` on ``appnet``.
"""

from __future__ import annotations

import re

from netteach import errors

EXERCISES = {1: "w1 reaches nothing on the internet", 2: "the internet gets no answer from host:8080",
             3: "u1 resolves no name at all"}


def _handle(dh, where: str, chain: str, needle: str) -> str | None:
    out = dh.exec(where, f"nft -a list chain ip nat {chain}").stdout
    for line in out.splitlines():
        if needle in line and "# handle" in line:
            return re.search(r"# handle (\d+)", line).group(1)
    return None


def exercise(dh, n: int) -> str:
    """Break ``dh`` the hidden way of exercise ``n`` (1, 2 or 3); returns the symptom to start from."""
    if n == 1:  # the default bridge's masquerade rule is gone
        h = _handle(dh, "host", "POSTROUTING", '172.17.0.0/16 oifname != "docker0"')
        if h:
            dh.exec("host", f"nft delete rule ip nat POSTROUTING handle {h}")
    elif n == 2:  # web's replies are dropped on their way out
        web = dh.inspect("web")["NetworkSettings"]["IPAddress"]
        dh.exec("host", f"nft add rule ip filter DOCKER-USER ip saddr {web} tcp sport 80 counter drop")
    elif n == 3:  # u1's redirect of 127.0.0.11:53 to its resolver is gone
        dh.exec("u1", "nft flush chain ip nat DOCKER_OUTPUT")
    else:
        raise errors.InvalidName(f"exercise {n!r}: there are exercises 1, 2 and 3")
    return EXERCISES[n]
