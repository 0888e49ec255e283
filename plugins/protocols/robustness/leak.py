"""``leak``: the leaked template is degraded before it is inverted.

Conditions (the attacked encoder's templates of the evaluated faces, then renormalised):

- ``noise=<σ>``: Gaussian noise of standard deviation ``σ`` added to every dimension;
- ``partial=<f>``: only a seeded random ``f`` share of the ``D`` dimensions is known, the
  others are set to the mean training template's;
- ``quantise=<kind>``: ``float16``, ``int8`` (symmetric, one scale per template) or ``sign``
  (one bit per dimension).

For each, the base's ``tar_type1``, ``sar`` and ``identity_similarity`` ``@<c>``. With
``σ = 0``, ``f = 1`` or ``float32`` the leak is the clean template and so is the result.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import Tensor

from invbench.components import EvalContext, Metric
from invbench.metrics.verification import as_unit_rows
from invbench.seeding import derive_seed
from invbench_plugins.protocols.robustness.base import (
    RobustnessOptions,
    RobustnessProtocol,
    condition_name,
)

Quantisation = Literal["float32", "float16", "int8", "sign"]
_QUANTISATIONS: tuple[Quantisation, ...] = ("float16", "int8", "sign")


class LeakOptions(RobustnessOptions):
    """Degradations of the leaked template.

    Attributes:
        sigmas: Noise standard deviations per dimension (templates have unit norm, so a
            dimension is about ``1/sqrt(D)``: 0.07 for 192-D).
        fractions: Shares of the dimensions known, in ``(0, 1]``.
        quantisations: Number formats.
    """

    sigmas: list[float] = Field(default_factory=lambda: [0.02, 0.05, 0.1])
    fractions: list[float] = Field(default_factory=lambda: [0.5, 0.25, 0.125])
    quantisations: list[Quantisation] = Field(default_factory=lambda: list(_QUANTISATIONS))

    @field_validator("sigmas")
    @classmethod
    def _sigmas(cls, value: list[float]) -> list[float]:
        if any(s < 0 for s in value):
            raise ValueError("sigmas must be >= 0")
        return value

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < f <= 1 for f in value):
            raise ValueError("fractions must be in (0, 1]")
        return value


def add_noise(templates: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    """``(N, D)`` templates plus ``N(0, σ²)`` noise per dimension (not renormalised)."""
    noise = torch.randn(templates.shape, generator=generator, dtype=torch.float64)
    return templates.double() + sigma * noise


def keep_dimensions(
    templates: Tensor, fraction: float, fill: Tensor, generator: torch.Generator
) -> Tensor:
    """Keep a random ``fraction`` of the ``D`` dimensions; the others take ``fill`` ``(D,)``."""
    d = templates.shape[1]
    known = torch.randperm(d, generator=generator)[: max(1, round(fraction * d))]
    out = fill.double().expand_as(templates).clone()
    out[:, known] = templates.double()[:, known]
    return out


def quantise(templates: Tensor, kind: Quantisation) -> Tensor:
    """Round-trip ``(N, D)`` templates through ``kind`` (``float32`` leaves them as they are)."""
    t = templates.float()
    if kind == "float16":
        return t.half().float()
    if kind == "int8":
        scale = t.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
        return (t / scale).round().clamp(-127, 127) * scale
    if kind == "sign":
        return torch.sign(t)
    return t


class LeakProtocol(RobustnessProtocol[LeakOptions]):
    """SAR and type-I TAR when the leaked template is noisy, partial or quantised."""

    name: ClassVar[str] = "leak"
    main_metric: ClassVar[str] = "sar@far=1e-3@mean"
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "sar@far=1e-3@mean",
        "tar_type1@far=1e-3@mean",
        "identity_similarity@mean",
    )

    def degraded(self, ctx: EvalContext, rows: np.ndarray) -> dict[str, Tensor]:
        """``{condition: (M, D) degraded templates}`` of the evaluated ``rows``."""
        o = self.options
        leaked = torch.from_numpy(as_unit_rows(ctx.templates)[rows])
        if ctx.training is None:
            raise ValueError("leak needs the context's training data (the mean template)")
        mean = ctx.training.templates.double().mean(dim=0)
        out = {}
        for sigma in o.sigmas:
            cond = condition_name("noise", f"{sigma:g}")
            gen = torch.Generator().manual_seed(derive_seed(o.seed, self.name, cond))
            out[cond] = add_noise(leaked, sigma, gen)
        for fraction in o.fractions:
            cond = condition_name("partial", f"{fraction:g}")
            gen = torch.Generator().manual_seed(derive_seed(o.seed, self.name, cond))
            out[cond] = keep_dimensions(leaked, fraction, mean, gen)
        for kind in o.quantisations:
            out[condition_name("quantise", kind)] = quantise(leaked, kind)
        return out

    def condition_scores(self, ctx: EvalContext, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Invert each degraded leak and judge the reconstructions."""
        out: dict[str, np.ndarray] = {}
        for cond, templates in self.degraded(ctx, rows).items():
            out.update(self.attack(ctx, rows, cond, templates)[0])
        return out

    def figures(
        self, scores: dict[str, np.ndarray], metrics: dict[str, Metric]
    ) -> dict[str, bytes]:
        """SAR against the noise level and the known share of dimensions."""
        return {
            "sar": self.curve_figure(
                metrics, "sar", title="degraded leak: SAR", xlabel="σ (noise) / share known"
            )
        }
