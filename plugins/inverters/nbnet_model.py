"""NbNet and D-CNN decoders (Mai, Cao, Yuen, Jain; TPAMI 2018): plain ``nn.Module``s.

Structure (Table 2 of the paper, 128-D template in, 160×160 image out)::

    template (B, D) -> (B, D, 1, 1)
    block 1: 1×1 -> 5×5       D-CNN: [5×5, 512] DconvOP
                              NbNet: [5×5, 256] DconvOP + {[3×3, 8] ConvOP} × 32
    block 2..6: ×2 each       D-CNN: [k×k, c] DconvOP, c = 256, 128, 64, 32, 16
                              NbNet: [k×k, c/2] DconvOP + {[3×3, 8] ConvOP} × c/16
    output: [3×3, 3] ConvOP with tanh -> (B, 3, 160, 160) in [-1, 1]

A DconvOP (ConvOP) is a transposed convolution (convolution), BatchNorm and ReLU; the
output ConvOP ends in tanh instead. An NbBlock (Eq. 1-4) concatenates the DconvOP output
``X'`` and its ``P`` ConvOP outputs ``X_1 .. X_P``; ConvOP 1 reads ``X'``; ConvOP ``p > 1``
reads ``X_{p-1}`` (block A) or the concatenation ``[X', X_1, .., X_{p-1}]`` (block B,
DenseNet-like).

Choices where the paper is silent or inconsistent (all constructor arguments):

* ``deconv_kernel`` (default 4): Table 2 prints 3×3 kernels for the DconvOPs of blocks
  2-6, but the D-CNN parameter count of Table 7 (4,432,304) is reproduced *exactly* by the
  convolution weights with 4×4 kernels (3×3 kernels give 3,210,160), so the default follows
  Table 7. Doubling layers use stride 2 with padding ``(k - 2) / 2`` (even ``k``) or padding
  ``(k - 1) / 2`` plus output padding 1 (odd ``k``), so each block exactly doubles the size.
* Block 1 maps the 1×1 input to the start size ``s`` with an ``s×s`` kernel (the paper's
  ``5×5`` for 160×160; its "stride 2" has no effect on a 1×1 input).
* Other sizes (``geometry``): ``"native"`` keeps six blocks and the channel widths, picks
  the start size ``s`` and number ``u`` of doubling blocks with ``s · 2^u = output``
  (``u <= 5`` as large as possible; 160 -> s = 5, u = 5, exactly the paper; 112 -> s = 7,
  u = 4), and turns the last ``5 - u`` blocks into stride-1 blocks whose DconvOP has a 3×3
  kernel. ``"resize"`` builds the network for ``build_size`` (default: the paper's
  160×160, unchanged) and resizes its output bilinearly (antialiased) to ``output_size``;
  a small ``build_size`` (e.g. 56×56) is the CPU-cheap choice of the quick profiles.
* Initialisation: convolution weights N(0, 0.02) as in the paper; BatchNorm γ = 1, β = 0
  (the paper's sentence on the normal init speaks of "weights"; N(0, 0.02) γ would silence
  every block).
* No biases in layers followed by BatchNorm (they would be cancelled by it).

Parameter counts against Table 7 (128-D in, 160×160 out, default settings) -- see
:func:`conv_weight_count`; PyTorch's total adds BatchNorm's γ and β (2 × 1,011 = 2,022):

* D-CNN: convolution weights 4,432,304 = Table 7 exactly.
* NbNet-A: 2,285,488, Table 7 says 2,289,040 (3,552 more).
* NbNet-B: 3,377,584, Table 7 says 3,411,472 (33,888 more).

The NbNet residuals cannot come from any reading of Eq. 4: blocks A and B differ only in
the inputs of 3×3, 8-channel ConvOPs, so their counts can only differ by multiples of
3·3·8 = 72 (in fact of 576), but Table 7's B − A difference (1,122,432) is not even a
multiple of 9. Counting BatchNorm parameters, biases, or other kernel sizes reproduces
neither number either (searched exhaustively over those choices), so the residuals are
left as unexplained inconsistencies of the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Block output channels of Table 2.
PAPER_CHANNELS: tuple[int, ...] = (512, 256, 128, 64, 32, 16)
#: Output size of the paper's networks (FaceNet's 160×160 MTCNN crops).
PAPER_SIZE: tuple[int, int] = (160, 160)

BlockKind = Literal["dcnn", "A", "B"]


def plan_geometry(
    output_size: tuple[int, int], n_blocks: int = 6, max_start: int = 8
) -> tuple[tuple[int, int], int]:
    """Start size and number of doubling blocks for a native decoder of ``output_size``.

    Args:
        output_size: ``(H, W)`` of the decoded image.
        n_blocks: Number of blocks; block 1 makes the start size, blocks ``2 ..
            u + 1`` double it, the rest keep it.
        max_start: Largest start size accepted (a bigger one means the output size has
            too few factors of two for a native decoder).

    Returns:
        ``((s_h, s_w), u)`` with ``s · 2^u == output_size`` and ``u <= n_blocks - 1``.

    Raises:
        ValueError: When the start size would exceed ``max_start``.
    """
    h, w = output_size
    u = 0
    while u < n_blocks - 1 and h % 2 ** (u + 1) == 0 and w % 2 ** (u + 1) == 0:
        u += 1
    start = (h // 2**u, w // 2**u)
    if max(start) > max_start:
        raise ValueError(
            f"output size {output_size} needs a {start} start for {u} doubling blocks "
            f"(more than {max_start}); use geometry='resize'"
        )
    return start, u


def native_ok(output_size: tuple[int, int], n_blocks: int = 6) -> bool:
    """Whether :func:`plan_geometry` accepts ``output_size`` (a native decoder exists)."""
    try:
        plan_geometry(output_size, n_blocks)
    except ValueError:
        return False
    return True


def _up_layer(c_in: int, c_out: int, kernel: int, double: bool) -> nn.ConvTranspose2d:
    """Transposed convolution that doubles (or keeps, with a 3×3 kernel) the size."""
    if not double:
        return nn.ConvTranspose2d(c_in, c_out, 3, stride=1, padding=1, bias=False)
    pad, out_pad = ((kernel - 2) // 2, 0) if kernel % 2 == 0 else ((kernel - 1) // 2, 1)
    return nn.ConvTranspose2d(
        c_in, c_out, kernel, stride=2, padding=pad, output_padding=out_pad, bias=False
    )


class ConvOp(nn.Sequential):
    """ConvOP: ``k×k`` convolution (stride 1, same size) + BatchNorm + ReLU.

    ``(B, c_in, h, w) -> (B, c_out, h, w)``.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class DconvOp(nn.Sequential):
    """DconvOP: transposed convolution + BatchNorm + ReLU.

    ``(B, c_in, h, w) -> (B, c_out, h', w')``; ``start`` given: a ``start``-sized kernel
    on a 1×1 input (``h' = start``); else ``h' = 2h`` (``double``) or ``h' = h``.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        kernel: int = 4,
        double: bool = True,
        start: tuple[int, int] | None = None,
    ) -> None:
        layer = (
            nn.ConvTranspose2d(c_in, c_out, start, bias=False)
            if start is not None
            else _up_layer(c_in, c_out, kernel, double)
        )
        super().__init__(layer, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class NbBlock(nn.Module):
    """Neighborly de-convolution block A or B (Eq. 1-4).

    ``(B, c_in, h, w) -> (B, c_out, h', w')``: half of ``c_out`` from one DconvOP, the
    other half from ``c_out / (2 · growth)`` ConvOPs of ``growth`` channels each.

    Args:
        c_in: Input channels.
        c_out: Output channels (a multiple of ``2 · growth``).
        variant: ``"A"`` (ConvOP ``p`` reads ConvOP ``p - 1``) or ``"B"`` (it reads
            everything the block produced so far).
        growth: Channels of each ConvOP (8 in the paper).
        **dconv: Keyword arguments of :class:`DconvOp`.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        variant: Literal["A", "B"],
        growth: int = 8,
        **dconv: object,
    ) -> None:
        super().__init__()
        if c_out % (2 * growth):
            raise ValueError(f"{c_out} output channels are not a multiple of {2 * growth}")
        half = c_out // 2
        self.variant = variant
        self.dconv = DconvOp(c_in, half, **dconv)  # type: ignore[arg-type]
        n_convs = half // growth
        if variant == "B":  # [X', X_1, .., X_{p-1}]
            ins = [half + growth * p for p in range(n_convs)]
        else:  # X' for p = 1, then X_{p-1}
            ins = [half] + [growth] * (n_convs - 1)
        self.convs = nn.ModuleList(ConvOp(c, growth) for c in ins)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, c_in, h, w) -> (B, c_out, h', w')``."""
        outs = [self.dconv(x)]
        for p, conv in enumerate(self.convs):
            if p == 0 or self.variant == "A":
                inp = outs[-1]
            else:
                inp = torch.cat(outs, dim=1)
            outs.append(conv(inp))
        return torch.cat(outs, dim=1)


#: Builds block ``i``: ``(c_in, c_out, **DconvOp geometry) -> module``.
BlockFactory = Callable[..., nn.Module]


class BlockDecoder(nn.Module):
    """Template ``(B, D)`` -> ``(B, D, 1, 1)`` -> blocks -> output head -> image ``(B, 3, H, W)``.

    The skeleton NbNet and the ICIP'22 CNN share: block 1 makes the start size from the
    1×1 input, the next ``u`` blocks double it, the rest keep it (:func:`plan_geometry`);
    under the ``"resize"`` geometry the head's output is resized (bilinear, antialiased)
    to ``output_size``. Blocks are built first, then the head (a fixed order, so seeded
    initialisations are reproducible).

    Args:
        embedding_dim: Template length ``D``.
        output_size: ``(H, W)`` of the image.
        channels: Output channels of each block.
        make_block: ``(c_in, c_out, **geometry) -> block``.
        make_head: ``c_in -> head`` (to 3 channels, with the output activation).
        geometry: ``"native"``, ``"resize"`` or ``"auto"`` (see :func:`resolve_geometry`).
        build_size: Size the blocks decode at under ``"resize"``.
        paper_size: Default ``build_size``.
        deconv_kernel: Kernel of the doubling deconvolutions.
        clamp: Clamp the resized output to ``[0, 1]`` (for a sigmoid head).
    """

    def __init__(
        self,
        embedding_dim: int,
        output_size: tuple[int, int],
        channels: tuple[int, ...],
        make_block: BlockFactory,
        make_head: Callable[[int], nn.Module],
        *,
        geometry: Literal["native", "resize", "auto"],
        build_size: tuple[int, int] | None,
        paper_size: tuple[int, int],
        deconv_kernel: int,
        clamp: bool = False,
    ) -> None:
        super().__init__()
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self.geometry, self.build_size = resolve_geometry(
            self.output_size, geometry, build_size, len(channels), paper_size
        )
        self.clamp = clamp
        start, n_up = plan_geometry(self.build_size, n_blocks=len(channels))
        blocks, c_in = [], embedding_dim
        for i, c in enumerate(channels):
            geo = {"start": start} if i == 0 else {"kernel": deconv_kernel, "double": i <= n_up}
            blocks.append(make_block(c_in, c, **geo))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.out = make_head(c_in)

    def forward(self, templates: Tensor) -> Tensor:
        """``(B, D)`` templates -> ``(B, 3, H, W)`` images in the head's range."""
        x = self.out(self.blocks(templates[:, :, None, None]))
        if x.shape[-2:] != self.output_size:
            x = F.interpolate(
                x, size=self.output_size, mode="bilinear", align_corners=False, antialias=True
            )
            if self.clamp:
                x = x.clamp(0.0, 1.0)
        return x


def resolve_geometry(
    output_size: tuple[int, int],
    geometry: Literal["native", "resize", "auto"],
    build_size: tuple[int, int] | None,
    n_blocks: int,
    paper_size: tuple[int, int],
) -> tuple[str, tuple[int, int]]:
    """``(geometry, build_size)``: ``auto`` resolved, and the size the blocks decode at.

    ``native`` decodes at ``output_size``; ``resize`` at ``build_size`` (default: the
    paper's ``paper_size``); ``auto`` is native where :func:`plan_geometry` allows it.
    """
    if geometry == "auto":
        geometry = "native" if native_ok(output_size, n_blocks) else "resize"
    if geometry == "native":
        return geometry, output_size
    size = build_size if build_size is not None else paper_size
    return geometry, (int(size[0]), int(size[1]))


class NbNet(BlockDecoder):
    """D-CNN, NbNet-A or NbNet-B decoder: template ``(B, D)`` -> image ``(B, 3, H, W)``.

    The output is tanh-activated, in ``[-1, 1]`` (the paper's image scaling); map it to
    ``[0, 1]`` with ``(y + 1) / 2``. See the module docstring for the structure and the
    choices.

    Args:
        embedding_dim: Template length ``D`` (128 for the paper's FaceNet).
        output_size: ``(H, W)`` of the image.
        block: ``"dcnn"`` (plain DconvOP blocks), ``"A"`` or ``"B"`` (NbBlocks).
        geometry: ``"native"`` (six blocks sized for ``output_size``), ``"resize"``
            (the paper's 160×160 network, then a bilinear resize) or ``"auto"`` (native
            where :func:`plan_geometry` allows it, else resize).
        build_size: Size the network decodes at under ``"resize"`` (default: the
            paper's 160×160); the output is then resized to ``output_size``.
        channels: Block output channels (Table 2: 512 ... 16).
        growth: Channels per ConvOP in NbBlocks (8).
        deconv_kernel: Kernel of the doubling DconvOPs (4; Table 2 prints 3).
        init_std: Standard deviation of the normal weight initialisation (0.02).
    """

    def __init__(
        self,
        embedding_dim: int = 128,
        output_size: tuple[int, int] = PAPER_SIZE,
        *,
        block: BlockKind = "B",
        geometry: Literal["native", "resize", "auto"] = "native",
        build_size: tuple[int, int] | None = None,
        channels: tuple[int, ...] = PAPER_CHANNELS,
        growth: int = 8,
        deconv_kernel: int = 4,
        init_std: float = 0.02,
    ) -> None:
        def make_block(c_in: int, c_out: int, **geo: Any) -> nn.Module:
            if block == "dcnn":
                return DconvOp(c_in, c_out, **geo)
            return NbBlock(c_in, c_out, block, growth, **geo)

        def make_head(c_in: int) -> nn.Module:
            conv = nn.Conv2d(c_in, 3, 3, padding=1, bias=False)
            return nn.Sequential(conv, nn.BatchNorm2d(3), nn.Tanh())

        super().__init__(
            embedding_dim,
            output_size,
            channels,
            make_block,
            make_head,
            geometry=geometry,
            build_size=build_size,
            paper_size=PAPER_SIZE,
            deconv_kernel=deconv_kernel,
        )
        init_weights(self, init_std)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Initialise (transposed) convolution and linear weights N(0, std); BN γ = 1, β = 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def conv_weight_count(module: nn.Module) -> int:
    """Number of (transposed) convolution weights: how Table 7's D-CNN count adds up."""
    return sum(
        m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
    )


def param_count(module: nn.Module) -> int:
    """Number of trainable parameters (weights plus BatchNorm γ, β)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
