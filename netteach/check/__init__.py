"""Self-checks for the notebooks' exercises: each reads the kernel and says what is missing.

``nt.check.<name>(lab)`` returns a :class:`Result`: truthy when the exercise
is done; otherwise its text names exactly what is still missing or wrong
("c2 has no default route", not "wrong").

>>> r = Result("demo", ["c2 has no default route"])
>>> bool(r), r
(False, ✗ demo: c2 has no default route)
"""

from __future__ import annotations


class Result:
    """The outcome of a self-check: ``problems`` empty means done."""

    def __init__(self, name: str, problems: list[str]):
        self.name = name
        self.problems = list(problems)

    def __bool__(self):
        return not self.problems

    def __repr__(self):
        if not self.problems:
            return f"✓ {self.name}: done"
        return f"✗ {self.name}: " + "; ".join(self.problems)

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


# each chapter's checks live in their own module; all are reachable as nt.check.<name>
from netteach.check.ch01 import *  # noqa: E402,F401,F403
from netteach.check.ch02 import *  # noqa: E402,F401,F403
from netteach.check.ch03 import *  # noqa: E402,F401,F403
from netteach.check.ch04 import *  # noqa: E402,F401,F403
from netteach.check.ch05 import *  # noqa: E402,F401,F403
from netteach.check.ch06 import *  # noqa: E402,F401,F403
from netteach.check.ch07 import *  # noqa: E402,F401,F403
