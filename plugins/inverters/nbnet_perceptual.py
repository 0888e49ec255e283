"""NbNet's perceptual network F: VGG-19 ``relu3_2`` when present, else a named substitute.

The paper's perceptual loss (Eq. 6) is ``½‖F(x) − F(x')‖²`` with F = the ``relu3_2``
activations of an ImageNet VGG-19. Those weights ship in no package registry, so:

* ``"vgg19"``: torchvision's ImageNet VGG-19, read from the torch hub cache
  (``<torch hub dir>/checkpoints/vgg19-<sha>.pth``, the file torchvision itself caches).
  Never downloaded here and never random: a missing file is an :class:`AssetError` that
  says where to put it. The file's sha256 prefix (in its name) is checked.
* ``"auto"`` (default): ``"vgg19"`` when its file is present, else ``"attacked"``.
* ``"attacked"``: the attacked encoder's ``feature_maps`` (a white-box substitute: NbNet
  itself is a black-box attack; name another encoder to stay black-box).
* any other value: an encoder of that name, built through the component factory, whose
  ``feature_maps`` serve as F (black-box when it is not the attacked model).

Which one was used is recorded in the inverter's provenance and fit summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invbench.assets import sha256_prefix_matches
from invbench.errors import AssetError, IncompatibleComponentsError

if TYPE_CHECKING:
    from invbench.components import Encoder, Factory

logger = logging.getLogger(__name__)

#: ``vgg19.features[:RELU3_2_END]`` ends with the ``relu3_2`` activation.
RELU3_2_END = 14
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_weights_path() -> Path:
    """Where torchvision caches its ImageNet VGG-19 weights (the file may be absent)."""
    from torchvision.models import VGG19_Weights

    filename = VGG19_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


#: VGG-19's layers up to ``relu3_2``: 3×3 convolutions (channels) and 2×2 max-pools ("M").
_VGG19_TO_RELU3_2: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256)


def vgg19_trunk() -> nn.Sequential:
    """VGG-19 ``features[:14]`` (up to ``relu3_2``), with torchvision's layer indices."""
    layers: list[nn.Module] = []
    c_in = 3
    for item in _VGG19_TO_RELU3_2:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            assert isinstance(item, int)
            layers += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = item
    assert len(layers) == RELU3_2_END
    return nn.Sequential(*layers)


class Vgg19Relu32(nn.Module):
    """ImageNet VGG-19 up to ``relu3_2``: ``(B, 3, H, W)`` in ``[0, 1]`` -> ``(B, 256, H/4, W/4)``.

    Only the first 14 layers are built and loaded (the state dict's ``features.0`` to
    ``features.12`` tensors); the rest of VGG-19 is never instantiated.

    Args:
        weights: Path of torchvision's ``vgg19-*.pth`` state dict.
    """

    def __init__(self, weights: Path) -> None:
        super().__init__()
        state = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
        self.features = vgg19_trunk()
        prefix = "features."
        wanted = {f"{prefix}{k}" for k in self.features.state_dict()}
        missing = wanted - set(state)
        if missing:
            raise AssetError(f"{weights} is not a VGG-19 state dict: no {sorted(missing)[:3]}")
        self.features.load_state_dict({k[len(prefix) :]: state[k] for k in wanted})
        self.mean: Tensor  # a buffer (typed for mypy)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.std: Tensor  # a buffer (typed for mypy)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: Tensor) -> list[Tensor]:
        """``[(B, 256, H/4, W/4)]``: the ``relu3_2`` maps of ImageNet-normalised images."""
        return [self.features((images - self.mean) / self.std)]


@dataclass
class PerceptualNet:
    """A resolved perceptual network F.

    Attributes:
        name: ``"vgg19"``, ``"attacked"`` or an encoder name.
        description: What it is, for provenance (network, layer, white/black box).
        extractor: ``(B, 3, H, W)`` in ``[0, 1]`` -> feature maps (differentiable).
        layer: Index of the map used (``None``: chosen on first use, see :meth:`pick`).
        input_size: Resize images to this ``(H, W)`` first (``None``: as they are).
        modules: Modules to keep frozen while the loss runs.
        provenance: Asset facts (file, sha256 prefix).
    """

    name: str
    description: str
    extractor: Callable[[Tensor], list[Tensor]]
    layer: int | None = None
    input_size: tuple[int, int] | None = None
    modules: list[Any] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def pick(self, maps: list[Tensor], image_size: tuple[int, int]) -> int:
        """Default map: the first at most a quarter of the input size (like ``relu3_2``)."""
        for i, m in enumerate(maps):
            if m.shape[-2] * 4 <= image_size[0] and m.shape[-1] * 4 <= image_size[1]:
                return i
        return len(maps) // 2

    def features(self, images: Tensor) -> Tensor:
        """The chosen map ``(B, C, h, w)`` of ``(B, 3, H, W)`` images in ``[0, 1]``."""
        if self.input_size is not None and tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(
                images, size=self.input_size, mode="bilinear", align_corners=False
            )
        try:
            maps = list(self.extractor(images))
        except NotImplementedError as exc:
            raise IncompatibleComponentsError(
                f"perceptual network {self.name!r} exposes no feature maps: {exc}",
                hint="choose another with perceptual_net=NAME, or set perceptual_steps=0",
            ) from None
        if self.layer is None:
            self.layer = self.pick(maps, (images.shape[-2], images.shape[-1]))
            logger.info(
                "perceptual network %s: using map %d of %d, shape %s",
                self.name,
                self.layer,
                len(maps),
                tuple(maps[self.layer].shape[1:]),
            )
        if not -len(maps) <= self.layer < len(maps):
            raise IncompatibleComponentsError(
                f"perceptual_layer {self.layer} out of range: {self.name!r} gives "
                f"{len(maps)} feature maps"
            )
        return maps[self.layer]


def half_squared_l2(pred: Tensor, target: Tensor) -> Tensor:
    """Eq. 6: ``½‖F(x) − F(x')‖²`` summed over a sample's features, mean over the batch.

    Args:
        pred: ``(B, ...)`` features of the reconstructions.
        target: ``(B, ...)`` features of the originals.

    Returns:
        Scalar tensor.
    """
    return 0.5 * (pred - target).pow(2).flatten(1).sum(dim=1).mean()


def resolve_perceptual(
    choice: str,
    layer: int | None,
    encoder: Encoder,
    factory: Factory | None,
    device: torch.device,
) -> PerceptualNet:
    """Build the perceptual network named by ``choice`` (see the module docstring).

    Raises:
        AssetError: ``"vgg19"`` asked for and its weights are not in the torch hub cache.
        IncompatibleComponentsError: An encoder name given but no factory to build it.
    """
    path = vgg19_weights_path()
    if choice == "auto":
        choice = "vgg19" if path.is_file() else "attacked"
        if choice == "attacked":
            logger.info("VGG-19 weights not at %s: perceptual loss uses the attacked encoder", path)
    if choice == "vgg19":
        if not path.is_file():
            raise AssetError(
                f"VGG-19 ImageNet weights not found at {path}",
                hint="place torchvision's vgg19 ImageNet state dict there (torchvision caches "
                "it there when it downloads it), or use perceptual_net=attacked / an encoder "
                "name",
            )
        if not sha256_prefix_matches(path):
            raise AssetError(f"{path} does not match the sha256 prefix in its name")
        net = Vgg19Relu32(path).to(device)
        return PerceptualNet(
            name="vgg19",
            description="VGG-19 (torchvision ImageNet) relu3_2, as in the paper",
            extractor=net,
            layer=0,
            modules=[net],
            provenance={"file": path.name, "sha256_prefix": path.stem.rsplit("-", 1)[-1]},
        )
    if choice == "attacked":
        enc, box = encoder, "white-box substitute for VGG-19: the attacked encoder"
    else:
        if factory is None:
            raise IncompatibleComponentsError(
                f"perceptual_net={choice!r} needs a component factory to build that encoder"
            )
        enc = factory.build("encoder", choice)
        box = "black-box substitute for VGG-19: another encoder"
        if enc.name == encoder.name:
            box = "white-box substitute for VGG-19: the attacked encoder"
    return PerceptualNet(
        name=choice,
        description=f"encoder {enc.name!r} feature_maps ({box})",
        extractor=enc.feature_maps,
        layer=layer,
        input_size=(enc.input_size[0], enc.input_size[1]),
        modules=[enc],
        provenance=enc.provenance(),
    )
