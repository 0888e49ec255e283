"""The example plugin's components: an encoder, two inverters and a protocol.

Each shows one contract with as little code as the contract allows:

- ``PixelEncoder``: an :class:`~invbench.Encoder` (templates from pooled pixels);
- ``RidgeInverter``: an :class:`~invbench.Inverter` written from scratch (closed form);
- ``MLPDecoder``: a :class:`~invbench.DecoderInverter`: a network and a loss, nothing else;
- ``CosineProtocol``: a :class:`~invbench.Protocol` with its template-ignoring baseline.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from invbench import (
    DecoderInverter,
    DecoderOptions,
    Encoder,
    EvalContext,
    FitContext,
    Inverter,
    Metric,
    Options,
    Protocol,
    TrainingData,
)
from invbench.training import OptimizerSpec, Stage, mse_loss


class PixelOptions(Options):
    """Options of the pixel encoder: the side of the pooled image that becomes the template."""

    side: int = Field(4, ge=1)


class PixelEncoder(Encoder[PixelOptions]):
    """Downsampled, centred pixels as a template (shows the encoder contract)."""

    name: ClassVar[str] = "example-pixels"
    input_size: ClassVar[tuple[int, int]] = (16, 16)
    differentiable: ClassVar[bool] = True

    @property
    def embedding_dim(self) -> int:
        """D = 3 * side * side."""
        return 3 * self.options.side**2

    def forward_torch(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 3 * side**2)`` unit-norm templates."""
        return F.normalize(self.feature_maps(images)[0].flatten(1), dim=1)

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        """The pooled image as a single feature map ``(B, 3, side, side)``."""
        return [F.adaptive_avg_pool2d(images - 0.5, self.options.side)]


class RidgeOptions(Options):
    """Options of the ridge inverter: the ridge penalty."""

    alpha: float = Field(1e-2, gt=0)


class RidgeInverter(Inverter[RidgeOptions]):
    """Closed-form ridge regression from templates to pixels (shows the inverter contract)."""

    name: ClassVar[str] = "example-ridge"
    profiles: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {"alpha": 0.1}}

    def __init__(self, encoder: Encoder, options: RidgeOptions | None = None, **kw: Any) -> None:
        super().__init__(encoder, options, **kw)
        h, w = self.output_size
        self.weight = torch.zeros(encoder.embedding_dim + 1, 3 * h * w)

    def fit(self, data: TrainingData, ctx: FitContext) -> dict[str, Any]:
        """Solve ``(XᵀX + αI) W = XᵀY`` with a bias column."""
        x = torch.cat([data.templates.double(), torch.ones(len(data), 1).double()], dim=1)
        y = F.interpolate(data.images.double() / 255, size=self.output_size).flatten(1)
        gram = x.T @ x + self.options.alpha * torch.eye(x.shape[1], dtype=torch.float64)
        self.weight = torch.linalg.solve(gram, x.T @ y).float()
        residual = float(((x.float() @ self.weight - y.float()) ** 2).mean())
        return {"final_loss": residual, "samples": len(data)}

    def invert(self, templates: Tensor) -> Tensor:
        """``(B, D)`` -> ``(B, 3, H, W)`` in ``[0, 1]``."""
        x = torch.cat([templates.float(), torch.ones(len(templates), 1)], dim=1)
        return (x @ self.weight).clamp(0, 1).reshape(-1, 3, *self.output_size)

    def state_dict(self) -> dict[str, Any]:
        """The regression weights."""
        return {"weight": self.weight.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the regression weights."""
        self.weight = state["weight"].clone()


class MLPDecoderOptions(DecoderOptions):
    """Options of the MLP decoder (the training options come from ``DecoderOptions``)."""

    hidden: int = Field(256, ge=1)
    epochs: int = Field(20, ge=1)
    lr: float = Field(1e-3, gt=0)
    id_weight: float = Field(0.0, ge=0, description="weight of 1 - cos(F(x_hat), F(x))")


class MLPNet(nn.Module):
    """``(B, D)`` -> two linear layers -> sigmoid -> ``(B, 3, H, W)`` in ``[0, 1]``."""

    def __init__(self, dim: int, hidden: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size
        self.layers = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 3 * size[0] * size[1])
        )

    def forward(self, templates: Tensor) -> Tensor:
        """``(B, D)`` templates -> ``(B, 3, H, W)`` images."""
        return torch.sigmoid(self.layers(templates)).reshape(-1, 3, *self.size)


class MLPDecoder(DecoderInverter[MLPDecoderOptions]):
    """Two-layer MLP decoder with a pixel loss and an optional white-box identity loss.

    The whole inverter is a network and a loss: training (seeded, resumable, with a
    validation split), batching, saving and the record's fields come from the base.
    """

    name: ClassVar[str] = "example-mlp"
    paper: ClassVar[str] = "none: the invbench example plugin"
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"epochs": 5},
        "smoke": {"epochs": 1, "hidden": 16},
    }

    def build_network(self) -> nn.Module:
        """The MLP for this encoder's templates and input size."""
        return MLPNet(self.encoder.embedding_dim, self.options.hidden, self.output_size)

    def stages(self, data: TrainingData) -> list[Stage]:
        """One Adam stage of pixel MSE (+ the identity term when ``id_weight > 0``)."""
        o = self.options

        def loss(batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Tensor]]:
            templates, images = batch
            recon = self.model(templates)
            parts = {"mse": mse_loss(recon, self.targets(images))}
            if o.id_weight > 0:
                cos = F.cosine_similarity(self.encoder.forward_torch(recon), templates)
                parts["id"] = (1 - cos).mean()
            total = parts["mse"] + o.id_weight * parts.get("id", 0.0)
            return total, parts

        return [Stage(loss, epochs=o.epochs, optimizer=OptimizerSpec(lr=o.lr))]


class CosineProtocol(Protocol[Options]):
    """Mean cosine between re-encoded reconstructions and their originals (with baseline)."""

    name: ClassVar[str] = "example-cosine"
    default: ClassVar[bool] = False
    main_metric: ClassVar[str] = "cosine"

    def scores(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """Per sample ``cos(F'(x_hat_i), F'(x_i))``, and the same for the baseline image."""
        out = {"cosine": _row_cosines(ctx.recon_templates, ctx.real_templates)}
        if ctx.baseline_templates is not None:
            out["baseline_cosine"] = _row_cosines(ctx.baseline_templates, ctx.real_templates)
        return out

    def metrics(self, scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """The means; ``baseline_cosine`` is the template-ignoring baseline's."""
        return {
            name: Metric(
                value=float(values.mean()) if values.size else None,
                higher_is_better=True,
                n=int(values.size),
                unavailable=None if values.size else "no samples",
                implementation="mean of row-wise cosines of the evaluation encoder's templates",
            )
            for name, values in scores.items()
        }


def _row_cosines(a: Tensor, b: Tensor) -> np.ndarray:
    return F.cosine_similarity(a.double(), b.double(), dim=1).numpy()
