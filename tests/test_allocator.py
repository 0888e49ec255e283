"""invbench.allocator: glibc's malloc thresholds, raised once per process or left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from invbench import allocator

LINUX = sys.platform.startswith("linux")

PROBE = (
    "import json; from invbench.allocator import tune_malloc, malloc_state; "
    "before = malloc_state(); print(json.dumps([before, tune_malloc(), tune_malloc()]))"
)


def _probe(**env: str) -> list[dict]:
    full = {k: v for k, v in os.environ.items() if k != "INVBENCH_MALLOC"} | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.skipif(not LINUX, reason="glibc's mallopt exists on Linux only")
def test_tune_malloc_raises_both_thresholds_once_per_process():
    before, first, again = _probe()
    assert before == {"tuned": False, "reason": "not tuned in this process"}
    if allocator._libc() is None:  # musl or another C library: left alone, with the reason
        assert first == {"tuned": False, "reason": "not glibc: the C library's defaults"}
        return
    assert first["tuned"] is True
    assert first["mmap_threshold"] == first["trim_threshold"] == allocator.LARGE_THRESHOLD
    assert first["glibc"][0].isdigit()
    assert again == first


def test_invbench_malloc_system_leaves_the_defaults():
    _, first, _ = _probe(INVBENCH_MALLOC="system")
    assert first == {"tuned": False, "reason": "INVBENCH_MALLOC=system: the C library's defaults"}


@pytest.mark.skipif(not LINUX, reason="glibc's mallopt exists on Linux only")
def test_thresholds_change_no_computed_value():
    """A conv forward and backward gives the same bits with either setting."""
    if allocator._libc() is None:
        pytest.skip("not glibc")
    conv = torch.nn.Conv2d(8, 16, 3, padding=1)
    x = torch.randn(4, 8, 64, 64, generator=torch.Generator().manual_seed(0))

    def grad() -> torch.Tensor:
        xi = x.clone().requires_grad_(True)
        torch.nn.functional.prelu(conv(xi), torch.full((16,), 0.25)).square().sum().backward()
        assert xi.grad is not None
        return xi.grad

    try:
        assert allocator.set_thresholds(allocator.GLIBC_DEFAULT_THRESHOLD, 2 * 1024 * 1024)
        reference = grad()
        assert allocator.set_thresholds(allocator.LARGE_THRESHOLD, allocator.LARGE_THRESHOLD)
        assert torch.equal(grad(), reference)
    finally:
        state = allocator.malloc_state()
        if state["tuned"]:
            allocator.set_thresholds(state["mmap_threshold"], state["trim_threshold"])
        else:
            allocator.set_thresholds(allocator.GLIBC_DEFAULT_THRESHOLD, 2 * 1024 * 1024)
