"""``occlusion``: the attack and the system when part of the face is covered.

The measures of ``geometric`` for an eye band, a mouth box (both placed from the ArcFace
5-point template) and random boxes of 10-40 % of the area, plus DFD's observation that
identity survives occlusion, as numbers:

- ``pixel_retention@<c>``: mean SSIM between the occluded and the clean input (what is left
  of the pixels);
- ``identity_retention@<c>``: mean identity similarity of reconstructions from occluded
  faces' templates over that of reconstructions from the clean templates (what is left of
  the identity the attack recovers). Identity survives occlusion better than pixels where
  ``identity_retention > pixel_retention``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field
from torch import Tensor

from invbench.components import Metric
from invbench.metrics.image import ssim
from invbench.metrics.thresholds import ThresholdResult
from invbench_plugins.protocols.robustness.base import CLEAN
from invbench_plugins.protocols.robustness.geometric import (
    GeometricProtocol,
    PerturbationOptions,
    perturbation_profiles,
)


class OcclusionOptions(PerturbationOptions):
    """The occlusions evaluated (names and severities as in ``geometric``)."""

    perturbations: list[str] = Field(
        default_factory=lambda: ["occlude-eyes", "occlude-mouth", "occlude-random"]
    )


class OcclusionProtocol(GeometricProtocol):
    """Attack, system and identity retention under eye, mouth and random occlusion (DFD)."""

    name: ClassVar[str] = "occlusion"
    version: ClassVar[str] = "2"
    Options = OcclusionOptions
    profiles: ClassVar[dict[str, dict[str, Any]]] = perturbation_profiles(
        ["occlude-eyes", "occlude-mouth", "occlude-random"], ["occlude-eyes"]
    )
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "tar_type1@far=1e-3@mean",
        "identity_retention@mean",
        "pixel_retention@mean",
        "system_tar@far=1e-3@mean",
    )
    table_columns: ClassVar[tuple[str, ...]] = (
        "system_tar",
        "tar_type1",
        "sar",
        "identity_similarity",
        "identity_retention",
        "pixel_retention",
    )

    def extra_scores(self, cond: str, images: Tensor, moved: Tensor) -> dict[str, np.ndarray]:
        """``<c>__input_ssim``: SSIM of each occluded input with its clean input."""
        return {f"{cond}__input_ssim": ssim(moved.double(), images.double()).numpy()}

    def extra_metrics(
        self, scores: dict[str, np.ndarray], thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """``geometric``'s measures, then pixel and identity retention."""
        out = super().extra_metrics(scores, thrs)
        clean = float(np.nanmean(scores[f"{CLEAN}__type1"]))
        for cond in self.conditions(scores):
            key = f"{cond}__input_ssim"
            if key not in scores:
                continue
            pixels = scores[key]
            out[f"pixel_retention@{cond}"] = Metric(
                value=float(np.mean(pixels)),
                higher_is_better=True,
                n=int(pixels.size),
                implementation="mean SSIM (Wang 2004) of the occluded input with the clean input",
            )
            ident = float(np.nanmean(scores[f"{cond}__type1"]))
            out[f"identity_retention@{cond}"] = Metric(
                value=ident / clean if clean > 0 else None,
                higher_is_better=True,
                n=int(np.isfinite(scores[f"{cond}__type1"]).sum()),
                unavailable=None if clean > 0 else "the clean identity similarity is not positive",
                implementation="mean type-I cosine under the occlusion / mean clean type-I cosine",
                details={"identity_similarity": ident, "clean_identity_similarity": clean},
            )
        return out
