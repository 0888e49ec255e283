"""The docstring examples of invbench.metrics run and hold."""

from __future__ import annotations

import doctest

import pytest

from invbench.metrics import image, pairs, stats, thresholds, verification


@pytest.mark.parametrize("module", [thresholds, stats, image, pairs, verification])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
