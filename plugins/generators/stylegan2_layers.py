"""Building blocks of the StyleGAN2 generator (Karras et al., CVPR 2020), in plain torch.

Parameter and buffer names follow the community checkpoint layout (see
:mod:`invbench_plugins.generators.stylegan2_model`). The FIR resampling (``upfirdn2d``) is a
zero insertion plus a depthwise convolution instead of a CUDA kernel; the modulated
convolution scales the input and demodulates the output, which equals convolving with the
modulated, demodulated weights of the paper without building a per-sample weight tensor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def make_kernel(taps: Sequence[float]) -> Tensor:
    """Separable 2-D FIR kernel from 1-D ``taps``, normalised to sum 1: ``(k, k)``."""
    k = torch.tensor(list(taps), dtype=torch.float32)
    k2 = k[None, :] * k[:, None]
    return k2 / k2.sum()


def upfirdn2d(
    x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)
) -> Tensor:
    """Upsample by zero insertion, pad, FIR-filter and downsample ``(B, C, H, W)`` images.

    Args:
        x: ``(B, C, H, W)``.
        kernel: ``(kh, kw)`` FIR filter (applied as a true convolution, i.e. flipped).
        up: Integer upsampling factor (``up - 1`` zeros after every pixel).
        down: Integer downsampling factor (keep every ``down``-th pixel).
        pad: ``(before, after)`` padding of both spatial axes (negative values crop).

    Returns:
        ``(B, C, (H*up + before + after - kh + 1) // down, ...)``.
    """
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    kh, kw = kernel.shape
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).expand(c, 1, kh, kw)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


class PixelNorm(nn.Module):
    """Normalise each ``(B, D)`` row to unit root-mean-square."""

    def forward(self, x: Tensor) -> Tensor:
        """``(B, D)`` -> ``(B, D)``."""
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate; optional scaled leaky ReLU (×√2).

    Args:
        in_dim: Input width.
        out_dim: Output width.
        bias_init: Initial bias value (1 for style modulations).
        lr_mul: Learning-rate multiplier (0.01 in the mapping network).
        activation: Apply ``leaky_relu(·, 0.2) · √2`` after the bias.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_dim)`` -> ``(B, out_dim)``."""
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(out, 0.2) * math.sqrt(2.0) if self.activation else out


class FusedLeakyReLU(nn.Module):
    """Per-channel bias, then ``leaky_relu(·, 0.2) · √2`` on ``(B, C, H, W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> same shape."""
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2.0)


class Blur(nn.Module):
    """FIR low-pass filter with padding (the anti-aliasing after a transposed conv)."""

    def __init__(
        self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1
    ) -> None:
        super().__init__()
        self.kernel: Tensor  # a buffer (typed for mypy)
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H + sum(pad) - k + 1, ...)``."""
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """×2 FIR upsampling of the RGB skip path: ``(B, C, H, W)`` -> ``(B, C, 2H, 2W)``."""

    def __init__(self, taps: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.kernel: Tensor  # a buffer (typed for mypy)
        self.register_buffer("kernel", make_kernel(taps) * factor**2)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C, 2H, 2W)``."""
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional demodulation and ×2 upsampling.

    ``y = conv(x · s, W / sqrt(fan_in)) · d`` with ``s = A(w)`` the per-input-channel
    style and ``d_o = 1 / sqrt(Σ_{i,k} (W_oik s_i / sqrt(fan_in))² + 1e-8)``; equal to
    convolving with the modulated, demodulated weights of the paper (Eq. 1-3).

    Args:
        in_channel: Input channels.
        out_channel: Output channels.
        kernel_size: Square kernel size.
        style_dim: Width of the style vector ``w``.
        demodulate: Apply the demodulation ``d`` (off for RGB outputs).
        upsample: Upsample ×2 (transposed conv, stride 2, then a blur).
        blur_kernel: FIR taps of the blur.
    """

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.upsample, self.demodulate = upsample, demodulate
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channel, in_channel, kernel_size, kernel_size)
        )
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, ((p + 1) // 2 + factor - 1, p // 2 + 1), factor)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        """``(B, in, H, W)``, ``(B, style_dim)`` -> ``(B, out, H', W')`` (``H' = 2H`` if up)."""
        s = self.modulation(style)  # (B, in)
        weight = self.weight[0] * self.scale  # (out, in, k, k)
        x = x * s[:, :, None, None]
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            dcoef = torch.rsqrt(s.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + 1e-8)  # (B, out)
            out = out * dcoef[:, :, None, None]
        return out


class NoiseInjection(nn.Module):
    """Adds a learned per-layer multiple of a single-channel noise image."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None) -> Tensor:
        """``(B, C, H, W)`` + ``weight · noise`` (``(B or 1, 1, H, W)``; ``None``: none)."""
        return x if noise is None else x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned ``(1, C, 4, 4)`` input, repeated over the batch."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> Tensor:
        """-> ``(batch, C, 4, 4)``."""
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated conv, noise, bias and activation (one synthesis layer)."""

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channel,
            out_channel,
            kernel_size,
            style_dim,
            upsample=upsample,
            blur_kernel=blur_kernel,
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: Tensor, style: Tensor, noise: Tensor | None) -> Tensor:
        """``(B, in, H, W)`` -> ``(B, out, H', W')``."""
        return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation), plus the upsampled skip image."""

    def __init__(
        self,
        in_channel: int,
        style_dim: int,
        upsample: bool = True,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        """``(B, in, H, W)`` (+ skip ``(B, 3, H/2, W/2)``) -> ``(B, 3, H, W)``."""
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)
