"""Test configuration: a hermetic plugin manager, the marker rules, shared fixtures.

Tests marked ``assets`` fetch or read pinned real files (weights, face data): they belong to
the slow set (``pytest -m slow``), so the default run needs no registry and stays fast.
"""

from __future__ import annotations

import sys

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    sys._invbench_testing = True  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("assets") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def one_thread():
    """Tiny tensors gain nothing from threads; on a busy machine they cost a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: The code version test records carry: a clean commit, so whether a record made by a test
#: is ranked does not depend on the state of the developer's checkout (see
#: ``invbench.leaderboard.verify``; tests of that rule write the field themselves).
TEST_CODE_VERSION = {"commit": "0" * 40, "dirty": False}


@pytest.fixture(autouse=True)
def _clean_code_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("invbench.runner.cell.git_info", lambda: dict(TEST_CODE_VERSION))
