"""The ICIP'22 face reconstruction CNN (Otroshi Shahreza, Krivokuća Hahn, Marcel; ICIP 2022).

Structure (Section 2.3 of the paper, 512-D ArcFace template in, 112×112 image out)::

    template (B, D) -> (B, D, 1, 1)
    six blocks with c = 512, 256, 128, 64, 32, 16 filters, each
        d = ReLU(BN(deconv_k4(x)))                      # upsampling
        y = d + [Conv3×3 + BN + ReLU] × 3 (d)            # residual refinement (skip)
    Conv3×3 (16 -> 3) + sigmoid -> (B, 3, 112, 112) in [0, 1]

Choices where the paper is silent (its Fig. 3 is not in our copy):

* The first step (1×1 -> 7×7): block 1's deconvolution has a 7×7 kernel on the 1×1
  input (the start size ``s`` in general), so it makes the 7×7 map itself; blocks 2-5
  double with 4×4 kernels, stride 2, padding 1 (7 -> 14 -> 28 -> 56 -> 112), and block 6
  keeps 112×112 with a 3×3, stride-1 deconvolution (a 4×4 stride-1 kernel cannot keep the
  size). Six stride-2 blocks would give 7·2^6 = 448 from a 7×7 start, so exactly one
  "1×1 -> 7×7" step and four doublings fit the six blocks and the 112×112 output.
  Other output sizes follow the same rule (:func:`plan_geometry`: ``s · 2^u = output``,
  ``u <= 5``); ``geometry="resize"`` builds the network for ``build_size`` (default 112×112) and
  resizes bilinearly to the output size (a small ``build_size`` is the quick profile's
  CPU-cheap choice).
* The skip connection adds the deconvolution output to the output of the third
  convolution's ReLU (the convolutions learn a residual, as the paper says).
* No biases before BatchNorm; the final convolution has a bias. PyTorch's default
  initialisation (the paper names none).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from invbench_plugins.inverters.nbnet_model import BlockDecoder, DconvOp

#: Filters of the six blocks.
PAPER_CHANNELS: tuple[int, ...] = (512, 256, 128, 64, 32, 16)
#: Output size of the paper (ArcFace crops).
PAPER_SIZE: tuple[int, int] = (112, 112)


class ResidualDeconvBlock(nn.Module):
    """Deconvolution + BN + ReLU, then three 3×3 Conv + BN + ReLU with a skip around them.

    ``(B, c_in, h, w) -> (B, c_out, h', w')`` with ``h'`` as for :class:`DconvOp`.

    Args:
        c_in: Input channels.
        c_out: Filters of every layer in the block.
        n_convs: Cascaded convolutions (3).
        **dconv: Keyword arguments of :class:`DconvOp` (``kernel``, ``double``, ``start``).
    """

    def __init__(self, c_in: int, c_out: int, n_convs: int = 3, **dconv: object) -> None:
        super().__init__()
        self.deconv = DconvOp(c_in, c_out, **dconv)  # type: ignore[arg-type]
        layers: list[nn.Module] = []
        for _ in range(n_convs):
            layers += [
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        self.convs = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, c_in, h, w) -> (B, c_out, h', w')``."""
        d = self.deconv(x)
        return d + self.convs(d)


class Icip2022Net(BlockDecoder):
    """Template ``(B, D)`` -> image ``(B, 3, H, W)`` in ``[0, 1]`` (sigmoid output).

    Args:
        embedding_dim: Template length ``D`` (512 for ArcFace R100 in the paper).
        output_size: ``(H, W)`` of the image.
        geometry: ``"native"`` (blocks sized for ``output_size``), ``"resize"`` (the
            112×112 network, then a bilinear resize) or ``"auto"`` (native where the size
            allows it, else resize).
        build_size: Size the network decodes at under ``"resize"`` (default 112×112);
            the output is then resized to ``output_size``.
        channels: Filters of the blocks (512 ... 16).
        deconv_kernel: Kernel of the doubling deconvolutions (4).
    """

    def __init__(
        self,
        embedding_dim: int = 512,
        output_size: tuple[int, int] = PAPER_SIZE,
        *,
        geometry: Literal["native", "resize", "auto"] = "auto",
        build_size: tuple[int, int] | None = None,
        channels: tuple[int, ...] = PAPER_CHANNELS,
        deconv_kernel: int = 4,
    ) -> None:
        super().__init__(
            embedding_dim,
            output_size,
            channels,
            ResidualDeconvBlock,
            lambda c_in: nn.Sequential(nn.Conv2d(c_in, 3, 3, padding=1), nn.Sigmoid()),
            geometry=geometry,
            build_size=build_size,
            paper_size=PAPER_SIZE,
            deconv_kernel=deconv_kernel,
            clamp=True,
        )
