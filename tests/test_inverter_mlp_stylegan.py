"""The ``mlp-stylegan`` inverter on a tiny fake generator and the fake projection encoder."""

from __future__ import annotations

import io
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invbench.components import FitContext, Generator, Options, TrainingData
from invbench.errors import IncompatibleComponentsError
from invbench.registry import ComponentEntry, ComponentFactory, Registry
from invbench.testing.fakes import FakeProjectionEncoder
from invbench_plugins.inverters.mlp_stylegan import MLPStyleGAN
from invbench_plugins.inverters.mlp_stylegan_model import LatentSpaceTransformer

N_LAT, DIM, GEN_SIZE = 2, 8, 20


class TinyGenerator(Generator):
    """Differentiable toy generator: (B, 2, 8) latents -> (B, 3, 20, 20) via a fixed MLP."""

    name: ClassVar[str] = "tiny-gen"

    class Options(Options):
        seed: int = 7

    def __init__(self, options=None, *, device="cpu"):
        super().__init__(options, device=device)
        torch.manual_seed(self.options.seed)
        self.net = nn.Sequential(
            nn.Linear(N_LAT * DIM, 64), nn.Tanh(), nn.Linear(64, 3 * GEN_SIZE * GEN_SIZE)
        )
        with torch.no_grad():  # varied faces: pixels spread over [0, 1]
            self.net[2].weight.mul_(8.0)
        self.net.to(self.device)

    @property
    def latent_shape(self):
        return (N_LAT, DIM)

    @property
    def output_size(self):
        return (GEN_SIZE, GEN_SIZE)

    def sample_latents(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.randn(n, N_LAT, DIM, generator=generator)

    def synthesize(self, latents: Tensor) -> Tensor:
        out = self.net(latents.to(self.device).flatten(1))
        return torch.sigmoid(out).view(-1, 3, GEN_SIZE, GEN_SIZE)


class NoFeatureEncoder(FakeProjectionEncoder):
    def feature_maps(self, images):
        raise NotImplementedError("no feature maps")


class BlackBoxEncoder(FakeProjectionEncoder):
    differentiable: ClassVar[bool] = False


FAST = {
    "generator": "tiny-gen",
    "hidden": 32,
    "epochs": 3,
    "steps": None,
    "warmup_epochs": 0,
    "batch_size": 8,
    "lr": 3e-3,
    "mean_samples": 256,
    "aux_steps": 4,
    "aux_width": 4,
    "val_fraction": 0.1,
    "perceptual": "encoder",
}


@pytest.fixture
def factory():
    registry = Registry()
    registry.add(ComponentEntry("generator", "tiny-gen", TinyGenerator, provider="test"))
    target = "invbench_plugins.inverters.mlp_stylegan:MLPStyleGAN"
    registry.add(ComponentEntry("inverter", "mlp-stylegan", target, provider="test"))
    return ComponentFactory(registry)


def make_data(n: int = 40, seed: int = 0, with_latents: bool = True) -> TrainingData:
    gen, enc = TinyGenerator(), FakeProjectionEncoder()
    lat = gen.sample_latents(n, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        img = F.interpolate(
            gen.synthesize(lat), size=enc.input_size, mode="bilinear", antialias=True
        )
    images = (img * 255).round().to(torch.uint8)
    templates = enc.encode(images.float() / 255)
    return TrainingData(templates, images, lat if with_latents else None, [""] * n)


def build(factory, encoder=None, **options):
    opts = {**FAST, **options}
    return factory.build(
        "inverter", "mlp-stylegan", opts, encoder=encoder or FakeProjectionEncoder()
    )


def test_transformer_branches_and_residual():
    mean = torch.randn(3, 5)
    model = LatentSpaceTransformer(8, 3, 5, hidden=16, l_mean=mean)
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linear) + len(model.branches) == 8 and len(model.branches) == 4
    assert model.branches[0].weight.shape == (3, 16, 16)  # one branch per sub-code
    latent, res = model(F.normalize(torch.randn(4, 8), dim=1))
    assert latent.shape == res.shape == (4, 3, 5)
    torch.testing.assert_close(latent, res + mean)
    with torch.no_grad():  # branches are independent: changing branch 1 leaves 0 and 2
        before = model(torch.ones(2, 8))[1]
        model.branches[-1].weight[1].add_(1.0)
        after = model(torch.ones(2, 8))[1]
    assert torch.equal(before[:, [0, 2]], after[:, [0, 2]]) and not torch.equal(before, after)


def test_profiles_and_description():
    paper = MLPStyleGAN.make_options(profile="paper")
    assert (paper.batch_size, paper.lr, paper.epochs) == (16, 0.01, 20)
    betas = (paper.beta_rec, paper.beta_per, paper.beta_id, paper.beta_guide, paper.beta_reg)
    assert betas == (0.1, 0.8, 8.0, 0.1, 0.02)
    assert paper.generator == "dcgan-faces" and paper.guide
    assert "Ren et al., TIFS 2024" in MLPStyleGAN.summary()


def test_fit_lowers_loss_and_inverts(factory):
    data = make_data()
    inv = build(factory, epochs=4)
    summary = inv.fit(data, FitContext(seed=1, progress=False))
    losses = [h["loss"] for h in summary["history"]]
    assert losses[-1] < losses[0]
    assert summary["perceptual"] == "encoder-feature-maps"
    assert summary["guide"] == "generator-latents"
    assert set(summary["parts"]) == {"rec", "per", "id", "guide", "reg"}
    out = inv.invert(data.templates[:5])
    assert out.shape == (5, 3, 16, 16) and out.device.type == "cpu"
    assert out.min() >= 0 and out.max() <= 1
    assert not any(p.requires_grad for p in inv.generator.net.parameters())
    assert inv.fit_details()["perceptual"] == "encoder-feature-maps"


def test_state_round_trip_and_determinism(factory):
    data = make_data()
    ctx = FitContext(seed=3, progress=False)
    a, b = build(factory, epochs=1), build(factory, epochs=1)
    a.fit(data, ctx)
    b.fit(data, ctx)
    state_a, state_b = a.state_dict(), b.state_dict()
    for key, value in state_a["model"].items():
        assert torch.equal(value, state_b["model"][key]), key
    buf = io.BytesIO()
    torch.save(state_a, buf)
    buf.seek(0)
    c = build(factory)
    c.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(a.invert(data.templates), c.invert(data.templates))
    other = build(factory, generator_options={"seed": 8})
    other.load_state_dict(state_a)  # same shape: loads (the generator is the user's choice)
    bad = factory.build("inverter", "mlp-stylegan", {**FAST}, encoder=FakeProjectionEncoder())
    bad.generator  # noqa: B018 - build it
    state_a["model"]["transformer.l_mean"] = torch.zeros(3, 8)
    with pytest.raises(IncompatibleComponentsError, match="does not fit"):
        bad.load_state_dict(state_a)


def test_guide_ablation_changes_the_loss(factory):
    data = make_data()
    ctx = FitContext(seed=5, progress=False)
    with_guide = build(factory, epochs=1, val_fraction=0.0).fit(data, ctx)
    without = build(factory, epochs=1, val_fraction=0.0, guide=False).fit(data, ctx)
    assert "guide" in with_guide["parts"] and "guide" not in without["parts"]
    assert without["guide"] == "off"
    assert with_guide["history"][0]["loss"] != without["history"][0]["loss"]
    o = MLPStyleGAN.make_options({**FAST, "guide": False})
    assert o.guide is False


def test_aux_encoder_guides_when_latents_are_missing_or_foreign(factory):
    ctx = FitContext(seed=2, progress=False)
    summary = build(factory, epochs=1).fit(make_data(24, with_latents=False), ctx)
    assert summary["guide"] == "aux-encoder"
    assert [h["stage"] for h in summary["history"]][:1] == ["aux-encoder"]
    foreign = make_data(24)
    foreign.latents = torch.randn_like(foreign.latents)  # right shape, wrong images
    assert build(factory, epochs=1).fit(foreign, ctx)["guide"] == "aux-encoder"
    with pytest.raises(IncompatibleComponentsError, match="guide_source=latents"):
        build(factory, guide_source="latents").fit(make_data(24, with_latents=False), ctx)


def test_incompatible_encoders(factory):
    with pytest.raises(IncompatibleComponentsError, match="differentiable"):
        build(factory, encoder=BlackBoxEncoder())
    inv = build(factory, encoder=NoFeatureEncoder())
    with pytest.raises(IncompatibleComponentsError, match="no perceptual network") as info:
        inv.fit(make_data(16), FitContext(seed=0, progress=False))
    assert "beta_per=0" in (info.value.hint or "")
    summary = build(factory, encoder=NoFeatureEncoder(), beta_per=0.0, epochs=1).fit(
        make_data(16), FitContext(seed=0, progress=False)
    )
    assert summary["perceptual"].startswith("off") and "per" not in summary["parts"]


def test_checkpoint_resume_gives_the_same_weights(factory, tmp_path):
    data = make_data(24)
    ctx = FitContext(seed=4, checkpoint_dir=tmp_path, progress=False)
    first = build(factory, epochs=2)
    first.fit(data, ctx)
    again = build(factory, epochs=2)
    summary = again.fit(data, ctx)  # finished checkpoint: loaded, no training
    assert summary["resumed_from_step"] is not None
    for key, value in first.state_dict()["model"].items():
        assert torch.equal(value, again.state_dict()["model"][key]), key


def test_generator_crop_keeps_the_output_size(factory):
    lat = torch.randn(2, N_LAT, DIM)
    cropped = build(factory, generator_crop=(0.1, 0.2, 0.9, 0.8)).decode(lat)
    full = build(factory).decode(lat)
    assert cropped.shape == full.shape == (2, 3, 16, 16)
    assert not torch.equal(cropped, full)


def test_conformance_with_the_smoke_profile():
    from invbench.testing.conformance import check_component

    registry = Registry()
    registry.add(ComponentEntry("encoder", "fake-projection", FakeProjectionEncoder, provider="t"))

    # the default generator name, served by the tiny fake so the check stays hermetic
    class TinyAsDefault(TinyGenerator):
        name: ClassVar[str] = "dcgan-faces"

    registry.add(ComponentEntry("generator", "dcgan-faces", TinyAsDefault, provider="t"))
    target = "invbench_plugins.inverters.mlp_stylegan:MLPStyleGAN"
    registry.add(ComponentEntry("inverter", "mlp-stylegan", target, provider="t"))
    checks = check_component(registry, "inverter", "mlp-stylegan")
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_latent_warmup_stage_uses_only_latent_terms(factory):
    data = make_data(24)
    ctx = FitContext(seed=6, progress=False)
    summary = build(factory, warmup_epochs=2, epochs=1).fit(data, ctx)
    stages = [h["stage"] for h in summary["history"]]
    assert stages == ["warmup", "warmup", "transformer"]
    assert set(summary["history"][0]["parts"]) == {"guide", "reg"}
    no_guide = build(factory, warmup_epochs=2, epochs=1, guide=False).fit(data, ctx)
    assert [h["stage"] for h in no_guide["history"]] == ["transformer"]
