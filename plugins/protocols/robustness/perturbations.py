"""Image perturbations for the robustness protocols: faces moved, covered and degraded.

The robustness protocols ask how an inversion attack (or a face encoder) copes when the
aligned face crop is not the clean crop it was built for: the face is rotated, shifted or
rescaled inside the crop, part of it is covered (eyes, mouth, a random box), or the image
is degraded (sensor noise, blur, JPEG compression). This module is a small library of pure
functions for those perturbations plus a registry of named, graded perturbations.

Images are ``(B, 3, H, W)`` float tensors in ``[0, 1]`` on any device, assumed to be crops
aligned to the ArcFace five-point template (the occlusions place their boxes from the
template points). Every function returns a new tensor of the same shape, dtype and device,
clamped to ``[0, 1]``, and never modifies its input. Randomness comes only from an explicit
``torch.Generator`` seeded by the caller, so results are reproducible. The geometric
transforms, the occlusions, the noise and the blur are differentiable in the images; the
JPEG round trip is not.

Severity convention (as in RobustBench's common corruptions): each named
:class:`Perturbation` has five levels, the perturbation parameter at severities 1 to 5,
from mild to strong; severity 0 returns an exact copy of the input.

Pixel coordinates are pixel-index coordinates ``(x, y)``: the centre of pixel
``(row i, column j)`` is ``(j, i)``, as in the ArcFace template.
"""

from __future__ import annotations

import difflib
import io
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

__all__ = [
    "ARCFACE_POINTS_112",
    "PERTURBATIONS",
    "Perturbation",
    "check_severity",
    "gaussian_blur",
    "gaussian_noise",
    "get_perturbation",
    "jpeg",
    "occlude_eyes",
    "occlude_mouth",
    "occlude_random",
    "rotate",
    "scale",
    "template_points",
    "translate",
]

#: The ArcFace 5-point template for a 112x112 crop, (x, y) in pixels: left eye, right eye,
#: nose, left mouth corner, right mouth corner.
ARCFACE_POINTS_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)

#: Number of severity levels of a named perturbation (severities 1..5; 0 is the identity).
NUM_SEVERITIES = 5

#: Horizontal margin of the eye band beyond each eye point, as a fraction of the width.
EYE_BAND_MARGIN = 0.15

#: Range of the aspect ratio (width / height) of the random occlusion box.
RANDOM_BOX_ASPECT = (0.5, 2.0)

# Exact (cos, sin) of the multiples of 90 degrees, so that those rotations are exact.
_QUARTER_TURNS = {0: (1.0, 0.0), 90: (0.0, 1.0), 180: (-1.0, 0.0), 270: (0.0, -1.0)}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor, got {images.dtype}")


def _work_dtype(images: Tensor) -> torch.dtype:
    """float32/float64 stay as they are; half precisions are computed in float32."""
    return images.dtype if images.dtype in (torch.float32, torch.float64) else torch.float32


def _finish(result: Tensor, images: Tensor) -> Tensor:
    """Clamp to ``[0, 1]`` and return in the dtype and on the device of ``images``."""
    return result.clamp(0.0, 1.0).to(device=images.device, dtype=images.dtype)


def _affine(images: Tensor, matrix: tuple[tuple[float, float, float], ...]) -> Tensor:
    """Resample with an affine map from output to input normalised coordinates.

    Args:
        images: ``(B, C, H, W)`` float images.
        matrix: 2x3 matrix ``[A | t]``; the output pixel at normalised coordinates ``p``
            (``grid_sample``'s ``[-1, 1]`` with ``align_corners=False``, image centre at 0)
            samples the input at ``A p + t``.

    Returns:
        ``(B, C, H, W)`` resampled images (bilinear, zeros outside), clamped to ``[0, 1]``.
    """
    # Sampled in float64 whatever the image dtype: float32 grid coordinates are off by about
    # 1e-5 pixel at 112x112, which moves an identity or quarter-turn result by up to 1.3e-5.
    dtype = torch.float64
    theta = torch.tensor(matrix, dtype=dtype, device=images.device)
    theta = theta.unsqueeze(0).expand(images.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(
        images.to(dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return _finish(out, images)


def _box_mask(
    size: tuple[int, int], x: tuple[float, float], y: tuple[float, float], device: torch.device
) -> Tensor:
    """Boolean ``(H, W)`` mask of the pixels whose centres lie in ``[x0, x1] x [y0, y1]``.

    A box thinner than one pixel still covers the row (column) nearest to its centre, so a
    box inside the image is never empty.
    """
    h, w = size

    def span(lo: float, hi: float, n: int) -> tuple[int, int]:
        first, last = math.ceil(lo), math.floor(hi)
        if first > last:  # thinner than a pixel: the pixel nearest the centre
            first = last = round((lo + hi) / 2)
        return max(first, 0), min(last, n - 1) + 1

    c0, c1 = span(x[0], x[1], w)
    r0, r1 = span(y[0], y[1], h)
    mask = torch.zeros(h, w, dtype=torch.bool, device=device)
    if c0 < c1 and r0 < r1:
        mask[r0:r1, c0:c1] = True
    return mask


def _occlude(images: Tensor, mask: Tensor) -> Tensor:
    """Set the pixels where ``mask`` (``(H, W)`` or ``(B, 1, H, W)``) is true to 0."""
    return _finish(images.masked_fill(mask, 0.0), images)


def _require_generator(generator: torch.Generator | None, what: str) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"{what} is random: pass a seeded torch.Generator as generator")
    return generator


# ---------------------------------------------------------------------------------------------
# Perturbation functions
# ---------------------------------------------------------------------------------------------


def template_points(size: tuple[int, int]) -> Tensor:
    """The ArcFace five points scaled from a 112x112 crop to a crop of ``size``.

    Args:
        size: ``(H, W)`` of the crop; x is scaled by ``W / 112`` and y by ``H / 112``.

    Returns:
        ``(5, 2)`` float32 ``(x, y)`` pixel coordinates: left eye, right eye, nose, left
        mouth corner, right mouth corner.
    """
    h, w = size
    points = torch.tensor(ARCFACE_POINTS_112, dtype=torch.float64)
    points = points * torch.tensor([w / 112.0, h / 112.0], dtype=torch.float64)
    return points.to(torch.float32)


def rotate(images: Tensor, degrees: float) -> Tensor:
    """Rotate about the image centre, counter-clockwise (as displayed) for positive degrees.

    Bilinear sampling; what comes from outside the image is zero (black). Multiples of 90
    degrees use exact sines and cosines, so a quarter turn of a square image equals
    ``images.transpose(-2, -1).flip(-2)`` up to float rounding.

    Args:
        images: ``(B, 3, H, W)`` float images in ``[0, 1]``.
        degrees: the rotation angle in degrees.

    Returns:
        ``(B, 3, H, W)`` rotated images, clamped to ``[0, 1]``.
    """
    _check_images(images)
    turn = float(degrees) % 360.0
    if turn in _QUARTER_TURNS:
        cos, sin = _QUARTER_TURNS[int(turn)]
    else:
        cos, sin = math.cos(math.radians(turn)), math.sin(math.radians(turn))
    h, w = images.shape[-2:]
    # Counter-clockwise on screen (y down) maps the input offset (u, v) to
    # (u cos + v sin, -u sin + v cos); the grid needs the inverse, output -> input, in
    # normalised coordinates, whose x unit is W/2 pixels and y unit H/2 pixels.
    return _affine(images, ((cos, -sin * h / w, 0.0), (sin * w / h, cos, 0.0)))


def translate(images: Tensor, dx: float, dy: float) -> Tensor:
    """Shift the image content by ``dx * W`` pixels right and ``dy * H`` pixels down.

    Bilinear sampling for fractional shifts; the uncovered border is zero (black).

    Args:
        images: ``(B, 3, H, W)`` float images in ``[0, 1]``.
        dx: horizontal shift as a fraction of the width (positive: right).
        dy: vertical shift as a fraction of the height (positive: down).

    Returns:
        ``(B, 3, H, W)`` shifted images, clamped to ``[0, 1]``.
    """
    _check_images(images)
    # One normalised unit is half the width (height): a shift of dx * W pixels is 2 dx.
    return _affine(images, ((1.0, 0.0, -2.0 * float(dx)), (0.0, 1.0, -2.0 * float(dy))))


def scale(images: Tensor, factor: float) -> Tensor:
    """Zoom about the image centre by ``factor``.

    ``factor < 1`` shrinks the face and fills the border with zero (black); ``factor > 1``
    enlarges it and crops what leaves the frame. Bilinear sampling.

    Args:
        images: ``(B, 3, H, W)`` float images in ``[0, 1]``.
        factor: the zoom factor, positive.

    Returns:
        ``(B, 3, H, W)`` rescaled images, clamped to ``[0, 1]``.
    """
    _check_images(images)
    if not factor > 0:
        raise ValueError(f"scale factor must be positive, got {factor}")
    inv = 1.0 / float(factor)
    return _affine(images, ((inv, 0.0, 0.0), (0.0, inv, 0.0)))


def occlude_eyes(images: Tensor, height: float) -> Tensor:
    """Black out a horizontal band over both eyes.

    The band runs from ``0.15 * W`` left of the template's left eye point to ``0.15 * W``
    right of its right eye point, is centred vertically on the mean eye y and is
    ``height * H`` pixels tall (pixels whose centres fall inside are set to 0).

    Args:
        images: ``(B, 3, H, W)`` float images in ``[0, 1]``, aligned to the ArcFace template.
        height: band height as a fraction of the image height, in ``(0, 1]``.

    Returns:
        ``(B, 3, H, W)`` occluded images.
    """
    _check_images(images)
    if not 0.0 < height <= 1.0:
        raise ValueError(f"eye band height must be in (0, 1], got {height}")
    h, w = images.shape[-2:]
    points = template_points((h, w)).tolist()
    (lx, ly), (rx, ry) = points[0], points[1]
    centre_y, half = (ly + ry) / 2.0, height * h / 2.0
    margin = EYE_BAND_MARGIN * w
    mask = _box_mask(
        (h, w), (lx - margin, rx + margin), (centre_y - half, centre_y + half), images.device
    )
    return _occlude(images, mask)


def occlude_mouth(images: Tensor, size: float) -> Tensor:
    """Black out a box over the mouth.

    The box is centred on the midpoint of the template's mouth corners; with ``d`` the
    distance between the corners, it is ``(1 + size) * d`` wide and half as tall. At
    ``size = 1`` on a 112x112 crop it spans about 58x29 pixels, down to about 15 pixels
    below the nose point and clear of the eyes.

    Args:
        images: ``(B, 3, H, W)`` float images in ``[0, 1]``, aligned to the ArcFace template.
        size: how much the box grows beyond the mouth corners, in ``(0, 1]``.

    Returns:
        ``(B, 3, H, W)`` occluded images.
    """
    _check_images(images)
    if not 0.0 < size <= 1.0:
        raise ValueError(f"mouth box size must be in (0, 1], got {size}")
    h, w = images.shape[-2:]
    points = template_points((h, w)).tolist()
    (lx, ly), (rx, ry) = points[3], points[4]
    cx, cy = (lx + rx) / 2.0, (ly + ry) / 2.0
    half_w = (1.0 + size) * math.hypot(rx - lx, ry - ly) / 2.0
    half_h = half_w / 2.0
    mask = _box_mask((h, w), (cx - half_w, cx + half_w), (cy - half_h, cy + half_h), images.device)
    return _occlude(images, mask)


def occlude_random(images: Tensor, area: float, generator: torch.Generator) -> Tensor:
    """Black out one random axis-aligned box per image.

    Each box covers ``area`` of the image (its integer sides are chosen so the covered area
    is as close as possible), has an aspect ratio (width / height) drawn log-uniformly from
    ``[0.5, 2]`` and a uniformly random position fully inside the image.

    Args:
        images: ``(B, 3, H, W)`` float images in ``[0, 1]``.
        area: the fraction of the image area to cover, in ``(0, 1)`` (0.10 to 0.40 in the
            named levels).
        generator: the seeded source of randomness (its device is where numbers are drawn).

    Returns:
        ``(B, 3, H, W)`` occluded images.
    """
    _check_images(images)
    generator = _require_generator(generator, "occlude_random")
    if not 0.0 < area < 1.0:
        raise ValueError(f"occluded area must be in (0, 1), got {area}")
    b, _, h, w = images.shape
    draws = torch.rand(b, 3, generator=generator, device=generator.device, dtype=torch.float64)
    lo, hi = (math.log(a) for a in RANDOM_BOX_ASPECT)
    target = area * h * w
    mask = torch.zeros(b, 1, h, w, dtype=torch.bool, device=images.device)
    for i, (u_aspect, u_top, u_left) in enumerate(draws.tolist()):
        aspect = math.exp(lo + (hi - lo) * u_aspect)
        ideal_h = math.sqrt(target / aspect)
        # Of the two integer heights around the ideal one, keep the closer total area.
        candidates = []
        for rows in sorted({math.floor(ideal_h), math.ceil(ideal_h)}):
            box_h = min(max(rows, 1), h)
            box_w = min(max(round(target / box_h), 1), w)
            candidates.append((abs(box_h * box_w - target), box_h, box_w))
        _, box_h, box_w = min(candidates)
        top = min(int(u_top * (h - box_h + 1)), h - box_h)
        left = min(int(u_left * (w - box_w + 1)), w - box_w)
        mask[i, 0, top : top + box_h, left : left + box_w] = True
    return _occlude(images, mask)


def gaussian_noise(images: Tensor, sigma: float, generator: torch.Generator) -> Tensor:
    """Add i.i.d. Gaussian noise of standard deviation ``sigma`` to every pixel and channel.

    The noise is drawn in float32 on the generator's device, then moved to the images.

    Args:
        images: ``(B, 3, H, W)`` float images in ``[0, 1]``.
        sigma: noise standard deviation, in image units (the range ``[0, 1]``).
        generator: the seeded source of randomness.

    Returns:
        ``(B, 3, H, W)`` noisy images, clamped to ``[0, 1]``.
    """
    _check_images(images)
    generator = _require_generator(generator, "gaussian_noise")
    if sigma < 0:
        raise ValueError(f"noise sigma must be non-negative, got {sigma}")
    noise = torch.randn(
        images.shape, generator=generator, device=generator.device, dtype=torch.float32
    )
    dtype = _work_dtype(images)
    noisy = images.to(dtype) + float(sigma) * noise.to(device=images.device, dtype=dtype)
    return _finish(noisy, images)


def _gaussian_kernel(sigma: float, radius: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (kernel / kernel.sum()).to(dtype=dtype, device=device)


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Blur with a separable Gaussian kernel.

    The kernel radius is ``ceil(3 * sigma)`` pixels (limited to ``H - 1`` and ``W - 1`` so
    that reflect padding is possible on tiny images), the kernel is normalised to sum 1,
    and the border is reflect-padded. ``sigma = 0`` returns a copy.

    Args:
        images: ``(B, 3, H, W)`` float images in ``[0, 1]``.
        sigma: the Gaussian standard deviation in pixels, non-negative.

    Returns:
        ``(B, 3, H, W)`` blurred images, clamped to ``[0, 1]``.
    """
    _check_images(images)
    if sigma < 0:
        raise ValueError(f"blur sigma must be non-negative, got {sigma}")
    if sigma == 0:
        return images.clone()
    b, c, h, w = images.shape
    dtype = _work_dtype(images)
    out = images.to(dtype).reshape(b * c, 1, h, w)
    radius = math.ceil(3.0 * sigma)
    rx, ry = min(radius, w - 1), min(radius, h - 1)
    if rx > 0:
        kernel = _gaussian_kernel(sigma, rx, dtype, images.device).view(1, 1, 1, -1)
        out = F.conv2d(F.pad(out, (rx, rx, 0, 0), mode="reflect"), kernel)
    if ry > 0:
        kernel = _gaussian_kernel(sigma, ry, dtype, images.device).view(1, 1, -1, 1)
        out = F.conv2d(F.pad(out, (0, 0, ry, ry), mode="reflect"), kernel)
    return _finish(out.reshape(b, c, h, w), images)


def jpeg(images: Tensor, quality: int) -> Tensor:
    """JPEG-compress and decode each image with PIL (not differentiable).

    Each image is rounded to uint8, encoded at ``quality`` with PIL's default settings
    (4:2:0 chroma subsampling) and decoded back to ``[0, 1]``.

    Args:
        images: ``(B, 3, H, W)`` float images in ``[0, 1]`` (``(B, 1, H, W)`` also works).
        quality: the JPEG quality, an integer from 1 to 95.

    Returns:
        ``(B, 3, H, W)`` round-tripped images.
    """
    _check_images(images)
    if isinstance(quality, bool) or not isinstance(quality, numbers.Integral):
        raise ValueError(f"JPEG quality must be an integer, got {quality!r}")
    if not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be in 1..95, got {quality}")
    channels = images.shape[1]
    if channels not in (1, 3):
        raise ValueError(f"JPEG needs 1 or 3 channels, got {channels}")
    pixels = (images.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
    decoded = []
    for array in pixels:
        mode = "RGB" if channels == 3 else "L"
        image = Image.fromarray(array if channels == 3 else array[..., 0], mode=mode)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(quality))
        buffer.seek(0)
        with Image.open(buffer) as reloaded:
            out = np.asarray(reloaded.convert(mode), dtype=np.uint8)
        decoded.append(out if channels == 3 else out[..., None])
    result = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float() / 255.0
    return _finish(result, images)


# ---------------------------------------------------------------------------------------------
# Named perturbations
# ---------------------------------------------------------------------------------------------


def check_severity(severity: int) -> None:
    """Check a severity level.

    Args:
        severity: an integer from 0 (no perturbation) to 5 (strongest).

    Raises:
        ValueError: if ``severity`` is not an integer (bools and floats such as ``2.0``
            included) or lies outside ``0..5``.
    """
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral):
        raise ValueError(f"severity must be an integer in 0..{NUM_SEVERITIES}, got {severity!r}")
    if not 0 <= severity <= NUM_SEVERITIES:
        raise ValueError(f"severity must be in 0..{NUM_SEVERITIES}, got {severity}")


@dataclass(frozen=True)
class Perturbation:
    """A named perturbation with five severity levels.

    Attributes:
        name: the registry name, e.g. ``"rotation"``.
        description: one line, with the unit of the levels.
        levels: the perturbation parameter at severities 1..5 (five values).
        apply: ``apply(images, level, generator)``, the perturbation at one parameter value.
        random: whether ``apply`` draws random numbers (then a generator is required).
    """

    name: str
    description: str
    levels: tuple[float, ...]
    apply: Callable[[Tensor, float, torch.Generator | None], Tensor] = field(
        repr=False, compare=False
    )
    random: bool = False

    def __post_init__(self) -> None:
        """Check that there is one level per severity 1..5."""
        if len(self.levels) != NUM_SEVERITIES:
            raise ValueError(
                f"perturbation {self.name!r} needs {NUM_SEVERITIES} levels, got {len(self.levels)}"
            )

    def __call__(
        self, images: Tensor, severity: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Apply the perturbation at a severity.

        Args:
            images: ``(B, 3, H, W)`` float images in ``[0, 1]``.
            severity: 0 (an exact copy of ``images``) to 5 (strongest).
            generator: the seeded source of randomness; required by random perturbations
                at severities 1..5.

        Returns:
            ``(B, 3, H, W)`` perturbed images, same dtype and device as ``images``.

        Raises:
            ValueError: for a bad severity, or a random perturbation without a generator.
        """
        check_severity(severity)
        _check_images(images)
        if severity == 0:
            return images.clone()
        if self.random:
            _require_generator(generator, f"perturbation {self.name!r}")
        return self.apply(images, self.levels[severity - 1], generator)


_SHIFTS = (0.04, 0.08, 0.12, 0.16, 0.20)


def _registry() -> dict[str, Perturbation]:
    entries = [
        Perturbation(
            "rotation",
            "rotation about the centre, counter-clockwise; levels in degrees",
            (5.0, 10.0, 15.0, 20.0, 30.0),
            lambda x, v, g: rotate(x, v),
        ),
        Perturbation(
            "rotation-dfd",
            "rotation about the centre in the DFD paper's 30-degree steps; levels in degrees",
            (30.0, 60.0, 90.0, 120.0, 150.0),
            lambda x, v, g: rotate(x, v),
        ),
        Perturbation(
            "shift-left",
            "shift left, zero fill; levels in fractions of the crop width",
            _SHIFTS,
            lambda x, v, g: translate(x, -v, 0.0),
        ),
        Perturbation(
            "shift-right",
            "shift right, zero fill; levels in fractions of the crop width",
            _SHIFTS,
            lambda x, v, g: translate(x, v, 0.0),
        ),
        Perturbation(
            "shift-up",
            "shift up, zero fill; levels in fractions of the crop height",
            _SHIFTS,
            lambda x, v, g: translate(x, 0.0, -v),
        ),
        Perturbation(
            "shift-down",
            "shift down, zero fill; levels in fractions of the crop height",
            _SHIFTS,
            lambda x, v, g: translate(x, 0.0, v),
        ),
        Perturbation(
            "scale-down",
            "zoom out about the centre, zero fill; levels are scale factors",
            (0.9, 0.8, 0.7, 0.6, 0.5),
            lambda x, v, g: scale(x, v),
        ),
        Perturbation(
            "scale-up",
            "zoom in about the centre, cropping; levels are scale factors",
            (1.1, 1.2, 1.3, 1.4, 1.5),
            lambda x, v, g: scale(x, v),
        ),
        Perturbation(
            "occlude-eyes",
            "black band over both eyes; levels in fractions of the crop height (band height)",
            (0.06, 0.09, 0.12, 0.15, 0.18),
            lambda x, v, g: occlude_eyes(x, v),
        ),
        Perturbation(
            "occlude-mouth",
            "black box over the mouth, (1 + level) x mouth width; levels are unitless sizes",
            (0.2, 0.4, 0.6, 0.8, 1.0),
            lambda x, v, g: occlude_mouth(x, v),
        ),
        Perturbation(
            "occlude-random",
            "one random black box per image; levels in fractions of the image area",
            (0.10, 0.175, 0.25, 0.325, 0.40),
            lambda x, v, g: occlude_random(x, v, _require_generator(g, "occlude-random")),
            random=True,
        ),
        Perturbation(
            "noise",
            "additive Gaussian noise; levels are sigmas in image units ([0, 1] range)",
            (0.02, 0.04, 0.06, 0.08, 0.10),
            lambda x, v, g: gaussian_noise(x, v, _require_generator(g, "noise")),
            random=True,
        ),
        Perturbation(
            "blur",
            "Gaussian blur; levels are sigmas in pixels",
            (0.5, 1.0, 1.5, 2.0, 3.0),
            lambda x, v, g: gaussian_blur(x, v),
        ),
        Perturbation(
            "jpeg",
            "JPEG compression round trip; levels are JPEG qualities (1-95, lower is worse)",
            (80, 60, 40, 20, 10),
            lambda x, v, g: jpeg(x, int(v)),
        ),
    ]
    return {entry.name: entry for entry in entries}


#: Every named perturbation, by name.
PERTURBATIONS: dict[str, Perturbation] = _registry()


def get_perturbation(name: str) -> Perturbation:
    """Look up a named perturbation.

    Args:
        name: a key of :data:`PERTURBATIONS`, e.g. ``"rotation"``.

    Returns:
        The :class:`Perturbation`.

    Raises:
        ValueError: for an unknown name; the message names it, suggests close matches
            ("did you mean ...?") and lists the known names.
    """
    try:
        return PERTURBATIONS[name]
    except (KeyError, TypeError):
        pass
    known = sorted(PERTURBATIONS)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    message = f"unknown perturbation {name!r}"
    if close:
        message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
    raise ValueError(f"{message} (known: {', '.join(known)})")
