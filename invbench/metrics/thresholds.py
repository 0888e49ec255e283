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


def threshold_at_fmr(impostor_scores: ArrayLike, alpha: float) -> ThresholdResult:
    """Threshold at target FMR ``alpha`` with bob.measure ``far_threshold`` semantics.

    Args:
        impostor_scores: ``(|I|,)`` real-vs-real non-mated similarity scores. Must be
            finite (failures to acquire are counted separately, never scored).
        alpha: Target FMR in ``[0, 1]``.

    Returns:
        The threshold with its realised FMR, impostor count and flags.

    Raises:
        ValueError: On an empty or non-finite impostor set, or ``alpha`` outside ``[0, 1]``.
    """
    imp = _as_scores(impostor_scores)
    if imp.size == 0:
        raise ValueError("threshold_at_fmr needs at least one impostor score")
    if not np.all(np.isfinite(imp)):
        raise ValueError(
            f"{int((~np.isfinite(imp)).sum())} impostor scores are not finite; count failures "
            "to acquire separately instead of scoring them"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    n = int(imp.size)
    low = n * alpha < MIN_EXPECTED_FALSE_MATCHES
    if alpha >= 1.0 - np.finfo(np.float64).eps:
        tau = float(np.nextafter(imp.min(), -np.inf))
        return ThresholdResult(tau, float(alpha), 1.0, n, n, low, False)
    values, counts = np.unique(imp, return_counts=True)  # ascending
    n_at_or_above = np.cumsum(counts[::-1])[::-1]  # |{s >= values[k]}|
    qualifies = (n_at_or_above / n) <= alpha  # same float comparison as bob.measure
    if not qualifies.any():
        tau = float(np.nextafter(values[-1], np.inf))
        return ThresholdResult(tau, float(alpha), 0.0, n, 0, low, True)
    k = int(np.argmax(qualifies))  # smallest qualifying value (qualifies is monotone)
    n_fm = int(n_at_or_above[k])
    return ThresholdResult(float(values[k]), float(alpha), n_fm / n, n, n_fm, low, False)


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
