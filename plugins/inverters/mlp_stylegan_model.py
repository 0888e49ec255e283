"""Networks of the ``mlp-stylegan`` inverter (Ren et al., TIFS 2024).

The latent space transformer (an 8-layer MLP whose last layers branch per W+ sub-code) and
a small auxiliary image->latent encoder standing in for the paper's E_au.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BranchedLinear(nn.Module):
    """``n`` independent linear layers applied side by side: ``(B, n, i) -> (B, n, o)``.

    Equal to ``n`` separate ``nn.Linear`` layers (one per branch), computed as one batched
    matrix product. Initialised like ``nn.Linear`` (uniform in ``±1/sqrt(i)``).

    Args:
        n: Number of branches.
        in_dim: Input width ``i``.
        out_dim: Output width ``o``.
    """

    def __init__(self, n: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n, out_dim, in_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, out_dim).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, n, in_dim)`` -> ``(B, n, out_dim)``."""
        return torch.einsum("bni,noi->bno", x, self.weight) + self.bias


class LatentSpaceTransformer(nn.Module):
    """MLP from a face template to a generator latent, as a residual to the mean latent.

    ``layers`` fully connected layers in all: the first ``layers - branch_layers`` are
    shared, the last ``branch_layers`` are split into ``n_latents`` branches, one per
    sub-code (W+ layer). Leaky ReLU (0.2) between layers, none after the last. The output
    is ``l = l_res + l_mean`` (Eq. 5). The last layer starts at a tenth of the usual
    initial scale, so training starts near the mean face.

    Args:
        in_dim: Template length ``D``.
        n_latents: Number of sub-codes ``n``.
        latent_dim: Length ``d`` of each sub-code.
        hidden: Width of the hidden layers (512 in the paper).
        layers: Number of fully connected layers (8).
        branch_layers: How many of the last layers are branched (4).
        l_mean: ``(n, d)`` mean latent of the generator (default zeros; stored as a buffer).
    """

    def __init__(
        self,
        in_dim: int,
        n_latents: int,
        latent_dim: int,
        hidden: int = 512,
        layers: int = 8,
        branch_layers: int = 4,
        l_mean: Tensor | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= branch_layers < layers:
            raise ValueError(f"need 1 <= branch_layers < layers, got {branch_layers}/{layers}")
        self.in_dim, self.n_latents, self.latent_dim = in_dim, n_latents, latent_dim
        shared: list[nn.Module] = []
        width = in_dim
        for _ in range(layers - branch_layers):
            shared += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        self.shared = nn.Sequential(*shared)
        dims = [hidden] * branch_layers + [latent_dim]
        branches = [
            BranchedLinear(n_latents, a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        ]
        with torch.no_grad():
            branches[-1].weight.mul_(0.1)
            branches[-1].bias.zero_()
        self.branches = nn.ModuleList(branches)
        mean = torch.zeros(n_latents, latent_dim) if l_mean is None else l_mean.float().clone()
        if mean.shape != (n_latents, latent_dim):
            raise ValueError(f"l_mean {tuple(mean.shape)} is not ({n_latents}, {latent_dim})")
        self.l_mean: Tensor  # a buffer (typed for mypy)
        self.register_buffer("l_mean", mean)

    def residual(self, templates: Tensor) -> Tensor:
        """``(B, D)`` unit-norm templates -> ``(B, n, d)`` residuals ``l_res``.

        Templates are scaled by ``sqrt(D)`` first, so their entries have unit variance.
        """
        h = self.shared(templates * math.sqrt(self.in_dim))
        h = h[:, None].expand(-1, self.n_latents, -1)
        for i, layer in enumerate(self.branches):
            h = layer(h)
            if i < len(self.branches) - 1:
                h = F.leaky_relu(h, 0.2)
        return h

    def forward(self, templates: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, D)`` templates -> ``(l, l_res)``, both ``(B, n, d)``; ``l = l_res + l_mean``."""
        res = self.residual(templates)
        return res + self.l_mean, res


class AuxEncoder(nn.Module):
    """Small CNN image -> latent encoder (the role of the paper's auxiliary encoder E_au).

    The paper uses a pSp-style ResNet-50 + FPN encoder pre-trained on FFHQ; this is a
    deliberate simplification that trains in minutes on a CPU: four stride-2 conv blocks
    (3x3, leaky ReLU) on the image resized to ``input_size``, global average pooling and a
    two-layer head predicting a residual to the mean latent.

    Args:
        n_latents: Number of sub-codes ``n``.
        latent_dim: Length ``d`` of each sub-code.
        width: Channels of the first block (doubled per block).
        input_size: Side of the square input the image is resized to.
        l_mean: ``(n, d)`` mean latent (stored as a buffer; default zeros).
    """

    def __init__(
        self,
        n_latents: int,
        latent_dim: int,
        width: int = 32,
        input_size: int = 64,
        l_mean: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.n_latents, self.latent_dim, self.input_size = n_latents, latent_dim, input_size
        blocks: list[nn.Module] = []
        ch = 3
        for i in range(4):
            out = width * 2**i
            blocks += [nn.Conv2d(ch, out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            ch = out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Linear(ch, ch), nn.LeakyReLU(0.2), nn.Linear(ch, n_latents * latent_dim)
        )
        mean = torch.zeros(n_latents, latent_dim) if l_mean is None else l_mean.float().clone()
        self.l_mean: Tensor  # a buffer (typed for mypy)
        self.register_buffer("l_mean", mean)

    def forward(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, n, d)`` latents."""
        size = (self.input_size, self.input_size)
        if tuple(images.shape[-2:]) != size:
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        h = self.features(images * 2.0 - 1.0).mean(dim=(2, 3))
        res = self.head(h).view(-1, self.n_latents, self.latent_dim)
        return res + self.l_mean
