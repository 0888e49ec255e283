"""Tests of the ``dfd`` inverter and its decoder, with tiny seeded fake encoders."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invbench.components import Encoder, FitContext, Options, TrainingData
from invbench.errors import IncompatibleComponentsError
from invbench.registry import ComponentEntry, ComponentFactory, Registry
from invbench.training import FeatureLoss
from invbench.training.checkpoint import CHECKPOINT_NAME
from invbench_plugins.inverters.dfd import DFDInverter
from invbench_plugins.inverters.dfd_model import DFDDecoder

SIZE = 32


pytestmark = pytest.mark.usefixtures("one_thread")


class TinyConvEncoder(Encoder):
    """A seeded random conv net on 32x32 faces, 16-D, with two feature maps."""

    name: ClassVar[str] = "tiny-conv"
    input_size: ClassVar[tuple[int, int]] = (SIZE, SIZE)
    differentiable: ClassVar[bool] = True

    class Options(Options):
        seed: int = 0

    def __init__(self, options: Options | None = None, *, device="cpu"):
        super().__init__(options, device=device)
        g = torch.Generator().manual_seed(self.options.seed)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
        )
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.net.to(self.device)

    @property
    def embedding_dim(self) -> int:
        return 16

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        if images.shape[-2:] != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode="bilinear")
        first = self.net[1](self.net[0](images - 0.5))
        return [first, self.net[2](first)]

    def forward_torch(self, images: Tensor) -> Tensor:
        return F.normalize(self.feature_maps(images)[-1].mean(dim=(2, 3)), dim=1)


class NoFeaturesEncoder(TinyConvEncoder):
    """Like TinyConvEncoder, but exposing no feature maps."""

    name: ClassVar[str] = "no-features"
    feature_maps = Encoder.feature_maps  # type: ignore[assignment]

    def forward_torch(self, images: Tensor) -> Tensor:
        return F.normalize(TinyConvEncoder.feature_maps(self, images)[-1].mean(dim=(2, 3)), dim=1)


def make_data(encoder: Encoder, n: int = 48) -> TrainingData:
    """Smooth random 'faces': a blurred blob per sample, encoded by ``encoder``."""
    g = torch.Generator().manual_seed(1)
    low = torch.rand(n, 3, 4, 4, generator=g)
    images = F.interpolate(low, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return TrainingData(encoder.encode(images), (images * 255).round().to(torch.uint8))


def factory() -> ComponentFactory:
    registry = Registry()
    for cls in (TinyConvEncoder, NoFeaturesEncoder):
        registry.add(ComponentEntry("encoder", cls.name, cls, provider="tests"))
    registry.add(ComponentEntry("inverter", "dfd", DFDInverter, provider="tests"))
    return ComponentFactory(registry)


def tiny_options(**extra) -> DFDInverter.Options:
    values = dict(
        width=0.05,
        steps=6,
        epochs=100,
        batch_size=8,
        lr=3e-3,
        lr_decay_every=0,
        val_fraction=0.25,
        checkpoint_every=2,
    )
    values.update(extra)
    return DFDInverter.make_options(values)


def make_inverter(encoder: Encoder | None = None, **extra) -> DFDInverter:
    return DFDInverter(encoder or TinyConvEncoder(), tiny_options(**extra), factory=factory())


# ---------------------------------------------------------------------------- model
@pytest.mark.parametrize(
    ("size", "stages", "start"),
    [
        ((112, 112), 4, (7, 7)),
        ((224, 224), 5, (7, 7)),
        ((150, 150), 4, (10, 10)),
        ((32, 32), 4, (2, 2)),
    ],
)
def test_decoder_geometry(size, stages, start):
    dec = DFDDecoder(12, size, width=0.05, upsample_stages=stages)
    assert dec.start_size == start
    out = dec(F.normalize(torch.randn(2, 12), dim=1))
    assert out.shape == (2, 3, *size) and out.min() >= 0 and out.max() <= 1


def test_decoder_mirrors_vgg16_at_full_width():
    dec = DFDDecoder(192, (112, 112))
    assert dec.channels == (512, 512, 256, 128, 64)
    convs = [len(stage.convs) for stage in dec.stages]
    ups = [stage.upsample for stage in dec.stages]
    assert convs == [3, 3, 3, 2, 2] and ups == [False, True, True, True, True]
    assert dec.fc.out_features == 512 * 7 * 7


# ------------------------------------------------------------------------- inverter
def test_registered_lazily_with_paper_in_the_class_description():
    from invbench_plugins.inverters import register_inverters

    calls = []
    register_inverters(lambda *args, **kw: calls.append((args, kw)))
    (name, target), kw = calls[0]
    assert name == "dfd" and target == "invbench_plugins.inverters.dfd:DFDInverter"
    assert not kw and "Križaj" in DFDInverter.summary() and "EAAI 2024" in DFDInverter.summary()


def test_fit_invert_shape_range_and_loss_decreases(tmp_path):
    inv = make_inverter(steps=30, epochs=100)
    data = make_data(inv.encoder)
    summary = inv.fit(data, FitContext(seed=0, checkpoint_dir=tmp_path, progress=False))
    hist = summary["history"]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert summary["steps"] == 30 and summary["val_loss"] is not None
    assert set(summary["parts"]) == {"pix", "grad", "perc", "pix_local", "grad_local", "perc_local"}
    assert (tmp_path / CHECKPOINT_NAME).is_file()
    out = inv.invert(data.templates[:5])
    assert out.shape == (5, 3, SIZE, SIZE) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1 and out.device.type == "cpu"


def test_invert_before_fit_raises():
    with pytest.raises(RuntimeError, match="fit"):
        make_inverter().invert(torch.zeros(1, 16))


def test_state_dict_round_trip_is_identical():
    inv = make_inverter()
    data = make_data(inv.encoder)
    inv.fit(data, FitContext(seed=3, progress=False))
    buf = __import__("io").BytesIO()
    torch.save(inv.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    other = DFDInverter(TinyConvEncoder(), tiny_options())
    other.load_state_dict(state)
    assert torch.equal(inv.invert(data.templates), other.invert(data.templates))


def test_deterministic_under_seed():
    data = make_data(TinyConvEncoder())
    outs = []
    for seed in (5, 5, 6):
        inv = make_inverter()
        inv.fit(data, FitContext(seed=seed, progress=False))
        outs.append(inv.invert(data.templates))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


def test_resume_from_checkpoint_gives_identical_decoder(tmp_path, monkeypatch):
    data = make_data(TinyConvEncoder())
    reference = make_inverter(steps=9)
    reference.fit(data, FitContext(seed=1, progress=False))

    forward = DFDDecoder.forward
    calls = {"n": 0}

    def forward_then_crash(self, templates):
        calls["n"] += 1
        if calls["n"] == 5:  # the 5th training step; checkpoints were written at 2 and 4
            raise KeyboardInterrupt
        return forward(self, templates)

    monkeypatch.setattr(DFDDecoder, "forward", forward_then_crash)
    with pytest.raises(KeyboardInterrupt):
        make_inverter(steps=9).fit(
            data, FitContext(seed=1, checkpoint_dir=tmp_path, progress=False)
        )
    monkeypatch.setattr(DFDDecoder, "forward", forward)
    resumed = make_inverter(steps=9)
    summary = resumed.fit(data, FitContext(seed=1, checkpoint_dir=tmp_path, progress=False))
    assert summary["resumed_from_step"] == 4 and summary["steps"] == 9
    assert torch.equal(resumed.invert(data.templates), reference.invert(data.templates))


@pytest.mark.parametrize("perceptual", ["white-box", "tiny-conv", "none"])
def test_perceptual_options(perceptual):
    inv = make_inverter(
        perceptual=perceptual, perceptual_options={"seed": 9} if perceptual == "tiny-conv" else {}
    )
    summary = inv.fit(make_data(inv.encoder), FitContext(seed=0, progress=False))
    has_perc = "perc" in summary["parts"]
    assert has_perc == (perceptual != "none")
    phi = inv.perceptual_network()
    if perceptual == "white-box":
        assert phi is inv.encoder
    elif perceptual == "tiny-conv":
        # a differently seeded instance of another encoder: black-box
        assert phi is not inv.encoder and phi.options.seed == 9
    else:
        assert phi is None


def test_black_box_layers_and_local_perceptual():
    inv = make_inverter(perceptual="tiny-conv", perceptual_layers=(1,), lambda_perc_local=0.1)
    summary = inv.fit(make_data(inv.encoder), FitContext(seed=0, progress=False))
    assert "perc_local" in summary["parts"] and summary["weights"]["perc_local"] == 0.1


def test_encoder_without_feature_maps_is_refused():
    with pytest.raises(IncompatibleComponentsError, match="feature maps"):
        make_inverter(NoFeaturesEncoder())  # refused before any training
    inv = make_inverter(perceptual="no-features")
    with pytest.raises(IncompatibleComponentsError, match="feature maps"):
        inv.perceptual_network()
    no_factory = DFDInverter(TinyConvEncoder(), tiny_options(perceptual="tiny-conv"))
    with pytest.raises(IncompatibleComponentsError, match="factory"):
        no_factory.perceptual_network()


def test_profiles():
    assert DFDInverter.make_options(profile="paper") == DFDInverter.Options()
    quick = DFDInverter.make_options(profile="quick")
    assert quick.lambda_perc_local == 0 and quick.batch_size == 32
    assert quick.width < 1 and quick.steps is not None and quick.perceptual == "white-box"
    paper = DFDInverter.make_options(profile="paper")
    assert paper.width == 1.0 and paper.steps is None and paper.epochs >= 20
    assert paper.batch_size == 64 and paper.lambda_perc_local > 0
    assert paper.lr_decay_unit == "epoch" and paper.lr_decay == 0.5
    user = DFDInverter.make_options({"epochs": 3}, profile="paper")
    assert user.epochs == 3 and user.width == 1.0


def test_factory_builds_dfd_with_profile():
    fac = factory()
    fac.profile = "paper"
    inv = fac.build("inverter", "dfd", {"width": 0.1}, encoder=TinyConvEncoder())
    assert (
        isinstance(inv, DFDInverter) and inv.options.width == 0.1 and inv.options.batch_size == 64
    )
    assert inv.factory is fac


def test_max_train_images_subsamples():
    inv = make_inverter(max_train_images=20, val_fraction=0.0)
    summary = inv.fit(make_data(inv.encoder), FitContext(seed=0, progress=False))
    assert summary["n_train_images"] == 20


@pytest.mark.slow
@pytest.mark.assets
def test_trains_against_real_arcface_white_box():
    """A few steps with the real encoders: feature maps, gradients and shapes fit."""
    from invbench_plugins.datasets.dcgan_faces import DCGANFacesDataset
    from invbench_plugins.encoders.arcface import ArcFaceEncoder

    encoder = ArcFaceEncoder(ArcFaceEncoder.make_options({"backend": "torch"}))
    faces = DCGANFacesDataset(DCGANFacesDataset.make_options({"count": 24}))
    images = torch.stack([faces[i].image for i in range(24)])
    images = F.interpolate(images, size=(112, 112), mode="bilinear", antialias=True)
    u8 = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    data = TrainingData(encoder.encode(u8.float() / 255), u8)
    inv = DFDInverter(
        encoder,
        DFDInverter.make_options(
            {
                "width": 0.0625,
                "steps": 3,
                "batch_size": 8,
                "val_fraction": 0.0,
                "lambda_perc_local": 0.05,
            }
        ),
    )
    summary = inv.fit(data, FitContext(seed=0, progress=False))
    assert {"perc", "perc_local"} <= set(summary["parts"]) and summary["steps"] == 3
    out = inv.invert(data.templates[:2])
    assert out.shape == (2, 3, 112, 112) and 0 <= out.min() <= out.max() <= 1


class LoudEncoder(TinyConvEncoder):
    """TinyConvEncoder with every feature map 100 times larger."""

    name: ClassVar[str] = "loud-conv"

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        return [100.0 * f for f in super().feature_maps(images)]


def test_perceptual_term_is_a_relative_error_of_any_scale():
    """Maps are divided by their energy: 0 for equal images, order 1 for unrelated ones,
    whatever the scale of φ's features (``lambda_perc`` is tuned on that scale)."""
    inv = make_inverter()
    images = make_data(inv.encoder).images
    x = images.float() / 255.0
    unrelated = x.flip(0)
    perc = inv._feature_loss(inv.encoder, images)
    assert float(perc(x, x)) == 0.0
    value = float(perc(unrelated, x))
    assert 0.05 < value < 2.5
    loud = make_inverter(LoudEncoder())
    loud_perc = loud._feature_loss(loud.encoder, images)
    assert float(loud_perc(unrelated, x)) == pytest.approx(value, rel=1e-3)


def _fit_weights(monkeypatch, cache_mib: str, encoder: Encoder, data: TrainingData, **extra):
    monkeypatch.setenv("INVBENCH_FEATURE_CACHE_MB", cache_mib)
    inv = DFDInverter(encoder, DFDInverter.make_options(extra), factory=factory())
    calls = {"n": 0}
    target_features = FeatureLoss.target_features

    def counting(self, target):
        calls["n"] += 1
        return target_features(self, target)

    monkeypatch.setattr(FeatureLoss, "target_features", counting)
    inv.fit(data, FitContext(seed=0, progress=False))
    monkeypatch.setattr(FeatureLoss, "target_features", target_features)
    assert inv._target_feats == {}  # released after training
    return [p.detach().clone() for p in inv.model.state_dict().values()], calls["n"]


def test_cached_target_features_train_the_same_weights_bit_for_bit(monkeypatch):
    """36 training faces in batches of 8 (the last of each epoch 4), 12 steps, validation
    batches of 8 and 4, both perceptual terms: the cache changes no bit of the decoder,
    and the loss computes no target features once it is built."""
    encoder = TinyConvEncoder()
    data = make_data(encoder)
    extra = dict(
        width=0.05, steps=12, epochs=100, batch_size=8, lr=3e-3, lr_decay_every=0,
        val_fraction=0.25, checkpoint_every=0, lambda_perc_local=0.5,
    )  # fmt: skip
    cached, cached_calls = _fit_weights(monkeypatch, "64", encoder, data, **extra)
    plain, plain_calls = _fit_weights(monkeypatch, "0", encoder, data, **extra)
    assert len(cached) == len(plain)
    assert all(torch.equal(a, b) for a, b in zip(cached, plain, strict=True))
    # two terms: a cache each (48 faces / 8 = 6 batches), against two per step and val batch
    assert cached_calls == 2 * 6 and plain_calls > 2 * 12


@pytest.mark.slow
@pytest.mark.assets
def test_cached_target_features_are_exact_with_real_arcface(monkeypatch):
    """The real φ (MobileFaceNet, oneDNN): batches of 10, 10, 4 per epoch, both terms."""
    from invbench_plugins.encoders.arcface import ArcFaceEncoder

    encoder = ArcFaceEncoder(ArcFaceEncoder.make_options({"backend": "torch"}))
    g = torch.Generator().manual_seed(0)
    low = torch.rand(24, 3, 7, 7, generator=g)
    u8 = (F.interpolate(low, size=(112, 112), mode="bilinear") * 255).round().to(torch.uint8)
    data = TrainingData(encoder.encode(u8.float() / 255), u8)
    extra = dict(
        width=0.0625, steps=4, batch_size=10, val_fraction=0.0, lambda_perc_local=0.05,
    )  # fmt: skip
    cached, _ = _fit_weights(monkeypatch, "4096", encoder, data, **extra)
    plain, _ = _fit_weights(monkeypatch, "0", encoder, data, **extra)
    assert all(torch.equal(a, b) for a, b in zip(cached, plain, strict=True))


def test_no_cache_when_each_image_is_drawn_at_most_once(monkeypatch):
    """3 steps of 8 on 36 training faces: caching all 48 would only add work."""
    encoder = TinyConvEncoder()
    extra = dict(width=0.05, steps=3, batch_size=8, val_fraction=0.0, checkpoint_every=0)
    _, calls = _fit_weights(monkeypatch, "64", encoder, make_data(encoder), **extra)
    assert calls == 2 * 3  # both perceptual terms in every step, none up front
