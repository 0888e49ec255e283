"""Text tables of records for the terminal: the results table printed after a run."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from invbench.components.protocol import Metric
from invbench.records import Record


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}"


def metrics_table(metrics: dict[str, dict[str, Metric]], *, baselines: bool = False) -> str:
    """A results table: one row per metric, threshold facts beside rates, warnings as notes.

    Args:
        metrics: ``{protocol: {metric: Metric}}``.
        baselines: Also list the ``baseline_*`` metrics as rows (they are summarised by
            :func:`baseline_lines` otherwise).
    """
    rows, notes = [], []
    for protocol, named in metrics.items():
        for name, m in named.items():
            if name.startswith("baseline_") and not baselines:
                continue
            d = m.details
            count = f"{m.count}/{m.n}" if m.count is not None and m.n else (m.n or "")
            ci = f"[{m.ci95[0]:.4f}, {m.ci95[1]:.4f}]" if m.ci95 else ""
            note = m.unavailable or d.get("warning") or ""
            mark = ""
            if note:
                if note not in notes:
                    notes.append(note)
                mark = f"[{notes.index(note) + 1}]"
            rows.append(
                [
                    protocol,
                    name,
                    "unavailable" if m.unavailable else _fmt(m.value),
                    "↑" if m.higher_is_better else "↓",
                    count,
                    ci,
                    f"{d['tau']:.4f}" if "tau" in d else "",
                    f"{d['realised_fmr']:.2e}" if "realised_fmr" in d else "",
                    d.get("n_impostor", ""),
                    mark,
                ]
            )
    table = tabulate(
        rows,
        headers=[
            "protocol",
            "metric",
            "value",
            "",
            "count/N",
            "95% CI",
            "τ",
            "realised FMR",
            "|I|",
            "note",
        ],
        tablefmt="github",
    )
    lines = [table] + [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines)


def baseline_lines(metrics: dict[str, dict[str, Metric]]) -> list[str]:
    """Lines comparing each attack metric with its ``baseline_`` twin."""
    lines = []
    for named in metrics.values():
        for name, m in named.items():
            base = named.get(f"baseline_{name}")
            if base is None or m.value is None or base.value is None:
                continue
            diff = m.value - base.value
            lines.append(
                f"{name}: attack {m.value:.4f} vs template-ignoring baseline "
                f"{base.value:.4f} ({diff:+.4f})"
            )
    return lines


def cache_line(cache: dict[str, dict[str, int]]) -> str:
    """``cache: reused ...; computed ...`` (and the entries found invalid, if any)."""
    reused = [f"{stage} {c['reused']}" for stage, c in cache.items() if c["reused"]]
    computed = [f"{stage} {c['computed']}" for stage, c in cache.items() if c["computed"]]
    invalid = [f"{stage} {c['invalid']}" for stage, c in cache.items() if c.get("invalid")]
    line = (
        f"cache: reused {', '.join(reused) or 'nothing'}; "
        f"computed {', '.join(computed) or 'nothing'}"
    )
    return line + (f"; found invalid and recomputed {', '.join(invalid)}" if invalid else "")


def record_report(
    record: Record, folder: Any = None, summaries: dict[str, list[str]] | None = None
) -> str:
    """The full text report of one record.

    Args:
        record: The record.
        folder: Its folder (to print file paths), or ``None``.
        summaries: ``{protocol: lines}`` printed instead of that protocol's metric rows
            (the robustness protocols' compact tables).
    """
    summaries = summaries or {}
    cell = record.cell
    head = (
        f"== {cell.encoder} x {cell.inverter} on {cell.dataset} "
        f"(trained on {cell.train_dataset}, judged by {cell.eval_encoder}, "
        f"seed {cell.seed}, {cell.profile}) — {record.status}"
    )
    out = [head]
    if record.status != "ok":
        out.append(f"error: {record.error}")
        return "\n".join(out)
    d = record.data
    out.append(
        f"evaluation images: {d.get('n_eval_images')} ({d.get('n_eval_failed_to_acquire')} "
        f"failed to acquire), identities: {d.get('n_eval_identities')}; training images: "
        f"{d.get('n_train_images')} ({d.get('n_train_failed_to_acquire')} failed to acquire)"
    )
    for role, lines in d.get("unreadable_images", {}).items():
        if lines:
            shown = "; ".join(lines[:3]) + (
                f"; and {len(lines) - 3} more" if len(lines) > 3 else ""
            )
            out.append(f"unreadable {role} images (counted as failures to acquire): {shown}")
    listed = {p: m for p, m in record.metrics.items() if p not in summaries}
    if listed:
        out.append(metrics_table(listed))
        out.extend(baseline_lines(listed))
    for protocol, lines in summaries.items():
        out.append(f"{protocol} (every metric is in the record; figures beside it):")
        out.extend(lines)
    t = record.timings_s
    train_s = record.training.get("seconds")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in t.items() if k != "invert_per_template")
    out.append(f"timings: {timing}")
    if train_s is not None:
        out.append(
            f"inverter training took {float(train_s):.1f}s when computed; inversion "
            f"{1000 * t.get('invert_per_template', 0.0):.2f} ms per template"
        )
    out.append(cache_line(record.cache))
    if folder is not None:
        out.append(f"record: {folder}/record.json")
        for name, rel in record.artifacts.items():
            out.append(f"{name.replace('_', ' ')}: {folder}/{rel}")
    return "\n".join(out)
