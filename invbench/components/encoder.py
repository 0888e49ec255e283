"""The encoder contract: aligned faces in, L2-normalised templates out."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor

from invbench.components.base import Component, OptionsT


class Encoder(Component[OptionsT]):
    """A face-recognition model that maps aligned faces to templates.

    Contract:
        ``encode(images)``: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, aligned to
        ``alignment`` at ``input_size`` -> ``(B, D)`` float32, L2-normalised rows. The
        encoder owns its preprocessing (resizing, mean/std, channel order).

        ``forward_torch(images)``: the same map, differentiable (white-box losses and
        adversarial attacks need gradients). Encoders that cannot offer it set
        ``differentiable = False`` and raise ``NotImplementedError``.

        ``feature_maps(images)``: internal feature maps for perceptual losses, each
        ``(B, C, h, w)``; optional.

    Class attributes:
        input_size: ``(H, W)`` of the aligned crop the encoder expects.
        alignment: Name of the crop template (``"arcface"`` = the ArcFace 5-point template).
        differentiable: Whether ``forward_torch`` works.
    """

    family: ClassVar[str] = "encoder"
    input_size: ClassVar[tuple[int, int]] = (112, 112)
    alignment: ClassVar[str] = "arcface"
    differentiable: ClassVar[bool] = False

    @property
    def embedding_dim(self) -> int:
        """Length D of the templates."""
        raise NotImplementedError

    def encode(self, images: Tensor) -> Tensor:
        """Map aligned faces to templates without gradients.

        Args:
            images: ``(B, 3, H, W)`` float in ``[0, 1]``.

        Returns:
            ``(B, D)`` float32 on the CPU, rows of unit L2 norm.
        """
        with torch.no_grad():
            return self.forward_torch(images.to(self.device)).float().cpu()

    def templates(
        self,
        images: Tensor,
        batch_size: int = 64,
        progress: Callable[[int], object] | None = None,
        *,
        fixed_batch: bool = False,
    ) -> Tensor:
        """Checked templates of any number of faces, in batches.

        Args:
            images: ``(N, 3, H, W)`` float in ``[0, 1]`` or uint8, any size (resized to
                ``input_size``).
            batch_size: Faces per :meth:`encode` call.
            progress: Called with the number of faces done after each batch.
            fixed_batch: Give every :meth:`encode` call exactly ``batch_size`` faces, the
                last batch padded by repeating its last face (those rows are dropped), so
                the libraries see one shape and pick the same kernels whatever ``N`` and
                the thread count: a face's template then does not depend on its
                neighbours (see :mod:`invbench.determinism`). The runner's cached template
                stage sets it; it costs the padding rows.

        Returns:
            ``(N, D)`` float32 on the CPU, unit rows.

        Raises:
            ContractError: When a batch breaks the contract (shape, dtype, NaN, norm).
        """
        from invbench.components.contracts import check_templates
        from invbench.determinism import pad_rows
        from invbench.images import resize

        out = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            batch = batch.float() / 255.0 if batch.dtype == torch.uint8 else batch.float()
            rows = len(batch)
            if fixed_batch:
                batch = pad_rows(batch, batch_size)
            found = self.encode(resize(batch, self.input_size))
            who = f"encoder {self.name!r}"
            found = check_templates(who, found, len(batch), self.embedding_dim)
            out.append(found[:rows].cpu())
            if progress is not None:
                progress(rows)
        return torch.cat(out) if out else torch.zeros(0, self.embedding_dim)

    def forward_torch(self, images: Tensor) -> Tensor:
        """Differentiable ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, D)`` unit-norm templates."""
        raise NotImplementedError(f"encoder {self.name!r} has no differentiable path")

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        """Internal feature maps ``[(B, C_k, h_k, w_k), ...]`` for perceptual losses."""
        raise NotImplementedError(f"encoder {self.name!r} exposes no feature maps")
