"""Collecting result records into leaderboard rows; the others set apart with the reason.

A record is ranked only when it is ``ok``, current, consistent and verified; otherwise it is
listed (never ranked) as failed, stale, invalid or unverified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from invbench.errors import InvbenchError, RecordError
from invbench.leaderboard.verify import unverified_reasons
from invbench.plugin_manager import PluginHost
from invbench.records import Record, load_record
from invbench.records.recompute import check_record


@dataclass
class Collected:
    """Records found under a results folder, sorted into ranked and set-apart lists.

    Attributes:
        ranked: Records that may be ranked.
        stale: ``(path, record, reason)``: a component's version changed or is missing.
        failed: Records of runs that failed (``status: error``).
        invalid: ``(path, reason)``: unreadable, not valid against the schema, or metrics
            that are not what the saved scores give; the reason names the file.
        unverified: ``(path, record, reason)``: not reproducible from public code (see
            :mod:`invbench.leaderboard.verify`).
        root: The results folder searched (record links are relative to it).
    """

    ranked: list[tuple[Path, Record]] = field(default_factory=list)
    stale: list[tuple[Path, Record, str]] = field(default_factory=list)
    failed: list[tuple[Path, Record]] = field(default_factory=list)
    invalid: list[tuple[Path, str]] = field(default_factory=list)
    unverified: list[tuple[Path, Record, str]] = field(default_factory=list)
    root: Path | None = None


def staleness(record: Record, host: PluginHost) -> str | None:
    """Why ``record`` no longer matches the installed components, or ``None``.

    A record is stale when a component it used now has another ``version`` (its results
    would differ), or is no longer installed (it cannot be checked).
    """
    reasons = []
    for role, info in sorted(record.components.items()):
        try:
            cls = host.registry.load(info.family, info.name)
        except InvbenchError:
            reasons.append(f"{role} {info.name} is not installed")
            continue
        if str(cls.version) != info.version:
            reasons.append(
                f"{role} {info.name} is version {cls.version}, record has {info.version}"
            )
    return "; ".join(reasons) or None


def collect(results: Path, host: PluginHost) -> Collected:
    """Load every ``record.json`` below ``results`` and classify it.

    A record is ranked only when its components are current, its metrics are what its
    saved score files give (digests and a recomputation; see
    :func:`invbench.records.recompute.check_record`) and it is verified (see
    :func:`invbench.leaderboard.verify.unverified_reasons`); otherwise it is listed as
    stale, invalid or unverified with the reason.
    """
    out = Collected(root=Path(results))
    for path in sorted(Path(results).rglob("record.json")):
        if any(part.startswith(".") for part in path.relative_to(results).parts):
            continue  # a cell folder being assembled, or an old one being removed
        try:
            record = load_record(path)
        except RecordError as exc:
            out.invalid.append((path, str(exc)))
            continue
        if record.status != "ok":
            out.failed.append((path, record))
            continue
        reason = staleness(record, host)
        if reason:
            out.stale.append((path, record, reason))
            continue
        problem = check_record(record, path.parent, host.registry)
        if problem:
            out.invalid.append((path, f"{path}: {problem}"))
            continue
        unverified = unverified_reasons(record)
        if unverified:
            out.unverified.append((path, record, "; ".join(unverified)))
        else:
            out.ranked.append((path, record))
    return out
