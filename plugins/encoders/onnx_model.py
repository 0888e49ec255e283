"""The ``onnx`` encoder: any face-recognition ONNX model from a path, without a plugin.

A user benchmarks their own system by describing its input::

    invbench run --encoder onnx --encoder-arg path=/models/my_fr.onnx \\
        --encoder-arg input_size=[112,112] --encoder-arg channels=bgr \\
        --encoder-arg mean=[127.5,127.5,127.5] --encoder-arg std=[128,128,128] \\
        --inverter dfd --inverter-arg perceptual=arcface

Preprocessing: the aligned RGB crop in ``[0, 1]`` is resized to ``input_size``, scaled to
``pixel_range`` (``byte``: 0..255, ``unit``: 0..1), put in ``channels`` order and
normalised as ``(x − mean) / std``, in ``layout`` (``nchw`` or ``nhwc``). Output ``output``
(index) is the template, L2-normalised.

Two paths over one file: onnxruntime for :meth:`encode` (the CUDA provider with
``--device cuda`` when onnxruntime-gpu is installed), and, where the optional ``onnx2torch``
package converts the graph (``pip install "invbench[onnx]"``), a torch module for
``forward_torch``: then the encoder is differentiable (white-box attacks); otherwise it is
black-box only, and its provenance says so. A missing or corrupt file, an input that is not
an image batch, or an output that is not a batch of vectors is one clear line.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from invbench.assets import sha256_of
from invbench.components import Encoder, Options
from invbench.errors import AssetError, IncompatibleComponentsError
from invbench.images import resize

logger = logging.getLogger(__name__)


class OnnxOptions(Options):
    """How to feed the model (see the module docstring).

    Attributes:
        path: The ``.onnx`` file.
        input_size: ``(H, W)`` the model takes.
        channels: ``rgb`` or ``bgr``.
        pixel_range: ``byte`` (0..255) or ``unit`` (0..1) before normalisation.
        mean: Per-channel mean subtracted (in ``channels`` order, in ``pixel_range`` units).
        std: Per-channel divisor.
        layout: ``nchw`` or ``nhwc``.
        output: Index of the output holding the template.
        alignment: The crop template the model expects (``arcface``: the ArcFace 5 points).
        torch_path: ``auto``: a differentiable torch path when ``onnx2torch`` converts the
            graph; ``off``: onnxruntime only (black-box).
        batch_size: Faces per onnxruntime call.
    """

    path: str = Field("", description="the .onnx file")
    input_size: tuple[int, int] = (112, 112)
    channels: Literal["rgb", "bgr"] = "rgb"
    pixel_range: Literal["byte", "unit"] = "byte"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    layout: Literal["nchw", "nhwc"] = "nchw"
    output: int = Field(0, ge=0)
    alignment: str = "arcface"
    torch_path: Literal["auto", "off"] = "auto"
    batch_size: int = Field(64, ge=1)


class OnnxEncoder(Encoder[OnnxOptions]):
    """Any face-recognition ONNX model given by path, with its preprocessing as options."""

    name: ClassVar[str] = "onnx"
    version: ClassVar[str] = "1"

    def __init__(
        self, options: OnnxOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        o = self.options
        self.path = Path(o.path).expanduser()
        if not o.path or not self.path.is_file():
            raise AssetError(
                f"onnx encoder: model file {o.path!r} not found",
                hint="give it with --encoder-arg path=/path/to/model.onnx",
            )
        self.input_size = (o.input_size[0], o.input_size[1])  # type: ignore[misc]  # per instance
        self.alignment = o.alignment  # type: ignore[misc]
        self._session = self._load_session()
        self._dim = self._check_signature()
        self._torch: torch.nn.Module | None = self._convert() if o.torch_path == "auto" else None
        self.differentiable = self._torch is not None  # type: ignore[misc]

    def _load_session(self) -> Any:
        from invbench_plugins.encoders.onnx_backend import make_session

        try:
            return make_session(self.path, self.device)
        except Exception as exc:  # onnxruntime raises its own error types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AssetError(
                f"onnx encoder: cannot load {self.path}: {first}",
                hint="check that the file is a complete ONNX model (not truncated or another "
                "format)",
            ) from None

    def _check_signature(self) -> int:
        o = self.options
        shape = self._session.get_inputs()[0].shape
        if len(shape) != 4:
            raise IncompatibleComponentsError(
                f"onnx encoder: {self.path.name} takes input of shape {shape} (rank "
                f"{len(shape)}); a face model takes a batch of images, rank 4",
                hint="give the image input's layout with layout=nchw|nhwc",
            )
        outputs = self._session.get_outputs()
        if o.output >= len(outputs):
            raise IncompatibleComponentsError(
                f"onnx encoder: {self.path.name} has {len(outputs)} output(s), not {o.output + 1}"
            )
        out_shape = outputs[o.output].shape
        if len(out_shape) != 2 or not isinstance(out_shape[1], int):
            raise IncompatibleComponentsError(
                f"onnx encoder: output {o.output} of {self.path.name} has shape {out_shape}; "
                "a template is (B, D)",
                hint="pick the embedding output with output=<index>",
            )
        return int(out_shape[1])

    def _convert(self) -> torch.nn.Module | None:
        try:
            import onnx2torch
        except ImportError:
            logger.info("onnx encoder: onnx2torch not installed; black-box only")
            return None
        try:
            module = onnx2torch.convert(str(self.path)).eval().to(self.device)
        except Exception as exc:  # unsupported ops: stay black-box, say why
            logger.warning("onnx encoder: onnx2torch cannot convert %s (%s); black-box only",
                           self.path.name, exc)  # fmt: skip
            return None
        module.requires_grad_(False)
        return module

    @property
    def embedding_dim(self) -> int:
        """The template length, from the model's output shape."""
        return self._dim

    def preprocess(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` RGB ``[0, 1]`` -> the model's input tensor (differentiable)."""
        o = self.options
        x = resize(images.float(), self.input_size)
        x = x * 255.0 if o.pixel_range == "byte" else x
        if o.channels == "bgr":
            x = x.flip(1)
        mean = torch.tensor(o.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(o.std, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        return x.permute(0, 2, 3, 1) if o.layout == "nhwc" else x

    def encode(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` aligned faces -> ``(B, D)`` float32 unit-norm (onnxruntime)."""
        from invbench_plugins.encoders.onnx_backend import run_session

        out = []
        for start in range(0, len(images), self.options.batch_size):
            x = self.preprocess(images[start : start + self.options.batch_size].cpu())
            raw = run_session(self._session, np.ascontiguousarray(x.numpy()), self.options.output)
            out.append(F.normalize(torch.from_numpy(raw).float(), dim=1))
        return torch.cat(out) if out else torch.zeros(0, self._dim)

    def forward_torch(self, images: Tensor) -> Tensor:
        """The same map through the onnx2torch module (differentiable)."""
        if self._torch is None:
            raise NotImplementedError(
                f"encoder 'onnx' ({self.path.name}) has no torch path: install onnx2torch "
                "or use it as a black-box encoder"
            )
        raw = self._torch(self.preprocess(images))
        raw = raw[self.options.output] if isinstance(raw, tuple | list) else raw
        return F.normalize(raw.float(), dim=1)

    def provenance(self) -> dict[str, Any]:
        """The file, its sha256, and which paths exist (white- or black-box)."""
        return {
            "path": str(self.path),
            "sha256": sha256_of(self.path),
            "torch_path": "onnx2torch" if self._torch is not None else "none (black-box only)",
        }
