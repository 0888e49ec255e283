"""Image similarity of each reconstruction to its aligned source image: PSNR, SSIM, LPIPS.

Compared at the inverter's output size: the originals (``ctx.images``, at the attacked
encoder's input size) are resized to the reconstructions' ``(h, w)`` with
``torch.nn.functional.interpolate`` (``resize`` option; default ``bilinear`` with
``antialias=True``, ``align_corners=False``), then clamped to ``[0, 1]``; no resize when the
sizes agree. Values are computed per image (RGB, data range 1) and averaged over images.

- ``psnr``: ``10 log10(1 / MSE)`` per image (capped at 100 dB for identical images).
- ``ssim``: Wang et al. 2004, 11x11 Gaussian sigma 1.5, K1 0.01, K2 0.03, population
  covariance, mean over RGB channels (:func:`invbench.metrics.image.ssim`, float64).
- ``lpips``: ``lpips.LPIPS(net='alex', version='0.1')`` on inputs scaled to ``[-1, 1]``;
  when torchvision's ImageNet AlexNet weights are not cached the metric is reported as
  unavailable with the reason (never downloaded here, never random weights).

Score files: ``psnr``, ``ssim`` (or ``ssim_unavailable`` for images under 11 px), ``lpips``
(or ``lpips_unavailable``; both one-element string arrays with the reason), ``image_size``
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
    """

    resize: Literal["bilinear", "bicubic", "area", "nearest"] = "bilinear"
    lpips: bool = True
    batch_size: int = Field(default=64, ge=1)


class ImageQualityProtocol(Protocol[ImageQualityOptions]):
    """PSNR, SSIM and LPIPS between reconstructions and their (resized) source images."""

    name: ClassVar[str] = "image-quality"
    version: ClassVar[str] = "1"
    default: ClassVar[bool] = True
    main_metric: ClassVar[str] = "psnr"
    headline_metrics: ClassVar[tuple[str, ...]] = ("psnr", "ssim", "lpips")
    rank_priority: ClassVar[int] = 3

    def scores(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """Per-image PSNR, SSIM and LPIPS (or LPIPS's unavailable reason)."""
        opts = self.options
        recon = ctx.reconstructions.detach().cpu()
        size = (int(recon.shape[-2]), int(recon.shape[-1]))
        psnrs, ssims, lps = [], [], []
        ssim_ok = min(size) >= SSIM_WINDOW
        status = load_lpips(self.device) if opts.lpips else None
        for start in range(0, recon.shape[0], opts.batch_size):
            x = recon[start : start + opts.batch_size].to(torch.float64)
            ref = ctx.images[start : start + opts.batch_size].detach().cpu().to(torch.float64)
            y = resize(ref, size, opts.resize)
            with torch.no_grad():
                psnrs.append(psnr(x, y))
                if ssim_ok:
                    ssims.append(ssim(x, y))
            if status is not None and status.model is not None:
                lps.append(lpips_distance(status.model, x, y))
        out: dict[str, np.ndarray] = {
            "psnr": _cat(psnrs),
            "image_size": np.asarray(ctx.images.shape[-2:], dtype=np.int64),
            "reconstruction_size": np.asarray(size, dtype=np.int64),
        }
        if ssim_ok:
            out["ssim"] = _cat(ssims)
        else:
            reason = f"images {size[0]}x{size[1]} are smaller than the {SSIM_WINDOW}-px window"
            out["ssim_unavailable"] = np.asarray([reason])
        if status is None:
            out["lpips_unavailable"] = np.asarray(["disabled by option lpips=false"])
        elif status.model is None:
            out["lpips_unavailable"] = np.asarray([status.reason or "unavailable"])
        else:
            out["lpips"] = _cat(lps)
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
        out = {
            "psnr": _mean_metric(scores["psnr"], True, PSNR_IMPLEMENTATION, resize),
        }
        if "ssim" in scores:
            out["ssim"] = _mean_metric(scores["ssim"], True, SSIM_IMPLEMENTATION, resize)
        else:
            out["ssim"] = Metric(
                value=None,
                higher_is_better=True,
                unavailable=str(scores["ssim_unavailable"][0]),
                implementation=SSIM_IMPLEMENTATION,
                details={"resize": resize},
            )
        if "lpips" in scores:
            out["lpips"] = _mean_metric(scores["lpips"], False, lpips_implementation(), resize)
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


def _cat(parts: list[torch.Tensor]) -> np.ndarray:
    return torch.cat(parts).double().numpy() if parts else np.zeros(0)


def _mean_metric(values: np.ndarray, higher: bool, implementation: str, resize: str) -> Metric:
    summary = summarize(values)
    summary["resize"] = resize
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
