"""The base of the robustness protocols: one attack measured under many conditions.

A condition changes what the attacker leaks (the template of a rotated face, a noisy template,
an aggregated one...). For every condition ``c`` the subclass saves score arrays named
``<c>__<measure>``; the base turns the common ones into metrics named ``<metric>@<c>``:

- ``<c>__type1``: ``cos(F'(x̂_c,i), F'(x_i))``, the reconstruction from the condition's leaked
  template against the clean source image -> ``tar_type1@far=α@<c>`` and
  ``identity_similarity@<c>``;
- ``<c>__sar``: ``cos(r_k, F'(x̂_c,i))`` against the identity's enrolled reference (its first
  evaluated image) -> ``sar@far=α@<c>``.

Thresholds come from the clean real-vs-real impostor scores of the whole evaluation set with
the evaluation encoder, exactly as in ``type1``, so ``c = clean`` reproduces the clean
attack on the evaluated faces. Intervals bootstrap over identities (several faces of one
identity are not independent). The ``baseline`` condition is the template-ignoring baseline.
``<metric>@mean`` averages a rate over the protocol's conditions (RobustBench's summary).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from invbench.components import EvalContext, Metric, Protocol
from invbench.metrics.thresholds import ThresholdResult, format_alpha
from invbench.metrics.verification import (
    as_unit_rows,
    first_rows,
    identity_codes,
    real_score_sets,
)
from invbench_plugins.protocols.metric_builders import (
    acquisition_arrays,
    cached_real_score_sets,
    impostor_arrays,
    rate_metric,
    similarity_metric,
    thresholds,
)
from invbench_plugins.protocols.robustness.figures import curves_png
from invbench_plugins.protocols.verification import VerificationOptions

CLEAN, BASELINE = "clean", "baseline"
#: Reconstructions kept per condition for the pictures (as 56x56 uint8).
N_EXAMPLES = 6
EXAMPLE_SIZE = (56, 56)


class RobustnessOptions(VerificationOptions):
    """Options shared by the robustness protocols (and the threshold options of ``type1``).

    Attributes:
        max_images: Evaluate the conditions on at most this many faces: the first
            ``ceil(max_images / identities)`` faces of every identity (thresholds always
            use every face). ``None`` (default): all; the ``quick`` profile takes 120.
    """

    max_images: int | None = Field(None, ge=2, description="faces evaluated per condition")


RobustnessOptionsT = TypeVar("RobustnessOptionsT", bound=RobustnessOptions)


def subset_rows(codes: np.ndarray, max_images: int | None) -> np.ndarray:
    """The first ``ceil(max_images / K)`` rows of each of the ``K`` identities, in order."""
    if max_images is None or max_images >= codes.size:
        return np.arange(codes.size)
    per = math.ceil(max_images / max(1, np.unique(codes).size))
    seen: dict[int, int] = {}
    keep = []
    for i, c in enumerate(codes.tolist()):
        if seen.get(c, 0) < per:
            keep.append(i)
            seen[c] = seen.get(c, 0) + 1
    return np.asarray(keep, dtype=np.int64)


def to_examples(images: Tensor) -> np.ndarray:
    """The first :data:`N_EXAMPLES` images as ``(n, 3, 56, 56)`` uint8 (for pictures)."""
    from invbench.images import resize, to_uint8

    return to_uint8(resize(images[:N_EXAMPLES].float(), EXAMPLE_SIZE))


def condition_name(name: str, level: int | float | str) -> str:
    """``rotation=3``, ``k=all``, ``sigma=0.1``: how conditions are named."""
    return f"{name}={level}"


class RobustnessProtocol(Protocol[RobustnessOptionsT]):
    """Measures the attack under the conditions a subclass declares.

    Subclasses implement :meth:`condition_scores` (arrays ``<c>__<measure>`` for each of
    their conditions) and may add :meth:`extra_metrics`, ``table_columns`` (the compact
    table) and :meth:`figures`.
    """

    default: ClassVar[bool] = False
    groups: ClassVar[tuple[str, ...]] = ("robustness",)
    #: quick: three faces of each of ORL's 40 identities; smoke: one.
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"max_images": 120},
        "smoke": {"max_images": 40},
    }
    rank_priority: ClassVar[int] = 50
    #: Metric prefixes shown per condition in the compact table.
    table_columns: ClassVar[tuple[str, ...]] = ("tar_type1", "sar", "identity_similarity")
    metric_labels: ClassVar[dict[str, str]] = {
        "tar_type1": "type-I TAR",
        "sar": "SAR",
        "identity_similarity": "identity similarity",
        "system_tar": "system TAR",
        "gradient_calls": "gradient calls",
    }

    # ------------------------------------------------------------ what subclasses declare
    def condition_scores(self, ctx: EvalContext, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Arrays ``<condition>__<measure>`` for the evaluated ``rows`` of ``ctx``."""
        raise NotImplementedError

    def extra_metrics(
        self, scores: dict[str, np.ndarray], thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """Metrics of the protocol's own measures (default none)."""
        return {}

    # ------------------------------------------------------------------ the machinery
    def scores(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """Clean thresholds, the clean attack, the baseline, and every condition's arrays."""
        codes_all = identity_codes(ctx.identities)
        real_all = as_unit_rows(ctx.real_templates)
        sets = cached_real_score_sets(real_all, codes_all, self.options)
        rows = subset_rows(codes_all, self.options.max_images)
        out = {
            **impostor_arrays(self.options, sets.impostor, sets.n_nonmated_pairs, sets.sampled),
            **acquisition_arrays(ctx.n_total, ctx.n_failed_to_acquire),
            "rows": rows,
            "identity": codes_all[rows],
        }
        out.update(self.judge(ctx, rows, CLEAN, as_unit_rows(ctx.recon_templates)[rows]))
        if ctx.baseline_templates is not None:
            base = as_unit_rows(ctx.baseline_templates)[rows]
            out.update(self.judge(ctx, rows, BASELINE, base))
        out.update(self.condition_scores(ctx, rows))
        return out

    def judge(
        self,
        ctx: EvalContext,
        rows: np.ndarray,
        condition: str,
        probes: np.ndarray,
        suffix: str = "",
    ) -> dict[str, np.ndarray]:
        """``<condition>__type1<suffix>`` and ``__sar<suffix>`` of ``F'`` ``probes`` ``(M, D')``."""
        real = as_unit_rows(ctx.real_templates)[rows]
        codes = identity_codes(ctx.identities)[rows]
        refs = real[first_rows(codes)][np.searchsorted(np.unique(codes), codes)]
        return {
            f"{condition}__type1{suffix}": np.einsum("nd,nd->n", probes, real),
            f"{condition}__sar{suffix}": np.einsum("nd,nd->n", probes, refs),
        }

    def attack(
        self,
        ctx: EvalContext,
        rows: np.ndarray,
        condition: str,
        leaked: Tensor,
        suffix: str = "",
    ) -> tuple[dict[str, np.ndarray], Tensor]:
        """Invert ``leaked`` ``(M, D)`` templates of ``F``, judge the reconstructions with ``F'``.

        Returns:
            The :meth:`judge` arrays plus ``<condition>__examples<suffix>`` (a few
            reconstructions as uint8), and the reconstructions ``(M, 3, h, w)``.

        Raises:
            ValueError: When the context lacks the inverter or the evaluation encoder.
        """
        if ctx.invert is None or ctx.eval_encoder is None:
            raise ValueError(f"{self.name} needs the context's invert and eval_encoder")
        recon = ctx.invert(torch.nn.functional.normalize(leaked.float(), dim=1))
        judged = as_unit_rows(ctx.eval_encoder.templates(recon))
        arrays = self.judge(ctx, rows, condition, judged, suffix)
        arrays[f"{condition}__examples{suffix}"] = to_examples(recon)
        return arrays, recon

    def system_arrays(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """The attacked system ``F``'s own real scores when ``F'`` is another encoder.

        ``system_impostor`` and ``system_genuine`` (all real pairs with ``F``); nothing when
        ``F'`` is ``F`` (then ``impostor`` already is ``F``'s).
        """
        if ctx.same_system:
            return {}
        o = self.options
        sets = real_score_sets(
            ctx.templates, ctx.identities, max_impostor_pairs=o.max_impostor_pairs, seed=o.seed
        )
        return {"system_impostor": sets.impostor, "system_genuine": sets.genuine}

    def system_view(
        self, scores: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], list[ThresholdResult]]:
        """``scores`` with ``F``'s impostors as ``impostor``, and ``F``'s thresholds."""
        view = dict(scores)
        if "system_impostor" in scores:
            view["impostor"] = scores["system_impostor"]
        return view, thresholds(view, self.options)

    def conditions(self, scores: dict[str, np.ndarray]) -> list[str]:
        """The conditions present in ``scores`` (``clean`` and ``baseline`` first)."""
        found = [k.removesuffix("__type1") for k in scores if k.endswith("__type1")]
        head = [c for c in (CLEAN, BASELINE) if c in found]
        return head + [c for c in found if c not in head]

    def rate_name(self, measure: str, alpha: float, condition: str) -> str:
        """``tar_type1@far=1e-3@rotation=3``."""
        return f"{measure}@far={format_alpha(alpha)}@{condition}"

    def rates(
        self,
        scores: dict[str, np.ndarray],
        measure: str,
        array: str,
        condition: str,
        thrs: list[ThresholdResult],
        *,
        what: str,
        groups: np.ndarray | None = None,
    ) -> dict[str, Metric]:
        """Acceptance rates of ``scores[array]`` at every threshold, named for ``condition``."""
        trials = scores[array]
        if groups is None and trials.size == scores["identity"].size:
            groups = scores["identity"]
        return {
            self.rate_name(measure, thr.alpha, condition): rate_metric(
                trials, thr, what=what, scores=scores, options=self.options, groups=groups
            )
            for thr in thrs
        }

    def metrics(self, scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """Per condition: type-I TAR, SAR, identity similarity; then the protocol's own."""
        thrs = thresholds(scores, self.options)
        out: dict[str, Metric] = {}
        for cond in self.conditions(scores):
            t1, sar = f"{cond}__type1", f"{cond}__sar"
            out.update(self.rates(scores, "tar_type1", t1, cond, thrs, what=f"type-I under {cond}"))
            out.update(self.rates(scores, "sar", sar, cond, thrs, what=f"SAR under {cond}"))
            out[f"identity_similarity@{cond}"] = similarity_metric(
                scores[t1], what=f"type-I cos under {cond}"
            )
        out.update(self.extra_metrics(scores, thrs))
        out.update(self.means(out, scores))
        return out

    def means(self, metrics: dict[str, Metric], scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """``<measure>@mean``: each measure's unweighted mean over the protocol's conditions."""
        by_head: dict[str, list[Metric]] = {}
        conds: dict[str, list[str]] = {}
        for name, metric in metrics.items():
            head, _, cond = name.rpartition("@")
            if head and cond not in (CLEAN, BASELINE):
                by_head.setdefault(head, []).append(metric)
                conds.setdefault(head, []).append(cond)
        out: dict[str, Metric] = {}
        for head, found in by_head.items():
            finite = [m.value for m in found if m.value is not None]
            out[f"{head}@mean"] = Metric(
                value=float(np.mean(finite)) if finite else None,
                higher_is_better=found[0].higher_is_better,
                n=len(finite),
                unavailable=None if finite else next((m.unavailable for m in found), "no values"),
                implementation=f"unweighted mean of {head} over {len(found)} conditions",
                details={"conditions": conds[head]},
            )
        return out

    def summary_lines(self, metrics: dict[str, Metric]) -> list[str]:
        """A compact table: one row per condition, one column per ``table_columns``."""
        from tabulate import tabulate

        alpha = format_alpha(min(self.options.fars))
        plain = ("identity", "template", "pixel", "gradient")  # not rates: no @far
        heads = [c if c.startswith(plain) else f"{c}@far={alpha}" for c in self.table_columns]
        conds = list(dict.fromkeys(n.rpartition("@")[2] for n in metrics if "@" in n))
        rows = []
        for cond in conds:
            cells = [metrics.get(f"{h}@{cond}") for h in heads]
            if all(c is None for c in cells):
                continue
            rows.append([cond] + [_cell(c) for c in cells])
        return [tabulate(rows, headers=["condition", *heads], tablefmt="github")]

    def curve_figure(
        self, metrics: dict[str, Metric], measure: str, *, title: str, xlabel: str
    ) -> bytes:
        """``measure`` (a rate at the lowest FAR) against the level of each condition family."""
        alpha = format_alpha(min(self.options.fars))
        head = measure if measure.startswith("identity") else f"{measure}@far={alpha}"
        series: dict[str, list[tuple[float, float | None]]] = {}
        for name, m in metrics.items():
            prefix, _, cond = name.rpartition("@")
            family, eq, level = cond.partition("=")
            if prefix != head or not eq:
                continue
            try:
                x = float(level)
            except ValueError:
                continue
            series.setdefault(family, []).append((x, m.value))
        clean, base = metrics.get(f"{head}@{CLEAN}"), metrics.get(f"{head}@{BASELINE}")
        return curves_png(
            {k: sorted(v) for k, v in series.items()},
            title=title,
            xlabel=xlabel,
            ylabel=head,
            clean=clean.value if clean else None,
            baseline=base.value if base else None,
        )


def _cell(metric: Metric | None) -> str:
    if metric is None:
        return ""
    if metric.value is None:
        return "n/a"
    if metric.count is not None and metric.n:
        return f"{100 * metric.value:.1f} % ({metric.count}/{metric.n})"
    return f"{metric.value:.3f}"


def unavailable(measures: list[str], reason: str) -> dict[str, Any]:
    """Metrics reported as unavailable with ``reason`` (never a number)."""
    return {
        name: Metric(value=None, higher_is_better=True, unavailable=reason) for name in measures
    }
