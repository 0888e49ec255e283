"""The three MTCNN networks (P-Net, R-Net, O-Net) as plain ``nn.Module``s.

The layer names match the state dicts shipped in the ``facenet-pytorch`` 2.6.0 wheel
(``facenet_pytorch/data/{p,r,o}net.pt``), so they load with ``load_state_dict`` after
``torch.load(..., weights_only=True)``. The networks are those of Zhang et al., "Joint Face
Detection and Alignment using Multi-task Cascaded Convolutional Networks" (2016).

All three take RGB input normalised as ``(x * 255 - 127.5) / 128`` (``x`` in ``[0, 1]``).
The weights descend from a Caffe model that saw images transposed (width before height);
R-Net and O-Net therefore flatten their last feature map in ``(W, H, C)`` order.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PNet(nn.Module):
    """Proposal network: fully convolutional, scores every 12x12 window (stride 2).

    ``forward(x)``: ``(B, 3, H, W)`` normalised images -> ``(probs, reg)`` with ``probs``
    ``(B, H', W')`` face probability and ``reg`` ``(B, 4, H', W')`` box offsets
    ``(dx1, dy1, dx2, dy2)`` relative to the window size, where
    ``H' = (H - 10) // 2 - 4`` (likewise ``W'``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """See the class docstring."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        probs = torch.softmax(self.conv4_1(x), dim=1)[:, 1]
        return probs, self.conv4_2(x)


class RNet(nn.Module):
    """Refinement network on 24x24 crops.

    ``forward(x)``: ``(K, 3, 24, 24)`` normalised crops -> ``(probs, reg)``: ``probs``
    ``(K,)`` face probability, ``reg`` ``(K, 4)`` box offsets relative to the crop size.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """See the class docstring."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))  # (K, 64, 3, 3)
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output network on 48x48 crops: score, box offsets and five landmarks.

    ``forward(x)``: ``(K, 3, 48, 48)`` normalised crops -> ``(probs, reg, points)``:
    ``probs`` ``(K,)``, ``reg`` ``(K, 4)`` and ``points`` ``(K, 5, 2)`` ``(x, y)`` in
    ``[0, 1]`` crop units, ordered left eye, right eye, nose, left and right mouth corner
    (left/right as seen in the image).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """See the class docstring."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))  # (K, 128, 3, 3)
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).flatten(1)))
        probs = torch.softmax(self.dense6_1(x), dim=1)[:, 1]
        points = self.dense6_3(x).view(-1, 2, 5).transpose(1, 2)
        return probs, self.dense6_2(x), points
