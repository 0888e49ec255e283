"""Threshold at a target FMR (bob.measure far_threshold semantics) and rates at a threshold."""

from __future__ import annotations

import numpy as np
import pytest

from invbench.metrics.thresholds import (
    far_with_fta,
    fmr,
    fnmr,
    format_alpha,
    frr_with_fta,
    n_accepted,
    tar,
    threshold_at_fmr,
)

GOLDEN_IMPOSTORS = [0.1, 0.2, 0.2, 0.3, 0.9]


@pytest.mark.parametrize(
    ("alpha", "tau", "realised"),
    [
        (0.1, float(np.nextafter(0.9, np.inf)), 0.0),
        (0.2, 0.9, 0.2),
        (0.5, 0.3, 0.4),
        (0.8, 0.2, 0.8),
    ],
)
def test_golden_table(alpha, tau, realised):
    r = threshold_at_fmr(GOLDEN_IMPOSTORS, alpha)
    assert r.tau == tau  # exact, including the one-ulp step above the max
    assert r.realised_fmr == realised
    assert r.n_impostor == 5
    assert r.degenerate == (alpha == 0.1)


def test_golden_unsorted_input_and_order_independence():
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(GOLDEN_IMPOSTORS)
    assert threshold_at_fmr(shuffled, 0.5).tau == 0.3


def test_tie_at_tau_counts_as_accept():
    # an impostor exactly at tau is a false match; a genuine exactly at tau is accepted
    assert fmr([0.5, 0.5, 0.1], 0.5) == pytest.approx(2 / 3)
    assert tar([0.5, 0.4], 0.5) == 0.5
    assert fnmr([0.5, 0.4], 0.5) == 0.5
    assert n_accepted([0.3, 0.3, 0.3], 0.3) == 3


def test_tie_block_taken_whole_or_not_at_all():
    imp = [0.5] * 3 + [0.1] * 7
    r = threshold_at_fmr(imp, 0.2)  # the top block alone is 0.3 > 0.2
    assert r.degenerate and r.realised_fmr == 0.0
    assert r.tau == float(np.nextafter(0.5, np.inf))
    assert fmr(imp, r.tau) == 0.0
    r = threshold_at_fmr(imp, 0.3)
    assert r.tau == 0.5 and r.realised_fmr == 0.3


def test_alpha_below_one_over_n_gives_above_max():
    r = threshold_at_fmr([0.1, 0.2, 0.3], 0.2)
    assert r.tau > 0.3 and r.realised_fmr == 0.0 and r.degenerate


def test_alpha_one_accepts_everything_like_bob():
    r = threshold_at_fmr(GOLDEN_IMPOSTORS, 1.0)
    assert r.tau == float(np.nextafter(0.1, -np.inf))
    assert r.realised_fmr == 1.0


def _brute_force(imp: np.ndarray, alpha: float) -> float:
    best = None
    for t in sorted(set(imp.tolist()), reverse=True):
        if np.count_nonzero(imp >= t) / imp.size <= alpha:
            best = t
    return float(np.nextafter(imp.max(), np.inf)) if best is None else best


@pytest.mark.parametrize("seed", range(20))
def test_matches_brute_force_and_never_exceeds_alpha(seed):
    rng = np.random.default_rng(seed)
    imp = np.round(rng.normal(size=int(rng.integers(5, 300))), int(rng.integers(1, 3)))
    for alpha in (0.001, 0.01, 0.05, 0.1, 0.37, 0.5, 0.9):
        r = threshold_at_fmr(imp, alpha)
        assert r.tau == _brute_force(imp, alpha)
        assert r.realised_fmr == fmr(imp, r.tau) <= alpha
        assert r.n_false_match == np.count_nonzero(imp >= r.tau)
        lower = imp[imp < r.tau]
        if lower.size:  # the next value down would exceed alpha
            assert fmr(imp, lower.max()) > alpha


def test_low_impostor_count_flag():
    rng = np.random.default_rng(1)
    assert threshold_at_fmr(rng.normal(size=999), 0.01).low_impostor_count
    assert not threshold_at_fmr(rng.normal(size=1000), 0.01).low_impostor_count
    assert threshold_at_fmr(rng.normal(size=9000), 1e-3).low_impostor_count


def test_details_are_json_ready():
    import json

    d = threshold_at_fmr(GOLDEN_IMPOSTORS, 0.5).as_details()
    assert json.loads(json.dumps(d))["tau"] == 0.3


@pytest.mark.parametrize(
    ("imp", "alpha"), [([], 0.1), ([0.1, float("nan")], 0.1), ([0.1], -0.1), ([0.1], 1.5)]
)
def test_invalid_inputs_raise(imp, alpha):
    with pytest.raises(ValueError):
        threshold_at_fmr(imp, alpha)


def test_nan_genuine_counts_as_reject():
    assert tar([0.9, float("nan")], 0.5) == 0.5
    assert fnmr([0.9, float("nan")], 0.5) == 0.5


def test_fta_formulas():
    assert far_with_fta(0.01, 0.1) == pytest.approx(0.009)
    assert frr_with_fta(0.2, 0.1) == pytest.approx(0.1 + 0.2 * 0.9)


def test_format_alpha():
    assert [format_alpha(a) for a in (1e-2, 1e-3, 1e-4, 0.05, 0.0015)] == [
        "1e-2",
        "1e-3",
        "1e-4",
        "5e-2",
        "1.5e-3",
    ]
