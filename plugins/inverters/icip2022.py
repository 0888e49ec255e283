"""The ICIP'22 CNN inverter (Otroshi Shahreza, Krivokuća Hahn, Marcel; ICIP 2022): white-box.

Loss (Eq. 4): ``L = L_MSE + α·L_DSSIM + β·L_ID`` with α = 0.1, β = 0.005:

* ``L_MSE``: mean squared pixel error on ``[0, 1]`` images (the mean, following
  :mod:`invbench.training.losses`; the paper writes ``‖Î − I‖²``).
* ``L_DSSIM = (1 − SSIM(Î, I)) / 2`` with :func:`invbench.metrics.image.ssim` (11×11
  Gaussian window, per image), averaged over the batch.
* ``L_ID = ‖F(Î) − F(I)‖²``: squared L2 distance between unit-norm templates, summed
  over the template, averaged over the batch. ``F(Î)`` goes through the attacked encoder's
  differentiable ``forward_torch`` (white-box; the encoder's weights stay frozen);
  ``F(I)`` is the training template itself (``TrainingData.templates`` are ``F(I)``).

Training: Adam lr 1e-3, halved every 10 epochs, 90 % / 10 % train/validation split (the
paper's FFHQ split). The paper gives neither batch size nor epoch count: we use 64 and 30
(options ``batch_size``, ``epochs``).

The network is :class:`~.icip2022_model.Icip2022Net` (see there for the 1×1 -> 7×7 first
step and other sizes).

Profiles: ``paper`` is the defaults above (a GPU setting); ``quick`` (:data:`ICIP_QUICK`)
trains a quarter-width network that decodes at 56×56 and is resized to the output size,
for 300 batches of 16 (each batch runs the encoder forward and backward, the dominant cost
on a CPU); ``smoke`` is a tiny network for conformance checks.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field
from torch import Tensor, nn

from invbench.components import DecoderInverter, TrainingData
from invbench.metrics.image import ssim
from invbench.training import OptimizerSpec, Stage, StepDecay, mse_loss
from invbench_plugins.inverters.icip2022_model import Icip2022Net
from invbench_plugins.inverters.nbnet import BlockDecoderOptions


class Icip2022Options(BlockDecoderOptions):
    """Options of ``icip2022`` (defaults: the paper's settings, or our choice where silent)."""

    batch_size: int = Field(64, ge=1, description="not given by the paper")
    epochs: int = Field(30, ge=1, description="not given by the paper")
    max_steps: int | None = Field(None, ge=1, description="also stop after this many batches")
    lr: float = Field(1e-3, gt=0)
    lr_decay: float = Field(0.5, gt=0, le=1, description="lr factor every lr_decay_epochs")
    lr_decay_epochs: int = Field(10, ge=0, description="epochs between lr decays (0: none)")
    dssim_weight: float = Field(0.1, ge=0, description="alpha of Eq. 4")
    id_weight: float = Field(0.005, ge=0, description="beta of Eq. 4 (needs forward_torch)")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="held-out share (paper: 10 %)")


#: CPU-cheap settings (a few CPU minutes for 2,000 training faces): quarter-width network
#: decoding at 56×56 (then resized to the output size), 300 batches of 16, same loss and lr.
ICIP_QUICK: dict[str, Any] = {
    "geometry": "resize",
    "build_size": (56, 56),
    "channels": (128, 64, 32, 16, 16, 8),
    "batch_size": 16,
    "epochs": 30,
    "max_steps": 300,
    "lr_decay_epochs": 0,
    "val_fraction": 0.05,
    "checkpoint_every": 100,
}


class Icip2022Inverter(DecoderInverter[Icip2022Options]):
    """ICIP'22 CNN (Otroshi Shahreza et al., ICIP 2022): MSE + DSSIM + white-box ID loss.

    Deconvolution + residual convolution blocks; the ID loss needs a differentiable encoder.
    """

    name: ClassVar[str] = "icip2022"
    paper: ClassVar[str] = (
        "Otroshi Shahreza, Krivokuća Hahn, Marcel: Face reconstruction from deep facial "
        "embeddings using a convolutional neural network, ICIP 2022"
    )
    paper_url: ClassVar[str] = "https://doi.org/10.1109/ICIP46576.2022.9897535"
    init_seed_salt: ClassVar[int | None] = 0x1C1B
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": ICIP_QUICK,
        "smoke": {**ICIP_QUICK, "channels": (16, 8, 8, 8, 8, 8), "max_steps": 2, "epochs": 1},
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.options.id_weight > 0:
            self.require_gradients("ID loss", "id_weight")

    def threat_model(self) -> str:
        """White-box: the ID loss backpropagates through the attacked encoder."""
        return "white-box" if self.options.id_weight > 0 else "black-box"

    def build_network(self) -> nn.Module:
        """The ICIP'22 CNN for this encoder's templates and input size."""
        return Icip2022Net(self.encoder.embedding_dim, self.output_size, **self.options.network())

    def stages(self, data: TrainingData) -> list[Stage]:
        """One stage of Eq. 4: Adam, lr halved every ``lr_decay_epochs`` epochs."""
        o = self.options
        decay = StepDecay(o.lr_decay, o.lr_decay_epochs, "epoch")
        return [Stage(self._loss, "eq4", o.epochs, o.max_steps, OptimizerSpec(lr=o.lr), decay)]

    def _loss(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Any]]:
        """Eq. 4 on a batch ``(templates (B, D), uint8 images (B, 3, H, W))``."""
        templates, images = batch
        o = self.options
        target = self.targets(images)
        recon = self.model(templates.float())
        mse = mse_loss(recon, target)
        dssim = ((1.0 - ssim(recon, target)) / 2.0).mean()
        loss = mse + o.dssim_weight * dssim
        parts: dict[str, Any] = {"mse": mse.detach(), "dssim": dssim.detach()}
        if o.id_weight > 0:
            ident = (self.encoder.forward_torch(recon) - templates.float()).pow(2).sum(1).mean()
            loss = loss + o.id_weight * ident
            parts["id"] = ident.detach()
        return loss, parts
