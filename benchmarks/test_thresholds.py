"""Threshold at FAR 1e-2 ... 1e-6 on one impostor set: one selection vs the previous code.

References: the implementation before issue 14 (``np.unique`` over every score, then one
cumulative count per target, on a float64 copy), a bare ``np.partition`` order statistic
(what a single target costs at least), and sklearn's ``roc_curve`` (small sizes only: 33 s
at 1e8). Peak memory (tracemalloc) of the subject and of the previous code is recorded too.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compare, peak_mb, record

from invbench.metrics.thresholds import thresholds_at_fmr
from tests.test_perf_exactness import _reference_threshold

FARS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]


def _previous(scores: np.ndarray) -> list:
    return [_reference_threshold(scores, a) for a in FARS]


def _partition_one(scores: np.ndarray) -> float:
    k = scores.size - max(1, int(scores.size * FARS[0]))
    return float(np.partition(scores, k)[k])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scale", ["1e6", "1e7", "1e8"])  # full sizes; small: 1/100
def test_threshold_at_far(benchmark, full, scale, dtype):
    n = int(float(scale))
    if not full:
        n //= 100  # 1e4 ... 1e6
    if benchmark.disabled:
        n = min(n, 20_000)  # CI: once each, as a test
    rng = np.random.default_rng(0)
    scores = rng.normal(0.05, 0.12, size=n).astype(dtype)
    refs = {"previous": lambda: _previous(scores), "np_partition": lambda: _partition_one(scores)}
    if n <= 1_000_000:
        from sklearn.metrics import roc_curve

        labels = np.zeros(n, dtype=bool)
        labels[:1] = True  # roc_curve needs both classes; one positive barely matters
        refs["sklearn_roc_curve"] = lambda: roc_curve(labels, scores)
    rounds = 2 if n >= 10_000_000 else 3
    got, outs = compare(
        benchmark,
        lambda: thresholds_at_fmr(scores, FARS),
        refs,
        rounds=rounds,
        name=f"threshold n={n:.0e} {dtype}",
    )
    assert got == outs["previous"]  # identical thresholds, every field
    if benchmark.enabled:
        sub_mb = peak_mb(lambda: thresholds_at_fmr(scores, FARS))
        prev_mb = peak_mb(lambda: _previous(scores))
        record(
            benchmark,
            f"threshold n={n} {dtype} memory",
            "memory_previous_over_subject",
            prev_mb / max(sub_mb, 1e-9),
            peak_mb_subject=sub_mb,
            peak_mb_previous=prev_mb,
            input_mb=scores.nbytes / 1e6,
        )
