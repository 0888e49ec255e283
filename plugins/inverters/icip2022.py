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

Profiles: ``paper`` is the defaults above (a GPU setting). ``quick`` (:data:`ICIP_QUICK`)
trains a quarter-width network (128 ... 8 filters) that decodes at 56×56 and is resized to
the output size, for 300 batches of 16 (each batch runs the encoder forward and backward,
the dominant cost on a CPU). Its measured results on ORL are the records under
``leaderboards/results/orl/`` (see ``leaderboards/orl.md``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from invbench.components import Encoder, FitContext, Inverter, Options, TrainingData
from invbench.errors import IncompatibleComponentsError
from invbench.metrics.image import ssim
from invbench.registry import ComponentFactory
from invbench.training import OptimizerSpec, Stage, StepDecay, frozen, mse_loss, train
from invbench.training.checkpoint import mix_seed
from invbench_plugins.inverters.icip2022_model import PAPER_CHANNELS, Icip2022Net

logger = logging.getLogger(__name__)


class Icip2022Options(Options):
    """Options of ``icip2022`` (defaults: the paper's settings, or our choice where silent)."""

    geometry: Literal["auto", "native", "resize"] = Field(
        "auto",
        description="native: blocks sized for the output (112 -> 7x7 start); resize: the "
        "112x112 net, then a bilinear resize; auto: native where possible",
    )
    build_size: tuple[int, int] | None = Field(
        None,
        description="with geometry=resize: the size the network decodes at before the "
        "bilinear resize to the output size (default: the paper's size)",
    )
    channels: tuple[int, ...] = Field(
        PAPER_CHANNELS, description="filters of the six blocks (paper: 512 ... 16)"
    )
    deconv_kernel: int = Field(4, ge=2, description="kernel of the doubling deconvolutions")
    batch_size: int = Field(64, ge=1, description="not given by the paper")
    epochs: int = Field(30, ge=1, description="not given by the paper")
    max_steps: int | None = Field(None, ge=1, description="also stop after this many batches")
    lr: float = Field(1e-3, gt=0)
    lr_decay: float = Field(0.5, gt=0, le=1, description="lr factor every lr_decay_epochs")
    lr_decay_epochs: int = Field(10, ge=0, description="epochs between lr decays (0: none)")
    dssim_weight: float = Field(0.1, ge=0, description="alpha of Eq. 4")
    id_weight: float = Field(0.005, ge=0, description="beta of Eq. 4 (needs forward_torch)")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="held-out share (paper: 10 %)")
    checkpoint_every: int = Field(1000, ge=0, description="steps between checkpoints")


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


class Icip2022Inverter(Inverter):
    """ICIP'22 CNN (Otroshi Shahreza et al., ICIP 2022): MSE + DSSIM + white-box ID loss."""

    name: ClassVar[str] = "icip2022"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "ICIP'22 CNN (Otroshi Shahreza et al., ICIP 2022): deconv + residual conv blocks, "
        "MSE + 0.1 DSSIM + 0.005 ID loss; white-box (needs a differentiable encoder)"
    )
    Options: ClassVar[type[Options]] = Icip2022Options
    profiles: ClassVar[dict[str, dict[str, Any]]] = {"quick": ICIP_QUICK, "paper": {}}

    def __init__(
        self,
        encoder: Encoder,
        options: Options | None = None,
        *,
        device: str | torch.device = "cpu",
        factory: ComponentFactory | None = None,
    ) -> None:
        super().__init__(encoder, options, device=device, factory=factory)
        if self.opts.id_weight > 0 and not encoder.differentiable:
            raise IncompatibleComponentsError(
                f"inverter 'icip2022' is a white-box attack: its ID loss backpropagates "
                f"through the attacked encoder, but encoder {encoder.name!r} has no "
                "differentiable path (differentiable = False)",
                hint="attack a differentiable encoder, or set id_weight=0 (then it is no "
                "longer the paper's loss)",
            )
        self.model = self._build(seed=0)

    @property
    def opts(self) -> Icip2022Options:
        """The validated options."""
        assert isinstance(self.options, Icip2022Options)
        return self.options

    def _build(self, seed: int) -> Icip2022Net:
        """A freshly initialised network (CPU RNG seeded with ``seed``) on the device."""
        opts = self.opts
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = Icip2022Net(
                self.encoder.embedding_dim,
                tuple(self.output_size),
                geometry=opts.geometry,
                build_size=opts.build_size,
                channels=tuple(opts.channels),
                deconv_kernel=opts.deconv_kernel,
            )
        return model.to(self.device)

    def _loss(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Any]]:
        """Eq. 4 on a batch ``(templates (B, D), uint8 images (B, 3, H, W))``."""
        templates, images = batch
        opts = self.opts
        target = images.float() / 255.0
        if tuple(target.shape[-2:]) != tuple(self.output_size):
            target = F.interpolate(target, size=self.output_size, mode="bilinear", antialias=True)
        recon = self.model(templates.float())
        mse = mse_loss(recon, target)
        dssim = ((1.0 - ssim(recon, target)) / 2.0).mean()
        loss = mse + opts.dssim_weight * dssim
        parts: dict[str, Any] = {"mse": mse.detach(), "dssim": dssim.detach()}
        if opts.id_weight > 0:
            with frozen(self.encoder):
                emb = self.encoder.forward_torch(recon)
            ident = (emb - templates.float()).pow(2).sum(dim=1).mean()
            loss = loss + opts.id_weight * ident
            parts["id"] = ident.detach()
        return loss, parts

    def fit(self, data: TrainingData, ctx: FitContext) -> dict[str, Any]:
        """Train with Eq. 4; see the module docstring.

        Args:
            data: ``templates`` ``(N, D)`` and uint8 ``images`` ``(N, 3, H, W)``.
            ctx: Seed, checkpoint folder, progress flag.

        Returns:
            The trainer's summary plus ``train_seconds`` (wall time of this call) and
            ``architecture``.
        """
        t0 = time.perf_counter()
        opts = self.opts
        self.model = self._build(seed=mix_seed(ctx.seed, 0x1C1B))
        stage = Stage(
            self._loss,
            name="eq4",
            epochs=opts.epochs,
            steps=opts.max_steps,
            optimizer=OptimizerSpec(name="adam", lr=opts.lr),
            schedule=StepDecay(factor=opts.lr_decay, every=opts.lr_decay_epochs, unit="epoch"),
        )
        summary = train(
            self.model,
            (data.templates, data.images),
            stage,
            batch_size=opts.batch_size,
            seed=ctx.seed,
            val_fraction=opts.val_fraction if len(data) * opts.val_fraction >= 1 else 0.0,
            checkpoint_dir=ctx.checkpoint_dir,
            checkpoint_every=opts.checkpoint_every,
            progress=ctx.progress,
            device=self.device,
            desc=self.name,
        )
        self.model.eval()
        summary["train_seconds"] = time.perf_counter() - t0
        summary["architecture"] = self.architecture()
        return summary

    def invert(self, templates: Tensor) -> Tensor:
        """``(B, D)`` templates -> ``(B, 3, H, W)`` float32 in ``[0, 1]`` on the CPU."""
        self.model.eval()
        with torch.no_grad():
            y = self.model(templates.float().to(self.device))
        return y.clamp(0.0, 1.0).float().cpu()

    def architecture(self) -> str:
        """One line: geometry, widths and size."""
        m = self.model
        n = sum(p.numel() for p in m.parameters())
        return (
            f"ICIP'22 CNN {self.encoder.embedding_dim}-D -> {m.build_size} ({m.geometry}) -> "
            f"{m.output_size}, channels {tuple(self.opts.channels)}, {n:,} parameters"
        )

    def state_dict(self) -> dict[str, Any]:
        """Network weights and BatchNorm statistics."""
        return {"model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.model.eval()

    def provenance(self) -> dict[str, Any]:
        """Architecture and the paper."""
        return {
            "architecture": self.architecture(),
            "id_loss": "white-box through the attacked encoder's forward_torch"
            if self.opts.id_weight > 0
            else "off (id_weight=0)",
            "papers": "Otroshi Shahreza, Krivokuća Hahn, Marcel: Face reconstruction from "
            "deep facial embeddings using a convolutional neural network, ICIP 2022",
        }
