"""MTCNN face detection with five landmarks, then ArcFace similarity alignment.

The cascade (Zhang et al., 2016): P-Net scores 12x12 windows over an image pyramid, then
R-Net (24x24 crops) and O-Net (48x48 crops) refine the surviving boxes, and O-Net gives
the five landmarks. Crops for R-Net and O-Net are taken with ``roi_align`` on the whole
batch at once, with zeros outside the image as in the original (facenet-pytorch instead
stretches the in-image part of a box; on ORL, where faces touch the border, that moved its
landmarks off the eyes by up to 14 px where ours stay on them). Images of equal size are
detected together, so a dataset of same-sized photos runs in a few batched calls; the
networks run channels-last, 2-3x faster on CPU.

Determinism: every network call sees a fixed number of rows (:mod:`invbench.determinism`).
The detector takes images :data:`PNET_BATCH` (16) at a time, a short batch padded with
copies of its last image (their detections are dropped); R-Net and O-Net take crops in
chunks of exactly :data:`CROP_BATCH` (32). Below 16 rows torch may run a 1x1 convolution
through another kernel, and does so by the thread count: an ORL image detected alone gave
another crop than in a batch (17 of 30 crops changed by one grey level), and batches of 8
at one thread changed 78 of 400. With fixed rows a face's crop is the same bytes whatever
batch it falls in and whatever the thread count, and ORL's crops are those of the batched
cascade before (byte for byte). Cost: none on same-sized datasets (ORL: 3.7 s CPU for 400
faces, 4.6 s before); an image whose size no other image in its batch shares costs 16
detector rows (ORL-sized: 0.09 s instead of 0.02 s CPU; 250x250: 0.33 s instead of 0.03 s).

Weights: the MTCNN state dicts inside the ``facenet-pytorch`` 2.6.0 wheel (MIT, converted
from davidsandberg/facenet), fetched and verified with :mod:`invbench.assets`; the package
itself is never installed or imported.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torchvision.ops import batched_nms, roi_align

from invbench.assets import Asset, fetch
from invbench.components import Aligner
from invbench.components.base import Options
from invbench.determinism import fixed_batches, pad_rows
from invbench_plugins.aligners.mtcnn_nets import ONet, PNet, RNet
from invbench_plugins.aligners.similarity import align_to_template

logger = logging.getLogger(__name__)

#: Images per detector call, the last call padded with copies of its last image: from 16
#: rows up torch sends every convolution to oneDNN whatever the thread count.
PNET_BATCH = 16
#: Crops per R-Net / O-Net call (the last chunk padded): one shape, one kernel choice.
CROP_BATCH = 32
_PACKAGE = "facenet-pytorch==2.6.0"
_LICENSE = "MIT (facenet-pytorch; MTCNN weights of Zhang et al. via davidsandberg/facenet)"
#: The three pinned weight files, by network.
ASSETS: dict[str, Asset] = {
    "pnet": Asset(
        "mtcnn-pnet",
        "pypi",
        _PACKAGE,
        "facenet_pytorch/data/pnet.pt",
        "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
        _LICENSE,
    ),
    "rnet": Asset(
        "mtcnn-rnet",
        "pypi",
        _PACKAGE,
        "facenet_pytorch/data/rnet.pt",
        "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
        _LICENSE,
    ),
    "onet": Asset(
        "mtcnn-onet",
        "pypi",
        _PACKAGE,
        "facenet_pytorch/data/onet.pt",
        "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
        _LICENSE,
    ),
}


@dataclass
class Detections:
    """Faces found in a batch of images.

    Attributes:
        image_index: ``(K,)`` long, which image of the batch each face is in.
        boxes: ``(K, 4)`` float ``(x1, y1, x2, y2)`` in pixel-edge coordinates.
        scores: ``(K,)`` O-Net face probability.
        landmarks: ``(K, 5, 2)`` ``(x, y)`` pixel coordinates in ArcFace order.
    """

    image_index: Tensor
    boxes: Tensor
    scores: Tensor
    landmarks: Tensor


def _nms(boxes: Tensor, scores: Tensor, idx: Tensor, iou_threshold: float) -> Tensor:
    """``batched_nms`` in float64: the kept boxes of one image do not depend on the others.

    For small inputs torchvision shifts each image's boxes by ``image index x largest
    coordinate`` and runs one NMS; in float32 that shift rounds the coordinates, so which
    boxes an image keeps could depend on its place in the batch. In float64 the shifted
    float32 coordinates are exact, and the result is that of NMS per image.
    """
    return batched_nms(boxes.double(), scores.double(), idx, iou_threshold)


def _square(boxes: Tensor) -> Tensor:
    """Grow ``(K, 4)`` boxes to squares around the same centre."""
    side = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    return torch.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], dim=1)


def _regress(boxes: Tensor, reg: Tensor) -> Tensor:
    """Apply ``(K, 4)`` offsets (in units of box width/height) to ``(K, 4)`` boxes."""
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + reg * wh


class MTCNNDetector(nn.Module):
    """The MTCNN cascade over batches of equal-sized images.

    Args:
        thresholds: Face-probability thresholds of P-Net, R-Net and O-Net.
        min_face_size: Smallest face side (pixels) the pyramid looks for.
        scale_factor: Ratio between pyramid levels.
        nms_thresholds: IoU thresholds for NMS within a pyramid level, and after the
            pyramid, R-Net and O-Net.
    """

    def __init__(
        self,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        min_face_size: float = 20.0,
        scale_factor: float = 0.709,
        nms_thresholds: tuple[float, float] = (0.5, 0.7),
    ) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.thresholds = thresholds
        self.min_face_size = min_face_size
        self.scale_factor = scale_factor
        self.nms_thresholds = nms_thresholds
        self.eval()

    def load_pretrained(self) -> dict[str, Any]:
        """Fetch, verify and load the pinned weights; return their provenance."""
        for name, net in (("pnet", self.pnet), ("rnet", self.rnet), ("onet", self.onet)):
            path = fetch(ASSETS[name])
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.to(memory_format=torch.channels_last)  # 2-3x faster convs and pools on CPU
        return {"assets": [a.provenance() for a in ASSETS.values()]}

    def scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales for an image of ``height`` x ``width``."""
        first = 12.0 / self.min_face_size
        side = min(height, width) * first
        out: list[float] = []
        while side >= 12.0:
            out.append(first * self.scale_factor ** len(out))
            side *= self.scale_factor
        return out

    def _proposals(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """P-Net over the pyramid: ``(K,)`` image indices and ``(K, 5)`` boxes + score."""
        n, _, h, w = x.shape
        idx_all, box_all = [], []
        for scale in self.scales(h, w):
            size = (int(h * scale + 1), int(w * scale + 1))
            level = F.interpolate(x, size=size, mode="bilinear", antialias=True)
            probs, reg = self.pnet(level.contiguous(memory_format=torch.channels_last))
            img, row, col = torch.nonzero(probs >= self.thresholds[0], as_tuple=True)
            if img.numel() == 0:
                continue
            sx, sy = size[1] / w, size[0] / h  # the true per-axis scale after rounding
            x1, y1 = 2.0 * col / sx, 2.0 * row / sy
            boxes = torch.stack([x1, y1, x1 + 12.0 / sx, y1 + 12.0 / sy], dim=1)
            boxes = _regress(boxes, reg[img, :, row, col])
            score = probs[img, row, col]
            keep = _nms(boxes, score, img, self.nms_thresholds[0])
            idx_all.append(img[keep])
            box_all.append(torch.cat([boxes[keep], score[keep, None]], dim=1))
        if not idx_all:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, 5)
        idx, boxes = torch.cat(idx_all), torch.cat(box_all)
        keep = _nms(boxes[:, :4], boxes[:, 4], idx, self.nms_thresholds[1])
        return idx[keep], boxes[keep]

    @staticmethod
    def _normalise(crops: Tensor) -> Tensor:
        """``(K, 3, s, s)`` crops in ``[0, 255]`` -> network input, channels-last."""
        return ((crops - 127.5) / 128.0).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Detections:
        """Detect faces.

        Args:
            images: ``(N, 3, H, W)`` float RGB in ``[0, 1]``.

        Returns:
            All faces found, in every image (see :class:`Detections`).
        """
        x = (images.float() * 255.0 - 127.5) / 128.0
        raw = images.float() * 255.0  # crops from raw pixels: outside the image is black
        idx, boxes = self._proposals(x)
        empty = Detections(idx[:0], boxes[:0, :4], boxes[:0, 4], boxes.new_zeros(0, 5, 2))
        if idx.numel() == 0:
            return empty

        # R-Net on 24x24 crops of the squared proposals.
        sq = _square(boxes[:, :4])
        crops = roi_align(
            raw, torch.cat([idx[:, None].float(), sq], 1), 24, sampling_ratio=2, aligned=True
        )
        probs, reg = fixed_batches(lambda c: self.rnet(self._normalise(c)), crops, CROP_BATCH)
        ok = probs >= self.thresholds[1]
        idx, sq, probs, reg = idx[ok], sq[ok], probs[ok], reg[ok]
        keep = _nms(sq, probs, idx, self.nms_thresholds[1])
        idx, boxes = idx[keep], _square(_regress(sq[keep], reg[keep]))
        if idx.numel() == 0:
            return empty

        # O-Net on 48x48 crops: final score, box and landmarks.
        crops = roi_align(
            raw, torch.cat([idx[:, None].float(), boxes], 1), 48, sampling_ratio=2, aligned=True
        )
        probs, reg, points = fixed_batches(
            lambda c: self.onet(self._normalise(c)), crops, CROP_BATCH
        )
        ok = probs >= self.thresholds[2]
        idx, boxes, probs, reg, points = idx[ok], boxes[ok], probs[ok], reg[ok], points[ok]
        # Crop units -> pixel-edge coordinates -> pixel-centre (index) coordinates.
        wh = (boxes[:, 2:] - boxes[:, :2]).unsqueeze(1)
        landmarks = boxes[:, None, :2] + points * wh - 0.5
        boxes = _regress(boxes, reg)
        keep = _nms(boxes, probs, idx, self.nms_thresholds[1])
        return Detections(idx[keep], boxes[keep], probs[keep], landmarks[keep])


class MTCNNOptions(Options):
    """Options of the MTCNN aligner."""

    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    min_face_size: float = Field(20.0, gt=0)
    scale_factor: float = Field(0.709, gt=0.1, lt=1.0)
    upsample_below: int = Field(
        0, ge=0, description="enlarge images whose short side is below this (0: never)"
    )
    pad: float = Field(0.1, ge=0.0, le=1.0, description="border, fraction of short side")
    select: Literal["largest", "confident", "center"] = "largest"
    batch_size: int = Field(
        64, ge=1, description="images per align() chunk (the detector runs 16 at a time)"
    )


class MTCNNAligner(Aligner[MTCNNOptions]):
    """MTCNN detection + 5-point similarity alignment to the ArcFace template.

    Images are grouped by size and detected in batches. Images whose short side is
    below ``upsample_below`` are enlarged before detection, and ``pad`` adds a black
    border (a fraction of the short side) so a face that fills the frame is still
    found (ORL: 399/400 faces without it, 400/400 with the default 0.1). Where several
    faces are found, ``select`` picks one: the ``largest`` box, the most ``confident``
    one, or the largest near the ``center`` (box area minus twice the squared distance
    of its centre from the image centre). Where none is found, ``ok`` is ``False`` and
    the row is zeros.
    """

    name: ClassVar[str] = "mtcnn"
    default: ClassVar[bool] = True
    version: ClassVar[str] = "1"
    alignment: ClassVar[str] = "arcface"
    assets: ClassVar[tuple[Asset, ...]] = tuple(ASSETS.values())
    description: ClassVar[str] = (
        "MTCNN detector (facenet-pytorch weights) + 5-point similarity to ArcFace template"
    )

    def __init__(
        self, options: MTCNNOptions | None = None, *, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(options, device=device)
        o = self.options
        self.detector = MTCNNDetector(o.thresholds, o.min_face_size, o.scale_factor)
        self._provenance = self.detector.load_pretrained()
        self.detector.to(self.device)

    def provenance(self) -> dict[str, Any]:
        """The pinned weight files."""
        return self._provenance

    def _prepare(self, batch: Tensor) -> tuple[Tensor, float, float]:
        """Upsample and pad ``(N, 3, H, W)``; return it with the scale and offset used."""
        o = self.options
        h, w = batch.shape[-2:]
        scale = 1.0
        if o.upsample_below and min(h, w) < o.upsample_below:
            scale = o.upsample_below / min(h, w)
            size = (round(h * scale), round(w * scale))
            batch = F.interpolate(batch, size=size, mode="bilinear", align_corners=False)
            batch = batch.clamp(0.0, 1.0)
        border = int(math.ceil(o.pad * min(batch.shape[-2:])))
        if border:
            batch = F.pad(batch, (border, border, border, border))
        return batch, scale, float(border)

    def detect(self, images: Tensor) -> list[Detections | None]:
        """Detect the selected face in each of ``(N, 3, H, W)`` equal-sized images.

        The images go through the detector :data:`PNET_BATCH` at a time, the last batch
        padded with copies of its last image, so each image's result does not depend on how
        many images came with it nor on the thread count.

        Returns:
            Per image, the single selected face (boxes and landmarks in the coordinates
            of ``images``) or ``None``.
        """
        out: list[Detections | None] = []
        for start in range(0, images.shape[0], PNET_BATCH):
            chunk = images[start : start + PNET_BATCH]
            out += self._detect_batch(pad_rows(chunk, PNET_BATCH))[: chunk.shape[0]]
        return out

    def _detect_batch(self, images: Tensor) -> list[Detections | None]:
        batch, scale, border = self._prepare(images.to(self.device))
        det = self.detector(batch)
        out: list[Detections | None] = [None] * images.shape[0]
        if det.image_index.numel() == 0:
            return out
        wh = det.boxes[:, 2:] - det.boxes[:, :2]
        area = wh[:, 0] * wh[:, 1]
        if self.options.select == "largest":
            key = area
        elif self.options.select == "center":
            # Large and near the image centre (the labelled face of LFW-style photos).
            centre = torch.tensor([batch.shape[-1], batch.shape[-2]], device=area.device) / 2
            offset = (det.boxes[:, :2] + det.boxes[:, 2:]) / 2 - centre
            key = area - 2.0 * (offset**2).sum(dim=1)
        else:
            key = det.scores
        order = torch.argsort(key, descending=True, stable=True)
        seen: set[int] = set()
        for k in order.tolist():
            i = int(det.image_index[k])
            if i in seen:
                continue
            seen.add(i)
            out[i] = Detections(
                det.image_index[k : k + 1].cpu(),
                ((det.boxes[k : k + 1] - border) / scale).cpu(),
                det.scores[k : k + 1].cpu(),
                ((det.landmarks[k : k + 1] - border + 0.5) / scale - 0.5).cpu(),
            )
        return out

    def align(self, images: list[Tensor], output_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Align ``images`` (each ``(3, H_i, W_i)`` in ``[0, 1]``) to ``output_size``.

        Returns:
            ``(faces, ok)``: ``(B, 3, h, w)`` float in ``[0, 1]`` and ``(B,)`` bool.
        """
        h, w = output_size
        faces = torch.zeros(len(images), 3, h, w)
        ok = torch.zeros(len(images), dtype=torch.bool)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault((int(image.shape[1]), int(image.shape[2])), []).append(i)
        bs = self.options.batch_size
        for indices in groups.values():
            for start in range(0, len(indices), bs):
                chunk = indices[start : start + bs]
                batch = torch.stack([images[i].float() for i in chunk])
                for j, (i, found) in enumerate(zip(chunk, self.detect(batch), strict=True)):
                    if found is None:
                        continue
                    crop, _ = align_to_template(batch[j], found.landmarks[0], (h, w))
                    faces[i] = crop.clamp(0.0, 1.0)
                    ok[i] = True
        n_fail = int((~ok).sum())
        if n_fail:
            logger.info("mtcnn: no face found in %d of %d images", n_fail, len(images))
        return faces, ok
