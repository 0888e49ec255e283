"""``budget``: how an iterative attack's success grows with the steps it may take.

For an inverter that optimises per template (``latent-opt``), the runner keeps the
reconstructions after each step count the inverter lists in ``budget()``
(``EvalContext.budget``). This protocol judges each of them exactly as the robustness
protocols judge a condition (the base :mod:`~invbench_plugins.protocols.robustness.base`):
condition ``steps=<k>`` gives ``tar_type1@far=α@steps=<k>``, ``sar@far=α@steps=<k>`` (the
reconstruction against the identity's enrolled first image) and
``identity_similarity@steps=<k>``, with thresholds from the clean real-vs-real impostor
scores of the evaluation encoder. ``clean`` is the final result (full precision), the
``steps=<k>`` snapshots are 8-bit images. ``gradient_calls@steps=<k>`` says what each count
cost (encoder forward+backward passes per template), and the figure draws the rates
against it.

It runs by default, but only for inverters that declare a budget (``applies_to``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from invbench.components import EvalContext, Inverter, Metric
from invbench.metrics.thresholds import ThresholdResult, format_alpha
from invbench.metrics.verification import as_unit_rows
from invbench_plugins.protocols.robustness.base import RobustnessOptions, RobustnessProtocol
from invbench_plugins.protocols.robustness.figures import curves_png


class BudgetOptions(RobustnessOptions):
    """Options of ``budget`` (every face by default; thresholds as in ``type1``)."""

    max_images: int | None = Field(None, ge=2, description="faces judged per step count")


class BudgetProtocol(RobustnessProtocol[BudgetOptions]):
    """Type-I TAR, SAR and identity similarity after each step count of an iterative attack."""

    name: ClassVar[str] = "budget"
    default: ClassVar[bool] = True
    groups: ClassVar[tuple[str, ...]] = ()
    rank_priority: ClassVar[int] = 60
    table_columns: ClassVar[tuple[str, ...]] = (
        "gradient_calls",
        "tar_type1",
        "sar",
        "identity_similarity",
    )

    @classmethod
    def applies_to(cls, inverter: Inverter) -> bool:
        """Only iterative inverters (a non-empty ``budget()``)."""
        return bool(inverter.budget())

    def condition_scores(self, ctx: EvalContext, rows: np.ndarray) -> dict[str, np.ndarray]:
        """``steps=<k>__type1``/``__sar`` of every snapshot and ``steps=<k>__gradient_calls``.

        Raises:
            ValueError: When the context has no evaluation encoder.
        """
        if not ctx.budget:
            return {"unavailable": np.asarray(["the inverter is not iterative (no budget)"])}
        if ctx.eval_encoder is None:
            raise ValueError("budget needs the context's evaluation encoder")
        out: dict[str, np.ndarray] = {}
        for steps, images in sorted(ctx.budget.items()):
            cond = f"steps={steps}"
            judged = as_unit_rows(ctx.eval_encoder.templates(images[rows]))
            out.update(self.judge(ctx, rows, cond, judged))
            out[f"{cond}__gradient_calls"] = np.asarray(ctx.gradient_calls.get(steps, 0))
        return out

    def extra_metrics(
        self, scores: dict[str, np.ndarray], thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """``gradient_calls@steps=<k>``, or one unavailable metric for one-shot inverters."""
        if "unavailable" in scores:
            reason = str(scores["unavailable"][0])
            return {"budget": Metric(value=None, higher_is_better=True, unavailable=reason)}
        out = {}
        for key, value in scores.items():
            cond, _, measure = key.partition("__")
            if measure == "gradient_calls":
                out[f"gradient_calls@{cond}"] = Metric(
                    value=float(value),
                    higher_is_better=False,
                    implementation="encoder forward+backward passes per template after "
                    f"{cond.partition('=')[2]} steps (all starts and flip passes counted)",
                )
        return out

    def means(self, metrics: dict[str, Metric], scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """No average over step counts (it would mean nothing)."""
        return {}

    def figures(
        self, scores: dict[str, np.ndarray], metrics: dict[str, Metric]
    ) -> dict[str, bytes]:
        """Type-I TAR and SAR at every FAR against the gradient calls per template."""
        calls = {
            k.partition("__")[0]: float(v)
            for k, v in scores.items()
            if k.endswith("__gradient_calls")
        }
        if not calls:
            return {}
        series: dict[str, list[tuple[float, float | None]]] = {}
        for alpha in self.options.fars:
            for measure, label in (("tar_type1", "type-I TAR"), ("sar", "SAR")):
                points = []
                for cond, x in calls.items():
                    m = metrics.get(self.rate_name(measure, alpha, cond))
                    points.append((x, None if m is None else m.value))
                series[f"{label} @ {format_alpha(alpha)}"] = sorted(points)
        alpha = min(self.options.fars)
        base = metrics.get(self.rate_name("tar_type1", alpha, "baseline"))
        return {
            "curve": curves_png(
                series,
                title=f"attack budget (thresholds of the evaluation encoder; "
                f"baseline: type-I @ {format_alpha(alpha)})",
                xlabel="encoder gradient calls per template",
                ylabel="rate",
                baseline=base.value if base else None,
            )
        }
