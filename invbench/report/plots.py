"""Figures of one record drawn from its saved score files (matplotlib, Agg, PNG).

Three small figures per record, each a pure function of the raw score arrays saved beside
it (the same arrays ``invbench metrics`` recomputes rates from):

- ``roc-det.png``: the real system's ROC (TMR against FMR) and DET (FNMR against FMR on
  normal-deviate axes), with the attacks' operating points at the target FMRs marked;
- ``acceptance.png``: how often each attack (type-I, type-II, SAR) and the template-ignoring
  baseline is accepted at the threshold of every FMR, the target FMRs marked;
- ``histograms.png``: genuine, impostor, attack and baseline score histograms with the
  thresholds at the target FMRs.

Thresholds follow :func:`invbench.metrics.thresholds.threshold_at_fmr` (accept iff
``s >= tau``); a NaN score (a failed comparison) never accepts but counts in its rate's
denominator, as in the metrics. Figures are :class:`matplotlib.figure.Figure` objects that
are never registered with pyplot, so nothing stays open after a save.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedFormatter, FixedLocator, MaxNLocator, NullLocator  # noqa: E402
from scipy.stats import norm  # noqa: E402

from invbench.metrics.thresholds import format_alpha, threshold_at_fmr  # noqa: E402
from invbench.records import Record  # noqa: E402
from invbench.records.recompute import RATE_OPTIONS, load_scores  # noqa: E402

log = logging.getLogger(__name__)

#: Dots per inch of every figure (small figures keep a report of many records fast).
DPI = 100
#: Points drawn per curve at most (thresholds taken at log-spaced impostor ranks).
CURVE_POINTS = 160
#: Rates are clipped into ``[PROBIT_FLOOR, 1 - PROBIT_FLOOR]`` on DET axes.
PROBIT_FLOOR = 1e-4
#: Colours and line styles per score set.
STYLES: dict[str, dict[str, Any]] = {
    "system": {"color": "black", "linestyle": "-"},
    "type-I": {"color": "tab:blue", "linestyle": "-"},
    "type-II": {"color": "tab:orange", "linestyle": "-"},
    "SAR": {"color": "tab:green", "linestyle": "-"},
    "baseline": {"color": "tab:gray", "linestyle": "--"},
}
#: The figure files a record page shows, in order, with their captions.
FIGURES = {
    "roc-det.png": "ROC and DET of the real system; markers: the attacks' acceptance at the "
    "thresholds of the target FMRs",
    "acceptance.png": "Attack acceptance against the FMR of the threshold; dotted: target FMRs",
    "histograms.png": "Score histograms; dotted: thresholds at the target FMRs",
}


@dataclass(frozen=True)
class Scores:
    """One set of comparison scores: finite values sorted ascending, and the total count.

    ``n`` counts NaN scores too (failed comparisons: never accepted, still trials).
    """

    values: np.ndarray
    n: int

    @classmethod
    def of(cls, raw: np.ndarray) -> Scores:
        """Scores from a raw saved array (any shape; NaN allowed)."""
        flat = np.asarray(raw, dtype=np.float64).reshape(-1)
        return cls(np.sort(flat[np.isfinite(flat)]), int(flat.size))

    def accepted(self, taus: np.ndarray) -> np.ndarray:
        """The share of all ``n`` scores ``>= tau`` for each threshold."""
        if self.n == 0:
            return np.full(np.shape(taus), np.nan)
        below = np.searchsorted(self.values, taus, side="left")
        return (self.values.size - below) / self.n


@dataclass(frozen=True)
class Attack:
    """An attack's (or the baseline's) scores and the real impostors its thresholds use."""

    label: str
    scores: Scores
    impostor: Scores


@dataclass
class RecordScores:
    """The score sets a record's figures are drawn from.

    Attributes:
        genuine: Real mated scores of the system (type-I's genuine pairs, else SAR's).
        impostor: Real non-mated scores the system's thresholds come from.
        attacks: Type-I, type-II, SAR attacks and the baseline, where saved.
        fmrs: The target FMRs of the record's protocols.
    """

    genuine: Scores | None = None
    impostor: Scores | None = None
    attacks: list[Attack] = field(default_factory=list)
    fmrs: list[float] = field(default_factory=list)

    @property
    def drawable(self) -> bool:
        """Whether there is a system to draw (real genuine and impostor scores)."""
        return bool(self.genuine and self.impostor and self.genuine.n and self.impostor.values.size)


#: ``protocol -> (attack score name, label)`` of the curves drawn, baseline last.
ATTACK_SCORES = {
    "type1": [("type1", "type-I"), ("baseline_type1", "baseline")],
    "type2": [("type2", "type-II")],
    "sar": [("attack", "SAR")],
}


def record_scores(record: Record, folder: Path) -> RecordScores:
    """Load the verification score sets of ``record`` (type-I, type-II, SAR where present).

    Raises:
        RecordError: When a score file is missing, unreadable or differs from its digest.
    """
    out = RecordScores()
    fmrs: set[float] = set()
    for protocol, names in ATTACK_SCORES.items():
        if protocol not in record.scores:
            continue
        saved = load_scores(record, folder, protocol)
        if "impostor" not in saved:
            continue
        impostor = Scores.of(saved["impostor"])
        if out.impostor is None or (protocol == "type1" and "genuine" in saved):
            if "genuine" in saved:
                out.genuine, out.impostor = Scores.of(saved["genuine"]), impostor
        for name, label in names:
            if name in saved:
                out.attacks.append(Attack(label, Scores.of(saved[name]), impostor))
        options = record.components.get(f"protocol:{protocol}")
        for key in RATE_OPTIONS:
            if options is not None and isinstance(options.options.get(key), list):
                fmrs.update(float(a) for a in options.options[key])
    out.attacks.sort(key=lambda a: a.label == "baseline")  # baseline drawn last
    out.fmrs = sorted(fmrs, reverse=True)
    return out


def _curve_thresholds(impostor: Scores) -> np.ndarray:
    """Thresholds at log-spaced ranks of the descending impostor scores (plus one above all)."""
    desc = impostor.values[::-1]
    ranks = np.unique(np.geomspace(1, desc.size, CURVE_POINTS).astype(int))
    return np.concatenate([[np.nextafter(desc[0], np.inf)], desc[ranks - 1]])


def _operating_point(attack: Attack, alpha: float) -> tuple[float, float] | None:
    """``(realised FMR, acceptance)`` of ``attack`` at the threshold of target FMR ``alpha``."""
    if not attack.impostor.values.size:
        return None
    thr = threshold_at_fmr(attack.impostor.values, alpha)
    if thr.realised_fmr <= 0:
        return None  # not reachable with these impostors: nothing to place on a log axis
    return thr.realised_fmr, float(attack.scores.accepted(np.array([thr.tau]))[0])


def _probit(rate: np.ndarray) -> np.ndarray:
    return np.asarray(norm.ppf(np.clip(rate, PROBIT_FLOOR, 1 - PROBIT_FLOOR)))


def _det_ticks(ax: Axes) -> None:
    ticks = np.array([1e-3, 1e-2, 0.1, 0.5, 0.9])
    labels = ["0.1%", "1%", "10%", "50%", "90%"]
    ax.set_xticks(_probit(ticks))
    ax.set_xticklabels(labels, fontsize=6)
    ax.set_yticks(_probit(ticks))
    ax.set_yticklabels(labels, fontsize=6)
    lim = _probit(np.array([PROBIT_FLOOR, 1 - PROBIT_FLOOR]))
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)


def _log_fmr_axis(ax: Axes, smallest: float) -> None:
    """A log FMR axis with plain decade labels (``1e-3``) and no minor tick labels.

    Matplotlib's default log labels are mathtext, whose layout costs most of a figure's
    drawing time; plain text keeps a report of many records fast.
    """
    low = int(np.floor(np.log10(max(smallest, 1e-12))))
    decades = [10.0**e for e in range(low, 1)]
    ax.set_xscale("log")
    ax.set_xlim(decades[0], 1.0)
    ax.xaxis.set_major_locator(FixedLocator(decades))
    ax.xaxis.set_major_formatter(
        FixedFormatter(["1" if d == 1 else f"1e{round(np.log10(d))}" for d in decades])
    )
    ax.xaxis.set_minor_locator(NullLocator())


def _style(ax: Axes, title: str, xlabel: str, ylabel: str, *, rates: bool = False) -> None:
    ax.set_title(title, fontsize=8)
    ax.set_xlabel(xlabel, fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    ax.tick_params(labelsize=6)
    ax.yaxis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1]) if rates else MaxNLocator(4))
    if ax.get_xscale() == "linear":
        ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.grid(True, linewidth=0.3, alpha=0.6)


def roc_det_figure(s: RecordScores) -> Figure:
    """The system's ROC and DET with the attacks' operating points at the target FMRs."""
    assert s.genuine is not None and s.impostor is not None
    fig = Figure(figsize=(6.4, 2.9), dpi=DPI)
    roc, det = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    taus = _curve_thresholds(s.impostor)
    fmr, tmr = s.impostor.accepted(taus), s.genuine.accepted(taus)
    keep = fmr > 0
    roc.plot(fmr[keep], tmr[keep], label="system (real genuine)", **STYLES["system"])
    det.plot(_probit(fmr), _probit(1 - tmr), **STYLES["system"])
    markers = "os^vD"
    for attack in s.attacks:
        for i, alpha in enumerate(s.fmrs):
            point = _operating_point(attack, alpha)
            if point is None:
                continue
            style: dict[str, Any] = {
                "color": STYLES[attack.label]["color"],
                "marker": markers[i % len(markers)],
            }
            roc.plot([point[0]], [point[1]], linestyle="none", markersize=5, **style)
            det.plot(
                _probit(np.array([point[0]])),
                _probit(np.array([1 - point[1]])),
                linestyle="none",
                markersize=5,
                **style,
            )
    _log_fmr_axis(roc, 1 / max(s.impostor.n, 1))
    roc.set_ylim(-0.02, 1.02)
    _style(roc, "ROC", "false match rate (FMR)", "match rate", rates=True)
    _style(det, "DET", "FMR", "false non-match rate")
    _det_ticks(det)
    # legend: one entry per attack (colour) and one per target FMR (marker shape)
    for attack in s.attacks:
        roc.plot([], [], label=attack.label, color=STYLES[attack.label]["color"], linewidth=3)
    for i, alpha in enumerate(s.fmrs):
        shape = markers[i % len(markers)]
        roc.plot(
            [],
            [],
            linestyle="none",
            marker=shape,
            color="gray",
            label=f"@FMR {format_alpha(alpha)}",
        )
    roc.legend(fontsize=5, loc="lower right", ncol=2)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.16, top=0.9, wspace=0.28)
    return fig


def acceptance_figure(s: RecordScores) -> Figure:
    """Each attack's acceptance against the FMR of the threshold, target FMRs marked."""
    fig = Figure(figsize=(4.2, 2.9), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    for attack in s.attacks:
        if not attack.impostor.values.size:
            continue
        taus = _curve_thresholds(attack.impostor)
        fmr = attack.impostor.accepted(taus)
        keep = fmr > 0
        accepted = attack.scores.accepted(taus)[keep]
        ax.plot(fmr[keep], accepted, label=attack.label, **STYLES[attack.label])
    for alpha in s.fmrs:
        ax.axvline(alpha, color="tab:red", linestyle=":", linewidth=0.8)
        ax.text(alpha, 1.0, f" {format_alpha(alpha)}", fontsize=6, color="tab:red", va="top")
    impostors = [a.impostor.n for a in s.attacks if a.impostor.n]
    _log_fmr_axis(ax, 1 / max(impostors, default=1))
    ax.set_ylim(-0.02, 1.02)
    _style(ax, "Attack acceptance", "FMR of the threshold", "accepted", rates=True)
    ax.legend(fontsize=6, loc="upper left")
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.16, top=0.9)
    return fig


def histogram_figure(s: RecordScores) -> Figure:
    """Genuine, impostor, attack and baseline score histograms, thresholds marked."""
    assert s.genuine is not None and s.impostor is not None
    fig = Figure(figsize=(4.2, 2.9), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    sets: list[tuple[str, Scores, dict[str, Any]]] = [
        ("genuine", s.genuine, {"color": "black"}),
        ("impostor", s.impostor, {"color": "tab:purple"}),
    ]
    sets += [(a.label, a.scores, {"color": STYLES[a.label]["color"]}) for a in s.attacks]
    present = [v.values for _, v, _ in sets if v.values.size]
    low = min(float(v[0]) for v in present)
    high = max(float(v[-1]) for v in present)
    bins = np.linspace(low, high if high > low else low + 1e-6, 50)
    for label, scores, style in sets:
        if scores.values.size:
            counts, edges = np.histogram(scores.values, bins=bins, density=True)
            ax.stairs(counts, edges, label=label, linewidth=1.0, **style)
    top = ax.get_ylim()[1]
    for i, alpha in enumerate(s.fmrs):
        tau = threshold_at_fmr(s.impostor.values, alpha).tau
        ax.axvline(tau, color="tab:red", linestyle=":", linewidth=0.8)
        y = top * (0.98 - 0.08 * i)  # staggered: nearby thresholds' labels stay apart
        ax.text(
            tau, y, f"{format_alpha(alpha)} ", fontsize=6, color="tab:red", va="top", ha="right"
        )
    _style(ax, "Scores", "cosine similarity", "density")
    ax.legend(fontsize=6, loc="upper left")
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.16, top=0.9)
    return fig


def draw_figures(record: Record, folder: Path, out: Path) -> list[str]:
    """Draw the figures of ``record`` into ``out``; return their file names (page order).

    Nothing is drawn (an empty list) when the record saved no real genuine and impostor
    scores (a protocol other than type-I/type-II/SAR, or a failed run).

    Raises:
        RecordError: When a score file is missing, unreadable or differs from its digest.
    """
    scores = record_scores(record, folder)
    if not scores.drawable:
        return []
    names = []
    for name, draw in (
        ("roc-det.png", roc_det_figure),
        ("acceptance.png", acceptance_figure),
        ("histograms.png", histogram_figure),
    ):
        fig = draw(scores)
        fig.savefig(out / name, pil_kwargs={"compress_level": 3})
        fig.clear()
        names.append(name)
    return names


def warm_up() -> None:
    """Draw one tiny figure so fonts are loaded once (before worker processes fork)."""
    fig = Figure(figsize=(1, 1), dpi=20)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title("x")
    fig.canvas.draw()
