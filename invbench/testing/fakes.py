"""Tiny, seeded fake components for smoke runs, tests and plugin conformance checks.

The fake encoder is a fixed random projection and the fake inverter its pseudo-inverse,
so a perfect attack exists and metric values are known: every reconstruction re-encodes
to exactly its template (type-I similarity 1, type-I TAR 1 at any FAR).
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from invbench.components import (
    DecoderInverter,
    DecoderOptions,
    Encoder,
    FaceDataset,
    FaceSample,
    Generator,
    Inverter,
    Options,
    TrainingData,
)
from invbench.errors import IncompatibleComponentsError
from invbench.training import OptimizerSpec, Stage, mse_loss

FAKE_SIZE = 16


class FakeProjectionOptions(Options):
    """Options of the fake encoder: template length and projection seed."""

    dim: int = 8
    seed: int = 42


class FakeProjectionEncoder(Encoder[FakeProjectionOptions]):
    """Toy encoder: a fixed random projection of 16x16 faces to 8-D (seed 42)."""

    name: ClassVar[str] = "fake-projection"
    input_size: ClassVar[tuple[int, int]] = (FAKE_SIZE, FAKE_SIZE)
    differentiable: ClassVar[bool] = True

    def __init__(
        self, options: FakeProjectionOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        g = torch.Generator().manual_seed(self.options.seed)
        n_in = 3 * FAKE_SIZE * FAKE_SIZE
        self.projection = torch.randn(self.options.dim, n_in, generator=g) / n_in**0.5

    @property
    def embedding_dim(self) -> int:
        """Template length D."""
        return int(self.options.dim)

    def _flat(self, images: Tensor) -> Tensor:
        if images.shape[-2:] != self.input_size:
            images = F.interpolate(
                images, size=self.input_size, mode="bilinear", align_corners=False
            )
        return images.flatten(1) - 0.5

    def forward_torch(self, images: Tensor) -> Tensor:
        """``(B, 3, 16, 16)`` in ``[0, 1]`` -> ``(B, D)`` unit-norm templates."""
        z = self._flat(images) @ self.projection.to(images.device).T
        return F.normalize(z, dim=1)

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        """One feature map: the centred image pooled to ``(B, 3, 8, 8)``."""
        return [F.avg_pool2d(images - 0.5, 2)]


class FakeConvOptions(Options):
    """Options of the fake conv encoder: input side, template length, weight seed."""

    size: int = 32
    dim: int = 16
    seed: int = 7


class FakeConvEncoder(Encoder[FakeConvOptions]):
    """Toy differentiable encoder: two seeded random strided convs and a projection.

    ``(B, 3, s, s)`` -> ``(B, dim)`` unit rows, with two feature maps ``(B, 8, s/2, s/2)``
    and ``(B, 16, s/4, s/4)``: a stand-in for a white-box FR network in fast tests.
    """

    name: ClassVar[str] = "fake-conv"
    differentiable: ClassVar[bool] = True

    def __init__(
        self, options: FakeConvOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        o = self.options
        g = torch.Generator().manual_seed(o.seed)
        quarter = -(-o.size // 4)
        self.net = torch.nn.ParameterDict(
            {
                "w1": torch.randn(8, 3, 3, 3, generator=g) / 3.0,
                "w2": torch.randn(16, 8, 3, 3, generator=g) / 8.0,
                "proj": torch.randn(o.dim, 16 * quarter**2, generator=g) / (4.0 * quarter),
            }
        ).to(self.device)

    @property
    def input_size(self) -> tuple[int, int]:  # type: ignore[override]
        """``(size, size)``."""
        return (self.options.size, self.options.size)

    @property
    def embedding_dim(self) -> int:
        """Template length D."""
        return self.options.dim

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        """``[(B, 8, s/2, s/2), (B, 16, s/4, s/4)]`` ReLU maps."""
        a = F.relu(F.conv2d(images - 0.5, self.net["w1"], stride=2, padding=1))
        return [a, F.relu(F.conv2d(a, self.net["w2"], stride=2, padding=1))]

    def forward_torch(self, images: Tensor) -> Tensor:
        """``(B, 3, s, s)`` in ``[0, 1]`` -> ``(B, dim)`` unit-norm templates."""
        return F.normalize(self.feature_maps(images)[1].flatten(1) @ self.net["proj"].T, dim=1)


def fake_training_data(encoder: Encoder, n: int = 32, seed: int = 0) -> TrainingData:
    """``n`` smooth random colour images at the encoder's input size and their templates."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    images = F.interpolate(low, size=encoder.input_size, mode="bilinear", align_corners=False)
    return TrainingData(encoder.encode(images), (images * 255).round().to(torch.uint8))


class FakePseudoInverse(Inverter[Options]):
    """Toy inverter: the fake encoder's pseudo-inverse (a perfect attack, no training)."""

    name: ClassVar[str] = "fake-pinv"
    requires_training: ClassVar[bool] = False

    def __init__(self, encoder: Encoder, options: Options | None = None, **kwargs: Any) -> None:
        super().__init__(encoder, options, **kwargs)
        if not isinstance(encoder, FakeProjectionEncoder):
            raise IncompatibleComponentsError(
                f"inverter 'fake-pinv' only inverts 'fake-projection', not {encoder.name!r}"
            )
        self.pinv = torch.linalg.pinv(encoder.projection)

    def threat_model(self) -> str:
        """White-box: it inverts the encoder's own projection matrix."""
        return "white-box"

    def invert(self, templates: Tensor) -> Tensor:
        """``(B, D)`` -> ``(B, 3, 16, 16)`` in ``[0, 1]`` that re-encode to ``templates``."""
        x = templates.float().cpu() @ self.pinv.T
        scale = 0.45 / x.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
        return (0.5 + scale * x).reshape(-1, 3, FAKE_SIZE, FAKE_SIZE)


class FakeLinearOptions(DecoderOptions):
    """Options of the fake linear inverter."""

    epochs: int = 3
    batch_size: int = 4
    lr: float = 0.05
    val_fraction: float = 0.0
    checkpoint_every: int = 0


class LinearDecoder(torch.nn.Module):
    """``(B, D)`` -> linear map -> sigmoid -> ``(B, 3, H, W)`` in ``[0, 1]``."""

    def __init__(self, embedding_dim: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size
        self.linear = torch.nn.Linear(embedding_dim, 3 * size[0] * size[1])

    def forward(self, templates: Tensor) -> Tensor:
        """``(B, D)`` templates -> ``(B, 3, H, W)`` images."""
        return torch.sigmoid(self.linear(templates)).reshape(-1, 3, *self.size)


class FakeLinearInverter(DecoderInverter[FakeLinearOptions]):
    """Toy trainable inverter: a linear map from templates to pixels, fitted by Adam.

    The whole of a decoder inverter on :class:`~invbench.components.DecoderInverter`: a
    network and a loss.
    """

    name: ClassVar[str] = "fake-linear"
    profiles: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {"epochs": 1}}

    def threat_model(self) -> str:
        """Black-box: templates and faces only."""
        return "black-box"

    def build_network(self) -> torch.nn.Module:
        """A linear decoder for this encoder's templates and input size."""
        return LinearDecoder(self.encoder.embedding_dim, self.output_size)

    def stages(self, data: TrainingData) -> list[Stage]:
        """One stage of pixel MSE with Adam."""

        def loss(batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Any]]:
            templates, images = batch
            mse = mse_loss(self.model(templates), self.targets(images))
            return mse, {"mse": mse}

        o = self.options
        return [Stage(loss, epochs=o.epochs, optimizer=OptimizerSpec(lr=o.lr))]


class FakeFacesOptions(Options):
    """Options of the fake face sets (defaults: the evaluation set's).

    12 identities x 4 images give 1,056 impostor pairs, enough for a rate at FMR 1e-2
    (at least 10 false matches possible), so the harness's fake runs report one.
    """

    identities: int = 12
    per_identity: int = 4
    noise: float = 0.1
    seed: int = 0


class FakeTrainFacesOptions(FakeFacesOptions):
    """Options of the fake training set: more identities and images."""

    identities: int = 16
    per_identity: int = 4


class FakeFaces(FaceDataset[FakeFacesOptions]):
    """Toy evaluation faces: 16x16 noisy variations of one random pattern per identity."""

    name: ClassVar[str] = "fake-faces"
    aligned: ClassVar[bool] = True
    prefix: ClassVar[str] = "e"

    def __init__(
        self, options: FakeFacesOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        o = self.options
        g = torch.Generator().manual_seed(o.seed * 1000 + ord(self.prefix))
        base = torch.rand(o.identities, 3, FAKE_SIZE, FAKE_SIZE, generator=g)
        noise = torch.randn(o.identities, o.per_identity, 3, FAKE_SIZE, FAKE_SIZE, generator=g)
        self._images = (base[:, None] + o.noise * noise).clamp(0, 1).flatten(0, 1)

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def __getitem__(self, index: int) -> FaceSample:
        """Sample ``index``: identity ``<prefix><k>``."""
        ident = index // self.options.per_identity
        return FaceSample(self._images[index], f"{self.prefix}{ident}", f"{index:04d}")

    def fingerprint(self) -> str:
        """sha256 of the generated pixels."""
        data = np.ascontiguousarray(self._images.numpy()).tobytes()
        return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeTrainFaces(FakeFaces):
    """Toy training faces: like ``fake-faces`` with disjoint identities (``t0``, ``t1``...)."""

    name: ClassVar[str] = "fake-train-faces"
    prefix: ClassVar[str] = "t"
    Options: ClassVar[type[Options]] = FakeTrainFacesOptions


class FakeGenerator(Generator[Options]):
    """Toy generator: a seeded linear map of an 8-D code to a 16x16 image, then a sigmoid.

    Latents ``(B, 1, 8)``; differentiable; a stand-in for a face generator in fast tests.
    """

    name: ClassVar[str] = "fake-generator"

    def __init__(
        self, options: Options | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        g = torch.Generator().manual_seed(11)
        self.weight = torch.randn(8, 3 * FAKE_SIZE * FAKE_SIZE, generator=g)

    @property
    def latent_shape(self) -> tuple[int, int]:
        """``(1, 8)``."""
        return (1, 8)

    @property
    def output_size(self) -> tuple[int, int]:
        """``(16, 16)``."""
        return (FAKE_SIZE, FAKE_SIZE)

    def sample_latents(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` standard-normal codes ``(n, 1, 8)``."""
        return torch.randn(n, 1, 8, generator=generator)

    def synthesize(self, latents: Tensor) -> Tensor:
        """``(B, 1, 8)`` -> ``(B, 3, 16, 16)`` in ``(0, 1)``."""
        flat = torch.sigmoid(latents.reshape(-1, 8).float() @ self.weight)
        return flat.view(-1, 3, FAKE_SIZE, FAKE_SIZE)
