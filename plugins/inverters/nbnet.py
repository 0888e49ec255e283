"""NbNet-A, NbNet-B and the D-CNN baseline (Mai, Cao, Yuen, Jain; TPAMI 2018) as inverters.

Training follows the paper (Section 3.6.3, footnotes 21-22), through the shared
:mod:`invbench.training` machinery:

1. ``pixel`` stage: MAE between the tanh output and the image scaled to ``[-1, 1]``,
   ``pixel_steps`` batches (paper: 300K).
2. ``perceptual`` stage: fine-tune from stage 1 with ``½‖F(x) − F(x̂)‖²`` (Eq. 6) on a
   mid-level feature map, ``perceptual_steps`` batches (paper: 100K). F is VGG-19
   ``relu3_2`` when torchvision's ImageNet weights are in the torch hub cache, else a named
   substitute (see :mod:`.nbnet_perceptual`); set ``perceptual_steps=0`` for the paper's
   MAE-only ("-M") models.

Both stages: Adam (β₁ 0.5, β₂ 0.999), batch 64, lr 2e-4 × 0.94 every 5K batches (each stage
restarts the schedule: the paper does not say whether the fine-tune continues it),
weights N(0, 0.02). ``invert`` maps the tanh output ``y`` to ``(y + 1) / 2`` in ``[0, 1]``.

The networks are :class:`~.nbnet_model.NbNet` (see its module for the structure, the
adaptation to other template lengths and output sizes, and the parameter counts against
the paper's Table 7).

Profiles: ``paper`` is the defaults above (400K batches of 64: a GPU setting). ``quick``
(:data:`NBNET_QUICK`) trains a half-width network that decodes at 56×56 and is resized to
the output size, for 400 MAE + 100 perceptual batches of 32 (lr 2e-3 halved every 100
batches, restarted for the perceptual stage), with the substitute perceptual network's third
map, and adds ``perceptual_pixel_weight · MAE`` (1e6; the perceptual sum is about 7e5 per
image) to the perceptual stage, which keeps colours and shapes face-like in so short a run.
How these settings were chosen (measurements with their commands and dates) is in
``docs/methods.md``. ``smoke`` is a tiny network for conformance checks.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from invbench.components import DecoderInverter, DecoderOptions, TrainingData
from invbench.errors import OptionsError
from invbench.training import OptimizerSpec, Stage, StepDecay, mae_loss
from invbench_plugins.inverters.nbnet_model import PAPER_CHANNELS, BlockKind, NbNet
from invbench_plugins.inverters.nbnet_perceptual import (
    PerceptualNet,
    half_squared_l2,
    resolve_perceptual,
    vgg19_weights_path,
)


class BlockDecoderOptions(DecoderOptions):
    """Network options of the block decoders (NbNet family, ICIP'22 CNN)."""

    geometry: Literal["auto", "native", "resize"] = Field(
        "auto",
        description="native: six blocks sized for the output (e.g. 112 -> 7x7 start); "
        "resize: the paper's network, then a bilinear resize; auto: native where possible",
    )
    build_size: tuple[int, int] | None = Field(
        None,
        description="with geometry=resize: the size the network decodes at before the "
        "bilinear resize to the output size (default: the paper's size)",
    )
    channels: tuple[int, ...] = Field(
        PAPER_CHANNELS, description="block output channels (the papers: 512 ... 16)"
    )
    deconv_kernel: int = Field(
        4, ge=2, description="kernel of the doubling deconvolutions (4; NbNet's Table 2 says 3)"
    )

    def network(self) -> dict[str, Any]:
        """These options as keyword arguments of the network."""
        return self.model_dump(include={"geometry", "build_size", "channels", "deconv_kernel"})


class NbNetOptions(BlockDecoderOptions):
    """Options of ``nbnet-a``, ``nbnet-b`` and ``dcnn`` (defaults: the paper's settings)."""

    init_std: float = Field(0.02, gt=0, description="std of the N(0, std) weight init")
    lr: float = Field(2e-4, gt=0)
    perceptual_lr: float | None = Field(
        None,
        gt=0,
        description="base lr of the perceptual fine-tune (default: lr; each stage restarts "
        "the schedule)",
    )
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay: float = Field(0.94, gt=0, le=1, description="lr factor every lr_decay_every steps")
    lr_decay_every: int = Field(5000, ge=0, description="batches between lr decays (0: none)")
    pixel_steps: int = Field(300_000, ge=0, description="batches of the MAE stage")
    perceptual_steps: int = Field(100_000, ge=0, description="batches of the perceptual stage")
    perceptual_pixel_weight: float = Field(
        0.0,
        ge=0,
        description="weight of an MAE term added to the perceptual stage's loss (paper: 0, "
        "perceptual only; the perceptual loss is a sum over feature elements, so useful "
        "weights are large)",
    )
    max_epochs: int | None = Field(None, ge=1, description="also cap each stage in epochs")
    perceptual_net: str = Field(
        "auto", description="auto | vgg19 | attacked | an encoder name (see nbnet_perceptual)"
    )
    perceptual_layer: int | None = Field(
        None,
        description="index into the substitute's feature_maps (default: the first map at "
        "<= 1/4 of the input size, like relu3_2)",
    )


#: CPU-cheap settings (about 3 CPU minutes for 2,000 training faces): half-width network
#: decoding at 56×56 (then resized to the output size), 400 MAE + 100 perceptual batches of
#: 32 at a higher learning rate, the substitute's third feature map (arcface: 128×14×14),
#: and an MAE anchor in the perceptual stage (not in the paper) that keeps colours and
#: shapes face-like in so short a run.
NBNET_QUICK: dict[str, Any] = {
    "geometry": "resize",
    "build_size": (56, 56),
    "channels": (256, 128, 64, 32, 32, 16),
    "batch_size": 32,
    "lr": 2e-3,
    "lr_decay": 0.5,
    "lr_decay_every": 100,
    "pixel_steps": 400,
    "perceptual_steps": 100,
    "perceptual_layer": 2,
    "perceptual_pixel_weight": 1e6,
    "val_fraction": 0.05,
    "checkpoint_every": 100,
}


class _NbNetInverter(DecoderInverter[NbNetOptions]):
    """Shared implementation of the three NbNet-family inverters (they differ in ``block``)."""

    block: ClassVar[BlockKind] = "B"
    paper: ClassVar[str] = (
        "Mai, Cao, Yuen, Jain: On the reconstruction of face images from deep face "
        "templates, IEEE TPAMI 41(5), 2018"
    )
    paper_url: ClassVar[str] = "https://arxiv.org/abs/1703.00832"
    output_range: ClassVar[tuple[float, float]] = (-1.0, 1.0)
    init_seed_salt: ClassVar[int | None] = 0x4E62
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": NBNET_QUICK,
        "smoke": {
            **NBNET_QUICK,
            "channels": (32, 32, 16, 16, 16, 16),
            "pixel_steps": 2,
            "perceptual_steps": 1,
            "perceptual_layer": None,
        },
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.options.pixel_steps == 0 and self.options.perceptual_steps == 0:
            raise OptionsError(
                f"inverter {self.name!r}: pixel_steps and perceptual_steps are both 0",
                hint="give at least one stage some steps",
            )
        self._perceptual: PerceptualNet | None = None
        self._perceptual_used = "none (perceptual_steps=0)"

    def build_network(self) -> nn.Module:
        """The NbNet (or D-CNN) decoder for this encoder's templates and input size."""
        o = self.options
        net = o.network()
        return NbNet(
            self.encoder.embedding_dim,
            self.output_size,
            block=self.block,
            init_std=o.init_std,
            **net,
        )

    def prepare(self, data: TrainingData, ctx: Any) -> TrainingData:
        """Resolve the perceptual network F when there is a perceptual stage."""
        o = self.options
        if o.perceptual_steps:
            self._perceptual = resolve_perceptual(
                o.perceptual_net, o.perceptual_layer, self.encoder, self.factory, self.device
            )
            self._perceptual_used = self._perceptual.description
        return data

    def frozen_components(self) -> tuple[Any, ...]:
        """The perceptual network's modules."""
        return tuple(self._perceptual.modules) if self._perceptual is not None else ()

    def stages(self, data: TrainingData) -> list[Stage]:
        """The MAE stage, then the perceptual fine-tune (each restarts the lr schedule)."""
        o = self.options
        schedule = StepDecay(factor=o.lr_decay, every=o.lr_decay_every)
        plan = [("pixel", self._pixel_loss, o.pixel_steps, o.lr)]
        plan.append(
            ("perceptual", self._perceptual_loss, o.perceptual_steps, o.perceptual_lr or o.lr)
        )
        return [
            Stage(
                loss,
                name=name,
                epochs=o.max_epochs,
                steps=steps,
                optimizer=OptimizerSpec(name="adam", lr=lr, betas=o.betas),
                schedule=schedule,
            )
            for name, loss, steps, lr in plan
            if steps
        ]

    def fit_details(self) -> dict[str, Any]:
        """The perceptual network used (and its map)."""
        used = self._perceptual_used
        if self._perceptual is not None and self._perceptual.layer is not None:
            used += f", map {self._perceptual.layer}"
        return {"perceptual_network": used}

    def load_details(self, details: dict[str, Any]) -> None:
        """Restore the perceptual network's description."""
        self._perceptual_used = str(details.get("perceptual_network", self._perceptual_used))

    def threat_model(self) -> str:
        """White-box when the perceptual stage uses the attacked encoder's maps."""
        o = self.options
        planned = o.perceptual_net
        if planned == "auto":
            planned = "vgg19" if vgg19_weights_path().is_file() else "attacked"
        white = o.perceptual_steps > 0 and planned in ("attacked", self.encoder.name)
        return "white-box" if white else "black-box"

    def provenance(self) -> dict[str, Any]:
        """Architecture, paper, and which perceptual network the option resolves to."""
        planned = self.options.perceptual_net
        if planned == "auto":
            planned = "vgg19" if vgg19_weights_path().is_file() else "attacked"
        return {
            **super().provenance(),
            "perceptual_net_option": f"{self.options.perceptual_net} -> {planned}",
        }

    def _pixel_loss(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Any]]:
        templates, images = batch
        recon = self.model(templates.float())
        loss = mae_loss(recon, self.targets(images) * 2.0 - 1.0)
        return loss, {"mae": loss.detach()}

    def _perceptual_loss(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Any]]:
        templates, images = batch
        net = self._perceptual
        assert net is not None
        target = self.targets(images)
        recon = (self.model(templates.float()) + 1.0) / 2.0
        with torch.no_grad():
            f_target = net.features(target)
        loss = half_squared_l2(net.features(recon), f_target)
        mae = (recon - target).abs().mean() * 2.0  # on the [-1, 1] scale
        logs = {"perceptual": loss.detach(), "mae": mae.detach()}
        if self.options.perceptual_pixel_weight:
            loss = loss + self.options.perceptual_pixel_weight * mae
        return loss, logs


class NbNetAInverter(_NbNetInverter):
    """NbNet-A (Mai et al., TPAMI 2018): neighborly deconvolution blocks A, MAE then perceptual."""

    name: ClassVar[str] = "nbnet-a"
    block: ClassVar[BlockKind] = "A"


class NbNetBInverter(_NbNetInverter):
    """NbNet-B (Mai et al., TPAMI 2018): DenseNet-like blocks B, MAE then perceptual loss."""

    name: ClassVar[str] = "nbnet-b"
    block: ClassVar[BlockKind] = "B"


class DcnnInverter(_NbNetInverter):
    """D-CNN (Mai et al., TPAMI 2018): NbNet's plain deconvolution baseline, MAE then perceptual."""

    name: ClassVar[str] = "dcnn"
    block: ClassVar[BlockKind] = "dcnn"
