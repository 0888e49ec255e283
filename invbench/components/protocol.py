"""The protocol contract: a run context in, named metrics out, via saved raw scores."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from invbench.components.base import Component

if TYPE_CHECKING:
    from invbench.runner.context import EvalContext


class Metric(BaseModel):
    """One reported number with what is needed to read it honestly.

    Attributes:
        value: The number, or ``None`` when ``unavailable`` says why not.
        higher_is_better: Direction for ranking.
        n: Number of trials behind a rate (``None`` for other metrics).
        count: Number of successes behind a rate.
        ci95: 95 % interval ``[low, high]`` where one is computed.
        unavailable: Reason the metric could not be computed (never a fake number).
        implementation: What computed it (function, library version, parameters).
        details: Further values (threshold, realised FMR, impostor count, warnings).
    """

    model_config = ConfigDict(extra="forbid")

    value: float | None
    higher_is_better: bool
    n: int | None = None
    count: int | None = None
    ci95: tuple[float, float] | None = None
    unavailable: str | None = None
    implementation: str = ""
    details: dict[str, Any] = {}


class Protocol(Component):
    """An evaluation protocol, in two steps so metrics can be recomputed later.

    ``scores(ctx)`` computes raw arrays (similarity scores, per-image values) from the run
    context; the runner saves them as ``.npy`` beside the record. ``metrics(scores)`` turns
    them into :class:`Metric` values using only the arrays and ``self.options``, so
    ``invbench metrics RECORD --fmr 1e-4`` can recompute without re-running any model.

    Class attributes:
        default: Whether ``invbench run`` evaluates it when no ``--protocol`` is given.
        main_metric: Metric name used to rank leaderboard rows.
    """

    family: ClassVar[str] = "protocol"
    default: ClassVar[bool] = True
    main_metric: ClassVar[str] = ""

    def scores(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """Compute raw score arrays from ``ctx`` (names are file stems)."""
        raise NotImplementedError

    def metrics(self, scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """Turn saved score arrays into metrics (pure: no model, no context)."""
        raise NotImplementedError
