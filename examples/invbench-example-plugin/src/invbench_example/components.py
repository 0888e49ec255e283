"""The example plugin's components: a pixel encoder and a ridge-regression inverter."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from invbench import Encoder, FitContext, Inverter, Options, TrainingData


class PixelEncoder(Encoder):
    """Downsampled, centred pixels as a template (shows the encoder contract)."""

    name: ClassVar[str] = "example-pixels"
    version: ClassVar[str] = "1"
    input_size: ClassVar[tuple[int, int]] = (16, 16)
    differentiable: ClassVar[bool] = True

    class Options(Options):
        """Options: the side of the pooled image that becomes the template."""

        side: int = 4

    @property
    def embedding_dim(self) -> int:
        """D = 3 * side * side."""
        return 3 * self.options.side**2

    def forward_torch(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 3 * side**2)`` unit-norm templates."""
        pooled = F.adaptive_avg_pool2d(images - 0.5, self.options.side).flatten(1)
        return F.normalize(pooled, dim=1)

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        """The pooled image as a single feature map ``(B, 3, side, side)``."""
        return [F.adaptive_avg_pool2d(images - 0.5, self.options.side)]


class RidgeInverter(Inverter):
    """Closed-form ridge regression from templates to pixels (shows the inverter contract)."""

    name: ClassVar[str] = "example-ridge"
    version: ClassVar[str] = "1"
    profiles: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {"alpha": 0.1}}

    class Options(Options):
        """Options: the ridge penalty."""

        alpha: float = 1e-2

    def __init__(self, encoder: Encoder, options: Options | None = None, **kwargs: Any) -> None:
        super().__init__(encoder, options, **kwargs)
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
