"""Losses of the ``mlp-stylegan`` inverter: Eq. 11, the auxiliary encoder's, and their set-up."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invbench.components import Encoder, Generator, TrainingData
from invbench.errors import IncompatibleComponentsError
from invbench.training import FeatureLoss, mse_loss

logger = logging.getLogger(__name__)

#: Mean absolute pixel difference below which ``TrainingData.latents`` count as the
#: inverter's generator's own latents of the training images.
LATENT_MATCH_TOLERANCE = 0.05

PerceptualFn = Callable[[Tensor, Tensor], Tensor]


def pick_perceptual(
    encoder: Encoder, choice: Literal["auto", "lpips", "encoder"], probe: Tensor
) -> tuple[str, PerceptualFn]:
    """Choose the network behind ``L_per``.

    Args:
        encoder: The attacked encoder (its ``feature_maps`` are the substitute).
        choice: ``auto`` (LPIPS when its weights are cached, else the encoder), ``lpips``
            or ``encoder``.
        probe: ``(1, 3, H, W)`` image on the training device to check ``feature_maps``.

    Returns:
        ``(name, loss)``: ``"lpips-alex"`` or ``"encoder-feature-maps"``, and a callable
        ``(pred, target) -> scalar`` on ``(B, 3, H, W)`` images in ``[0, 1]``.

    Raises:
        IncompatibleComponentsError: When the chosen network is unavailable.
    """
    reason = ""
    if choice in ("auto", "lpips"):
        from invbench.metrics.image import load_lpips  # noqa: PLC0415 (heavy, optional)

        status = load_lpips(probe.device)
        if status.model is not None:
            model = status.model
            return "lpips-alex", lambda p, t: model(p * 2 - 1, t * 2 - 1).mean()
        reason = status.reason or "unavailable"
        if choice == "lpips":
            raise IncompatibleComponentsError(
                f"LPIPS is unavailable: {reason}", hint="use perceptual=encoder or auto"
            )
    try:
        encoder.feature_maps(probe)
    except NotImplementedError as exc:
        raise IncompatibleComponentsError(
            f"no perceptual network for L_per: LPIPS {reason or 'not chosen'}, and {exc}",
            hint="attack an encoder with feature maps, or set beta_per=0 to drop L_per",
        ) from None
    if reason:
        logger.warning("L_per: LPIPS unavailable (%s); using encoder-feature-maps", reason)
    return "encoder-feature-maps", FeatureLoss(unit_channel_features(encoder.feature_maps))


def unit_channel_features(
    extractor: Callable[[Tensor], list[Tensor]],
) -> Callable[[Tensor], list[Tensor]]:
    """Wrap a feature extractor so each map is unit-normalised over channels (× sqrt(C)).

    With :class:`~invbench.training.FeatureLoss` (mean squared error per map, mean over
    maps) this gives LPIPS's distance without its learned channel weights: per map, the
    squared distance of channel-normalised features summed over channels and averaged
    over positions, in ``[0, 4]``; so β2 = 0.8 weighs it on LPIPS's scale, whatever the
    encoder's activation magnitudes.
    """

    def features(images: Tensor) -> list[Tensor]:
        return [F.normalize(f, dim=1) * math.sqrt(f.shape[1]) for f in extractor(images)]

    return features


def guide_targets(
    data: TrainingData,
    latent_shape: tuple[int, int],
    decode: Callable[[Tensor], Tensor],
    source: Literal["auto", "latents", "aux"],
    device: torch.device,
) -> tuple[Tensor, Tensor, str]:
    """Which training images have a known generator latent for ``L_guide``.

    ``TrainingData.latents`` rows of the right shape and finite values are used when
    ``source`` is ``latents``, or ``auto`` and they reproduce their images (mean absolute
    difference of ``decode(latents)`` and the images at most
    :data:`LATENT_MATCH_TOLERANCE` on up to 8 samples); the other rows get their target
    from the auxiliary encoder.

    Args:
        data: The training data.
        latent_shape: ``(n, d)`` of the inverter's generator.
        decode: ``(B, n, d)`` latents -> ``(B, 3, H, W)`` images at the data's size.
        source: ``auto``, ``latents`` or ``aux``.
        device: Where ``decode`` runs.

    Returns:
        ``(targets, has_target, description)``: ``(N, n, d)`` latents (zeros where
        unknown), an ``(N,)`` bool mask, and ``"generator-latents"``, ``"aux-encoder"`` or
        ``"generator-latents+aux-encoder"``.

    Raises:
        IncompatibleComponentsError: ``source="latents"`` without usable latents.
    """
    size = len(data)
    targets = torch.zeros(size, *latent_shape)
    mask = torch.zeros(size, dtype=torch.bool)
    lat = data.latents
    usable = lat is not None and tuple(lat.shape[1:]) == tuple(latent_shape)
    if source == "latents" and not usable:
        raise IncompatibleComponentsError(
            f"guide_source=latents needs TrainingData.latents of shape (N, {latent_shape[0]}, "
            f"{latent_shape[1]}); got {None if lat is None else tuple(lat.shape)}",
            hint="train on faces made by the same generator, or use guide_source=auto",
        )
    if usable and source != "aux" and lat is not None:
        mask = torch.isfinite(lat).flatten(1).all(dim=1)
        if source == "auto" and mask.any():
            idx = mask.nonzero().flatten()[:8]
            with torch.no_grad():
                recon = decode(lat[idx].float().to(device)).float().cpu()
            diff = float((recon - data.float_images(idx)).abs().mean())
            if diff > LATENT_MATCH_TOLERANCE:
                logger.warning(
                    "L_guide: TrainingData.latents do not reproduce the training images with "
                    "this generator (mean abs diff %.3f); using the auxiliary encoder",
                    diff,
                )
                mask[:] = False
        targets[mask] = lat[mask].float()
    if bool(mask.all()):
        return targets, mask, "generator-latents"
    return targets, mask, "generator-latents+aux-encoder" if mask.any() else "aux-encoder"


@dataclass
class PaperLoss:
    """Eq. 11 as a trainer loss on batches ``(templates, images, targets, has_target)``.

    ``templates`` ``(B, D)``, ``images`` ``(B, 3, H, W)`` uint8, ``targets`` ``(B, n, d)``
    latents for ``L_guide`` where ``has_target`` ``(B,)`` is true, else ``aux(x)``.

    Attributes:
        transformer: Templates -> ``(l, l_res)``.
        decode: Latents -> ``(B, 3, H, W)`` images in ``[0, 1]`` (differentiable).
        encoder: The attacked encoder (``forward_torch`` for ``L_id``).
        betas: Weights ``rec``, ``per``, ``id``, ``guide``, ``reg``; a zero weight skips
            its term (``guide`` is left out entirely when ``betas["guide"]`` is ``None``).
        perceptual: ``L_per`` (``None``: left out).
        aux: The frozen auxiliary encoder, for rows without a target.
        full: ``False`` keeps only the latent-space terms (the warm-up).
    """

    transformer: nn.Module
    decode: Callable[[Tensor], Tensor]
    encoder: Encoder
    betas: dict[str, float | None]
    perceptual: PerceptualFn | None
    aux: nn.Module | None
    full: bool = True

    def __call__(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Any]]:
        """``batch`` -> ``(total, {term: value})``."""
        templates, images, tgt, has = batch
        b = self.betas
        x = images.float() / 255.0
        latent, res = self.transformer(templates)
        terms: dict[str, Tensor] = {}
        if self.full:
            x_re = self.decode(latent)
            if b["rec"]:
                terms["rec"] = mse_loss(x_re, x)
            if self.perceptual is not None:
                terms["per"] = self.perceptual(x_re, x)
            if b["id"]:
                cos = F.cosine_similarity(self.encoder.forward_torch(x_re), templates, dim=1)
                terms["id"] = (1.0 - cos).mean()
        if b["guide"] is not None:
            if self.aux is not None and not bool(has.all()):
                with torch.no_grad():
                    tgt = torch.where(has[:, None, None], tgt, self.aux(x))
            terms["guide"] = mse_loss(latent, tgt)
        if b["reg"]:
            terms["reg"] = res.pow(2).mean()
        total = sum((float(b[k] or 0.0) * v for k, v in terms.items()), latent.new_zeros(()))
        return total, terms


@dataclass
class AuxLoss:
    """The auxiliary encoder's loss on batches ``(templates, images, ...)``.

    Latent regression on freshly generated faces (``z`` from the generator's prior, drawn
    from the global RNG, which the trainer seeds) plus reconstruction of the training
    images through the generator: ``mse(E(G(l)), l) + mse(G(E(x)), x)``.

    Attributes:
        aux: The auxiliary encoder being trained.
        generator: The frozen generator (``sample_latents``).
        decode: Latents -> images at the training images' size (differentiable).
    """

    aux: nn.Module
    generator: Generator
    decode: Callable[[Tensor], Tensor]

    def __call__(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Any]]:
        """``batch`` -> ``(total, {"aux_latent", "aux_rec"})``."""
        images = batch[1].float() / 255.0
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
        lat = self.generator.sample_latents(images.shape[0], g).to(images.device).float()
        with torch.no_grad():
            fake = self.decode(lat)
        regress = mse_loss(self.aux(fake), lat)
        recon = mse_loss(self.decode(self.aux(images)), images)
        return regress + recon, {"aux_latent": regress, "aux_rec": recon}
