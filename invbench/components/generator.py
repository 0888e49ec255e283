"""The generator contract: latent codes in, face images out (differentiably)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from invbench.components.base import Component, OptionsT


class Generator(Component[OptionsT]):
    """A pretrained face image generator (DCGAN, StyleGAN2, ...).

    Latents have shape ``(B, n, d)``: ``n`` sub-codes (W+ layers for StyleGAN2, 1 for a
    DCGAN) of ``d`` values each. ``synthesize`` is differentiable and returns
    ``(B, 3, H, W)`` float RGB in ``[0, 1]``.
    """

    family: ClassVar[str] = "generator"

    @property
    def latent_shape(self) -> tuple[int, int]:
        """``(n, d)``: number of sub-codes and their length."""
        raise NotImplementedError

    @property
    def output_size(self) -> tuple[int, int]:
        """``(H, W)`` of generated images."""
        raise NotImplementedError

    def sample_latents(self, n: int, generator: torch.Generator) -> Tensor:
        """Draw ``n`` latents ``(n, *latent_shape)`` from the generator's prior."""
        raise NotImplementedError

    def synthesize(self, latents: Tensor) -> Tensor:
        """``(B, n, d)`` latents -> ``(B, 3, H, W)`` images in ``[0, 1]`` (differentiable)."""
        raise NotImplementedError

    def mean_latent(self, n_samples: int = 4096, seed: int = 0) -> Tensor:
        """Mean of ``n_samples`` prior latents, ``(n, d)``."""
        g = torch.Generator().manual_seed(seed)
        return self.sample_latents(n_samples, g).mean(dim=0)
