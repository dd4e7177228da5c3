"""Moved to :mod:`netteach.docker.rules`; this name keeps old notebooks working."""

from netteach.docker.rules import *  # noqa: F401,F403
from netteach.docker.rules import CHAINS, MANAGED, Net, Port, rules  # noqa: F401
