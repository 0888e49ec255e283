"""The evaluation context a protocol receives: everything a run produced, as arrays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from invbench.components.encoder import Encoder


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

    def __len__(self) -> int:
        return int(self.templates.shape[0])
