"""Five-point similarity alignment: least-squares similarity transform and warp.

Coordinates are pixel-index coordinates ``(x, y)``: the centre of pixel ``(row i, col j)``
is ``(j, i)``, as in OpenCV's ``warpAffine`` and the ArcFace template.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: The ArcFace 112x112 template ``(5, 2)`` ``(x, y)``: left eye, right eye, nose tip,
#: left and right mouth corner (left/right as seen in the image).
ARCFACE_TEMPLATE_112 = torch.tensor(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=torch.float64,
)


def arcface_template(output_size: tuple[int, int]) -> Tensor:
    """The ArcFace template scaled to ``output_size``.

    Args:
        output_size: ``(h, w)`` of the aligned crop; x is scaled by ``w / 112`` and y by
            ``h / 112`` (a non-square size stretches the template).

    Returns:
        ``(5, 2)`` float64 ``(x, y)`` points.
    """
    h, w = output_size
    scale = torch.tensor([w / 112.0, h / 112.0], dtype=torch.float64)
    return ARCFACE_TEMPLATE_112 * scale


def estimate_similarity(src: Tensor, dst: Tensor) -> Tensor:
    """Least-squares similarity transforms (rotation, uniform scale, translation).

    Solves ``min_{s,R,t} sum_k |s R src_k + t - dst_k|^2`` in closed form (Umeyama's
    solution restricted to proper rotations, i.e. no reflection), per batch row.

    Args:
        src: ``(B, K, 2)`` or ``(K, 2)`` source points, ``K >= 2``.
        dst: ``(B, K, 2)`` or ``(K, 2)`` target points (broadcast against ``src``).

    Returns:
        ``(B, 2, 3)`` (or ``(2, 3)`` for unbatched input) float64 matrices ``M`` with
        ``dst ~= src @ M[:, :2].T + M[:, 2]``.
    """
    unbatched = src.dim() == 2 and dst.dim() == 2
    src64 = src.to(torch.float64)
    dst64 = dst.to(torch.float64)
    if src64.dim() == 2:
        src64 = src64.unsqueeze(0)
    if dst64.dim() == 2:
        dst64 = dst64.unsqueeze(0)
    src64, dst64 = torch.broadcast_tensors(src64, dst64)
    src_mean = src64.mean(dim=1, keepdim=True)
    dst_mean = dst64.mean(dim=1, keepdim=True)
    sc = src64 - src_mean
    dc = dst64 - dst_mean
    norm = (sc**2).sum(dim=(1, 2)).clamp_min(1e-12)
    # With x' = a x - b y, y' = b x + a y the normal equations decouple:
    a = (sc[..., 0] * dc[..., 0] + sc[..., 1] * dc[..., 1]).sum(dim=1) / norm
    b = (sc[..., 0] * dc[..., 1] - sc[..., 1] * dc[..., 0]).sum(dim=1) / norm
    linear = torch.stack([torch.stack([a, -b], dim=1), torch.stack([b, a], dim=1)], dim=1)
    shift = dst_mean.squeeze(1) - (linear @ src_mean.transpose(1, 2)).squeeze(2)
    matrix = torch.cat([linear, shift.unsqueeze(2)], dim=2)
    return matrix[0] if unbatched else matrix


def apply_affine(matrix: Tensor, points: Tensor) -> Tensor:
    """Apply ``(B, 2, 3)`` affine matrices to ``(B, K, 2)`` points (or unbatched)."""
    return points @ matrix[..., :2].transpose(-1, -2) + matrix[..., 2].unsqueeze(-2)


def _invert_affine(matrix: Tensor) -> Tensor:
    linear = torch.linalg.inv(matrix[:, :, :2])
    return torch.cat([linear, -(linear @ matrix[:, :, 2:])], dim=2)


def warp_affine(image: Tensor, matrix: Tensor, output_size: tuple[int, int]) -> Tensor:
    """Warp one image with an affine map from input to output pixel coordinates.

    Bilinear sampling, zeros outside the image. When the map shrinks the image by more
    than 1.5x, the image is first downscaled with an antialiasing filter so the crop
    does not alias.

    Args:
        image: ``(3, H, W)`` float image.
        matrix: ``(2, 3)`` map from input ``(x, y)`` to output ``(x, y)`` pixel coordinates.
        output_size: ``(h, w)`` of the result.

    Returns:
        ``(3, h, w)`` float image, same dtype as ``image``.
    """
    h_out, w_out = output_size
    _, h_in, w_in = image.shape
    m = matrix.to(torch.float64)
    scale = float(torch.linalg.det(m[:, :2]).abs().sqrt())  # output px per input px
    src = image.unsqueeze(0)
    if 0.0 < scale < 1.0 / 1.5:
        h_new, w_new = max(1, round(h_in * scale)), max(1, round(w_in * scale))
        src = F.interpolate(src, size=(h_new, w_new), mode="bilinear", antialias=True)
        sx, sy = w_new / w_in, h_new / h_in
        # x_new = sx * x + (sx - 1) / 2 maps old pixel-index coordinates to new ones.
        to_new = torch.tensor(
            [[sx, 0.0, (sx - 1) / 2], [0.0, sy, (sy - 1) / 2], [0.0, 0.0, 1.0]],
            dtype=torch.float64,
        )
        m = (torch.cat([m, to_new.new_tensor([[0.0, 0.0, 1.0]])]) @ torch.linalg.inv(to_new))[:2]
        h_in, w_in = h_new, w_new
    inv = _invert_affine(m.unsqueeze(0))[0]  # output (x, y) -> input (x, y)
    ys, xs = torch.meshgrid(
        torch.arange(h_out, dtype=torch.float64),
        torch.arange(w_out, dtype=torch.float64),
        indexing="ij",
    )
    grid = torch.stack([xs, ys], dim=-1) @ inv[:, :2].T + inv[:, 2]
    # Pixel-index coordinates -> grid_sample's [-1, 1] (align_corners=False).
    norm = torch.tensor([2.0 / w_in, 2.0 / h_in], dtype=torch.float64)
    grid = (grid + 0.5) * norm - 1.0
    out = F.grid_sample(
        src,
        grid.unsqueeze(0).to(src.dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return out[0]


def align_to_template(
    image: Tensor, landmarks: Tensor, output_size: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Warp ``image`` so its five ``landmarks`` land on the ArcFace template.

    Args:
        image: ``(3, H, W)`` float image.
        landmarks: ``(5, 2)`` ``(x, y)`` pixel coordinates in ArcFace order.
        output_size: ``(h, w)`` of the aligned crop.

    Returns:
        ``(crop, matrix)``: ``(3, h, w)`` aligned face and the ``(2, 3)`` float64
        input-to-output map that produced it.
    """
    matrix = estimate_similarity(landmarks, arcface_template(output_size))
    return warp_affine(image, matrix, output_size), matrix
