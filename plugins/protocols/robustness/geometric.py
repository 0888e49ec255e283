"""``geometric``: the attack and the system when faces are rotated, shifted or scaled.

For every perturbation ``T`` and severity (``<perturbation>=<severity>`` conditions, levels in
:mod:`.perturbations`), on the evaluated faces ``x``:

- *the system* (the attacked encoder ``F``, DFD's Table 2): ``system_tar@far=α@<c>``, the
  share of genuine pairs ``(x_i, T x_j)`` (ordered, ``j != i``, one identity) accepted at
  ``F``'s own threshold, and ``system_tar_map@far=α@<c>`` after DFD's linear map ``M``
  applied to ``F(T x_j)``. ``M`` minimises ``‖F(T t) M − F(t)‖²`` over training faces ``t``
  (never evaluation identities): DFD's least squares on 2,000 faces by default, a ridge
  penalty chosen by leave-one-out on 512 faces in the ``quick`` profile. Plain least
  squares on a few hundred faces (little more than the template dimension) overfits and
  *lowers* the system's TAR;
- *the attack*: the leaked template is ``F(T x_i)`` (or ``M(F(T x_i))``), inverted and judged
  against the clean faces: ``tar_type1`` / ``sar`` (and ``*_map``) ``@far=α@<c>``;
- ``template_drift@<c>``: mean ``cos(F(x_i), F(T x_i))``.

A grid picture shows, at each perturbation's highest severity, inputs and reconstructions
from ``F(Tx)`` and ``M(F(Tx))``; curve pictures show the rates against the severity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import Tensor

from invbench.components import EvalContext, Metric
from invbench.metrics.thresholds import ThresholdResult
from invbench.metrics.verification import as_unit_rows, identity_codes
from invbench.seeding import derive_seed
from invbench.training.adapters import RIDGE_ALPHAS
from invbench.training.linear import fit_ridge
from invbench_plugins.protocols.metric_builders import similarity_metric
from invbench_plugins.protocols.robustness.base import (
    CLEAN,
    RobustnessOptions,
    RobustnessProtocol,
    condition_name,
    to_examples,
)
from invbench_plugins.protocols.robustness.figures import grid_png
from invbench_plugins.protocols.robustness.perturbations import check_severity, get_perturbation

MapFit = Literal["ridge", "lstsq"]

#: The perturbations ``geometric`` evaluates by default.
GEOMETRIC = (
    "rotation",
    "rotation-dfd",
    "shift-left",
    "shift-right",
    "shift-up",
    "shift-down",
    "scale-down",
    "scale-up",
)


class PerturbationOptions(RobustnessOptions):
    """Which perturbations at which severities, and the training faces for the map ``M``.

    The defaults are the full study (every severity, DFD's least squares on 2,000 training
    faces); :attr:`GeometricProtocol.profiles` has the ``quick`` one.

    Attributes:
        perturbations: Names from :data:`.perturbations.PERTURBATIONS`.
        severities: Severities 1-5 evaluated for each (0 is the clean case, always there).
        map_images: Training faces the map ``M`` is fitted on (at most the training set).
        map_fit: ``lstsq`` (default): DFD's plain least squares (no intercept, no
            penalty), which overfits unless ``map_images`` is many times the template
            dimension; ``ridge``: least squares with an intercept and a ridge penalty chosen
            by leave-one-out, the stabler choice for few faces (the ``quick`` profile).
    """

    perturbations: list[str] = Field(default_factory=lambda: list(GEOMETRIC))
    severities: list[int] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    map_images: int = Field(2000, ge=8, description="training faces M is fitted on")
    map_fit: MapFit = "lstsq"

    @field_validator("perturbations")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        for name in value:
            get_perturbation(name)  # ValueError naming the unknown one and the known ones
        return value

    @field_validator("severities")
    @classmethod
    def _levels(cls, value: list[int]) -> list[int]:
        for severity in value:
            check_severity(severity)
        return value


def least_squares_map(perturbed: Tensor, clean: Tensor) -> Tensor:
    """DFD's ``M``: ``argmin_M ‖perturbed M − clean‖²`` (``(N, D)`` each -> ``(D, D)``).

    >>> a = torch.randn(50, 4, dtype=torch.float64); m = torch.randn(4, 4, dtype=torch.float64)
    >>> bool(torch.allclose(least_squares_map(a, a @ m), m))
    True
    """
    return torch.linalg.lstsq(perturbed.double(), clean.double()).solution


def fit_map(perturbed: Tensor, clean: Tensor, how: MapFit) -> Callable[[Tensor], Tensor]:
    """The map ``M`` from perturbed to clean templates (``(N, D)`` each), as a callable.

    ``how`` is ``lstsq`` (:func:`least_squares_map`) or ``ridge``
    (:func:`invbench.training.linear.fit_ridge`, penalty by leave-one-out over
    :data:`invbench.training.adapters.RIDGE_ALPHAS`). The callable maps ``(M, D)`` templates
    to ``(M, D)`` float64.
    """
    if how == "lstsq":
        weight = least_squares_map(perturbed, clean)
        return lambda t: t.double() @ weight
    if how == "ridge":
        return fit_ridge(perturbed, clean, RIDGE_ALPHAS)
    raise ValueError(f"unknown map fit {how!r}: lstsq or ridge")


def ordered_pairs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(i, j)`` of every ordered pair ``j != i`` of one identity."""
    same = codes[:, None] == codes[None, :]
    np.fill_diagonal(same, False)
    i, j = np.nonzero(same)
    return i, j


def perturbation_profiles(quick: list[str], smoke: list[str]) -> dict[str, dict[str, Any]]:
    """``quick`` and ``smoke`` profiles of a perturbation protocol over these perturbations.

    ``quick`` (about 10 minutes for all five robustness protocols on 2 CPU cores):
    severities 2 and 4, three faces per identity, ``M`` by ridge on 512 training faces.
    """
    return {
        "quick": {
            "max_images": 120,
            "perturbations": quick,
            "severities": [2, 4],
            "map_images": 512,
            "map_fit": "ridge",
        },
        "smoke": {
            "max_images": 40,
            "perturbations": smoke,
            "severities": [3],
            "map_images": 64,
            "map_fit": "ridge",
        },
    }


class GeometricProtocol(RobustnessProtocol[PerturbationOptions]):
    """Attack and system under rotation, translation and scaling (DFD Table 2 and Fig. 7)."""

    name: ClassVar[str] = "geometric"
    version: ClassVar[str] = "2"
    #: quick leaves out rotation-dfd: its first step (30 degrees) is rotation's severity 5.
    profiles: ClassVar[dict[str, dict[str, Any]]] = perturbation_profiles(
        [p for p in GEOMETRIC if p != "rotation-dfd"], ["rotation"]
    )
    main_metric: ClassVar[str] = "tar_type1@far=1e-3@mean"
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "tar_type1@far=1e-3@mean",
        "tar_type1_map@far=1e-3@mean",
        "system_tar@far=1e-3@mean",
        "system_tar_map@far=1e-3@mean",
    )
    table_columns: ClassVar[tuple[str, ...]] = (
        "system_tar",
        "system_tar_map",
        "template_drift",
        "tar_type1",
        "tar_type1_map",
        "sar",
        "sar_map",
    )

    def condition_scores(self, ctx: EvalContext, rows: np.ndarray) -> dict[str, np.ndarray]:
        """System pairs, drift and attack arrays for every perturbation and severity."""
        o = self.options
        if ctx.encoder is None or ctx.training is None:
            raise ValueError(f"{self.name} needs the context's encoder and training data")
        encoder, images = ctx.encoder, ctx.images[rows]
        clean = torch.from_numpy(as_unit_rows(ctx.templates)[rows])
        codes = identity_codes(ctx.identities)[rows]
        pi, pj = ordered_pairs(codes)
        n_map = min(o.map_images, len(ctx.training))
        train_images = ctx.training.images[:n_map].float() / 255.0
        train_clean = ctx.training.templates[:n_map].double()
        out: dict[str, np.ndarray] = {
            "pair_i": pi,
            "pair_identity": codes[pi],
            f"{CLEAN}__system": _cos(clean[pi], clean[pj]),
        }
        out.update(self.system_arrays(ctx))
        for name in o.perturbations:
            perturb = get_perturbation(name)
            for severity in o.severities:
                cond = condition_name(name, severity)
                seed = derive_seed(o.seed, self.name, cond)
                moved = perturb(images, severity, torch.Generator().manual_seed(seed))
                leaked = encoder.templates(moved).double()
                train_seed = derive_seed(o.seed, self.name, cond, "training")
                moved_train = perturb(
                    train_images, severity, torch.Generator().manual_seed(train_seed)
                )
                m = fit_map(encoder.templates(moved_train), train_clean, o.map_fit)
                mapped = torch.nn.functional.normalize(m(leaked), dim=1)
                out[f"{cond}__system"] = _cos(clean[pi], leaked[pj])
                out[f"{cond}__system_map"] = _cos(clean[pi], mapped[pj])
                out[f"{cond}__drift"] = _cos(clean, leaked)
                out[f"{cond}__inputs"] = to_examples(moved)
                out.update(self.attack(ctx, rows, cond, leaked)[0])
                out.update(self.attack(ctx, rows, cond, mapped, suffix="_map")[0])
                out.update(self.extra_scores(cond, images, moved))
        return out

    def extra_scores(self, cond: str, images: Tensor, moved: Tensor) -> dict[str, np.ndarray]:
        """Further arrays of a condition (the occlusion protocol adds input SSIM)."""
        return {}

    def extra_metrics(
        self, scores: dict[str, np.ndarray], thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """System TAR with and without ``M``, the attack with ``M``, template drift."""
        sys_scores, sys_thrs = self.system_view(scores)
        groups = scores["pair_identity"]
        out: dict[str, Metric] = {}
        for cond in self.conditions(scores):
            for suffix in ("", "_map"):
                if f"{cond}__system{suffix}" in scores:
                    out.update(
                        self.rates(
                            sys_scores,
                            f"system_tar{suffix}",
                            f"{cond}__system{suffix}",
                            cond,
                            sys_thrs,
                            what=f"system: cos(F(x_i), {'M ' if suffix else ''}F(T x_j)) >= tau",
                            groups=groups,
                        )
                    )
            if f"{cond}__type1_map" in scores:
                for measure in ("type1", "sar"):
                    out.update(
                        self.rates(
                            scores,
                            f"{'tar_type1' if measure == 'type1' else 'sar'}_map",
                            f"{cond}__{measure}_map",
                            cond,
                            thrs,
                            what=f"{measure} of the reconstruction from M(F(T x)) under {cond}",
                        )
                    )
            if f"{cond}__drift" in scores:
                out[f"template_drift@{cond}"] = similarity_metric(
                    scores[f"{cond}__drift"], what=f"cos(F(x), F(T x)) under {cond}"
                )
        return out

    def figures(
        self, scores: dict[str, np.ndarray], metrics: dict[str, Metric]
    ) -> dict[str, bytes]:
        """Curves of the attack and the system against severity, and a grid of faces."""
        out = {
            "attack": self.curve_figure(
                metrics, "tar_type1", title=f"{self.name}: type-I TAR", xlabel="severity"
            ),
            "system": self.curve_figure(
                metrics, "system_tar", title=f"{self.name}: the system's TAR", xlabel="severity"
            ),
        }
        worst = [
            condition_name(p, max(self.options.severities)) for p in self.options.perturbations
        ]
        rows = []
        for cond in worst:
            if f"{cond}__inputs" not in scores:
                continue
            faces = [scores[f"{cond}__{k}"] for k in ("inputs", "examples", "examples_map")]
            rows.append((cond, np.stack([f[i] for i in range(3) for f in faces])))
        if rows:
            columns = [f"{k} {i + 1}" for i in range(3) for k in ("input", "from F(Tx)", "from M")]
            out["faces"] = grid_png(rows, columns, title=f"{self.name}: highest severities")
        return out


def _cos(a: Tensor, b: Tensor) -> np.ndarray:
    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=1).numpy()
