"""Components that break their output contracts, for the run-time contract tests."""

from typing import ClassVar

import torch

from invbench import hookimpl
from invbench.testing.fakes import FakeProjectionEncoder, FakePseudoInverse


class SmallImages(FakePseudoInverse):
    """Returns 8x8 images while declaring the encoder's 16x16."""

    name: ClassVar[str] = "small-images"

    def invert(self, templates):
        return super().invert(templates)[..., :8, :8]


class GreyImages(FakePseudoInverse):
    """Returns one channel."""

    name: ClassVar[str] = "grey-images"

    def invert(self, templates):
        return super().invert(templates)[:, :1]


class OutOfRange(FakePseudoInverse):
    """Returns values up to 2."""

    name: ClassVar[str] = "out-of-range"

    def invert(self, templates):
        return super().invert(templates) * 4


class NaNImages(FakePseudoInverse):
    """Returns NaN pixels."""

    name: ClassVar[str] = "nan-images"

    def invert(self, templates):
        out = super().invert(templates)
        out[0, 0, 0, 0] = float("nan")
        return out


class WrongDimEncoder(FakeProjectionEncoder):
    """Declares 12-D templates and returns 7-D ones."""

    name: ClassVar[str] = "wrong-dim"

    @property
    def embedding_dim(self):
        return 12

    def forward_torch(self, images):
        return super().forward_torch(images)[:, :7]


class NaNEncoder(FakeProjectionEncoder):
    """Returns NaN templates."""

    name: ClassVar[str] = "nan-encoder"

    def forward_torch(self, images):
        return torch.full((images.shape[0], self.embedding_dim), float("nan"))


@hookimpl
def register_inverters(register):
    for cls in (SmallImages, GreyImages, OutOfRange, NaNImages):
        register(cls)


@hookimpl
def register_encoders(register):
    for cls in (WrongDimEncoder, NaNEncoder):
        register(cls)
