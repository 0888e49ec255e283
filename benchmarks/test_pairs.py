"""Pair scoring at LFW scale (13,233 templates of 192-D, 5,749 identities).

Subjects: all non-mated cosines (preallocated output; float32 products and scores above
``FLOAT32_SCORES_ABOVE`` = 2^24 pairs, as ``real_score_sets`` computes them, so float32 at
LFW scale and float64 at the small sizes), the seeded sample of non-mated pairs (sort-based
dedup), the mated pairs (one stable sort). References: the code before issue 14 (kept in
``tests/test_perf_exactness.py``) and the float64 path.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compare, peak_mb, record

from invbench.metrics.pairs import (
    all_nonmated_cosines,
    genuine_pairs,
    nonmated_count,
    sample_pairs,
)
from invbench.metrics.verification import FLOAT32_SCORES_ABOVE, as_unit_rows, real_score_sets
from tests.test_perf_exactness import (
    _reference_all_nonmated,
    _reference_genuine_pairs,
    _reference_sample_pairs,
)


def _lfw_like(n: int, k: int, dim: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """``(n, dim)`` unit rows and ``(n,)`` codes: every identity once, the rest at random."""
    rng = np.random.default_rng(0)
    codes = np.sort(np.concatenate([np.arange(k), rng.integers(0, k, size=n - k)]))
    return as_unit_rows(rng.normal(size=(n, dim))), codes


def _sizes(full: bool, benchmark) -> tuple[int, int]:
    if benchmark.disabled:
        return 600, 260
    return (13_233, 5_749) if full else (4_000, 1_700)


def test_all_nonmated_cosines(benchmark, full):
    """Subject: the path ``real_score_sets`` takes at this size (float32 above 2^24 pairs)."""
    unit, codes = _lfw_like(*_sizes(full, benchmark))
    large = nonmated_count(codes) > FLOAT32_SCORES_ABOVE
    dtype = np.float32 if large else np.float64
    got, outs = compare(
        benchmark,
        lambda: all_nonmated_cosines(unit, codes, dtype=dtype),
        {
            "previous": lambda: _reference_all_nonmated(unit, codes),
            "float64_path": lambda: all_nonmated_cosines(unit, codes),
        },
        rounds=3,
    )
    exact = outs["float64_path"]
    assert np.array_equal(exact.view(np.uint64), outs["previous"].view(np.uint64))
    assert got.dtype == dtype and float(np.abs(got - exact).max()) < 1e-6
    if benchmark.enabled:
        sub_mb = peak_mb(lambda: all_nonmated_cosines(unit, codes, dtype=dtype))
        prev_mb = peak_mb(lambda: _reference_all_nonmated(unit, codes))
        record(
            benchmark,
            f"all-pairs n={unit.shape[0]} memory ({np.dtype(dtype).name})",
            "memory_previous_over_subject",
            prev_mb / sub_mb,
            peak_mb_subject=sub_mb,
            peak_mb_previous=prev_mb,
            n_pairs=int(got.size),
            scores_dtype=np.dtype(dtype).name,
        )


@pytest.mark.parametrize("n_pairs", [2_000_000])
def test_sample_pairs(benchmark, full, n_pairs):
    unit, codes = _lfw_like(*_sizes(full, benchmark))
    if benchmark.disabled:
        n_pairs = 20_000
    elif not full:
        n_pairs //= 4
    got, outs = compare(
        benchmark,
        lambda: sample_pairs(codes, codes, n_pairs, 0, upper_triangle=True),
        {
            "previous": lambda: _reference_sample_pairs(
                codes, codes, n_pairs, 0, upper_triangle=True
            )
        },
    )
    np.testing.assert_array_equal(got, outs["previous"])


def test_sampled_real_scores_vs_all_pairs(benchmark, full):
    """The sampled path (2 M pairs at LFW scale) against scoring every pair."""
    unit, codes = _lfw_like(*_sizes(full, benchmark))
    cap = 2_000_000 if full else 500_000
    if benchmark.disabled:
        cap = 20_000
    got, outs = compare(
        benchmark,
        lambda: real_score_sets(unit, codes, max_impostor_pairs=cap),
        {"all_pairs": lambda: real_score_sets(unit, codes)},
        rounds=2,
    )
    assert got.sampled and not outs["all_pairs"].sampled


def test_genuine_pairs(benchmark, full):
    _, codes = _lfw_like(*_sizes(full, benchmark))
    got, outs = compare(
        benchmark,
        lambda: genuine_pairs(codes),
        {"previous": lambda: _reference_genuine_pairs(codes)},
    )
    np.testing.assert_array_equal(got, outs["previous"])
