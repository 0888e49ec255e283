"""The ``stylegan2`` generator: a StyleGAN2 checkpoint from a user-given path, in W+."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from invbench.assets import sha256_of
from invbench.components import Generator, Options
from invbench.errors import AssetError
from invbench_plugins.generators.stylegan2_model import StyleGAN2, infer_config

logger = logging.getLogger(__name__)

#: Environment variable giving the checkpoint path when the ``path`` option is not set.
PATH_ENV = "INVBENCH_STYLEGAN2_PATH"

_HOW = (
    "give a rosinality stylegan2-pytorch checkpoint (a .pt dict with 'g_ema' and "
    "optionally 'latent_avg', e.g. stylegan2-ffhq-config-f.pt) with the generator option "
    f"path=/path/to/file.pt (for mlp-stylegan: generator_path=...), or set {PATH_ENV}"
)


def load_stylegan2(
    path: str | os.PathLike[str], *, lr_mlp: float = 0.01, allow_pickle: bool = False
) -> tuple[StyleGAN2, Tensor | None]:
    """Load a community StyleGAN2 checkpoint onto the CPU.

    Args:
        path: A ``.pt`` file holding ``{"g_ema": state_dict, "latent_avg": (d,), ...}``, or
            a bare ``g_ema`` state dict.
        lr_mlp: Learning-rate multiplier the mapping network was trained with (0.01).
        allow_pickle: Unpickle arbitrary Python objects (training checkpoints that also
            hold ``args``); only for files you trust.

    Returns:
        ``(model, latent_avg)``: the generator in eval mode and the checkpoint's mean ``w``
        ``(d,)`` (``None`` when the file has none).

    Raises:
        AssetError: When the file is missing, unreadable or not a StyleGAN2 generator.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise AssetError(f"StyleGAN2 checkpoint {path} does not exist", _HOW)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as exc:  # noqa: BLE001 - any failure: tell the user what to do
        hint = _HOW
        if not allow_pickle:
            hint = (
                "the file holds Python objects besides tensors (a training checkpoint?); "
                "if you trust it, set the generator option allow_pickle=true, or re-save "
                "only {'g_ema': ..., 'latent_avg': ...}"
            )
        raise AssetError(f"cannot read StyleGAN2 checkpoint {path}: {exc}", hint) from exc
    if not isinstance(ckpt, dict):
        raise AssetError(f"{path} holds a {type(ckpt).__name__}, not a checkpoint dict", _HOW)
    state = ckpt.get("g_ema", ckpt)
    state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, Tensor)}
    try:
        config = infer_config(state)
        model = StyleGAN2(**config, lr_mlp=lr_mlp)  # type: ignore[arg-type]
        _fill_missing_noise(model, state, path)
        model.load_state_dict(state, strict=True)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise AssetError(
            f"{path} is not a StyleGAN2 generator in the rosinality layout: {exc}", _HOW
        ) from exc
    latent_avg = ckpt.get("latent_avg")
    if isinstance(latent_avg, Tensor):
        latent_avg = latent_avg.detach().float().reshape(-1)[: model.style_dim]
    else:
        latent_avg = None
    logger.info(
        "loaded StyleGAN2 %dx%d (style_dim %d, %d W+ codes) from %s",
        model.size,
        model.size,
        model.style_dim,
        model.n_latent,
        path,
    )
    return model.eval(), latent_avg


def _fill_missing_noise(model: StyleGAN2, state: dict[str, Tensor], path: Path) -> None:
    """Older checkpoints lack the fixed noise buffers: add seeded ones (and say so)."""
    missing = [k for k in model.state_dict() if k.startswith("noises.") and k not in state]
    if not missing:
        return
    g = torch.Generator().manual_seed(0)
    for key in missing:
        state[key] = torch.randn(model.state_dict()[key].shape, generator=g)
    logger.warning(
        "%s has no fixed noise buffers (%d missing); using seeded Gaussian noise instead",
        path,
        len(missing),
    )


class StyleGAN2Options(Options):
    """Options of the StyleGAN2 generator.

    Attributes:
        path: The checkpoint (default: ``$INVBENCH_STYLEGAN2_PATH``).
        noise: ``const`` (fixed noise buffers, deterministic), ``random`` or ``zero``.
        truncation: Truncation ψ applied by :meth:`sample_latents` (1 = none).
        mean_samples: Number of ``z`` averaged for the mean ``w`` when the checkpoint
            has no ``latent_avg``.
        lr_mlp: Mapping-network learning-rate multiplier of the checkpoint (0.01).
        allow_pickle: Unpickle non-tensor objects in the file (trusted files only).
    """

    path: str | None = None
    noise: Literal["const", "random", "zero"] = "const"
    truncation: float = Field(1.0, ge=0.0, le=1.0)
    mean_samples: int = Field(4096, ge=1)
    lr_mlp: float = Field(0.01, gt=0.0)
    allow_pickle: bool = False


class StyleGAN2Generator(Generator[StyleGAN2Options]):
    """StyleGAN2 (Karras et al., CVPR 2020) from a user-given rosinality-format checkpoint.

    Latents are W+ codes ``(B, n_latent, style_dim)`` (18 x 512 for a 1024 px FFHQ model,
    12 x 512 at 128 px); :meth:`sample_latents` maps Gaussian ``z`` through the mapping
    network and repeats ``w`` over the sub-codes. Images are the synthesis output mapped
    from ``[-1, 1]`` to ``[0, 1]`` and clamped. Weights are frozen; the noise inputs are
    the checkpoint's fixed noise images by default, so synthesis is deterministic.
    """

    name: ClassVar[str] = "stylegan2"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = (
        "StyleGAN2 (Karras et al., CVPR 2020) from a rosinality stylegan2-pytorch "
        "checkpoint given by path; W+ latents"
    )

    def __init__(
        self, options: StyleGAN2Options | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        path = self.options.path or os.environ.get(PATH_ENV)
        if not path:
            raise AssetError("generator 'stylegan2' needs a checkpoint and none was given", _HOW)
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise AssetError(f"StyleGAN2 checkpoint {self.path} does not exist", _HOW)
        self._model: StyleGAN2 | None = None
        self._w_avg: Tensor | None = None
        self._sha256: str | None = None

    @property
    def model(self) -> StyleGAN2:
        """The frozen :class:`StyleGAN2` module on ``self.device`` (loaded on first use)."""
        if self._model is None:
            model, w_avg = load_stylegan2(
                self.path, lr_mlp=self.options.lr_mlp, allow_pickle=self.options.allow_pickle
            )
            model.requires_grad_(False)
            self._model = model.to(self.device)
            self._w_avg = w_avg
        return self._model

    @property
    def latent_shape(self) -> tuple[int, int]:
        """``(n_latent, style_dim)``: the W+ shape."""
        return (self.model.n_latent, self.model.style_dim)

    @property
    def output_size(self) -> tuple[int, int]:
        """``(size, size)`` of the checkpoint."""
        return (self.model.size, self.model.size)

    @torch.no_grad()
    def _mapping(self, z: Tensor, chunk: int = 1024) -> Tensor:
        parts = [self.model.mapping(c.to(self.device)).float().cpu() for c in z.split(chunk)]
        return torch.cat(parts)

    def w_avg(self) -> Tensor:
        """Mean ``w`` ``(style_dim,)``: the checkpoint's ``latent_avg``, else a mapping mean."""
        model = self.model
        if self._w_avg is None:
            g = torch.Generator().manual_seed(0)
            z = torch.randn(self.options.mean_samples, model.style_dim, generator=g)
            self._w_avg = self._mapping(z).mean(dim=0)
        return self._w_avg

    def sample_latents(self, n: int, generator: torch.Generator) -> Tensor:
        """Draw ``n`` W+ codes ``(n, n_latent, style_dim)`` on the CPU.

        ``z ~ N(0, I)`` from ``generator``, ``w = mapping(z)``, truncated towards the mean
        ``w`` by ψ, repeated over the ``n_latent`` sub-codes.
        """
        z = torch.randn(n, self.model.style_dim, generator=generator, device=generator.device)
        w = self._mapping(z)
        if self.options.truncation < 1.0:
            w_avg = self.w_avg()
            w = w_avg + self.options.truncation * (w - w_avg)
        return w[:, None].repeat(1, self.model.n_latent, 1)

    def mean_latent(self, n_samples: int = 4096, seed: int = 0) -> Tensor:
        """Mean W+ code ``(n_latent, style_dim)``: the mean ``w`` repeated.

        Uses the checkpoint's ``latent_avg`` when present; otherwise the mean of
        ``n_samples`` mapped ``z`` drawn with ``seed``.
        """
        if self._model is None:
            _ = self.model
        if self._w_avg is not None:
            w = self._w_avg
        else:
            g = torch.Generator().manual_seed(seed)
            w = self._mapping(torch.randn(n_samples, self.model.style_dim, generator=g)).mean(0)
        return w[None].repeat(self.model.n_latent, 1)

    def synthesize(self, latents: Tensor) -> Tensor:
        """``(B, n_latent, style_dim)`` W+ codes -> ``(B, 3, H, W)`` in ``[0, 1]``.

        Differentiable with respect to ``latents``; runs on ``self.device``.
        """
        model = self.model
        latents = latents.to(self.device, torch.float32)
        if latents.ndim == 2:  # a single w per image: broadcast to W+
            latents = latents[:, None].expand(-1, model.n_latent, -1)
        img = model.synthesis(latents, noise_mode=self.options.noise)
        return ((img + 1.0) * 0.5).clamp(0.0, 1.0)

    def provenance(self) -> dict[str, Any]:
        """Checkpoint path, sha256 and inferred architecture."""
        if self._sha256 is None:
            self._sha256 = sha256_of(self.path)
        model = self.model
        return {
            "checkpoint": str(self.path),
            "sha256": self._sha256,
            "size": model.size,
            "style_dim": model.style_dim,
            "n_latent": model.n_latent,
            "channels": {str(k): v for k, v in model.channels.items()},
            "noise": self.options.noise,
            "truncation": self.options.truncation,
        }
