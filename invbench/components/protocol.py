"""The protocol contract: a run context in, named metrics out, via saved raw scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from invbench.components.base import Component, OptionsT
from invbench.components.encoder import Encoder
from invbench.components.inverter import Inverter, TrainingData


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


@dataclass
class EvalContext:
    """What protocols evaluate. Row ``i`` of every per-sample field is the same sample.

    Attributes:
        identities: ``(N,)`` identity labels of the evaluation samples that were acquired
            (aligned successfully). Failures to acquire are counted, not included.
        keys: ``(N,)`` sample keys (file names / indices) for the same rows.
        images: ``(N, 3, H, W)`` float in ``[0, 1]``: the aligned originals at the attacked
            encoder's input size (what the leaked templates came from).
        templates: ``(N, D)`` leaked templates ``F(x_i)`` from the attacked encoder.
        reconstructions: ``(N, 3, h, w)`` float in ``[0, 1]``: ``x̂_i = G(F(x_i))`` at the
            inverter's output size.
        real_templates: ``(N, D')`` evaluation-encoder templates ``F'(x_i)`` of the originals.
        recon_templates: ``(N, D')`` evaluation-encoder templates ``F'(x̂_i)``.
        baseline_templates: ``(N, D')`` ``F'`` of a template-ignoring baseline attack (the
            mean aligned training face for every ``i``), or ``None``.
        n_total: Number of evaluation images before alignment.
        n_failed_to_acquire: Images where alignment found no face.
        eval_encoder: The evaluation encoder ``F'`` (for protocols that re-encode).
        same_system: ``True`` when ``F'`` is the attacked encoder ``F``.
        device: Device for any further computation.
        info: Free-form extra facts (encoder names, baseline description).
        encoder: The attacked encoder ``F`` (robustness protocols re-encode perturbed faces
            with it; use :meth:`Encoder.templates`), or ``None``.
        invert: The trained inverter as a function: ``(M, D)`` templates of ``F`` ->
            ``(M, 3, h, w)`` checked reconstructions in ``[0, 1]``, or ``None``.
        training: The inverter's training data (templates of ``F`` and aligned faces; never
            evaluation identities), for maps fitted on training faces, or ``None``.
        budget: For an iterative inverter, ``{steps: (N, 3, h, w)}`` float in ``[0, 1]``:
            the reconstructions after each step count (8-bit precision); empty otherwise.
        gradient_calls: ``{steps: encoder passes per template}`` for the same counts.

    Read the fields, never change them: several protocols evaluate one context.
    """

    identities: np.ndarray
    keys: np.ndarray
    images: Tensor
    templates: Tensor
    reconstructions: Tensor
    real_templates: Tensor
    recon_templates: Tensor
    baseline_templates: Tensor | None
    n_total: int
    n_failed_to_acquire: int
    eval_encoder: Encoder | None = None
    same_system: bool = True
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    info: dict[str, Any] = field(default_factory=dict)
    encoder: Encoder | None = None
    invert: Callable[[Tensor], Tensor] | None = None
    training: TrainingData | None = None
    budget: dict[int, Tensor] = field(default_factory=dict)
    gradient_calls: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.templates.shape[0])


class Protocol(Component[OptionsT]):
    """An evaluation protocol, in two steps so metrics can be recomputed later.

    ``scores(ctx)`` computes raw arrays (similarity scores, per-image values) from the run
    context; the runner saves them as ``.npy`` beside the record. ``metrics(scores)`` turns
    them into :class:`Metric` values using only the arrays and ``self.options``, so
    ``invbench metrics RECORD --fmr 1e-4`` can recompute without re-running any model.

    Metric names: an attack metric ``m`` measured on the template-ignoring baseline (the
    same comparison with ``EvalContext.baseline_templates`` instead of the reconstructions)
    is stored as ``baseline_m``; reports and leaderboards pair the two by that name.

    Class attributes:
        default: Whether ``invbench run`` evaluates it when no ``--protocol`` is given.
        main_metric: Metric name used to rank leaderboard rows.
        headline_metrics: Metrics shown as leaderboard columns (default: ``main_metric``);
            every metric stays in the records.
        system_metric_names: Metrics that describe the face-recognition system itself, not
            the attack (its own TAR/TMR on real images, failures to acquire): they are the
            same for every inverter on one system, so a leaderboard shows them once, on a
            "System" line under each table (and in the CSV), never as an attack column or
            a ranking key. Never in ``headline()``.
        rank_priority: Leaderboards rank rows by the main metric of the present protocol
            with the lowest ``rank_priority``.
        metric_labels: Human names of metric families for leaderboard columns
            (``{"tar_type1": "type-I TAR"}``); :meth:`label` adds the operating point and
            condition parts of a name (``@far=1e-3`` -> ``@FAR 1e-3``).
        table_columns: For a protocol measured under conditions (robustness, budget): the
            metric families shown per condition. Leaderboards give such a protocol a table
            of its own (its ``headline()`` per inverter, the conditions in a details block)
            instead of columns in the headline table.
        groups: Names that select this protocol together with others
            (``--protocol robustness``).
    """

    family: ClassVar[str] = "protocol"
    default: ClassVar[bool] = True
    main_metric: ClassVar[str] = ""
    headline_metrics: ClassVar[tuple[str, ...]] = ()
    system_metric_names: ClassVar[tuple[str, ...]] = ()
    rank_priority: ClassVar[int] = 100
    groups: ClassVar[tuple[str, ...]] = ()
    metric_labels: ClassVar[dict[str, str]] = {}
    table_columns: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def applies_to(cls, inverter: Inverter) -> bool:
        """Whether this default protocol runs for ``inverter`` (all do, by default).

        A default protocol that only makes sense for some inverters (``budget``: iterative
        ones) says no for the others, and the runner leaves it out of their cells.
        """
        return True

    @classmethod
    def headline(cls) -> tuple[str, ...]:
        """The leaderboard columns: ``headline_metrics``, else ``(main_metric,)``."""
        return cls.headline_metrics or ((cls.main_metric,) if cls.main_metric else ())

    @classmethod
    def label(cls, metric: str) -> str:
        """How a leaderboard names ``metric``: ``type-I TAR @FAR 1e-3``.

        The family (the name before the first ``@``) through ``metric_labels`` (else the
        name itself); then each ``@`` part: ``far=X``/``fmr=X`` as ``@FAR X``/``@FMR X``,
        ``mean`` as ``(mean)``, anything else (a condition) in parentheses. A
        ``baseline_`` prefix reads ``baseline``.
        """
        name, baseline = metric, metric.startswith("baseline_")
        if baseline:
            name = name.removeprefix("baseline_")
        family, *parts = name.split("@")
        text = cls.metric_labels.get(family, family)
        for part in parts:
            key, eq, value = part.partition("=")
            if eq and key in ("far", "fmr"):
                text += f" @{key.upper()} {value}"
            else:
                text += f" ({part})"
        return f"baseline {text}" if baseline else text

    def scores(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """Compute raw score arrays from ``ctx`` (names are file stems)."""
        raise NotImplementedError

    def metrics(self, scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """Turn saved score arrays into metrics (pure: no model, no context)."""
        raise NotImplementedError

    def summary_lines(self, metrics: dict[str, Metric]) -> list[str] | None:
        """A compact text summary printed instead of one row per metric (default: none)."""
        return None

    def figures(
        self, scores: dict[str, np.ndarray], metrics: dict[str, Metric]
    ) -> dict[str, bytes]:
        """Pictures drawn from the scores and metrics: ``{name: PNG bytes}`` (default none).

        The runner saves them as ``figures/<protocol>/<name>.png`` beside the record.
        """
        return {}
