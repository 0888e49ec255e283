"""Face images on disk, one sub-folder per identity: ``folder`` and ``lfw``.

Layout (LFW, CelebA sorted by identity, MOBIO, your own data)::

    <path>/
        <identity A>/img001.jpg, img002.png, ...
        <identity B>/...

The identity is the sub-folder name, the key the ``/``-separated path relative to
``path``. Images are read lazily with Pillow and converted to RGB.

``lfw`` is the same reader with LFW's defaults. It takes a local copy (nothing is
downloaded): either the standard LFW archive unpacked (``lfw/``, ``lfw-deepfunneled/``
or ``lfw_funneled/``, all ``<Name>/<Name>_0001.jpg``), or the copy that scikit-learn's
``fetch_lfw_people`` leaves in ``<data_home>/lfw_home/lfw_funneled`` (data_home is
``$SCIKIT_LEARN_DATA`` or ``~/scikit_learn_data``), which is looked for when no ``path``
is given. LFW photos are 250x250 and unaligned: run them through an aligner (``mtcnn``
with ``select=center`` picks the labelled, centred face).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from invbench.assets import sha256_of
from invbench.components import FaceDataset, FaceSample
from invbench.components.base import Options
from invbench.errors import InvbenchError, UnreadableImageError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp")


class DatasetNotFoundError(InvbenchError):
    """A dataset folder that does not exist or holds no usable images."""


def scan_identity_folders(
    root: Path,
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
    min_images: int = 1,
    max_identities: int | None = None,
    max_images: int | None = None,
) -> list[tuple[str, str]]:
    """List ``(key, identity)`` pairs of images under ``root/<identity>/``, sorted.

    Args:
        root: Folder with one sub-folder per identity (files directly in ``root`` and
            deeper folders are ignored).
        extensions: Accepted file suffixes (case-insensitive).
        min_images: Drop identities with fewer images (applied before ``max_images``).
        max_identities: Keep the first N identities (sorted by name) that remain.
        max_images: Keep at most the first N images (sorted by name) per identity.

    Returns:
        ``(key, identity)`` with ``key`` the path relative to ``root``.
    """
    exts = tuple(e.lower() for e in extensions)
    out: list[tuple[str, str]] = []
    n_ids = 0
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            f.name for f in sub.iterdir() if f.is_file() and f.name.lower().endswith(exts)
        )
        if len(files) < min_images:
            continue
        if max_identities is not None and n_ids >= max_identities:
            break
        n_ids += 1
        out.extend((f"{sub.name}/{name}", sub.name) for name in files[:max_images])
    return out


class FolderOptions(Options):
    """Options of the folder dataset."""

    path: str | None = Field(None, description="folder with one sub-folder per identity")
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS
    min_images_per_identity: int = Field(1, ge=1)
    max_identities: int | None = Field(None, ge=1)
    max_images_per_identity: int | None = Field(None, ge=1)
    aligned: bool = Field(False, description="images are already aligned crops")


class FolderDataset(FaceDataset[FolderOptions]):
    """Face images in identity sub-folders under ``path`` (real data: LFW, CelebA, ...).

    ``aligned=true`` declares the images already aligned crops (the runner then only
    resizes them); it is set on the instance, so read it from the dataset object.
    """

    name: ClassVar[str] = "folder"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "Face images in identity sub-folders under a local path"

    def __init__(
        self, options: FolderOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        o = self.options
        self.root = self._resolve_root()
        self.aligned = o.aligned  # type: ignore[misc]  # per instance, from the options
        items = scan_identity_folders(
            self.root,
            tuple(o.extensions),
            o.min_images_per_identity,
            o.max_identities,
            o.max_images_per_identity,
        )
        if not items:
            raise DatasetNotFoundError(
                f"{self.name or 'folder'} dataset: no images under {self.root}",
                hint="expected <path>/<identity>/<image> with suffixes "
                + ", ".join(o.extensions)
                + " (check min_images_per_identity)",
            )
        self.keys = [k for k, _ in items]
        self.identities = [i for _, i in items]
        self._fingerprint: str | None = None
        logger.info(
            "%s: %d images of %d identities from %s",
            self.name or "folder",
            len(self.keys),
            len(set(self.identities)),
            self.root,
        )

    def _resolve_root(self) -> Path:
        if not self.options.path:
            raise DatasetNotFoundError(
                f"{self.name or 'folder'} dataset needs a path",
                hint="set the option path=/data/faces (one sub-folder per identity)",
            )
        root = Path(self.options.path).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(
                f"{self.name or 'folder'} dataset: {root} is not a folder",
                hint="set the option path to a folder with one sub-folder per identity",
            )
        return root

    def __len__(self) -> int:
        """Number of images."""
        return len(self.keys)

    def __getitem__(self, index: int) -> FaceSample:
        """Image ``index`` as ``(3, H, W)`` float RGB in ``[0, 1]``.

        Raises:
            UnreadableImageError: When the file is empty, truncated or not an image.
        """
        key = self.keys[index]
        try:
            with Image.open(self.root / key) as im:
                array = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise UnreadableImageError(
                f"cannot read image {self.root / key}: {type(exc).__name__}: {exc}",
                key=key,
                identity=self.identities[index],
            ) from None
        image = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0
        return FaceSample(image=image, identity=self.identities[index], key=key)

    def fingerprint(self) -> str:
        """``sha256:`` over the ordered ``(key, identity, file sha256)``; reads every file."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for key, identity in zip(self.keys, self.identities, strict=True):
                digest.update(f"{key}\0{identity}\0{sha256_of(self.root / key)}\n".encode())
            self._fingerprint = "sha256:" + digest.hexdigest()
        return self._fingerprint

    def provenance(self) -> dict[str, Any]:
        """Where the images were read from."""
        return {"path": str(self.root), "images": len(self), "aligned": self.aligned}


def sklearn_lfw_candidates(data_home: Path | None = None) -> list[Path]:
    """Where scikit-learn's ``fetch_lfw_people`` keeps LFW (funneled first).

    Args:
        data_home: scikit-learn's data folder; default ``$SCIKIT_LEARN_DATA`` or
            ``~/scikit_learn_data``.
    """
    if data_home is None:
        data_home = Path(os.environ.get("SCIKIT_LEARN_DATA", "~/scikit_learn_data"))
    home = data_home.expanduser()
    return [home / "lfw_home" / "lfw_funneled", home / "lfw_home" / "lfw"]


class LFWDataset(FolderDataset):
    """Labeled Faces in the Wild from a local copy (standard or scikit-learn layout).

    Credit: G. B. Huang et al., University of Massachusetts Amherst; research use.
    """

    name: ClassVar[str] = "lfw"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "LFW from a local copy (lfw/<Name>/<Name>_0001.jpg or sklearn's)"
    license: ClassVar[str] = "LFW, University of Massachusetts Amherst: research use, credit"

    def _resolve_root(self) -> Path:
        if self.options.path:
            root = Path(self.options.path).expanduser()
            if (root / "lfw_home").is_dir():  # a scikit-learn data_home was given
                found = [p for p in sklearn_lfw_candidates(root) if p.is_dir()]
                root = found[0] if found else root
            if root.is_dir():
                return root
            raise DatasetNotFoundError(
                f"lfw dataset: {root} is not a folder",
                hint="set path to the unpacked LFW folder (holding <Name>/<Name>_0001.jpg)",
            )
        for candidate in sklearn_lfw_candidates():
            if candidate.is_dir():
                return candidate
        raise DatasetNotFoundError(
            "lfw dataset: no local copy of LFW found",
            hint="unpack LFW and set path=/data/lfw (holding <Name>/<Name>_0001.jpg), or "
            "run sklearn.datasets.fetch_lfw_people() once where the internet can be reached "
            f"(it keeps the images in {sklearn_lfw_candidates()[0]})",
        )
