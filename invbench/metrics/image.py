"""Image similarity between reconstructions and originals: PSNR, SSIM and LPIPS.

All functions take ``(B, 3, H, W)`` float tensors in ``[0, 1]`` (RGB) and return one value
per image, ``(B,)``; average over the set yourself (per image first, then the mean, as
``docs/metrics.md`` requires). PSNR and SSIM are differentiable torch code, so inverters can
use them as losses (e.g. DSSIM = ``(1 - ssim) / 2``).

LPIPS uses the ``lpips`` package (``LPIPS(net='alex', version='0.1')``), which needs
torchvision's ImageNet AlexNet weights. :func:`load_lpips` never downloads and never falls
back to random backbone weights: when the weights are not in the torch hub cache it
returns the reason instead of a model.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from invbench.assets import sha256_prefix_matches

logger = logging.getLogger(__name__)

#: PSNR is reported at most this high: the per-image MSE is clamped at ``10**(-MAX/10)``
#: (identical images would otherwise give ``inf``, which no record can hold).
PSNR_MAX_DB = 100.0

#: Side of the SSIM Gaussian window; images must be at least this large.
SSIM_WINDOW = 11

PSNR_IMPLEMENTATION = (
    "invbench.metrics.image.psnr: 10*log10(1/MSE) per image (RGB, data_range 1, "
    f"MSE clamped so PSNR <= {PSNR_MAX_DB:g} dB), then mean over images"
)
SSIM_IMPLEMENTATION = (
    "invbench.metrics.image.ssim (torch): Wang et al. 2004, 11x11 Gaussian window sigma 1.5 "
    "(valid region, no padding), K1 0.01, K2 0.03, data_range 1, population covariance, "
    "mean over windows and RGB channels per image, then mean over images; equals "
    "skimage structural_similarity(gaussian_weights=True, sigma=1.5, "
    "use_sample_covariance=False, data_range=1, channel_axis)"
)


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"need two (B, C, H, W) tensors of one shape, got {x.shape}, {y.shape}")


def psnr(x: Tensor, y: Tensor, data_range: float = 1.0, max_db: float = PSNR_MAX_DB) -> Tensor:
    """Peak signal-to-noise ratio per image, ``10 * log10(data_range**2 / MSE)``.

    Args:
        x: ``(B, C, H, W)`` images.
        y: ``(B, C, H, W)`` reference images.
        data_range: Peak value (1 for ``[0, 1]`` floats).
        max_db: Cap for identical images (the MSE is clamped, see :data:`PSNR_MAX_DB`).

    Returns:
        ``(B,)`` PSNR in dB. Average these per-image values; do not compute the PSNR of a
        mean MSE.

    >>> a = torch.zeros(2, 3, 4, 4)
    >>> b = torch.stack([torch.full((3, 4, 4), 0.1), torch.full((3, 4, 4), 0.01)])
    >>> [round(v, 4) for v in psnr(a, b).tolist()], round(psnr(a, b).mean().item(), 4)
    ([20.0, 40.0], 30.0)
    """
    _check_pair(x, y)
    mse = (x - y).pow(2).flatten(1).mean(dim=1)
    floor = data_range**2 * 10.0 ** (-max_db / 10.0)
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(floor))


def gaussian_window(
    size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64
) -> Tensor:
    """Normalised 1-D Gaussian taps ``exp(-x**2 / (2 sigma**2))``, ``x = -(size//2)..size//2``.

    Returns:
        ``(size,)`` weights summing to 1.
    """
    half = (size - 1) / 2.0
    x = torch.arange(size, dtype=dtype) - half
    w = torch.exp(-(x**2) / (2.0 * sigma**2))
    return w / w.sum()


def _band(n: int, win: Tensor) -> Tensor:
    """``(n, n - k + 1)`` matrix whose column ``j`` holds the taps at rows ``j..j+k-1``."""
    k = win.numel()
    d = torch.arange(n, device=win.device)[:, None] - torch.arange(n - k + 1, device=win.device)
    inside = (d >= 0) & (d < k)
    return torch.where(inside, win[d.clamp(0, k - 1)], torch.zeros((), dtype=win.dtype))


def _filter(img: Tensor, win: Tensor) -> Tensor:
    """Separable 'valid' Gaussian filtering: (B, C, H, W) -> (B, C, H-k+1, W-k+1).

    Written as two banded matrix products (the same sums as a 'valid' convolution with the
    separable window, and an order of magnitude faster than depthwise ``conv2d`` on CPU).
    """
    h, w = img.shape[-2:]
    return _band(h, win).T @ (img @ _band(w, win))


def ssim_map(
    x: Tensor,
    y: Tensor,
    *,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Local SSIM values over the valid window positions (Wang et al. 2004).

    Args:
        x: ``(B, C, H, W)`` images, ``H, W >= window_size``.
        y: ``(B, C, H, W)`` reference images.
        data_range: Dynamic range ``L`` (``C1 = (k1 L)**2``, ``C2 = (k2 L)**2``).
        window_size: Gaussian window side.
        sigma: Gaussian standard deviation.
        k1: Luminance constant factor.
        k2: Contrast constant factor.

    Returns:
        ``(B, C, H - window_size + 1, W - window_size + 1)`` SSIM map (population
        covariance: local moments are plain Gaussian-weighted averages).
    """
    _check_pair(x, y)
    if min(x.shape[-2:]) < window_size:
        raise ValueError(f"images {tuple(x.shape[-2:])} smaller than the {window_size} window")
    win = gaussian_window(window_size, sigma, dtype=x.dtype).to(x.device)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    mu_x = _filter(x, win)
    mu_y = _filter(y, win)
    var_x = _filter(x * x, win) - mu_x * mu_x
    var_y = _filter(y * y, win) - mu_y * mu_y
    cov = _filter(x * y, win) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return num / den


def ssim(x: Tensor, y: Tensor, *, data_range: float = 1.0) -> Tensor:
    """SSIM per image: mean of :func:`ssim_map` over windows and RGB channels.

    Differentiable; use ``(1 - ssim(x, y)) / 2`` as a DSSIM loss.

    Args:
        x: ``(B, C, H, W)`` images in ``[0, data_range]``, ``H, W >= 11``.
        y: ``(B, C, H, W)`` reference images.
        data_range: Dynamic range (1 for ``[0, 1]`` floats).

    Returns:
        ``(B,)`` SSIM values (1 for identical images).

    >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> ssim(x, x).tolist()
    [1.0, 1.0]
    """
    return ssim_map(x, y, data_range=data_range).flatten(1).mean(dim=1)


# --------------------------------------------------------------------------- LPIPS

ALEXNET_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"


def _lpips_version() -> str:
    try:
        return importlib.metadata.version("lpips")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def lpips_implementation() -> str:
    """The implementation string recorded with LPIPS values."""
    return (
        f"lpips {_lpips_version()} LPIPS(net='alex', version='0.1'), torchvision ImageNet "
        f"AlexNet ({ALEXNET_WEIGHTS_FILE}), inputs RGB scaled to [-1, 1], spatial average "
        "per pair, then mean over images"
    )


@dataclass
class LpipsStatus:
    """Result of :func:`load_lpips`: a ready model, or the reason there is none.

    Attributes:
        model: The LPIPS module in eval mode, or ``None``.
        reason: Why LPIPS is unavailable (``None`` when ``model`` is set).
        weights_path: The AlexNet weights file looked for.
    """

    model: nn.Module | None
    reason: str | None
    weights_path: str


def alexnet_weights_path() -> Path:
    """Where torchvision caches its ImageNet AlexNet weights (``<torch hub>/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS_FILE


def load_lpips(device: str | torch.device = "cpu", *, verify_hash: bool = True) -> LpipsStatus:
    """Build ``lpips.LPIPS(net='alex', version='0.1')`` from cached weights only.

    The AlexNet backbone is built without weights (no download is ever attempted) and
    then loaded from torchvision's cached ImageNet file; the LPIPS linear heads come from
    the ``lpips`` package. Anything missing yields ``model=None`` and a reason.

    Args:
        device: Where to put the model.
        verify_hash: Check the weight file against the sha256 prefix in its name.

    Returns:
        The model or the reason it is unavailable.
    """
    path = alexnet_weights_path()
    if not path.is_file():
        return LpipsStatus(
            None,
            f"torchvision ImageNet AlexNet weights not found at {path} (offline; LPIPS is "
            "not computed with random backbone weights)",
            str(path),
        )
    if verify_hash and not sha256_prefix_matches(path):
        return LpipsStatus(None, f"{path} does not match its sha256 prefix", str(path))
    try:
        import lpips  # noqa: PLC0415 (optional heavy import)
    except ImportError as exc:
        return LpipsStatus(None, f"the lpips package is not importable: {exc}", str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()) as out:
            warnings.simplefilter("ignore")
            model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        if out.getvalue().strip():
            logger.debug("lpips: %s", out.getvalue().strip())
        own = model.state_dict()
        loaded = 0
        for key in own:
            if not key.startswith("net.slice"):
                continue
            layer, param = key.split(".")[-2:]
            own[key] = state[f"features.{layer}.{param}"]
            loaded += 1
        if loaded != 10:  # 5 conv layers x (weight, bias)
            raise RuntimeError(f"expected 10 AlexNet backbone tensors, matched {loaded}")
        model.load_state_dict(own)
    except Exception as exc:  # noqa: BLE001 (any failure makes the metric unavailable)
        return LpipsStatus(None, f"LPIPS could not be built from {path}: {exc}", str(path))
    model.eval().requires_grad_(False)
    return LpipsStatus(model.to(device), None, str(path))


@torch.no_grad()
def lpips_distance(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 32) -> Tensor:
    """LPIPS per image pair, spatially averaged.

    Args:
        model: From :func:`load_lpips`.
        x: ``(B, 3, H, W)`` images in ``[0, 1]`` (scaled here to ``[-1, 1]``).
        y: ``(B, 3, H, W)`` reference images in ``[0, 1]``.
        batch_size: Pairs per forward pass.

    Returns:
        ``(B,)`` distances (lower is more similar).
    """
    _check_pair(x, y)
    device = next(model.parameters()).device
    out = []
    for start in range(0, x.shape[0], batch_size):
        a = x[start : start + batch_size].to(device, torch.float32) * 2 - 1
        b = y[start : start + batch_size].to(device, torch.float32) * 2 - 1
        out.append(model(a, b).reshape(-1).cpu())
    return torch.cat(out) if out else torch.zeros(0)


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """PSNR of one MSE value (helper for docs and tests).

    >>> psnr_from_mse(0.01), psnr_from_mse(0.0001)
    (20.0, 40.0)
    """
    return 10.0 * math.log10(data_range**2 / mse)
