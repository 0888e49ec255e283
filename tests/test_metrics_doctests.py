"""The docstring examples of invbench's pure functions run and hold."""

from __future__ import annotations

import doctest

import pytest

import invbench.cli.common
import invbench.images
import invbench.seeding
import invbench.training.linear
from invbench.metrics import image, pairs, stats, thresholds, verification

MODULES = [thresholds, stats, image, pairs, verification, invbench.images, invbench.seeding]
MODULES += [invbench.cli.common, invbench.training.linear]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module.__name__} has no doctest: drop it from this list"
    assert result.failed == 0
