"""The ``ridge`` inverter: closed-form ridge regression from templates to pixels.

The linear reference every learned inverter should beat: ``x̂ = [t, 1] W``, with
``W = argmin ‖[T, 1] W − X‖² + α‖W‖²`` over the training pairs (templates ``T`` of the
attacked encoder, faces ``X`` at the output size, the bias not penalised), solved exactly
through one SVD of the centred templates. ``α`` is chosen by exact leave-one-out error (the
closed form ``(x_i − x̂_i) / (1 − h_ii)`` of a linear smoother) over a log-spaced grid. It
needs no gradient of the encoder (a black-box attack: templates and faces only) and trains
in seconds on a CPU.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from invbench.components import FitContext, Inverter, Options, TrainingData
from invbench.images import resize
from invbench.training.linear import fit_ridge

logger = logging.getLogger(__name__)


class RidgeOptions(Options):
    """Options of ``ridge``.

    Attributes:
        alphas: The penalties tried (leave-one-out picks one); one value fixes ``α``.
        max_train_images: Use at most this many training faces (the first ones).
    """

    alphas: list[float] = Field(
        default_factory=lambda: [10.0**k for k in range(-4, 3)],
        description="penalties tried; leave-one-out error picks one",
    )
    max_train_images: int | None = Field(None, ge=2, description="training faces used")


class RidgeInverter(Inverter[RidgeOptions]):
    """Ridge regression templates -> pixels (linear baseline), alpha by leave-one-out."""

    name: ClassVar[str] = "ridge"
    reference: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {},
        "smoke": {"alphas": [0.1, 1.0]},
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        h, w = self.output_size
        d = self.encoder.embedding_dim
        self.weight = torch.zeros(d, 3 * h * w, dtype=torch.float64)
        self.mean_template = torch.zeros(d, dtype=torch.float64)
        self.mean_image = torch.zeros(3 * h * w, dtype=torch.float64)
        self.alpha = float("nan")

    def threat_model(self) -> str:
        """Black-box: templates and faces only."""
        return "black-box"

    def fit(self, data: TrainingData, ctx: FitContext) -> dict[str, Any]:
        """Solve the ridge problem; see the module docstring.

        Returns:
            ``alpha`` (chosen), ``loo_mse`` per alpha tried, ``n_train_images``.
        """
        n = len(data) if self.options.max_train_images is None else self.options.max_train_images
        t = data.templates[:n].double()
        x = resize(data.images[:n].float() / 255.0, self.output_size).flatten(1).double()
        fitted = fit_ridge(t, x, self.options.alphas)
        self.weight, self.alpha = fitted.weight, fitted.alpha
        self.mean_template, self.mean_image = fitted.x_mean, fitted.y_mean
        logger.info("ridge: alpha %.3g by leave-one-out over %s", self.alpha, self.options.alphas)
        return {
            "alpha": self.alpha,
            "loo_mse": {f"{a:g}": e for a, e in fitted.loo_mse.items()},
            "n_train_images": int(t.shape[0]),
        }

    def invert(self, templates: Tensor) -> Tensor:
        """``(B, D)`` templates -> ``(B, 3, H, W)`` in ``[0, 1]``."""
        flat = (templates.double() - self.mean_template) @ self.weight + self.mean_image
        return flat.clamp(0, 1).float().reshape(-1, 3, *self.output_size)

    def state_dict(self) -> dict[str, Any]:
        """The regression and the chosen penalty."""
        return {
            "weight": self.weight.clone(),
            "mean_template": self.mean_template.clone(),
            "mean_image": self.mean_image.clone(),
            "alpha": self.alpha,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.weight = state["weight"].clone()
        self.mean_template = state["mean_template"].clone()
        self.mean_image = state["mean_image"].clone()
        self.alpha = float(state["alpha"])
