"""Image similarity of each reconstruction to its aligned source image: PSNR, SSIM, LPIPS.

Compared at the inverter's output size: the originals (``ctx.images``, at the attacked
encoder's input size) are resized to the reconstructions' ``(h, w)`` with
``torch.nn.functional.interpolate`` (``resize`` option; default ``bilinear`` with
``antialias=True``, ``align_corners=False``), then clamped to ``[0, 1]``; no resize when the
sizes agree. Values are computed per image (data range 1) and averaged over images. Colour space
(``colour_space``, default ``auto``): an original whose three channels are equal (ORL, a
grey dataset) is compared in ITU-R BT.601 luminance, since the colour a reconstruction
invents cannot be judged against it; colour originals in RGB. Each metric's
``implementation`` and ``details.colour_space`` say which.

- ``psnr``: ``10 log10(1 / MSE)`` per image (capped at 100 dB for identical images).
- ``ssim``: Wang et al. 2004, 11x11 Gaussian sigma 1.5, K1 0.01, K2 0.03, population
  covariance, mean over RGB channels (:func:`invbench.metrics.image.ssim`, float64).
- ``lpips``: ``lpips.LPIPS(net='alex', version='0.1')`` on inputs scaled to ``[-1, 1]``;
  when torchvision's ImageNet AlexNet weights are not cached the metric is reported as
  unavailable with the reason (never downloaded here, never random weights).

Score files: ``psnr``, ``ssim`` (or ``ssim_unavailable`` for images under 11 px), ``lpips``
(or ``lpips_unavailable``; both one-element string arrays with the reason), ``grey``
(``(N,)`` bool: compared in luminance), ``image_size``
and ``reconstruction_size`` (``(2,)`` ints).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from invbench.components import EvalContext, Metric, Options, Protocol
from invbench.images import resize
from invbench.metrics.image import (
    PSNR_IMPLEMENTATION,
    SSIM_IMPLEMENTATION,
    SSIM_WINDOW,
    load_lpips,
    lpips_distance,
    lpips_implementation,
    psnr,
    ssim,
)
from invbench.metrics.stats import summarize


class ImageQualityOptions(Options):
    """Options of :class:`ImageQualityProtocol`.

    Attributes:
        resize: Interpolation used to bring the originals to the reconstruction size
            (antialiased for ``bilinear`` and ``bicubic``).
        lpips: Compute LPIPS when its weights are available.
        batch_size: Images per batch.
        colour_space: ``auto`` (luminance for grey originals, RGB otherwise), ``rgb`` or
            ``luminance`` for every image.
    """

    resize: Literal["bilinear", "bicubic", "area", "nearest"] = "bilinear"
    lpips: bool = True
    batch_size: int = Field(default=64, ge=1)
    colour_space: Literal["auto", "rgb", "luminance"] = Field(
        "auto",
        description="auto: luminance (ITU-R BT.601 Y) where the original is grey (its "
        "channels equal), RGB where it has colour",
    )


#: ITU-R BT.601 luma weights of R, G, B.
LUMA = (0.299, 0.587, 0.114)
#: Per-image score arrays.
QUALITY = ("psnr", "ssim", "lpips")


def luminance(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB -> ``(B, 1, H, W)`` BT.601 luma (same range)."""
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def is_grey(images: torch.Tensor, tolerance: float = 1.0 / 255.0) -> torch.Tensor:
    """``(B,)`` bool: the image's three channels are equal (within ``tolerance``)."""
    spread = images.amax(dim=1) - images.amin(dim=1)
    return spread.flatten(1).amax(dim=1) <= tolerance


class ImageQualityProtocol(Protocol[ImageQualityOptions]):
    """PSNR, SSIM and LPIPS between reconstructions and their (resized) source images."""

    name: ClassVar[str] = "image-quality"
    version: ClassVar[str] = "2"  # 2: grey originals compared in luminance
    default: ClassVar[bool] = True
    main_metric: ClassVar[str] = "psnr"
    headline_metrics: ClassVar[tuple[str, ...]] = ("ssim",)
    metric_labels: ClassVar[dict[str, str]] = {
        "psnr": "PSNR (dB)",
        "ssim": "SSIM",
        "lpips": "LPIPS",
    }
    rank_priority: ClassVar[int] = 3

    def scores(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """Per-image PSNR, SSIM and LPIPS (or LPIPS's unavailable reason) and ``grey``."""
        opts = self.options
        recon = ctx.reconstructions.detach().cpu()
        n = int(recon.shape[0])
        size = (int(recon.shape[-2]), int(recon.shape[-1]))
        ssim_ok = min(size) >= SSIM_WINDOW
        status = load_lpips(self.device) if opts.lpips else None
        values = {k: torch.full((n,), float("nan"), dtype=torch.float64) for k in QUALITY}
        grey = torch.zeros(n, dtype=torch.bool)
        for start in range(0, n, opts.batch_size):
            stop = min(start + opts.batch_size, n)
            x = recon[start:stop].to(torch.float64)
            ref = ctx.images[start:stop].detach().cpu().to(torch.float64)
            y = resize(ref, size, opts.resize)
            if opts.colour_space == "auto":
                grey[start:stop] = is_grey(ref)
            else:
                grey[start:stop] = opts.colour_space == "luminance"
            for rows in (grey[start:stop], ~grey[start:stop]):
                if not bool(rows.any()):
                    continue
                index = torch.arange(start, stop)[rows]
                a, b = x[rows], y[rows]
                if bool(grey[index[0]]):  # compare luma, replicated for LPIPS's RGB input
                    a, b = (luminance(t).expand(-1, 3, -1, -1) for t in (a, b))
                with torch.no_grad():
                    values["psnr"][index] = psnr(a, b).double()
                    if ssim_ok:
                        values["ssim"][index] = ssim(a, b).double()
                if status is not None and status.model is not None:
                    values["lpips"][index] = lpips_distance(status.model, a, b).double().cpu()
        out: dict[str, np.ndarray] = {
            "psnr": values["psnr"].numpy(),
            "grey": grey.numpy(),
            "image_size": np.asarray(ctx.images.shape[-2:], dtype=np.int64),
            "reconstruction_size": np.asarray(size, dtype=np.int64),
        }
        if ssim_ok:
            out["ssim"] = values["ssim"].numpy()
        else:
            reason = f"images {size[0]}x{size[1]} are smaller than the {SSIM_WINDOW}-px window"
            out["ssim_unavailable"] = np.asarray([reason])
        if status is None:
            out["lpips_unavailable"] = np.asarray(["disabled by option lpips=false"])
        elif status.model is None:
            out["lpips_unavailable"] = np.asarray([status.reason or "unavailable"])
        else:
            out["lpips"] = values["lpips"].numpy()
        return out

    def metrics(self, scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """Means over images with distribution summaries."""
        opts = self.options
        h, w = (int(v) for v in scores["image_size"])
        rh, rw = (int(v) for v in scores["reconstruction_size"])
        resize = (
            "none (same size)"
            if (h, w) == (rh, rw)
            else f"originals {h}x{w} -> {rh}x{rw} by interpolate(mode={opts.resize!r}"
            + (", antialias=True)" if opts.resize in ("bilinear", "bicubic") else ")")
        )
        colour = colour_text(scores.get("grey", np.zeros(0, dtype=bool)))
        out = {
            "psnr": _mean_metric(scores["psnr"], True, PSNR_IMPLEMENTATION, resize, colour),
        }
        if "ssim" in scores:
            out["ssim"] = _mean_metric(scores["ssim"], True, SSIM_IMPLEMENTATION, resize, colour)
        else:
            out["ssim"] = Metric(
                value=None,
                higher_is_better=True,
                unavailable=str(scores["ssim_unavailable"][0]),
                implementation=SSIM_IMPLEMENTATION,
                details={"resize": resize},
            )
        if "lpips" in scores:
            out["lpips"] = _mean_metric(
                scores["lpips"], False, lpips_implementation(), resize, colour
            )
        else:
            reason = str(scores.get("lpips_unavailable", np.asarray(["no lpips scores"]))[0])
            out["lpips"] = Metric(
                value=None,
                higher_is_better=False,
                unavailable=reason,
                implementation=lpips_implementation(),
                details={"resize": resize},
            )
        return out


def colour_text(grey: np.ndarray) -> str:
    """How many images were compared in luminance and how many in RGB."""
    k, n = int(np.count_nonzero(grey)), int(np.asarray(grey).size)
    if k == n and n:
        return f"luminance (BT.601 Y; all {n} originals grey; LPIPS on Y replicated to 3 channels)"
    if k == 0:
        return "RGB"
    return f"luminance for {k} grey originals, RGB for {n - k} colour ones"


def _mean_metric(
    values: np.ndarray, higher: bool, implementation: str, resize: str, colour: str
) -> Metric:
    summary = summarize(values)
    summary["resize"] = resize
    summary["colour_space"] = colour
    implementation = f"{implementation}; compared in {colour}"
    if summary["mean"] is None:
        return Metric(
            value=None,
            higher_is_better=higher,
            n=summary["n"],
            unavailable="no finite per-image values",
            implementation=implementation,
            details=summary,
        )
    return Metric(
        value=summary["mean"],
        higher_is_better=higher,
        n=summary["n"],
        implementation=implementation,
        details=summary,
    )
