"""The dataset contract: face images with identity labels and a fingerprint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from invbench.components.base import Component, OptionsT


@dataclass(frozen=True)
class FaceSample:
    """One face image.

    Attributes:
        image: ``(3, H, W)`` float RGB in ``[0, 1]`` (any size unless the dataset is aligned).
        identity: Identity label, unique within the dataset (``""`` when unknown).
        key: Stable id of the sample within the dataset (file name, seed index).
        latent: The generator latent that produced the image, for synthetic data
            (``(n, d)``), else ``None``.
    """

    image: Tensor
    identity: str
    key: str
    latent: Tensor | None = None


class FaceDataset(Component[OptionsT]):
    """A sequence of face images with identity labels.

    Class attributes:
        aligned: ``True`` when images are already aligned face crops (the runner then only
            resizes them to the encoder's input size instead of running an aligner).
        synthetic: ``True`` for generated faces (no real identities).
        default_for: The roles (``"evaluation"``, ``"training"``) this dataset fills in
            ``invbench run`` when the user names none (``--dataset``, ``--train-dataset``).
    """

    family: ClassVar[str] = "dataset"
    aligned: ClassVar[bool] = False
    synthetic: ClassVar[bool] = False
    default_for: ClassVar[tuple[str, ...]] = ()

    def __len__(self) -> int:
        """Number of samples."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> FaceSample:
        """Return sample ``index``.

        Raises:
            invbench.errors.UnreadableImageError: For an image that cannot be read (the
                runner counts it as a failure to acquire and goes on).
        """
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Return a stable hash of the dataset content (``"sha256:<hex>"``).

        It keys the cache and is recorded with every result, so it must change whenever
        the images or labels change.
        """
        raise NotImplementedError
