"""Decision thresholds at a target false-match rate, and the rates at a threshold.

Conventions (``docs/metrics.md``): scores are similarities, a comparison **accepts iff
``s >= tau``**. The threshold at a target FMR ``alpha`` follows bob.measure's
``far_threshold`` exactly, so the realised FMR never exceeds ``alpha``:

1. sort the impostor scores descending;
2. ``tau`` is the smallest impostor score value ``t`` with ``|{s >= t}| / N <= alpha``, a
   block of tied values being taken whole or not at all;
3. when none qualifies, ``tau = nextafter(max(I), +inf)`` and the realised FMR is 0.

Like bob.measure, ``alpha >= 1 - eps`` gives ``nextafter(min(I), -inf)`` (accept all).

Example (the worked table of ``docs/metrics.md`` §2):

>>> imp = [0.1, 0.2, 0.2, 0.3, 0.9]
>>> [threshold_at_fmr(imp, a).tau for a in (0.2, 0.5, 0.8)]
[0.9, 0.3, 0.2]
>>> r = threshold_at_fmr(imp, 0.1)
>>> r.tau == float(np.nextafter(0.9, np.inf)), r.realised_fmr, r.degenerate
(True, 0.0, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

#: Flag a rate when ``|I| * alpha`` is below this (too few impostors above the threshold).
MIN_EXPECTED_FALSE_MATCHES = 10

IMPLEMENTATION = (
    "invbench.metrics.thresholds.threshold_at_fmr (bob.measure far_threshold semantics: "
    "accept iff s >= tau, realised FMR <= alpha, tie blocks whole, nextafter above max)"
)


@dataclass(frozen=True)
class ThresholdResult:
    """A threshold chosen on impostor scores, with what is needed to read it.

    Attributes:
        tau: The threshold; a comparison accepts iff ``s >= tau``.
        alpha: The target FMR.
        realised_fmr: ``|{s in I : s >= tau}| / |I|`` (always ``<= alpha``).
        n_impostor: ``|I|``.
        n_false_match: ``|{s in I : s >= tau}|``.
        low_impostor_count: ``|I| * alpha < 10``: the rate at ``alpha`` rests on fewer
            than ten impostors above the threshold and is unstable.
        degenerate: No impostor value qualified, ``tau = nextafter(max(I), +inf)``.
    """

    tau: float
    alpha: float
    realised_fmr: float
    n_impostor: int
    n_false_match: int
    low_impostor_count: bool
    degenerate: bool

    def as_details(self) -> dict[str, Any]:
        """JSON-ready dict of the fields (for :class:`~invbench.components.Metric` details)."""
        return asdict(self)


def _as_scores(scores: ArrayLike) -> np.ndarray:
    return np.asarray(scores, dtype=np.float64).reshape(-1)


def _impostor_array(scores: ArrayLike) -> np.ndarray:
    """``(N,)`` view of the impostor scores, float32 kept as it is (no float64 copy).

    Widening float32 to float64 is exact and keeps order and ties, so a threshold chosen
    on the float32 values and widened afterwards is the one chosen on a float64 copy.
    """
    arr = np.asarray(scores)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr.reshape(-1)


#: Below this many scores the top block is found by one full sort.
_FULL_SORT_BELOW = 1 << 17
#: Scores per step when scanning a large impostor set (bounded temporaries).
_SCAN_CHUNK = 1 << 22


def _top_ascending(imp: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest impostor scores (at least; ties included), ascending.

    Returns an ascending array ``top`` whose last ``k`` entries are the ``k`` largest values
    of ``imp`` as a multiset; any entries before them are the next largest. Small sets are
    sorted whole. Large ones are scanned once against a lower bound ``b`` read off a strided
    sample: values ``> b`` are kept, and ties at ``b`` are added back only as far as needed
    to reach ``k``; when fewer than ``k`` values are ``>= b`` (an unlucky sample), the whole
    set is sorted instead. Either way the result holds the exact top ``k``: no sampling
    error can reach the threshold.

    Args:
        imp: ``(N,)`` finite scores, float32 or float64.
        k: ``1 <= k <= N``.

    Returns:
        ``(c,)`` ascending, ``c >= k``, same dtype as ``imp``.
    """
    n = imp.size
    if n < _FULL_SORT_BELOW or 8 * k > n:
        return np.sort(imp)
    step = max(1, n // 65536)
    sample = imp[::step]
    ns = sample.size
    want = min(ns, int(np.ceil(2.0 * k * ns / n)) + 32)  # ~2x the expected count above b
    bound = np.partition(sample, ns - want)[ns - want]
    above: list[np.ndarray] = []
    n_above = 0
    for start in range(0, n, _SCAN_CHUNK):
        chunk = imp[start : start + _SCAN_CHUNK]
        part = chunk[chunk > bound]
        above.append(part)
        n_above += part.size
    if n_above < k:  # ties at the bound are needed: count them (a second pass, rarely)
        n_tied = sum(
            int(np.count_nonzero(imp[i : i + _SCAN_CHUNK] == bound))
            for i in range(0, n, _SCAN_CHUNK)
        )
        if n_above + n_tied < k:
            return np.sort(imp)
    fill = np.full(max(0, k - n_above), bound, dtype=imp.dtype)
    return np.concatenate([fill, np.sort(np.concatenate(above))])


def thresholds_at_fmr(impostor_scores: ArrayLike, alphas: Sequence[float]) -> list[ThresholdResult]:
    """:func:`threshold_at_fmr` at every target in ``alphas``, sharing one selection.

    Bit for bit the thresholds of :func:`threshold_at_fmr` (its reference implementation,
    ``np.unique`` and a cumulative count over every distinct value, is kept in
    ``tests/test_perf_exactness.py``). With ``m_alpha`` the largest count with
    ``m_alpha / N <= alpha`` (the same float comparison), ``tau`` is the smallest score
    strictly above the ``(m_alpha + 1)``-th largest score ``v``: every value above ``v`` has
    at most ``m_alpha`` scores at or above it, ``v``'s own tie block has more. When nothing
    is above ``v``, the result is degenerate. So only the top ``max(m_alpha) + 1`` scores
    matter: they are selected once (:func:`_top_ascending`; float32 input stays float32)
    and every target is read off them.

    Args:
        impostor_scores: ``(N,)`` finite real-vs-real non-mated similarity scores.
        alphas: Target FMRs, each in ``[0, 1]``.

    Returns:
        One :class:`ThresholdResult` per target, in the order of ``alphas``.

    Raises:
        ValueError: On an empty or non-finite impostor set, or a target outside ``[0, 1]``.
    """
    imp = _impostor_array(impostor_scores)
    if imp.size == 0:
        raise ValueError("threshold_at_fmr needs at least one impostor score")
    lowest, highest = imp.min(), imp.max()  # NaN propagates; no (N,) temporary
    if not (np.isfinite(lowest) and np.isfinite(highest)):
        raise ValueError(
            f"{int((~np.isfinite(imp)).sum())} impostor scores are not finite; count failures "
            "to acquire separately instead of scoring them"
        )
    for alpha in alphas:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    n = int(imp.size)
    nf = np.float64(n)
    accept_all = [alpha >= 1.0 - np.finfo(np.float64).eps for alpha in alphas]
    kept: list[int] = []  # m_alpha per target (0 for accept-all targets)
    for alpha, everything in zip(alphas, accept_all, strict=True):
        m = 0
        if not everything:
            m = min(n, max(0, int(np.floor(alpha * n))))
            while m < n and np.float64(m + 1) / nf <= alpha:
                m += 1
            while m > 0 and np.float64(m) / nf > alpha:
                m -= 1
        kept.append(m)
    top = _top_ascending(imp, min(n, max(kept) + 1)) if not all(accept_all) else imp[:0]
    c = top.size
    results = []
    for alpha, everything, m in zip(alphas, accept_all, kept, strict=True):
        low = n * alpha < MIN_EXPECTED_FALSE_MATCHES
        if everything:
            tau = float(np.nextafter(np.float64(lowest), -np.inf))
            results.append(ThresholdResult(tau, float(alpha), 1.0, n, n, low, False))
            continue
        v = top[c - 1 - m]  # the (m + 1)-th largest score (m < n: m / n <= alpha < 1)
        n_fm = c - int(np.searchsorted(top, v, side="right"))  # scores strictly above v
        if n_fm == 0:
            tau = float(np.nextafter(np.float64(highest), np.inf))
            results.append(ThresholdResult(tau, float(alpha), 0.0, n, 0, low, True))
            continue
        tau = float(top[c - n_fm])
        results.append(ThresholdResult(tau, float(alpha), n_fm / n, n, n_fm, low, False))
    return results


def threshold_at_fmr(impostor_scores: ArrayLike, alpha: float) -> ThresholdResult:
    """Threshold at target FMR ``alpha`` with bob.measure ``far_threshold`` semantics.

    Several targets on one impostor set: :func:`thresholds_at_fmr` (one selection for all).

    Args:
        impostor_scores: ``(|I|,)`` real-vs-real non-mated similarity scores. Must be
            finite (failures to acquire are counted separately, never scored).
        alpha: Target FMR in ``[0, 1]``.

    Returns:
        The threshold with its realised FMR, impostor count and flags.

    Raises:
        ValueError: On an empty or non-finite impostor set, or ``alpha`` outside ``[0, 1]``.
    """
    return thresholds_at_fmr(impostor_scores, [alpha])[0]


def n_accepted(scores: ArrayLike, tau: float) -> int:
    """Number of comparisons accepted at ``tau`` (``s >= tau``; NaN never accepts).

    Args:
        scores: ``(M,)`` similarity scores; NaN marks a failed comparison.
        tau: Threshold.
    """
    s = _as_scores(scores)
    return int(np.count_nonzero(s >= tau))


def fmr(impostor_scores: ArrayLike, tau: float) -> float:
    """False-match rate ``|{s in I : s >= tau}| / |I|``.

    >>> fmr([0.1, 0.2, 0.2, 0.3, 0.9], 0.2)
    0.8
    """
    s = _as_scores(impostor_scores)
    if s.size == 0:
        raise ValueError("fmr of an empty impostor set")
    return n_accepted(s, tau) / s.size


def tar(genuine_scores: ArrayLike, tau: float) -> float:
    """True-accept rate ``|{s in G : s >= tau}| / |G|``; NaN scores count as rejects.

    >>> tar([0.5, 0.3, float("nan"), 0.2], 0.3)
    0.5
    """
    s = _as_scores(genuine_scores)
    if s.size == 0:
        raise ValueError("tar of an empty genuine set")
    return n_accepted(s, tau) / s.size


def fnmr(genuine_scores: ArrayLike, tau: float) -> float:
    """False non-match rate ``1 - TAR(tau)`` (a NaN score is a non-match).

    >>> fnmr([0.5, 0.3, 0.2, 0.1], 0.3)
    0.5
    """
    return 1.0 - tar(genuine_scores, tau)


def far_with_fta(fmr_value: float, fta: float) -> float:
    """System false-accept rate with failures to acquire: ``FMR * (1 - FTA)``."""
    return fmr_value * (1.0 - fta)


def frr_with_fta(fnmr_value: float, fta: float) -> float:
    """System false-reject rate with failures to acquire: ``FTA + FNMR * (1 - FTA)``."""
    return fta + fnmr_value * (1.0 - fta)


def format_alpha(alpha: float) -> str:
    """Format a rate for metric names: ``0.01 -> '1e-2'``, ``0.0015 -> '1.5e-3'``.

    >>> format_alpha(1e-2), format_alpha(0.001), format_alpha(0.0015), format_alpha(0.1)
    ('1e-2', '1e-3', '1.5e-3', '1e-1')
    """
    mantissa, exponent = f"{alpha:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"
