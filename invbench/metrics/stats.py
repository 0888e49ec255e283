"""Confidence intervals for rates: Clopper–Pearson, and a bootstrap over identities.

Independent trials (one reconstruction per sample) get the exact Clopper–Pearson
interval. Pair-based rates (type-II pairs, real genuine pairs) are not independent: pairs
of one identity share images. For those, :func:`bootstrap_rate_by_group` resamples whole
identities with replacement (seeded), holding the decision threshold fixed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import beta

CLOPPER_PEARSON_IMPLEMENTATION = "Clopper-Pearson exact interval via scipy.stats.beta.ppf"


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) two-sided interval for a binomial proportion ``k / n``.

    Args:
        k: Successes, ``0 <= k <= n``.
        n: Trials, ``n >= 1``.
        confidence: Coverage, e.g. ``0.95``.

    Returns:
        ``(low, high)``; ``low = 0`` when ``k = 0`` and ``high = 1`` when ``k = n``.

    Raises:
        ValueError: When ``n < 1`` or ``k`` is outside ``[0, n]``.

    >>> lo, hi = clopper_pearson(0, 10)
    >>> lo, round(hi, 4)
    (0.0, 0.3085)
    >>> [round(v, 4) for v in clopper_pearson(949, 1000)]
    [0.9335, 0.9618]
    """
    if n < 1:
        raise ValueError(f"Clopper-Pearson needs n >= 1 trials, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"successes k={k} outside [0, n={n}]")
    a = 1.0 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return low, high


@dataclass(frozen=True)
class BootstrapResult:
    """A percentile bootstrap interval over groups (identities).

    Attributes:
        low: Lower bound.
        high: Upper bound.
        std: Standard deviation of the bootstrap replicates.
        n_boot: Number of replicates.
        n_groups: Number of groups resampled.
        seed: Seed of the replicate stream.
        confidence: Coverage.
    """

    low: float
    high: float
    std: float
    n_boot: int
    n_groups: int
    seed: int
    confidence: float

    def as_details(self) -> dict[str, Any]:
        """JSON-ready dict of the fields."""
        return asdict(self)


def bootstrap_rate_by_group(
    successes: ArrayLike,
    groups: ArrayLike,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapResult:
    """Percentile bootstrap interval of a pooled rate, resampling groups with replacement.

    Each replicate draws ``G`` groups (identities) with replacement and computes the
    pooled rate ``sum(successes in drawn groups) / sum(trials in drawn groups)``. The
    decision threshold behind ``successes`` is held fixed.

    Args:
        successes: ``(P,)`` bool (or 0/1): whether trial ``p`` succeeded.
        groups: ``(P,)`` group label (identity) of trial ``p``.
        n_boot: Number of replicates.
        seed: Seed for ``numpy.random.default_rng``.
        confidence: Coverage of the percentile interval.

    Returns:
        The interval, replicate std and bookkeeping.

    Raises:
        ValueError: On empty or mismatched inputs.

    >>> succ = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
    >>> r = bootstrap_rate_by_group(succ, [0, 0, 1, 1, 2, 2], n_boot=200, seed=0)
    >>> 0.0 <= r.low <= 0.5 <= r.high <= 1.0
    True
    """
    succ = np.asarray(successes).astype(np.float64).reshape(-1)
    grp = np.asarray(groups).reshape(-1)
    if succ.size == 0 or succ.size != grp.size:
        raise ValueError(f"need equal non-empty successes/groups, got {succ.size}/{grp.size}")
    _, codes = np.unique(grp, return_inverse=True)
    n_groups = int(codes.max()) + 1
    k_per = np.bincount(codes, weights=succ, minlength=n_groups)
    n_per = np.bincount(codes, minlength=n_groups).astype(np.float64)
    rng = np.random.default_rng(seed)
    rates = np.empty(n_boot, dtype=np.float64)
    chunk = max(1, 2_000_000 // n_groups)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        draw = rng.integers(0, n_groups, size=(stop - start, n_groups))
        rates[start:stop] = k_per[draw].sum(axis=1) / n_per[draw].sum(axis=1)
    a = 1.0 - confidence
    low, high = np.quantile(rates, [a / 2, 1 - a / 2])
    return BootstrapResult(
        low=float(low),
        high=float(high),
        std=float(rates.std()),
        n_boot=int(n_boot),
        n_groups=n_groups,
        seed=int(seed),
        confidence=float(confidence),
    )


def summarize(values: ArrayLike) -> dict[str, Any]:
    """Distribution summary of finite values, counting the non-finite ones.

    Args:
        values: ``(M,)`` numbers; NaN marks a failed trial.

    Returns:
        ``n``, ``n_nonfinite``, ``mean``, ``std``, ``min``, ``q05``, ``q25``, ``median``,
        ``q75``, ``q95``, ``max`` (statistics ``None`` when no value is finite).

    >>> summarize([0.0, 1.0, float("nan")])["mean"], summarize([1.0])["n_nonfinite"]
    (0.5, 0)
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = v[np.isfinite(v)]
    out: dict[str, Any] = {"n": int(v.size), "n_nonfinite": int(v.size - finite.size)}
    keys = ("min", "q05", "q25", "median", "q75", "q95", "max")
    if finite.size == 0:
        out.update({k: None for k in ("mean", "std", *keys)})
        return out
    qs = np.quantile(finite, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    out["mean"] = float(finite.mean())
    out["std"] = float(finite.std())
    out.update({k: float(q) for k, q in zip(keys, qs, strict=True)})
    return out
