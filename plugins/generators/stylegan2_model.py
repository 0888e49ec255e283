"""StyleGAN2 generator (Karras et al., CVPR 2020) as plain ``nn.Module``s, in plain torch.

The module names and parameter shapes follow the community PyTorch checkpoint layout of
rosinality's stylegan2-pytorch (``g_ema`` state dicts, e.g. ``stylegan2-ffhq-config-f.pt``),
so such a state dict loads with ``load_state_dict(strict=True)``:

- ``style.{1..n_mlp}.{weight,bias}``: the mapping MLP (``style.0`` is a pixel norm);
- ``input.input``: the learned ``(1, C, 4, 4)`` constant;
- ``conv1.*``, ``to_rgb1.*``: the 4x4 layer and its RGB output;
- ``convs.{2i,2i+1}.*``, ``to_rgbs.{i}.*``: per resolution ``8 * 2**i`` an upsampling
  styled conv, a styled conv and an RGB output whose skip path is upsampled;
- ``*.conv.weight`` ``(1, out, in, k, k)``, ``*.conv.modulation.{weight,bias}``,
  ``*.noise.weight`` ``(1,)``, ``*.activate.bias`` ``(out,)``, ``to_rgb*.bias``
  ``(1, 3, 1, 1)``, blur kernels as buffers ``*.blur.kernel`` / ``*.upsample.kernel``;
- ``noises.noise_{i}``: fixed ``(1, 1, r, r)`` noise images (the deterministic noise).

Written from the paper's equations; the layers are in
:mod:`invbench_plugins.generators.stylegan2_layers`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from invbench_plugins.generators.stylegan2_layers import (
    ConstantInput,
    EqualLinear,
    PixelNorm,
    StyledConv,
    ToRGB,
)

NoiseMode = Literal["const", "random", "zero"]

#: Channel width per resolution of the official configs (``channel_multiplier`` = 2 is
#: config-f, the FFHQ models; resolutions up to 32 always have 512 channels).
_BASE_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


def default_channels(size: int, channel_multiplier: int = 2) -> dict[int, int]:
    """Channels per resolution ``4 .. size`` of the official StyleGAN2 configs."""
    return {
        r: c if r <= 32 else c * channel_multiplier for r, c in _BASE_CHANNELS.items() if r <= size
    }


class StyleGAN2(nn.Module):
    """StyleGAN2 generator: mapping network ``z -> w`` and synthesis network ``W+ -> image``.

    Args:
        size: Output resolution, a power of two ``>= 8``.
        style_dim: Width of ``z`` and ``w`` (512 for the official models).
        n_mlp: Number of mapping layers (8).
        channels: Channels per resolution ``{4: ..., 8: ..., ..., size: ...}`` (default:
            :func:`default_channels` with multiplier 2).
        blur_kernel: FIR taps of the up-sampling filters.
        lr_mlp: Learning-rate multiplier of the mapping layers (0.01).

    Attributes:
        n_latent: Number of W+ sub-codes, ``2·log2(size) − 2``.
        num_layers: Number of noise inputs, ``2·log2(size) − 3``.
    """

    def __init__(
        self,
        size: int,
        style_dim: int = 512,
        n_mlp: int = 8,
        channels: Mapping[int, int] | None = None,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        lr_mlp: float = 0.01,
    ) -> None:
        super().__init__()
        log_size = int(math.log2(size))
        if size < 8 or 2**log_size != size:
            raise ValueError(f"size must be a power of two >= 8, not {size}")
        chans = dict(channels) if channels is not None else default_channels(size)
        missing = [2**i for i in range(2, log_size + 1) if 2**i not in chans]
        if missing:
            raise ValueError(f"channels lack resolutions {missing}")
        self.size, self.style_dim, self.n_mlp = size, style_dim, n_mlp
        self.channels = {2**i: int(chans[2**i]) for i in range(2, log_size + 1)}
        self.n_latent = 2 * log_size - 2
        self.num_layers = 2 * log_size - 3

        self.style = nn.Sequential(
            PixelNorm(),
            *[
                EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True)
                for _ in range(n_mlp)
            ],
        )
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(
            self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel
        )
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        in_ch = self.channels[4]
        for i in range(3, log_size + 1):
            out_ch = self.channels[2**i]
            self.convs.append(
                StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, blur_kernel=blur_kernel)
            )
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, style_dim, blur_kernel=blur_kernel))
            in_ch = out_ch

    def mapping(self, z: Tensor) -> Tensor:
        """Mapping network: ``(B, style_dim)`` Gaussian ``z`` -> ``(B, style_dim)`` ``w``."""
        return self.style(z)

    def _noise(self, i: int, batch: int, like: Tensor, mode: NoiseMode) -> Tensor | None:
        if mode == "zero":
            return None
        fixed: Tensor = getattr(self.noises, f"noise_{i}")
        if mode == "const":
            return fixed
        return torch.randn(batch, 1, *fixed.shape[-2:], device=like.device, dtype=like.dtype)

    def synthesis(self, latents: Tensor, noise_mode: NoiseMode = "const") -> Tensor:
        """Synthesis network: W+ latents -> images.

        Args:
            latents: ``(B, n_latent, style_dim)`` W+ codes (one ``w`` per layer input:
                conv1, to_rgb1, then per resolution two convs and a to_rgb that shares
                its code with the next resolution's first conv).
            noise_mode: ``"const"``: the fixed noise buffers (deterministic);
                ``"random"``: fresh Gaussian noise; ``"zero"``: no noise.

        Returns:
            ``(B, 3, size, size)`` images, roughly in ``[-1, 1]`` (not clamped).
        """
        if latents.ndim != 3 or latents.shape[1:] != (self.n_latent, self.style_dim):
            raise ValueError(
                f"expected W+ latents (B, {self.n_latent}, {self.style_dim}), "
                f"got {tuple(latents.shape)}"
            )
        b = latents.shape[0]
        out = self.input(b)
        out = self.conv1(out, latents[:, 0], self._noise(0, b, out, noise_mode))
        skip = self.to_rgb1(out, latents[:, 1])
        i = 1
        for j, to_rgb in enumerate(self.to_rgbs):
            out = self.convs[2 * j](out, latents[:, i], self._noise(2 * j + 1, b, out, noise_mode))
            out = self.convs[2 * j + 1](
                out, latents[:, i + 1], self._noise(2 * j + 2, b, out, noise_mode)
            )
            skip = to_rgb(out, latents[:, i + 2], skip)
            i += 2
        return skip

    def forward(self, z: Tensor, noise_mode: NoiseMode = "const") -> Tensor:
        """``(B, style_dim)`` ``z`` -> ``(B, 3, size, size)`` (``w`` broadcast to W+)."""
        w = self.mapping(z)
        return self.synthesis(w[:, None].expand(-1, self.n_latent, -1), noise_mode)


def mix_latents(first: Tensor, second: Tensor, crossover: int) -> Tensor:
    """Style mixing: sub-codes ``< crossover`` from ``first``, the rest from ``second``.

    Args:
        first: ``(B, n, d)`` W+ codes.
        second: ``(B, n, d)`` W+ codes.
        crossover: Index of the first sub-code taken from ``second`` (``0 .. n``).

    Returns:
        ``(B, n, d)``.
    """
    if first.shape != second.shape:
        raise ValueError(f"shapes differ: {tuple(first.shape)} vs {tuple(second.shape)}")
    n = first.shape[1]
    if not 0 <= crossover <= n:
        raise ValueError(f"crossover {crossover} outside 0..{n}")
    return torch.cat([first[:, :crossover], second[:, crossover:]], dim=1)


def infer_config(state: Mapping[str, Tensor]) -> dict[str, object]:
    """Read the architecture of a community ``g_ema`` state dict from its tensor shapes.

    Returns:
        ``{"size", "style_dim", "n_mlp", "channels"}``, the keyword arguments of
        :class:`StyleGAN2`.

    Raises:
        KeyError: When an expected key is missing (not a StyleGAN2 generator state dict).
    """
    style_ids = sorted(
        int(m.group(1)) for k in state if (m := re.fullmatch(r"style\.(\d+)\.weight", k))
    )
    n_rgbs = len({m.group(1) for k in state if (m := re.fullmatch(r"to_rgbs\.(\d+)\..*", k))})
    if not style_ids or "input.input" not in state:
        raise KeyError("no 'style.N.weight' / 'input.input' keys")
    channels = {4: int(state["input.input"].shape[1])}
    for j in range(n_rgbs):
        channels[2 ** (j + 3)] = int(state[f"convs.{2 * j}.conv.weight"].shape[1])
    return {
        "size": 2 ** (n_rgbs + 2),
        "style_dim": int(state[f"style.{style_ids[0]}.weight"].shape[1]),
        "n_mlp": len(style_ids),
        "channels": channels,
    }
