"""The ``dcgan-faces`` dataset: seeded synthetic faces from the ``dcgan-faces`` generator.

Sample ``i`` is ``synthesize(z_i)`` with ``z_i`` drawn from a standard normal. Latents
come in chunks of 64, each from its own ``torch.Generator`` seeded from
``(seed, chunk index)``, so sample ``i`` is the same whatever ``count`` is (a smaller
dataset is a prefix of a larger one) and images are generated lazily, a chunk at a time.
Images are stored as 8-bit (like any image file); ``FaceSample.latent`` holds ``z_i``.

Alignment: the DCGAN was trained on DigiFace-1M crops, which are already aligned, and
its faces keep that layout. Measured with the ``mtcnn`` aligner on 512 faces (seed 0):
MTCNN finds 95-96 % of them (upsampling to 128 px does not help), and the mean of its
five landmarks lies within 0.9 px of the ArcFace template scaled to 64x64 (per face,
median 2 px from it, i.e. ~3.6 px at 112x112, mostly pose). MTCNN-aligned crops look
the same as plain resizes, with thin black borders where the rotation pulls in pixels
from outside the 64x64 frame, and the 4-5 % of faces it misses would be lost. The dataset
is therefore marked ``aligned``: the runner only resizes it to the encoder's input.

Every generated latent is a new synthetic person, so identities are ``""`` (unknown):
none can coincide with a real dataset's labels.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from invbench.assets import Asset
from invbench.components import FaceDataset, FaceSample
from invbench.components.base import Options
from invbench_plugins.generators.dcgan import DCGAN_ASSET, DCGANFacesGenerator

CHUNK = 64


def chunk_latents(seed: int, chunk: int, shape: tuple[int, int]) -> Tensor:
    """The ``(CHUNK, *shape)`` standard-normal latents of chunk ``chunk`` for ``seed``."""
    key = hashlib.sha256(f"dcgan-faces:{seed}:{chunk}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(key[:8], "little") & (2**63 - 1))
    return torch.randn(CHUNK, *shape, generator=gen)


class DCGANFacesOptions(Options):
    """Options of the DCGAN faces dataset."""

    count: int = Field(2000, ge=1, description="number of faces")
    seed: int = Field(0, ge=0, description="seed of the latents")


class DCGANFacesDataset(FaceDataset[DCGANFacesOptions]):
    """Seeded synthetic 64x64 faces from the ``dcgan-faces`` generator (no identities).

    Images ``(3, 64, 64)`` in ``[0, 1]`` (8-bit steps); ``latent`` ``(1, 100)``; key
    ``"<seed>/<index>"``; identity ``""``.
    """

    name: ClassVar[str] = "dcgan-faces"
    default_for: ClassVar[tuple[str, ...]] = ("training",)
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Seeded synthetic 64x64 DCGAN faces (DigiFace-1M; non-commercial)"
    aligned: ClassVar[bool] = True
    synthetic: ClassVar[bool] = True
    assets: ClassVar[tuple[Asset, ...]] = (DCGAN_ASSET,)

    profiles: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {"count": 64}}

    def __init__(
        self, options: DCGANFacesOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        self.generator = DCGANFacesGenerator(device=device)
        self._chunks: dict[int, tuple[Tensor, Tensor]] = {}

    def __len__(self) -> int:
        """``count``."""
        return self.options.count

    def _chunk(self, c: int) -> tuple[Tensor, Tensor]:
        """Latents ``(CHUNK, 1, 100)`` and uint8 images ``(CHUNK, 3, 64, 64)`` of chunk ``c``."""
        if c not in self._chunks:
            latents = chunk_latents(self.options.seed, c, self.generator.latent_shape)
            with torch.no_grad():
                images = self.generator.synthesize(latents).cpu()
            self._chunks[c] = (latents, images.mul(255.0).round().clamp(0, 255).to(torch.uint8))
        return self._chunks[c]

    def latents(self) -> Tensor:
        """All ``(count, 1, 100)`` latents, in order (no images are generated)."""
        n_chunks = -(-len(self) // CHUNK)
        shape = self.generator.latent_shape
        all_latents = [chunk_latents(self.options.seed, c, shape) for c in range(n_chunks)]
        return torch.cat(all_latents)[: len(self)]

    def __getitem__(self, index: int) -> FaceSample:
        """Sample ``index``: ``(3, 64, 64)`` float image and its ``(1, 100)`` latent."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        latents, images = self._chunk(index // CHUNK)
        j = index % CHUNK
        return FaceSample(
            image=images[j].float() / 255.0,
            identity="",
            key=f"{self.options.seed}/{index}",
            latent=latents[j].clone(),
        )

    def fingerprint(self) -> str:
        """``sha256:`` over the generator weights' sha256, ``count``, ``seed`` and method."""
        text = (
            f"dcgan-faces v{self.version}\0weights={self.generator.weights_sha256}"
            f"\0count={self.options.count}\0seed={self.options.seed}\0chunk={CHUNK}"
        )
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def provenance(self) -> dict[str, Any]:
        """The generator's pinned weights."""
        return self.generator.provenance()
