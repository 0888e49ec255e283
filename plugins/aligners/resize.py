"""The ``resize`` aligner: for data that is already aligned, only resize it."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from invbench.components import Aligner
from invbench.components.base import Options


class ResizeOptions(Options):
    """Options of the resize aligner."""

    mode: Literal["bilinear", "bicubic"] = "bilinear"
    antialias: bool = True


class ResizeAligner(Aligner[ResizeOptions]):
    """Resize already-aligned face crops to the output size; every image is ``ok``.

    It detects nothing and moves no landmarks, so use it only for crops that already
    follow the encoder's template (``alignment`` is inherited as ``"arcface"``), such as
    the ``dcgan-faces`` dataset. Aspect ratio is not kept: an ``(H, W)`` crop is
    stretched to ``(h, w)``.
    """

    name: ClassVar[str] = "resize"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Resize already-aligned crops to the output size (no detection)"

    def align(self, images: list[Tensor], output_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Resize each ``(3, H_i, W_i)`` image in ``[0, 1]`` to ``output_size`` ``(h, w)``.

        Returns:
            ``(faces, ok)``: ``(B, 3, h, w)`` float in ``[0, 1]`` and ``(B,)`` all ``True``.
        """
        h, w = output_size
        faces = torch.zeros(len(images), 3, h, w)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(tuple(image.shape), []).append(i)
        for shape, indices in groups.items():
            batch = torch.stack([images[i].float() for i in indices])
            if shape[1:] != (h, w):
                batch = F.interpolate(
                    batch,
                    size=(h, w),
                    mode=self.options.mode,
                    align_corners=False,
                    antialias=self.options.antialias,
                )
            faces[indices] = batch.clamp(0.0, 1.0)
        return faces, torch.ones(len(images), dtype=torch.bool)
