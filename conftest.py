"""Doctests that build real labs run only as root (CI runs as root); elsewhere they skip, saying why."""

import os

import pytest

NEEDS_ROOT = ("netteach.lab", "netteach.docker.host", "netteach.inspection")


def pytest_collection_modifyitems(items):
    if os.geteuid() == 0:
        return
    for item in items:
        if isinstance(item, pytest.DoctestItem) and any(item.name == m or item.name.startswith(m + ".") for m in NEEDS_ROOT):
            item.add_marker(pytest.mark.skip(reason="needs root (CAP_NET_ADMIN) to build the example's lab"))
