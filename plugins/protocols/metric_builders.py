"""Metric builders of the verification-style protocols (rates, similarities, intervals).

Score-file conventions used by ``type1``, ``type2`` and ``sar`` (``.npy`` beside the record):

- ``impostor``: real-vs-real non-mated scores the thresholds are chosen on;
- ``n_total``, ``n_failed_to_acquire``: 0-d int arrays, evaluation images before alignment
  and those where no face was found (failures to acquire, FTA);
- ``n_nonmated_pairs``, ``impostor_sampled``: 0-d, non-mated comparisons before sampling
  and whether ``impostor`` is a sample.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from invbench.components import Metric
from invbench.metrics.stats import (
    CLOPPER_PEARSON_IMPLEMENTATION,
    bootstrap_rate_by_group,
    clopper_pearson,
    summarize,
)
from invbench.metrics.thresholds import (
    IMPLEMENTATION as THRESHOLD_IMPLEMENTATION,
)
from invbench.metrics.thresholds import (
    ThresholdResult,
    far_with_fta,
    format_alpha,
    frr_with_fta,
    n_accepted,
    thresholds_at_fmr,
)
from invbench.metrics.verification import RealScores, real_score_sets


class RateOptions(Protocol):
    """The options the builders read (``VerificationOptions`` has them)."""

    fars: list[float]
    threshold_source: str
    impostor_file: str | None
    max_impostor_pairs: int
    seed: int
    n_bootstrap: int
    min_false_matches: int


COSINE = "cosine of L2-normalised evaluation-encoder templates (float64)"


_REAL_SETS_CACHE: dict[str, RealScores] = {}


def cached_real_score_sets(
    real_unit: np.ndarray, codes: np.ndarray, options: RateOptions
) -> RealScores:
    """:func:`real_score_sets`, memoised on the content so protocols of one run share it.

    Only the latest result is kept (type1, type2 and sar evaluate one context in turn).
    """
    digest = hashlib.sha256()
    for part in (real_unit, codes):
        arr = np.ascontiguousarray(part)
        digest.update(f"{arr.dtype}{arr.shape}".encode())
        digest.update(arr.tobytes())
    digest.update(f"{options.max_impostor_pairs}/{options.seed}".encode())
    key = digest.hexdigest()
    if key not in _REAL_SETS_CACHE:
        _REAL_SETS_CACHE.clear()
        _REAL_SETS_CACHE[key] = real_score_sets(
            real_unit, codes, max_impostor_pairs=options.max_impostor_pairs, seed=options.seed
        )
    return _REAL_SETS_CACHE[key]


def impostor_arrays(
    options: RateOptions, computed: np.ndarray, n_nonmated: int, sampled: bool
) -> dict[str, np.ndarray]:
    """The arrays ``impostor``, ``n_nonmated_pairs`` and ``impostor_sampled`` to save.

    Args:
        options: ``threshold_source=same`` saves ``computed``; ``file`` saves the scores
            in ``impostor_file`` instead (all of them, unsampled).
        computed: ``(I,)`` real-vs-real non-mated scores of this evaluation set (saved
            as float64, or as float32 when they are float32).
        n_nonmated: Non-mated comparisons before sampling.
        sampled: Whether ``computed`` is a sample.
    """
    if options.threshold_source == "same":
        # float32 stays float32 (large all-pairs sets, see FLOAT32_SCORES_ABOVE)
        keep = np.float32 if np.asarray(computed).dtype == np.float32 else np.float64
        scores = np.asarray(computed, dtype=keep)
    elif not options.impostor_file:
        raise ValueError("threshold_source=file needs impostor_file")
    else:
        loaded = np.load(Path(options.impostor_file), allow_pickle=False)
        scores = np.asarray(loaded, dtype=np.float64).reshape(-1)
        n_nonmated, sampled = int(scores.size), False
    return {
        "impostor": scores,
        "n_nonmated_pairs": np.asarray(n_nonmated, dtype=np.int64),
        "impostor_sampled": np.asarray(bool(sampled)),
    }


def acquisition_arrays(n_total: int, n_failed: int) -> dict[str, np.ndarray]:
    """0-d arrays recording failures to acquire."""
    return {
        "n_total": np.asarray(n_total, dtype=np.int64),
        "n_failed_to_acquire": np.asarray(n_failed, dtype=np.int64),
    }


def fta_details(scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """FTA bookkeeping from the saved 0-d arrays."""
    n_total = int(scores["n_total"])
    n_fail = int(scores["n_failed_to_acquire"])
    return {
        "n_total": n_total,
        "n_failed_to_acquire": n_fail,
        "fta": n_fail / n_total if n_total else 0.0,
    }


def thresholds(scores: dict[str, np.ndarray], options: RateOptions) -> list[ThresholdResult]:
    """One threshold per target rate on the saved ``impostor`` array (none if it is empty).

    All targets share one selection of the top scores (:func:`thresholds_at_fmr`).
    """
    if scores["impostor"].size == 0:
        return []
    return thresholds_at_fmr(scores["impostor"], options.fars)


def unavailable_rates(
    scores: dict[str, np.ndarray],
    options: RateOptions,
    prefixes: list[str],
    kind: str = "far",
) -> dict[str, Metric]:
    """Rates reported as unavailable when there are no real impostor scores at all."""
    if scores["impostor"].size:
        return {}
    reason = (
        "no real impostor scores to choose a threshold on (needs images of at least two "
        "identities, or a threshold file)"
    )
    return {
        rate_name(prefix, alpha, kind): Metric(
            value=None, higher_is_better=True, n=0, unavailable=reason
        )
        for prefix in prefixes
        for alpha in options.fars
    }


def threshold_details(
    thr: ThresholdResult, scores: dict[str, np.ndarray], options: RateOptions
) -> dict[str, Any]:
    """Threshold facts recorded with every rate."""
    source = "same" if options.threshold_source == "same" else f"file:{options.impostor_file}"
    details = thr.as_details()
    details["threshold_source"] = source
    details["n_nonmated_pairs"] = int(scores.get("n_nonmated_pairs", thr.n_impostor))
    details["impostor_sampled"] = bool(scores.get("impostor_sampled", False))
    details["impostor_dtype"] = str(scores["impostor"].dtype)
    if thr.low_impostor_count:
        details["warning"] = (
            f"|I|*alpha = {thr.n_impostor * thr.alpha:.3g} < 10: too few impostors for a "
            "stable rate at this target"
        )
    return details


def rate_metric(
    trial_scores: np.ndarray,
    thr: ThresholdResult,
    *,
    what: str,
    scores: dict[str, np.ndarray],
    options: RateOptions,
    groups: np.ndarray | None = None,
    extra: dict[str, Any] | None = None,
) -> Metric:
    """An acceptance rate ``|{s >= tau}| / N`` with counts, CI and threshold facts.

    Args:
        trial_scores: ``(N,)`` one score per trial; NaN (failed attack) counts as reject.
        thr: The threshold.
        what: Human description of a trial, recorded in ``implementation``.
        scores: All saved arrays (for threshold and FTA facts).
        options: The protocol options.
        groups: ``(N,)`` identity code per trial when trials are pairs (not independent):
            the CI is then a bootstrap over identities; otherwise Clopper–Pearson.
        extra: Further details.
    """
    s = np.asarray(trial_scores, dtype=np.float64)
    details = threshold_details(thr, scores, options)
    details.update(fta_details(scores))
    details.update(extra or {})
    if thr.n_impostor * thr.alpha < options.min_false_matches:
        floor = options.min_false_matches / max(thr.n_impostor, 1)
        details.pop("warning", None)  # the reason below says it
        return Metric(
            value=None,
            higher_is_better=True,
            n=int(s.size),
            unavailable=(
                f"target rate {format_alpha(thr.alpha)} is below {options.min_false_matches}"
                f"/|I| = {floor:.2g}: {thr.n_impostor} impostor scores allow "
                f"{math.floor(thr.n_impostor * thr.alpha)} false matches at it, too few to "
                "place a threshold"
            ),
            implementation=THRESHOLD_IMPLEMENTATION,
            details=details,
        )
    if s.size == 0:
        return Metric(
            value=None,
            higher_is_better=True,
            n=0,
            count=0,
            unavailable=f"no trials ({what})",
            implementation=THRESHOLD_IMPLEMENTATION,
            details=details,
        )
    k = n_accepted(s, thr.tau)
    details["n_genuine"] = int(s.size)
    details["n_failed_attempts"] = int(np.count_nonzero(~np.isfinite(s)))
    details["counts"] = f"{k}/{s.size}"
    ci = interval(s >= thr.tau, groups, options, details)
    return Metric(
        value=k / s.size,
        higher_is_better=True,
        n=int(s.size),
        count=k,
        ci95=ci,
        implementation=f"{what}; {COSINE}; {THRESHOLD_IMPLEMENTATION}; 95 % CI: "
        + details["ci_method"],
        details=details,
    )


def interval(
    successes: np.ndarray,
    groups: np.ndarray | None,
    options: RateOptions,
    details: dict[str, Any],
) -> tuple[float, float]:
    """The 95 % interval of a proportion, by how its trials were sampled.

    Independent trials (``groups`` ``None``, or one trial per group): Clopper–Pearson.
    Trials that share identities: the union of a seeded percentile bootstrap over the
    identities and Clopper–Pearson (the bootstrap collapses when every trial agrees, so
    the interval is never narrower than under independence). ``details`` receives the
    method and both intervals.
    """
    flags = np.asarray(successes, dtype=bool)
    k, n = int(flags.sum()), int(flags.size)
    cp = clopper_pearson(k, n)
    if groups is None or np.unique(groups).size == np.asarray(groups).size:
        details["ci_method"] = CLOPPER_PEARSON_IMPLEMENTATION + " (independent trials)"
        return cp
    boot = bootstrap_rate_by_group(flags, groups, n_boot=options.n_bootstrap, seed=options.seed)
    details["ci_method"] = (
        f"union of a percentile bootstrap over identities ({options.n_bootstrap} "
        f"replicates, seed {options.seed}; threshold fixed) and Clopper-Pearson: trials "
        "share identities"
    )
    details["bootstrap"] = boot.as_details()
    details["ci95_bootstrap"] = [boot.low, boot.high]
    details["ci95_clopper_pearson_if_independent"] = list(cp)
    return (min(boot.low, cp[0]), max(boot.high, cp[1]))


def system_rate_details(
    genuine: np.ndarray, thr: ThresholdResult, scores: dict[str, np.ndarray]
) -> dict[str, Any]:
    """System-level FAR/FRR including failures to acquire (``docs/metrics.md``)."""
    fta = fta_details(scores)["fta"]
    g = np.asarray(genuine, dtype=np.float64)
    far = far_with_fta(thr.realised_fmr, fta)
    if g.size == 0:
        return {"far_with_fta": far, "frr_with_fta": None}
    fnmr = 1.0 - n_accepted(g, thr.tau) / g.size
    return {"far_with_fta": far, "frr_with_fta": frr_with_fta(fnmr, fta)}


def similarity_metric(values: np.ndarray, *, what: str) -> Metric:
    """Mean similarity (over finite values) with its distribution summary."""
    summary = summarize(values)
    if summary["mean"] is None:
        return Metric(
            value=None,
            higher_is_better=True,
            n=summary["n"],
            unavailable=f"no finite scores ({what})",
            details=summary,
        )
    return Metric(
        value=summary["mean"],
        higher_is_better=True,
        n=summary["n"],
        implementation=f"mean of {what} over finite scores; {COSINE}",
        details=summary,
    )


def proportion_metric(
    flags: np.ndarray,
    *,
    what: str,
    options: RateOptions,
    groups: np.ndarray | None = None,
    higher_is_better: bool = True,
) -> Metric:
    """A proportion with the interval its sampling calls for (see :func:`interval`)."""
    f = np.asarray(flags, dtype=bool)
    if f.size == 0:
        return Metric(value=None, higher_is_better=higher_is_better, n=0, unavailable=f"no {what}")
    k = int(f.sum())
    details: dict[str, Any] = {"counts": f"{k}/{f.size}"}
    ci = interval(f, groups, options, details)
    return Metric(
        value=k / f.size,
        higher_is_better=higher_is_better,
        n=int(f.size),
        count=k,
        ci95=ci,
        implementation=f"{what}; 95 % CI: {details['ci_method']}",
        details=details,
    )


def add_baseline(metrics: dict[str, Metric], name: str, baseline: Metric) -> None:
    """Store ``baseline_<name>`` and note the attack's margin over it in ``name``'s details."""
    metrics[f"baseline_{name}"] = baseline
    attack = metrics.get(name)
    if attack is not None and attack.value is not None and baseline.value is not None:
        attack.details["baseline_value"] = baseline.value
        attack.details["margin_over_baseline"] = attack.value - baseline.value


def rate_name(prefix: str, alpha: float, kind: str = "far") -> str:
    """``tar_type1@far=1e-2`` style names."""
    return f"{prefix}@{kind}={format_alpha(alpha)}"


def fta_metric(scores: dict[str, np.ndarray]) -> Metric:
    """Failures to acquire as a rate (lower is better), from the saved 0-d arrays."""
    n_total = int(scores["n_total"])
    n_fail = int(scores["n_failed_to_acquire"])
    if n_total == 0:
        return Metric(value=None, higher_is_better=False, n=0, unavailable="no images")
    return Metric(
        value=n_fail / n_total,
        higher_is_better=False,
        n=n_total,
        count=n_fail,
        ci95=clopper_pearson(n_fail, n_total),
        implementation="failures to acquire (alignment found no face) / evaluation images",
        details={"counts": f"{n_fail}/{n_total}"},
    )
