"""Self-checks for notebook ch02."""

from __future__ import annotations

from netteach.check import Result  # noqa: F401

__all__: list[str] = []
