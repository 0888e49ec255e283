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
    Encoder,
    FaceDataset,
    FaceSample,
    FitContext,
    Inverter,
    Options,
    TrainingData,
)
from invbench.errors import IncompatibleComponentsError

FAKE_SIZE = 16


class FakeProjectionEncoder(Encoder):
    """Toy encoder: a fixed random projection of 16x16 faces to 8-D (seed 42)."""

    name: ClassVar[str] = "fake-projection"
    input_size: ClassVar[tuple[int, int]] = (FAKE_SIZE, FAKE_SIZE)
    differentiable: ClassVar[bool] = True

    class Options(Options):
        """Options of the fake encoder."""

        dim: int = 8
        seed: int = 42

    def __init__(
        self, options: Options | None = None, *, device: str | torch.device = "cpu"
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


class FakePseudoInverse(Inverter):
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

    def invert(self, templates: Tensor) -> Tensor:
        """``(B, D)`` -> ``(B, 3, 16, 16)`` in ``[0, 1]`` that re-encode to ``templates``."""
        x = templates.float().cpu() @ self.pinv.T
        scale = 0.45 / x.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
        return (0.5 + scale * x).reshape(-1, 3, FAKE_SIZE, FAKE_SIZE)


class FakeLinearInverter(Inverter):
    """Toy trainable inverter: a linear map from templates to pixels, fitted by Adam."""

    name: ClassVar[str] = "fake-linear"

    class Options(Options):
        """Options of the fake linear inverter."""

        epochs: int = 3
        batch_size: int = 4
        lr: float = 0.05
        checkpoint_every: int = 0

    def __init__(self, encoder: Encoder, options: Options | None = None, **kwargs: Any) -> None:
        super().__init__(encoder, options, **kwargs)
        h, w = self.output_size
        self.model = torch.nn.Linear(encoder.embedding_dim, 3 * h * w)

    def fit(self, data: TrainingData, ctx: FitContext) -> dict[str, Any]:
        """Least-squares fit with Adam through the shared trainer (resumable)."""
        from invbench.training import OptimizerSpec, Stage, train

        h, w = self.output_size

        def loss_fn(batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Any]]:
            templates, images = batch
            target = F.interpolate(
                images.float() / 255.0, size=(h, w), mode="bilinear", align_corners=False
            ).flatten(1)
            loss = F.mse_loss(torch.sigmoid(self.model(templates)), target)
            return loss, {"mse": loss}

        stage = Stage(
            loss_fn, epochs=self.options.epochs, optimizer=OptimizerSpec(lr=self.options.lr)
        )
        return train(
            self.model,
            (data.templates, data.images),
            stage,
            batch_size=self.options.batch_size,
            seed=ctx.seed,
            checkpoint_dir=ctx.checkpoint_dir,
            checkpoint_every=self.options.checkpoint_every,
            progress=ctx.progress,
            desc="fake-linear",
        )

    def invert(self, templates: Tensor) -> Tensor:
        """``(B, D)`` -> ``(B, 3, H, W)`` in ``[0, 1]``."""
        with torch.no_grad():
            out = torch.sigmoid(self.model(templates.float()))
        return out.reshape(-1, 3, *self.output_size)

    def state_dict(self) -> dict[str, Any]:
        """The linear layer's weights."""
        return {k: v.clone() for k, v in self.model.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the linear layer's weights."""
        self.model.load_state_dict(state)


class FakeFaces(FaceDataset):
    """Toy evaluation faces: 16x16 noisy variations of one random pattern per identity."""

    name: ClassVar[str] = "fake-faces"
    aligned: ClassVar[bool] = True
    prefix: ClassVar[str] = "e"

    class Options(Options):
        """Options of the fake face set."""

        identities: int = 6
        per_identity: int = 3
        noise: float = 0.1
        seed: int = 0

    def __init__(
        self, options: Options | None = None, *, device: str | torch.device = "cpu"
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

    class Options(FakeFaces.Options):
        """Options of the fake training set."""

        identities: int = 8
        per_identity: int = 4
