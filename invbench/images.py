"""Image tensor helpers shared by the runner, the metrics and the plugins: resize, convert."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Interpolation modes :func:`resize` accepts (``bilinear`` and ``bicubic`` antialiased).
RESIZE_MODES = ("bilinear", "bicubic", "area", "nearest")


def resize(images: Tensor, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Resize ``(B, C, H, W)`` float images in ``[0, 1]`` to ``size``, clamped to ``[0, 1]``.

    ``bilinear`` and ``bicubic`` are antialiased (``align_corners=False``). Images already
    at ``size`` are returned as they are. Differentiable.

    >>> resize(torch.ones(1, 3, 8, 8), (4, 4)).shape
    torch.Size([1, 3, 4, 4])
    """
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if mode in ("bilinear", "bicubic"):
        out = F.interpolate(images, size=size, mode=mode, align_corners=False, antialias=True)
    elif mode in RESIZE_MODES:
        out = F.interpolate(images, size=size, mode=mode)
    else:
        raise ValueError(f"unknown resize mode {mode!r}; one of {RESIZE_MODES}")
    return out.clamp(0.0, 1.0)


def to_uint8(images: Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` float in ``[0, 1]`` -> a uint8 array of the same shape (rounded)."""
    return (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
