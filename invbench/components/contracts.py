"""Run-time checks of component outputs against their declared contracts.

The runner passes every encoder, inverter and aligner output through these checks, and the
conformance checks (``invbench check-plugin``) use the same functions, so a component that
breaks its contract fails with one line naming it, what was expected and what came back,
instead of being silently resized, clamped or ranked.
"""

from __future__ import annotations

import torch
from torch import Tensor

from invbench.errors import ContractError

#: Allowed distance of template norms from 1.
NORM_TOLERANCE = 1e-3
#: Allowed excursion of image values outside ``[0, 1]``.
RANGE_TOLERANCE = 1e-4


def _fail(who: str, what: str) -> None:
    raise ContractError(f"{who} broke its output contract: {what}")


def _finite(who: str, x: Tensor, kind: str) -> None:
    bad = ~torch.isfinite(x.detach())
    if bool(bad.any()):
        rows = int(bad.flatten(1).any(dim=1).sum()) if x.ndim > 1 else int(bad.sum())
        _fail(who, f"{kind} hold NaN or infinite values ({rows} of {x.shape[0]} rows)")


def check_templates(who: str, templates: Tensor, n: int, dim: int) -> Tensor:
    """Check encoder output: ``(n, dim)`` float32, finite, rows of unit L2 norm.

    Args:
        who: The component, as users name it (``"encoder 'arcface'"``).
        templates: What it returned.
        n: Rows expected (the batch size).
        dim: Its declared ``embedding_dim``.

    Returns:
        ``templates`` unchanged.

    Raises:
        ContractError: Naming ``who``, the expected and the actual shape, dtype or values.
    """
    if not isinstance(templates, Tensor):
        _fail(who, f"returned {type(templates).__name__}, expected a torch.Tensor ({n}, {dim})")
    if tuple(templates.shape) != (n, dim):
        _fail(
            who,
            f"returned templates of shape {tuple(templates.shape)}, expected ({n}, {dim}) "
            f"(batch of {n}, embedding_dim {dim})",
        )
    if templates.dtype != torch.float32:
        _fail(who, f"returned templates of dtype {templates.dtype}, expected torch.float32")
    _finite(who, templates, "templates")
    if n:
        norms = templates.detach().norm(dim=1)
        worst = float((norms - 1).abs().max())
        if worst > NORM_TOLERANCE:
            _fail(
                who,
                f"returned templates with L2 norms {float(norms.min()):.4g}..."
                f"{float(norms.max()):.4g}, expected unit norm (±{NORM_TOLERANCE})",
            )
    return templates


def check_images(who: str, images: Tensor, n: int, size: tuple[int, int]) -> Tensor:
    """Check image output: ``(n, 3, H, W)`` floating, finite, in ``[0, 1]``, ``(H, W) == size``.

    Args:
        who: The component, as users name it (``"inverter 'dfd'"``).
        images: What it returned.
        n: Images expected.
        size: The declared ``(H, W)`` (an inverter's ``output_size``).

    Returns:
        ``images`` unchanged.

    Raises:
        ContractError: Naming ``who``, the expected and the actual shape, dtype or range.
    """
    expected = (n, 3, int(size[0]), int(size[1]))
    if not isinstance(images, Tensor):
        _fail(who, f"returned {type(images).__name__}, expected a torch.Tensor {expected}")
    if tuple(images.shape) != expected:
        _fail(who, f"returned images of shape {tuple(images.shape)}, expected {expected}")
    if not images.is_floating_point():
        _fail(who, f"returned images of dtype {images.dtype}, expected a float dtype in [0, 1]")
    _finite(who, images, "images")
    if images.numel():
        low, high = float(images.detach().min()), float(images.detach().max())
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            _fail(who, f"returned images with values in [{low:.4g}, {high:.4g}], expected [0, 1]")
    return images


def check_alignment(who: str, faces: Tensor, ok: Tensor, n: int, size: tuple[int, int]) -> None:
    """Check aligner output: faces ``(n, 3, h, w)`` in ``[0, 1]`` and ``ok`` ``(n,)`` bool.

    Rows where ``ok`` is ``False`` are not checked for range (they are never used).

    Raises:
        ContractError: Naming ``who`` and what differs.
    """
    if not isinstance(ok, Tensor) or ok.dtype != torch.bool or tuple(ok.shape) != (n,):
        got = f"{ok.dtype} {tuple(ok.shape)}" if isinstance(ok, Tensor) else type(ok).__name__
        _fail(who, f"returned an ok mask of {got}, expected torch.bool ({n},)")
    if not isinstance(faces, Tensor) or tuple(faces.shape) != (n, 3, int(size[0]), int(size[1])):
        shape = str(tuple(faces.shape)) if isinstance(faces, Tensor) else type(faces).__name__
        _fail(who, f"returned faces of shape {shape}, expected {(n, 3, *size)}")
    check_images(who, faces[ok], int(ok.sum()), size)
