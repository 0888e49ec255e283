"""The ``dlib`` encoder: dlib's face recognition ResNet (128-D), on ArcFace crops.

The network (:class:`DlibResNet`) was trained on dlib "face chips": 150x150 crops made by
``get_face_chip_details(shape, 150, 0.25)``, which fits landmarks to dlib's mean face with
25 % padding. invbench's pipeline hands every encoder ArcFace-template crops, so this encoder
takes **ArcFace 112x112 crops** (``alignment = "arcface"``) and warps them to the dlib chip
geometry with one fixed similarity transform, inside ``forward_torch`` (differentiable).

The transform is the least-squares similarity taking the ArcFace template's 5 points to the
same 5 points of the dlib chip (eye centres = means of landmarks 36-41 and 42-47, nose tip
30, mouth corners 48 and 54 of dlib's mean face, padded as dlib pads); the fit leaves
about 2.4 chip pixels of residual because the two templates' face shapes differ. Two
approximations follow:

* The chip reaches further below the mouth than the ArcFace crop: its bottom ~11 % of rows
  (chin and neck; crop rows 112-123) lie outside the crop and are filled by ``fill``
  (default ``"reflection"``: the crop's last rows mirrored; ``"zeros"`` gives black, as
  dlib itself fills chips that leave the photo; ``"border"`` repeats the last row).
* The crop's 112 pixels are upsampled ~1.45x to the chip, so chips carry less detail than
  chips cut from a full-resolution photo.

Measured on skimage's astronaut photo (5 points marked by hand), cosine to the descriptor
of the native dlib chip cut from the photo: 0.998 for a chip warped from a larger
ArcFace-template canvas (resolution and template fit only), and from the 112 crop 0.994
(reflection), 0.996 (zeros, helped by the dark collar below the chin), 0.987 (border).
On ORL (400 faces, rough crops) the fills give the same AUC (0.997-0.998).

An aligner that produces native dlib chips can use ``DLIB_CHIP_TEMPLATE`` (5 points in
ArcFace order, 150x150 chip coordinates); a ``"dlib"`` alignment is not wired into the
pipeline today.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from invbench.assets import Asset, fetch
from invbench.components import Encoder, Options
from invbench_plugins.encoders.dlib_resnet import FEATURE_MAPS, DlibResNet

logger = logging.getLogger(__name__)

_LICENSE = (
    "dlib_face_recognition_resnet_model_v1 by Davis King: CC0 1.0; TF.js conversion from "
    "face-api.js (npm @vladmandic/face-api): MIT"
)
DLIB_WEIGHTS_ASSET = Asset(
    id="dlib-resnet-face-api",
    source="npm",
    package="@vladmandic/face-api@1.7.15",
    member="model/face_recognition_model.bin",
    sha256="b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589",
    license=_LICENSE,
)
DLIB_MANIFEST_ASSET = Asset(
    id="dlib-resnet-face-api-manifest",
    source="npm",
    package="@vladmandic/face-api@1.7.15",
    member="model/face_recognition_model-weights_manifest.json",
    sha256="cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b",
    license=_LICENSE,
)

#: ArcFace 5-point template for 112x112 crops: eyes, nose tip, mouth corners (image left
#: first), pixel-centre coordinates.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)

#: dlib's mean face (``get_face_chip_details``, unit square) at the landmarks the ArcFace
#: points are made of: 36-41 and 42-47 (eyes), 30 (nose tip), 48 and 54 (mouth corners).
_DLIB_MEAN_FACE = {
    36: (0.121737, 0.216423),
    37: (0.187122, 0.178758),
    38: (0.265825, 0.179852),
    39: (0.334606, 0.231733),
    40: (0.260918, 0.245099),
    41: (0.182743, 0.244077),
    42: (0.645647, 0.231733),
    43: (0.714428, 0.179852),
    44: (0.793132, 0.178758),
    45: (0.858516, 0.216423),
    46: (0.79751, 0.244077),
    47: (0.719335, 0.245099),
    30: (0.490127, 0.515625),
    48: (0.254149, 0.780233),
    54: (0.726104, 0.780233),
}
DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25


def dlib_chip_template(
    size: int = DLIB_CHIP_SIZE, padding: float = DLIB_CHIP_PADDING
) -> np.ndarray:
    """The ArcFace 5 points (same order as ``ARCFACE_TEMPLATE``) on a dlib face chip.

    Returns:
        ``(5, 2)`` pixel coordinates on a ``size`` x ``size`` chip with ``padding``.
    """
    groups = [range(36, 42), range(42, 48), [30], [48], [54]]
    unit = np.array([np.mean([_DLIB_MEAN_FACE[i] for i in g], axis=0) for g in groups])
    return (unit + padding) / (1 + 2 * padding) * size


DLIB_CHIP_TEMPLATE = dlib_chip_template()


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) taking ``src`` to ``dst``.

    Umeyama's closed form. Args are ``(N, 2)`` point sets; returns the ``(2, 3)`` matrix
    ``M`` with ``dst ~ M @ [x, y, 1]``.
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    flip = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rot = u @ flip @ vt
    scale = np.trace(np.diag(sig) @ flip) / s.var(0).sum()
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def arcface_to_chip_grid(crop: int = 112, chip: int = DLIB_CHIP_SIZE) -> Tensor:
    """Sampling grid that warps an ArcFace crop to a dlib chip (for ``F.grid_sample``).

    Returns:
        ``(1, chip, chip, 2)`` float32 normalised coordinates (``align_corners=False``) of
        the crop position each chip pixel reads; valid for crops of any size that follow
        the ArcFace template scaled from ``crop``.
    """
    fwd = similarity_transform(ARCFACE_TEMPLATE * crop / 112.0, dlib_chip_template(chip))
    inv = np.linalg.inv(np.vstack([fwd, [0.0, 0.0, 1.0]]))[:2]
    v, u = np.meshgrid(np.arange(chip), np.arange(chip), indexing="ij")
    pts = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3) @ inv.T
    grid = (2.0 * pts + 1.0) / crop - 1.0
    return torch.from_numpy(grid.reshape(1, chip, chip, 2).astype(np.float32))


class DlibOptions(Options):
    """Options of the ``dlib`` encoder."""

    fill: Literal["reflection", "zeros", "border"] = Field(
        "reflection", description="how chip pixels outside the ArcFace crop are filled"
    )
    batch_size: int = Field(128, ge=1, description="images per forward pass in encode()")


class DlibEncoder(Encoder[DlibOptions]):
    """dlib's face recognition ResNet (128-D, CC0), on ArcFace crops warped to dlib chips."""

    name: ClassVar[str] = "dlib"
    description: ClassVar[str] = (
        "dlib face recognition ResNet (128-D, CC0; face-api.js weights), ArcFace crops "
        "warped to dlib chips"
    )
    version: ClassVar[str] = "1"
    input_size: ClassVar[tuple[int, int]] = (112, 112)
    alignment: ClassVar[str] = "arcface"
    differentiable: ClassVar[bool] = True
    assets: ClassVar[tuple[Asset, Asset]] = (DLIB_MANIFEST_ASSET, DLIB_WEIGHTS_ASSET)
    #: Names of the maps :meth:`feature_maps` returns (see :mod:`.dlib_resnet`).
    feature_map_names: ClassVar[tuple[str, ...]] = FEATURE_MAPS

    def __init__(
        self, options: DlibOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        self._net: DlibResNet | None = None
        self._grid = arcface_to_chip_grid().to(self.device)

    @property
    def embedding_dim(self) -> int:
        """128."""
        return 128

    @property
    def net(self) -> DlibResNet:
        """The torch port, loaded on first use, in eval mode on ``self.device``."""
        if self._net is None:
            manifest, weights = (fetch(a) for a in self.assets)
            net = DlibResNet.from_face_api(manifest, weights)
            net.requires_grad_(False)
            self._net = net.to(self.device)
        return self._net

    def to_chip(self, images: Tensor) -> Tensor:
        """Warp ArcFace crops to dlib chips (differentiable).

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, ArcFace-aligned.

        Returns:
            ``(B, 3, 150, 150)`` float RGB in ``[0, 1]``.
        """
        opts = self.options
        assert isinstance(opts, DlibEncoder.Options)
        grid = self._grid.to(images.device, images.dtype).expand(images.shape[0], -1, -1, -1)
        return F.grid_sample(
            images, grid, mode="bilinear", padding_mode=opts.fill, align_corners=False
        )

    def encode(self, images: Tensor) -> Tensor:
        """Templates without gradients: ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 128)`` CPU."""
        opts = self.options
        assert isinstance(opts, DlibEncoder.Options)
        outputs = [torch.zeros(0, self.embedding_dim)]
        with torch.no_grad():
            for start in range(0, images.shape[0], opts.batch_size):
                chunk = images[start : start + opts.batch_size].to(self.device)
                outputs.append(self.forward_torch(chunk).float().cpu())
        return torch.cat(outputs)

    def forward_torch(self, images: Tensor) -> Tensor:
        """Differentiable ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 128)`` unit-norm templates."""
        return F.normalize(self.net(self.to_chip(images) * 255.0), dim=1)

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        """Internal maps for perceptual losses (differentiable).

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, ArcFace-aligned.

        Returns:
            ``[(B, 32, 35, 35), (B, 64, 17, 17), (B, 128, 8, 8), (B, 256, 4, 4)]``: the
            outputs of the 32-, 64-, 128- and 256-channel stages (``feature_map_names``).
        """
        return self.net.feature_maps(self.to_chip(images) * 255.0)

    def provenance(self) -> dict[str, Any]:
        """The weight assets (id, package, sha256, licence) and the chip warp settings."""
        opts = self.options
        assert isinstance(opts, DlibEncoder.Options)
        return {
            "assets": [a.provenance() for a in self.assets],
            "input": "arcface-112-warped-to-dlib-chip-150",
            "fill": opts.fill,
        }
