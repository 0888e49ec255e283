"""Clopper–Pearson intervals, the bootstrap over identities and the summary helper."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from invbench.metrics.stats import bootstrap_rate_by_group, clopper_pearson, summarize


@pytest.mark.parametrize(("k", "n"), [(0, 10), (10, 10), (949, 1000), (1, 3), (37, 400)])
def test_clopper_pearson_matches_scipy_exact(k, n):
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    lo, hi = clopper_pearson(k, n)
    assert lo == pytest.approx(ref.low, abs=1e-12)
    assert hi == pytest.approx(ref.high, abs=1e-12)


def test_clopper_pearson_known_values():
    # zero successes in n: upper = 1 - 0.025**(1/n); all successes mirror it
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10)))
    assert clopper_pearson(10, 10) == (pytest.approx(0.025 ** (1 / 10)), 1.0)
    lo, hi = clopper_pearson(949, 1000)
    assert (round(lo, 4), round(hi, 4)) == (0.9335, 0.9618)


@pytest.mark.parametrize(("k", "n"), [(0, 0), (-1, 5), (6, 5)])
def test_clopper_pearson_rejects_bad_counts(k, n):
    with pytest.raises(ValueError):
        clopper_pearson(k, n)


def test_bootstrap_is_seeded_and_brackets_the_rate():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(50), 6)
    succ = rng.random(groups.size) < np.repeat(rng.random(50), 6)
    a = bootstrap_rate_by_group(succ, groups, n_boot=500, seed=3)
    b = bootstrap_rate_by_group(succ, groups, n_boot=500, seed=3)
    c = bootstrap_rate_by_group(succ, groups, n_boot=500, seed=4)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.low <= succ.mean() <= a.high
    assert a.n_groups == 50


def test_bootstrap_constant_outcomes():
    groups = np.repeat(np.arange(5), 3)
    r = bootstrap_rate_by_group(np.ones(15, bool), groups, n_boot=100)
    assert (r.low, r.high, r.std) == (1.0, 1.0, 0.0)


def test_bootstrap_wider_than_independent_when_identities_cluster():
    # whole identities succeed or fail together: pairs are far from independent
    groups = np.repeat(np.arange(40), 10)
    succ = np.repeat(np.arange(40) % 2 == 0, 10)
    boot = bootstrap_rate_by_group(succ, groups, n_boot=2000, seed=0)
    lo, hi = clopper_pearson(int(succ.sum()), succ.size)
    assert boot.high - boot.low > hi - lo


def test_summarize_counts_nonfinite():
    s = summarize([0.0, 1.0, 2.0, float("nan")])
    assert s["n"] == 4 and s["n_nonfinite"] == 1
    assert s["mean"] == 1.0 and s["median"] == 1.0 and s["max"] == 2.0
    assert summarize([float("nan")])["mean"] is None


def test_identity_bootstrap_covers_clustered_trials_where_clopper_pearson_does_not():
    """40 identities x 10 trials, success probability drawn per identity (Beta(0.5, 0.5),
    mean 0.5): trials of one identity agree, so Clopper-Pearson over 400 'independent'
    trials is far too narrow; the interval ``interval`` reports for grouped trials keeps
    its nominal coverage."""
    from types import SimpleNamespace

    from invbench_plugins.protocols.metric_builders import interval

    options = SimpleNamespace(n_bootstrap=300, seed=0)
    rng = np.random.default_rng(12)
    groups = np.repeat(np.arange(40), 10)
    hits = {"cp": 0, "grouped": 0}
    runs = 300
    for _ in range(runs):
        p = rng.beta(0.5, 0.5, size=40)[groups]
        flags = rng.random(groups.size) < p
        details: dict = {}
        low, high = interval(flags, groups, options, details)
        cp_low, cp_high = details["ci95_clopper_pearson_if_independent"]
        hits["cp"] += cp_low <= 0.5 <= cp_high
        hits["grouped"] += low <= 0.5 <= high
        assert "bootstrap over identities" in details["ci_method"]
    assert hits["cp"] / runs < 0.75  # measured 0.64 with this seed
    assert hits["grouped"] / runs > 0.9  # measured 0.95
    one_each = interval(np.ones(40, bool), np.arange(40), options, details := {})
    assert "independent trials" in details["ci_method"] and one_each[1] == 1.0
