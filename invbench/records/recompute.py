"""Recomputing a record's metrics from its saved score files, and checking a record.

Metrics are a pure function of the raw score arrays saved beside a record, so they can be
recomputed at another operating point (``invbench metrics RECORD --fmr 1e-4``) and a record
can be checked: its score files must have the digests it names, and its metrics must be
what its scores give (``invbench leaderboard`` ranks nothing else).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from invbench.assets import sha256_of
from invbench.components import Metric
from invbench.errors import InvbenchError, RecordError
from invbench.records.record import Record
from invbench.registry import Registry

#: Option names a protocol may use for its list of operating points.
RATE_OPTIONS = ("fars", "fmrs")


def load_scores(record: Record, folder: Path, protocol: str) -> dict[str, np.ndarray]:
    """The score arrays of ``protocol`` saved beside ``record``, digests checked.

    Raises:
        RecordError: When a file is missing, unreadable or differs from its recorded digest.
    """
    scores = {}
    digests = record.score_digests.get(protocol, {})
    for name, rel in record.scores.get(protocol, {}).items():
        path = folder / rel
        if not path.is_file():
            raise RecordError(f"score file {path} is missing", hint="re-run the cell")
        if name in digests and sha256_of(path) != digests[name]:
            raise RecordError(f"score file {path} differs from the digest in its record")
        try:
            scores[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RecordError(f"score file {path} is unreadable: {exc}") from None
    return scores


def recompute(
    record: Record,
    folder: Path,
    registry: Registry,
    overrides: dict[str, dict[str, Any]] | None = None,
    rates: list[float] | None = None,
) -> dict[str, dict[str, Metric]]:
    """Recompute every protocol's metrics from the score files beside ``record``.

    Args:
        record: The loaded record.
        folder: The record's folder (score paths are relative to it).
        registry: Where the protocols are registered.
        overrides: ``{scope: {option: value}}`` protocol option overrides.
        rates: New FAR/FMR operating points (empty: keep the recorded ones).

    Raises:
        RecordError: When a score file is missing, unreadable or not what the record says.
        InvbenchError: When a protocol is not installed or an override does not validate.
    """
    overrides = overrides or {}
    out = {}
    for role, info in record.components.items():
        if not role.startswith("protocol:"):
            continue
        cls: Any = registry.load("protocol", info.name)
        options = {**info.options, **overrides.get("*", {}), **overrides.get(info.name, {})}
        for key in RATE_OPTIONS if rates else ():
            if key in cls.Options.model_fields:
                options[key] = list(rates or [])
        protocol = cls(cls.make_options(options))
        out[info.name] = protocol.metrics(load_scores(record, folder, info.name))
    return out


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check_record(record: Record, folder: Path, registry: Registry) -> str | None:
    """Why ``record``'s metrics are not what its scores give, or ``None`` when they are.

    Compares value, count, N and interval of every recorded metric with a recomputation.
    """
    try:
        fresh = recompute(record, folder, registry)
    except InvbenchError as exc:
        return str(exc)
    for protocol, named in record.metrics.items():
        for name, m in named.items():
            new = fresh.get(protocol, {}).get(name)
            if new is None:
                return f"metric {protocol}/{name} is not produced by its scores"
            pairs = [(m.value, new.value), (m.count, new.count), (m.n, new.n)]
            pairs += list(zip(m.ci95 or (), new.ci95 or (), strict=False))
            if any(not _same(a, b) for a, b in pairs) or (m.ci95 is None) != (new.ci95 is None):
                return (
                    f"metric {protocol}/{name} is {m.value} ({m.count}/{m.n}) in the record, "
                    f"its scores give {new.value} ({new.count}/{new.n})"
                )
    return None
