"""Reusable differentiable losses for training inverters.

All image losses take ``(B, C, H, W)`` float tensors and return a scalar tensor, averaged
over every element (so "squared L2" losses are mean squared errors: their scale does not
depend on the image size). SSIM lives in :mod:`invbench.metrics.image`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: ``(top, left, bottom, right)`` as fractions of the image: the face (brows to chin,
#: cheek to cheek) in an ArcFace-aligned crop, whose eyes sit at y ≈ 0.46 and mouth
#: corners at y ≈ 0.82, x ≈ 0.37 / 0.63.
ARCFACE_FACE_BOX: tuple[float, float, float, float] = (0.25, 0.2, 0.95, 0.8)


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error (squared L2 per element) between ``(B, ...)`` tensors."""
    return F.mse_loss(pred, target)


def mae_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error (L1, NbNet's Minkowski k = 1) between ``(B, ...)`` tensors."""
    return F.l1_loss(pred, target)


def image_gradients(images: Tensor) -> tuple[Tensor, Tensor]:
    """Forward finite differences of ``(B, C, H, W)`` images.

    Returns:
        ``(dy, dx)``: ``(B, C, H-1, W)`` vertical and ``(B, C, H, W-1)`` horizontal
        differences.

    Example:
        >>> dy, dx = image_gradients(torch.arange(6.0).view(1, 1, 2, 3))
        >>> dy.flatten().tolist(), dx.flatten().tolist()
        ([3.0, 3.0, 3.0], [1.0, 1.0, 1.0, 1.0])
    """
    dy = images[..., 1:, :] - images[..., :-1, :]
    dx = images[..., :, 1:] - images[..., :, :-1]
    return dy, dx


def gradient_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Squared L2 between image gradients: ``mean((∇ŷ − ∇y)²)``, both directions summed.

    Args:
        pred: ``(B, C, H, W)`` reconstructions.
        target: ``(B, C, H, W)`` originals.
    """
    pdy, pdx = image_gradients(pred)
    tdy, tdx = image_gradients(target)
    return F.mse_loss(pdy, tdy) + F.mse_loss(pdx, tdx)


def perceptual_loss(
    pred_feats: Sequence[Tensor],
    target_feats: Sequence[Tensor],
    weights: Sequence[float] | None = None,
) -> Tensor:
    """Squared L2 between feature maps: per-map mean squared errors, weighted and summed.

    Args:
        pred_feats: ``[(B, C_k, h_k, w_k), ...]`` features of the reconstructions.
        target_feats: The same layers for the originals (detach them; no gradient needed).
        weights: One multiplier per map; default ``1 / K`` each (the mean over maps).

    Returns:
        ``Σ_k w_k · mean((φ_k(ŷ) − φ_k(y))²)``.
    """
    if len(pred_feats) != len(target_feats) or not pred_feats:
        raise ValueError(f"got {len(pred_feats)} and {len(target_feats)} feature maps")
    if weights is None:
        weights = [1.0 / len(pred_feats)] * len(pred_feats)
    if len(weights) != len(pred_feats):
        raise ValueError(f"{len(weights)} weights for {len(pred_feats)} feature maps")
    terms = [
        w * F.mse_loss(p, t) for w, p, t in zip(weights, pred_feats, target_feats, strict=True)
    ]
    return torch.stack(terms).sum()


def crop_box(
    images: Tensor,
    box: tuple[float, float, float, float] = ARCFACE_FACE_BOX,
    size: tuple[int, int] | None = None,
) -> Tensor:
    """Crop a fractional box out of ``(B, C, H, W)`` images (differentiable).

    Args:
        images: ``(B, C, H, W)``.
        box: ``(top, left, bottom, right)`` as fractions of ``H`` and ``W``.
        size: Resize the crop to ``(h, w)`` (bilinear, antialiased when shrinking);
            ``None`` keeps the cropped pixels as they are.

    Returns:
        ``(B, C, h, w)``.
    """
    top, left, bottom, right = box
    if not (0.0 <= top < bottom <= 1.0 and 0.0 <= left < right <= 1.0):
        raise ValueError(f"box {box} is not (top, left, bottom, right) within [0, 1]")
    h, w = images.shape[-2:]
    y0, y1 = round(top * h), max(round(bottom * h), round(top * h) + 1)
    x0, x1 = round(left * w), max(round(right * w), round(left * w) + 1)
    crop = images[..., y0:y1, x0:x1]
    if size is not None and tuple(crop.shape[-2:]) != tuple(size):
        shrink = size[0] < crop.shape[-2] or size[1] < crop.shape[-1]
        crop = F.interpolate(
            crop, size=size, mode="bilinear", align_corners=False, antialias=shrink
        )
    return crop


def center_crop(
    images: Tensor, fraction: float = 0.7, size: tuple[int, int] | None = None
) -> Tensor:
    """Central ``fraction`` of the height and width of ``(B, C, H, W)`` images."""
    margin = (1.0 - fraction) / 2.0
    return crop_box(images, (margin, margin, 1.0 - margin, 1.0 - margin), size)


class FeatureLoss:
    """Perceptual loss through a fixed feature extractor φ.

    Args:
        extractor: ``(B, 3, H, W)`` in ``[0, 1]`` -> ``[(B, C_k, h_k, w_k), ...]`` (an
            encoder's ``feature_maps``).
        layers: Indices of the maps to use (default: all).
        weights: One multiplier per used map (default: the mean over maps).
        input_size: Resize inputs to this ``(H, W)`` first (the extractor's input size).

    Call with ``(pred, target)`` images: the target's features are computed without
    gradient. :meth:`against` takes the target's maps instead (computed once per image by
    :class:`~invbench.training.feature_cache.TargetFeatureCache`).
    """

    def __init__(
        self,
        extractor: Callable[[Tensor], list[Tensor]],
        layers: Sequence[int] | None = None,
        weights: Sequence[float] | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        self.extractor = extractor
        self.layers = list(layers) if layers is not None else None
        self.weights = list(weights) if weights is not None else None
        self.input_size = input_size

    def features(self, images: Tensor) -> list[Tensor]:
        """The selected feature maps of ``images``."""
        if self.input_size is not None and tuple(images.shape[-2:]) != tuple(self.input_size):
            images = F.interpolate(
                images, size=self.input_size, mode="bilinear", align_corners=False
            )
        feats = list(self.extractor(images))
        if self.layers is None:
            return feats
        try:
            return [feats[i] for i in self.layers]
        except IndexError:
            raise ValueError(
                f"layers {self.layers} out of range: the extractor gives {len(feats)} maps"
            ) from None

    def target_features(self, target: Tensor) -> list[Tensor]:
        """The selected maps of ``(B, 3, H, W)`` originals, without gradient."""
        with torch.no_grad():
            return [f.detach() for f in self.features(target)]

    def against(self, pred: Tensor, target_feats: Sequence[Tensor]) -> Tensor:
        """Perceptual loss between reconstructions and the originals' maps.

        Args:
            pred: ``(B, 3, H, W)`` reconstructions.
            target_feats: ``[(B, C_k, h_k, w_k), ...]`` from :meth:`target_features`, or
                a cache of them.
        """
        return perceptual_loss(self.features(pred), target_feats, self.weights)

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        """Perceptual loss between ``(B, 3, H, W)`` reconstructions and originals."""
        return self.against(pred, self.target_features(target))


def _modules_of(obj: Any) -> list[nn.Module]:
    if isinstance(obj, nn.Module):
        return [obj]
    return (
        [v for v in vars(obj).values() if isinstance(v, nn.Module)]
        if hasattr(obj, "__dict__")
        else []
    )


@contextmanager
def frozen(*objects: Any) -> Iterator[None]:
    """Turn off ``requires_grad`` of the modules in ``objects`` for the block, then restore.

    ``objects`` are modules, or components whose attributes hold modules (an encoder
    used as a perceptual network): gradients still flow through them to their inputs,
    but no weight gradients are computed or accumulated.
    """
    params = [p for obj in objects for m in _modules_of(obj) for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)
