"""The DCGAN generator network (Radford et al., 2016), as in the PyTorch DCGAN tutorial.

Five transposed convolutions take a ``(B, nz, 1, 1)`` latent to a ``(B, nc, 64, 64)``
image in ``[-1, 1]`` (tanh): 1 -> 4 -> 8 -> 16 -> 32 -> 64 pixels, with batch norm and
ReLU between them. Layer indices in ``main`` match the state dict of the
``gan-face-generate`` 1.1.1 weights (``main.0.weight`` ... ``main.12.weight``).
"""

from __future__ import annotations

from torch import Tensor, nn


def _up(c_in: int, c_out: int, first: bool = False) -> list[nn.Module]:
    """Transposed conv (x4 on the first layer, else x2) + batch norm + ReLU."""
    stride, padding = (1, 0) if first else (2, 1)
    return [
        nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class DCGANGenerator(nn.Module):
    """DCGAN generator, 64x64 output.

    Args:
        nz: Latent length.
        ngf: Width multiplier of the feature maps (``8 * ngf`` channels at 4x4).
        nc: Output channels.
    """

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(
            *_up(nz, ngf * 8, first=True),  # (B, 8 ngf, 4, 4)
            *_up(ngf * 8, ngf * 4),  # (B, 4 ngf, 8, 8)
            *_up(ngf * 4, ngf * 2),  # (B, 2 ngf, 16, 16)
            *_up(ngf * 2, ngf),  # (B, ngf, 32, 32)
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),  # (B, nc, 64, 64)
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        """``(B, nz)`` or ``(B, nz, 1, 1)`` latents -> ``(B, nc, 64, 64)`` in ``[-1, 1]``."""
        return self.main(z.reshape(z.shape[0], self.nz, 1, 1))
