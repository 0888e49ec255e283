"""The ``dfd`` inverter: Deep Face Decoder (Križaj, Plesh, Banavar, Schuckers, Štruc; EAAI 2024).

A regression decoder from templates to aligned faces (no GAN loss), trained with Eq. 2::

    L = L_pix + λ_grad·L_grad + λ_perc·L_perc                       (whole image x)
          + λˡ_pix·Lˡ_pix + λˡ_grad·Lˡ_grad + λˡ_perc·Lˡ_perc         (face region xˡ)

* ``L_pix`` = mean squared error of pixels in ``[0, 1]`` (the paper's squared L2, averaged
  per element so the weights do not depend on the image size);
* ``L_grad`` = mean squared error of forward finite differences (both directions summed);
* ``L_perc`` = squared L2 between feature maps of a perceptual network φ, one mean per map,
  each map divided by ``E[φ_k(x)²]`` (estimated once, at the start of training, on up to
  256 training images) so that maps of every scale and every φ count alike; then the mean
  over maps (a mean relative squared error, about 1 for unrelated images). φ is, per
  ``perceptual``: ``"white-box"`` = the attacked encoder's internal maps
  (``Encoder.feature_maps``, never its template); the name of another registered
  encoder = black-box φ; ``"none"``;
* ``xˡ`` = the crop ``face_box`` (brows to chin in an ArcFace-aligned crop); the pixel and
  gradient terms use its pixels as they are, the perceptual term resizes it to φ's input
  size.

The originals' side of each perceptual term, ``φ_k(x)`` and ``φ_k(xˡ)``, is computed once per
training image before the first step (:class:`~invbench.training.TargetFeatureCache`, same
numbers as computing it in every step) when it fits the cache's memory budget and training
draws each image more than once.

The λ values are lost from the paper; ours (options ``lambda_*``) make the perceptual term
the largest early in training (the paper calls it "paramount"): ``λ_grad = 1``,
``λ_perc = 0.8``, ``λˡ_pix = 1``, ``λˡ_grad = 1``, ``λˡ_perc = 0.8``. ``λ_perc`` is on the
scale of the relative error above (how 0.8 was chosen is in ``docs/methods.md``). The
architecture is in :mod:`.dfd_model`.

Profiles: the defaults (``paper``) train the full-width decoder (≈ 22 M parameters for
192-D templates) for 40 epochs, batch 64, Adam lr 1e-4 halved every 10 epochs, with both
perceptual terms: a GPU setting (the paper's own training settings are lost too). ``quick``
trains a ¼-width decoder for 300 steps of batch 32 (lr 1e-3 halved every 100 steps) without
the face-region perceptual term (one perceptual pass per step instead of two), so that a
run takes a few CPU minutes; ``smoke`` is a tiny decoder for conformance checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from invbench.components import (
    DecoderInverter,
    DecoderOptions,
    Encoder,
    FitContext,
    TrainingData,
)
from invbench.errors import IncompatibleComponentsError
from invbench.seeding import mix_seed
from invbench.training import (
    ARCFACE_FACE_BOX,
    FeatureLoss,
    OptimizerSpec,
    Stage,
    StepDecay,
    TargetFeatureCache,
    crop_box,
    gradient_loss,
    mse_loss,
)
from invbench.training.feature_cache import budget_bytes as feature_cache_budget
from invbench_plugins.inverters.dfd_model import DFDDecoder

logger = logging.getLogger(__name__)

#: Training images used to estimate the perceptual layer weights.
PERC_CALIBRATION_IMAGES = 256


class DFDOptions(DecoderOptions):
    """Options of the ``dfd`` inverter (defaults: the ``paper`` profile)."""

    width: float = Field(1.0, gt=0, le=4, description="decoder channel multiplier")
    upsample_stages: int = Field(4, ge=1, le=5, description="stages that double the size")
    upsample: Literal["nearest", "bilinear"] = "nearest"
    perceptual: str = Field(
        "white-box",
        description="perceptual network: 'white-box' (the attacked encoder's feature "
        "maps), the name of another encoder (black-box), or 'none'",
    )
    perceptual_options: dict[str, Any] = Field(
        default_factory=dict, description="options of a black-box perceptual encoder"
    )
    perceptual_layers: tuple[int, ...] | None = Field(
        None, description="indices of the feature maps used (default: all)"
    )
    lambda_grad: float = Field(1.0, ge=0)
    lambda_perc: float = Field(0.8, ge=0)
    lambda_pix_local: float = Field(1.0, ge=0)
    lambda_grad_local: float = Field(1.0, ge=0)
    lambda_perc_local: float = Field(0.8, ge=0)
    face_box: tuple[float, float, float, float] = Field(
        ARCFACE_FACE_BOX, description="face region (top, left, bottom, right) fractions"
    )
    epochs: int = Field(40, ge=1, description="passes over the training split")
    steps: int | None = Field(None, ge=1, description="optimizer-step cap (None: none)")
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    lr_decay: float = Field(0.5, gt=0, le=1, description="step-decay factor")
    lr_decay_every: int = Field(10, ge=0, description="decay period (0: constant)")
    lr_decay_unit: Literal["step", "epoch"] = "epoch"
    max_train_images: int | None = Field(None, ge=1, description="random subset cap")
    checkpoint_every: int = Field(2000, ge=0, description="checkpoint period in steps")


#: A few CPU minutes: a ¼-width decoder, 300 steps of batch 32, no face-region perceptual term.
DFD_QUICK: dict[str, Any] = {
    "width": 0.25,
    "lambda_perc_local": 0.0,
    "epochs": 100,
    "steps": 300,
    "batch_size": 32,
    "lr": 1e-3,
    "lr_decay_every": 100,
    "lr_decay_unit": "step",
    "checkpoint_every": 100,
}


class DFDInverter(DecoderInverter[DFDOptions]):
    """DFD, Deep Face Decoder (Križaj et al., EAAI 2024): inverted-VGG regression decoder.

    Pixel + gradient + perceptual loss on the image and the face region; see the module.
    """

    name: ClassVar[str] = "dfd"
    version: ClassVar[str] = "2"  # 2: lambda_perc 0.8 on the relative perceptual scale
    paper: ClassVar[str] = (
        "Križaj, Plesh, Banavar, Schuckers, Štruc: Deep face decoder: towards understanding "
        "the embedding space of convolutional networks through visual reconstruction of deep "
        "face templates, Engineering Applications of Artificial Intelligence, 2024"
    )
    paper_url: ClassVar[str] = "https://doi.org/10.1016/j.engappai.2024.107941"
    init_seed_salt: ClassVar[int | None] = 0xDFD
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": DFD_QUICK,
        "smoke": {**DFD_QUICK, "width": 0.0625, "upsample_stages": 2, "steps": 2},
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.options.perceptual == "white-box" and not _has_maps(self.encoder):
            raise IncompatibleComponentsError(
                f"dfd: perceptual=white-box needs the attacked encoder's feature maps, but "
                f"encoder {self.encoder.name!r} exposes none (a black-box encoder)",
                hint="use --inverter-arg perceptual=<another encoder> (black-box perceptual "
                "loss), perceptual=none, or attack through --surrogate <encoder>",
            )
        self._phi: Encoder | None = None
        self._perc: FeatureLoss | None = None
        self._target_feats: dict[str, TargetFeatureCache | None] = {}
        self._weights: dict[str, float] = {}

    def build_network(self) -> nn.Module:
        """The DFD decoder for this encoder's templates and input size."""
        net = self.options.model_dump(include={"width", "upsample_stages", "upsample"})
        return DFDDecoder(self.encoder.embedding_dim, self.output_size, **net)

    def threat_model(self) -> str:
        """White-box when φ is the attacked encoder's own feature maps."""
        return "white-box" if self.options.perceptual == "white-box" else "black-box"

    def perceptual_network(self) -> Encoder | None:
        """φ: the attacked encoder (white-box), another encoder (black-box) or ``None``.

        Raises:
            IncompatibleComponentsError: When φ exposes no feature maps, or a black-box
                network is named but no component factory is available.
        """
        choice = self.options.perceptual
        if choice == "none":
            return None
        if choice == "white-box":
            net = self.encoder
        elif self._phi is not None:
            net = self._phi
        elif self.factory is None:
            raise IncompatibleComponentsError(
                f"dfd: perceptual network {choice!r} needs a component factory",
                hint="build the inverter through invbench's factory, or use perceptual="
                "white-box / none",
            )
        else:
            net = self.factory.build("encoder", choice, dict(self.options.perceptual_options))
        if not _has_maps(net):
            raise IncompatibleComponentsError(
                f"dfd: encoder {net.name!r} exposes no feature maps for the perceptual loss",
                hint="choose another encoder with --inverter-arg perceptual=NAME, or "
                "perceptual=none",
            )
        self._phi = net
        return net

    def fit(self, data: TrainingData, ctx: FitContext) -> dict[str, Any]:
        """Train (see :class:`~invbench.components.DecoderInverter`); drops the feature cache."""
        try:
            return super().fit(data, ctx)
        finally:
            self._target_feats = {}

    def prepare(self, data: TrainingData, ctx: FitContext) -> TrainingData:
        """Subset the data, resolve φ, weigh its maps, compute the originals' maps once."""
        o = self.options
        if o.max_train_images is not None and len(data) > o.max_train_images:
            gen = torch.Generator().manual_seed(mix_seed(ctx.seed, 11))
            keep = torch.randperm(len(data), generator=gen)[: o.max_train_images].sort().values
            data = TrainingData(data.templates[keep], data.images[keep])
        phi = self.perceptual_network()
        self._perc = self._feature_loss(phi, data.images) if phi is not None else None
        perc = self._perc is not None
        self._weights = {
            "pix": 1.0,
            "grad": o.lambda_grad,
            "perc": o.lambda_perc if perc else 0.0,
            "pix_local": o.lambda_pix_local,
            "grad_local": o.lambda_grad_local,
            "perc_local": o.lambda_perc_local if perc else 0.0,
        }
        self._target_feats, budget = {}, feature_cache_budget()
        # each image is drawn about `passes` times; at most once, a cache saves nothing
        passes = o.epochs if o.steps is None else min(o.epochs, o.steps * o.batch_size / len(data))
        for term, crop in (("perc", None), ("perc_local", self._face_region)):
            if self._weights[term] > 0 and passes > 1:
                cache = TargetFeatureCache.build(
                    data.images,
                    partial(self._target_perc, crop=crop),
                    o.batch_size,
                    budget=budget,
                    device=self.device,
                    progress=ctx.progress,
                    desc=f"dfd: {term} target features",
                )
                budget -= cache.nbytes if cache is not None else 0
                self._target_feats[term] = cache
        return data

    def training_tensors(self, data: TrainingData) -> tuple[Tensor, ...]:
        """``(templates (N, D) float32, uint8 images, sample indices (N,) int64)``."""
        return data.templates.float(), data.images, torch.arange(len(data))

    def frozen_components(self) -> tuple[Any, ...]:
        """φ, the perceptual network."""
        return (self._phi,) if self._phi is not None else ()

    def stages(self, data: TrainingData) -> list[Stage]:
        """One stage of Eq. 2 with Adam and a step-decayed learning rate."""
        o = self.options
        adam = OptimizerSpec(lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        decay = StepDecay(o.lr_decay, o.lr_decay_every, o.lr_decay_unit)
        return [Stage(self._loss, "dfd", o.epochs, o.steps, adam, decay)]

    def fit_details(self) -> dict[str, Any]:
        """The loss weights in use (terms with weight 0 are left out)."""
        return {"weights": {k: v for k, v in self._weights.items() if v > 0}}

    def _face_region(self, images: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> the ``face_box`` crop ``(B, C, h, w)``."""
        return crop_box(images, self.options.face_box)

    def _target_perc(
        self, images: Tensor, crop: Callable[[Tensor], Tensor] | None = None
    ) -> list[Tensor]:
        """φ's maps of the originals ``images`` (uint8 ``(B, 3, H, W)``), or of their crop."""
        assert self._perc is not None, "target features without a perceptual network"
        x = self.targets(images)
        return self._perc.target_features(x if crop is None else crop(x))

    def _loss(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 2 on ``(templates (B, D), uint8 images (B, 3, H, W), indices (B,))``."""
        emb, img, index = batch
        x = self.targets(img)
        x_hat = self.model(emb)

        def perc(term: str, a: Tensor, b: Tensor) -> Tensor:  # only when its weight is > 0
            assert self._perc is not None, "a perceptual term without a perceptual network"
            cache = self._target_feats.get(term)
            return self._perc(a, b) if cache is None else self._perc.against(a, cache[index])

        x_l, x_hat_l = self._face_region(x), self._face_region(x_hat)
        terms = {
            "pix": lambda: mse_loss(x_hat, x),
            "grad": lambda: gradient_loss(x_hat, x),
            "perc": lambda: perc("perc", x_hat, x),
            "pix_local": lambda: mse_loss(x_hat_l, x_l),
            "grad_local": lambda: gradient_loss(x_hat_l, x_l),
            "perc_local": lambda: perc("perc_local", x_hat_l, x_l),
        }
        parts = {k: fn() for k, fn in terms.items() if self._weights[k] > 0}
        total = sum(self._weights[k] * v for k, v in parts.items())
        return total, parts  # type: ignore[return-value]

    def _feature_loss(self, phi: Encoder, images: Tensor) -> FeatureLoss:
        """Perceptual loss through ``phi`` with per-map weights ``1 / E[φ_k(x)²]``."""
        extractor = FeatureLoss(
            phi.feature_maps, self.options.perceptual_layers, None, phi.input_size
        )
        sample = images[:PERC_CALIBRATION_IMAGES].float().div(255.0)
        energy: list[float] = []
        with torch.no_grad():
            for i in range(0, len(sample), 64):
                feats = extractor.features(sample[i : i + 64].to(self.device))
                sums = [float(f.float().square().mean()) * f.shape[0] for f in feats]
                energy = sums if not energy else [a + b for a, b in zip(energy, sums, strict=True)]
        k = len(energy)
        extractor.weights = [len(sample) / (k * max(e, 1e-12)) for e in energy]
        logger.info("dfd: perceptual map weights %s", [f"{w:.3g}" for w in extractor.weights])
        return extractor


def _has_maps(encoder: Encoder) -> bool:
    """Whether ``encoder`` overrides :meth:`Encoder.feature_maps`."""
    return type(encoder).feature_maps is not Encoder.feature_maps
