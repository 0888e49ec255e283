"""Pictures of the robustness protocols, drawn with matplotlib (Agg) into PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np


def _pyplot():  # noqa: ANN202 (matplotlib's module)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: object) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)
    return buf.getvalue()


def curves_png(
    series: dict[str, list[tuple[float, float | None]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    clean: float | None = None,
    baseline: float | None = None,
) -> bytes:
    """A line per series (``x`` severity -> ``y`` value), with the clean and baseline levels.

    Args:
        series: ``{label: [(x, y), ...]}``; ``y`` ``None`` points are left out.
        title: Figure title.
        xlabel: X axis label.
        ylabel: Y axis label.
        clean: The unperturbed value (a dashed line), or ``None``.
        baseline: The template-ignoring baseline's value (a dotted line), or ``None``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, points in series.items():
        pts = [(x, y) for x, y in points if y is not None]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", label=label)
    if clean is not None:
        ax.axhline(clean, color="black", linestyle="--", linewidth=1, label="clean")
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle=":", linewidth=1, label="baseline")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


def roc_png(
    genuine: dict[str, np.ndarray],
    impostor: np.ndarray,
    *,
    title: str,
    fars: Sequence[float] = (),
) -> bytes:
    """ROC curves (acceptance of each genuine set vs the impostor set) on a log FAR axis.

    Args:
        genuine: ``{label: (G,) scores}`` that should be accepted.
        impostor: ``(I,)`` scores that should be rejected (one set for every curve).
        title: Figure title.
        fars: Operating points marked as vertical lines.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    imp = np.sort(np.asarray(impostor, dtype=np.float64))
    thresholds: np.ndarray | list[float] = []
    if imp.size:
        thresholds = np.unique(np.quantile(imp, np.linspace(0.0, 1.0, 400)))
    for label, scores in genuine.items():
        g = np.asarray(scores, dtype=np.float64)
        g = g[np.isfinite(g)]
        if g.size == 0 or imp.size == 0:
            continue
        far = [(imp >= t).mean() for t in thresholds]
        tar = [(g >= t).mean() for t in thresholds]
        ax.plot(np.maximum(far, 1.0 / imp.size), tar, label=f"{label} (n={g.size})")
    for a in fars:
        ax.axvline(a, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("false acceptance rate (impostors)")
    ax.set_ylabel("acceptance rate")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def grid_png(rows: list[tuple[str, np.ndarray]], columns: Sequence[str], *, title: str) -> bytes:
    """A grid of faces: one row per ``(label, (n, 3, h, w) uint8)``, one column per label."""
    plt = _pyplot()
    n_rows, n_cols = len(rows), max((len(images) for _, images in rows), default=0)
    fig, axes = plt.subplots(
        n_rows, max(n_cols, 1), figsize=(1.3 * max(n_cols, 1), 1.45 * n_rows), squeeze=False
    )
    for r, (label, images) in enumerate(rows):
        for c in range(axes.shape[1]):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(np.transpose(images[c], (1, 2, 0)))
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(label, fontsize=7)
            if r == 0 and c < len(columns):
                ax.set_title(columns[c], fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _png(fig)
