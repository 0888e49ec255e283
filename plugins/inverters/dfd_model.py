"""The Deep Face Decoder network (Križaj et al., EAAI 2024): an inverted VGG-16.

The paper's architecture section is lost; this is the mirror of VGG-16 that
the ``dfd`` section of ``docs/methods.md`` describes::

    template (B, D)
      -> FC to C₁·s·s, reshape (B, C₁, s, s), BatchNorm + ReLU
      -> stage 1: [3×3, C₁] × 3          (C = 512, 512, 256, 128, 64, times ``width``;
      -> stage 2: ×2, [3×3, C₂] × 3       each conv is conv + BatchNorm + ReLU;
      -> stage 3: ×2, [3×3, C₃] × 3       "×2" is nearest-neighbour upsampling, the mirror
      -> stage 4: ×2, [3×3, C₄] × 2       of VGG's max-pooling)
      -> stage 5: ×2, [3×3, C₅] × 2
      -> [3×3, 3] conv, sigmoid -> (B, 3, H, W) in [0, 1]

Choices (constructor arguments):

* Where the fifth stage goes (``upsample_stages``): VGG-16 halves the resolution five
  times, but a 112×112 crop over 32 is not an integer. With the default
  ``upsample_stages=4`` the *first* 512-channel stage works at the FC resolution
  ``s = H / 16`` (7×7 for 112×112) without upsampling and the other four stages double it
  (7 → 14 → 28 → 56 → 112). Putting the extra stage first costs least (it runs at 7×7)
  and keeps the FC small. ``upsample_stages=5`` is the exact mirror for sizes divisible by
  32 (224 → s = 7). Sizes that are not ``s · 2^k`` (dlib's 150×150) decode at the next
  larger such size and resize the output logits bilinearly.
* ``width`` multiplies every channel count (at least 8 channels); the quick profile uses
  a narrow decoder so that training fits in CPU minutes.
* No biases in convolutions followed by BatchNorm; PyTorch's default initialisation.
"""

from __future__ import annotations

import math
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

#: VGG-16's block widths, mirrored (deepest first), and its convolutions per block.
VGG_CHANNELS: tuple[int, ...] = (512, 512, 256, 128, 64)
VGG_CONVS: tuple[int, ...] = (3, 3, 3, 2, 2)


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """``[3×3, c_out]`` convolution (padding 1, no bias), BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class DecoderStage(nn.Module):
    """Optional ×2 upsampling, then ``n_convs`` conv-BN-ReLU layers.

    Maps ``(B, c_in, h, w)`` to ``(B, c_out, 2h, 2w)`` (``upsample``) or
    ``(B, c_out, h, w)``.
    """

    def __init__(
        self, c_in: int, c_out: int, n_convs: int, upsample: bool, mode: str = "nearest"
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.mode = mode
        self.convs = nn.Sequential(
            *[conv_bn_relu(c_in if i == 0 else c_out, c_out) for i in range(n_convs)]
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, c_in, h, w)`` -> ``(B, c_out, h', w')``."""
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode=self.mode)
        return self.convs(x)


class DFDDecoder(nn.Module):
    """Inverted-VGG-16 decoder: ``(B, D)`` templates -> ``(B, 3, H, W)`` images in ``[0, 1]``.

    Args:
        embedding_dim: Template length ``D``.
        output_size: ``(H, W)`` of the decoded images.
        width: Channel multiplier (1.0 = VGG-16's 512 … 64).
        upsample_stages: How many of the five stages double the resolution (4 or 5); the
            others, first in line, keep the FC resolution.
        upsample: Upsampling mode of the stages (``"nearest"`` or ``"bilinear"``).
    """

    def __init__(
        self,
        embedding_dim: int,
        output_size: tuple[int, int] = (112, 112),
        width: float = 1.0,
        upsample_stages: int = 4,
        upsample: Literal["nearest", "bilinear"] = "nearest",
    ) -> None:
        super().__init__()
        if not 1 <= upsample_stages <= len(VGG_CHANNELS):
            raise ValueError(f"upsample_stages must be in 1..5, not {upsample_stages}")
        if width <= 0:
            raise ValueError(f"width must be positive, not {width}")
        self.embedding_dim = embedding_dim
        self.output_size = (int(output_size[0]), int(output_size[1]))
        factor = 2**upsample_stages
        self.start_size = (
            math.ceil(self.output_size[0] / factor),
            math.ceil(self.output_size[1] / factor),
        )
        self.decoded_size = (self.start_size[0] * factor, self.start_size[1] * factor)
        channels = [max(8, round(c * width)) for c in VGG_CHANNELS]
        self.channels = tuple(channels)
        s_h, s_w = self.start_size
        self.fc = nn.Linear(embedding_dim, channels[0] * s_h * s_w, bias=False)
        self.fc_bn = nn.BatchNorm2d(channels[0])
        first_upsampling = len(VGG_CHANNELS) - upsample_stages
        stages = []
        c_in = channels[0]
        for i, (c_out, n_convs) in enumerate(zip(channels, VGG_CONVS, strict=True)):
            stages.append(DecoderStage(c_in, c_out, n_convs, i >= first_upsampling, upsample))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.to_rgb = nn.Conv2d(c_in, 3, 3, padding=1)

    def forward(self, templates: Tensor) -> Tensor:
        """Decode templates.

        Args:
            templates: ``(B, D)`` (L2-normalised) templates.

        Returns:
            ``(B, 3, H, W)`` images in ``[0, 1]``.
        """
        x = self.fc(templates).view(templates.shape[0], self.channels[0], *self.start_size)
        x = self.stages(F.relu(self.fc_bn(x)))
        logits = self.to_rgb(x)
        if self.decoded_size != self.output_size:
            logits = F.interpolate(
                logits, size=self.output_size, mode="bilinear", align_corners=False, antialias=True
            )
        return logits.sigmoid()
