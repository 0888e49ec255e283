"""Test configuration: a hermetic plugin manager (no entry points from the machine)."""

from __future__ import annotations

import sys

import pytest


def pytest_configure(config: pytest.Config) -> None:
    sys._invbench_testing = True  # type: ignore[attr-defined]
