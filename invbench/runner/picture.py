"""The reconstruction grid: originals above their reconstructions, one PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from invbench.images import resize
from invbench.io import atomic_write_bytes


def pick_examples(identities: np.ndarray, count: int) -> list[int]:
    """Indices of up to ``count`` samples, one per identity first, in dataset order."""
    seen: set[str] = set()
    first = []
    for i, ident in enumerate(identities):
        if ident not in seen:
            seen.add(ident)
            first.append(i)
    rest = [i for i in range(len(identities)) if i not in set(first)]
    return (first + rest)[:count]


def save_reconstruction_grid(
    path: Path,
    originals: Tensor,
    reconstructions: Tensor,
    identities: np.ndarray,
    *,
    columns: int = 8,
    rows: int = 2,
    tile: int = 112,
) -> None:
    """Save a PNG with ``rows`` pairs of rows: originals above their reconstructions.

    Args:
        path: Output PNG path.
        originals: ``(N, 3, H, W)`` aligned originals in ``[0, 1]``.
        reconstructions: ``(N, 3, h, w)`` reconstructions in ``[0, 1]``.
        identities: ``(N,)`` labels, used to show distinct people first.
        columns: Faces per row.
        rows: Number of original/reconstruction row pairs.
        tile: Side of each face tile in pixels.
    """
    index = pick_examples(identities, columns * rows)
    if not index:
        return
    pad = 2
    canvas = torch.ones(3, rows * 2 * (tile + pad) + pad, columns * (tile + pad) + pad)
    for k, i in enumerate(index):
        r, c = divmod(k, columns)
        for j, img in enumerate((originals[i], reconstructions[i])):
            y = (2 * r + j) * (tile + pad) + pad
            x = c * (tile + pad) + pad
            canvas[:, y : y + tile, x : x + tile] = resize(img[None].float(), (tile, tile))[0]
    array = (canvas.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
