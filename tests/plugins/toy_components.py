"""Tiny aligner and generator classes used by the hook tests."""

from typing import ClassVar

import torch
import torch.nn.functional as F

from invbench import Aligner, Generator


class ToyAligner(Aligner):
    """Resizes and says a face was found when the image is not blank."""

    name: ClassVar[str] = "toy-aligner"

    def align(self, images, output_size):
        faces = torch.stack([F.interpolate(i[None], size=output_size)[0] for i in images])
        ok = torch.tensor([bool(i.abs().sum() > 0) for i in images])
        return faces, ok


class ToyGenerator(Generator):
    """A fixed linear map from one 4-D code to a 8x8 image."""

    name: ClassVar[str] = "toy-generator"

    def __init__(self, options=None, *, device="cpu"):
        super().__init__(options, device=device)
        self.w = torch.randn(4, 3 * 8 * 8, generator=torch.Generator().manual_seed(0))

    @property
    def latent_shape(self):
        return (1, 4)

    @property
    def output_size(self):
        return (8, 8)

    def sample_latents(self, n, generator):
        return torch.randn(n, 1, 4, generator=generator)

    def synthesize(self, latents):
        return torch.sigmoid(latents[:, 0] @ self.w.to(latents.device)).reshape(-1, 3, 8, 8)
