"""NbNet-A, NbNet-B and D-CNN: architecture vs the paper (Table 2, Table 7), training, I/O."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from invbench.components import FitContext, TrainingData
from invbench.errors import AssetError, OptionsError
from invbench.testing.fakes import FakeConvEncoder, FakeConvOptions, fake_training_data
from invbench_plugins.inverters import nbnet_perceptual
from invbench_plugins.inverters.nbnet import DcnnInverter, NbNetAInverter, NbNetBInverter
from invbench_plugins.inverters.nbnet_model import (
    NbBlock,
    NbNet,
    conv_weight_count,
    param_count,
    plan_geometry,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 40  # 5 * 2^3: native geometry with a 5x5 start, 3 doubling and 2 stride-1 blocks
TINY = {
    "channels": (32, 32, 16, 16, 16, 16),
    "batch_size": 8,
    "lr": 1e-3,
    "lr_decay_every": 0,
    "pixel_steps": 12,
    "perceptual_steps": 6,
    "val_fraction": 0.0,
    "checkpoint_every": 0,
}
INVERTERS = [NbNetAInverter, NbNetBInverter, DcnnInverter]

#: Table 7 of Mai et al. (TPAMI 2018): parameter counts (128-D in, 160x160 out).
TABLE7 = {"dcnn": 4_432_304, "A": 2_289_040, "B": 3_411_472}
#: BatchNorm channels: the six block outputs (512 + ... + 16 = 1,008) and the 3 RGB ones.
BN_CHANNELS = 1_011


def make_data(n: int = 32, seed: int = 0) -> tuple[FakeConvEncoder, TrainingData]:
    """Smooth random colour images (``(n, 3, 40, 40)`` uint8) and their templates."""
    enc = FakeConvEncoder(FakeConvOptions(size=SIZE))
    return enc, fake_training_data(enc, n, seed)


def build(cls, enc, **overrides):
    return cls(enc, cls.make_options({**TINY, **overrides}))


# ------------------------------------------------------------------ paper architecture
@pytest.mark.parametrize("block", ["dcnn", "A", "B"])
def test_table2_block_shapes(block):
    """Paper setting: 128x1x1 in; blocks give 512x5x5 ... 16x160x160; 3x160x160 out."""
    net = NbNet(128, (160, 160), block=block)
    shapes = []
    x = torch.randn(1, 128)[:, :, None, None]
    with torch.no_grad():
        for layer in net.blocks:
            x = layer(x)
            shapes.append(tuple(x.shape[1:]))
        y = net.out(x)
    assert shapes == [(512, 5, 5), (256, 10, 10), (128, 20, 20), (64, 40, 40), (32, 80, 80)] + [
        (16, 160, 160)
    ]
    assert y.shape == (1, 3, 160, 160) and y.abs().max() <= 1.0


def test_nbblock_inputs_follow_eq4():
    """ConvOP p reads X' (p = 1), then X_{p-1} (A) or [X', X_1..X_{p-1}] (B)."""
    a = NbBlock(128, 512, "A", start=(5, 5))
    b = NbBlock(128, 512, "B", start=(5, 5))
    assert len(a.convs) == len(b.convs) == 32
    assert [c[0].in_channels for c in a.convs] == [256] + [8] * 31
    assert [c[0].in_channels for c in b.convs] == [256 + 8 * p for p in range(32)]
    assert all(c[0].out_channels == 8 and c[0].kernel_size == (3, 3) for c in b.convs)


def test_param_counts_vs_table7():
    """Table 7 against our networks in the paper's setting (see nbnet_model's docstring).

    D-CNN: the convolution weights with 4x4 doubling kernels are exactly Table 7's count
    (Table 2 prints 3x3, which gives 3,210,160). NbNet-A / -B fall short of Table 7 by
    3,552 / 33,888; no reading of Eq. 4 closes that: A and B differ only in the input
    channels of 3x3 ConvOPs with 8 outputs, so their counts differ by a multiple of
    3 * 3 * 8 * 8 = 576, but Table 7's B - A is not even a multiple of 9.
    """
    nets = {b: NbNet(128, (160, 160), block=b) for b in ("dcnn", "A", "B")}
    weights = {b: conv_weight_count(n) for b, n in nets.items()}
    assert weights == {"dcnn": 4_432_304, "A": 2_285_488, "B": 3_377_584}
    assert weights["dcnn"] == TABLE7["dcnn"]
    assert TABLE7["A"] - weights["A"] == 3_552
    assert TABLE7["B"] - weights["B"] == 33_888
    assert (weights["B"] - weights["A"]) % 576 == 0
    assert (TABLE7["B"] - TABLE7["A"]) % 9 != 0
    # PyTorch's count adds BatchNorm's gamma and beta on every DconvOP / ConvOP channel.
    for b, net in nets.items():
        assert param_count(net) == weights[b] + 2 * BN_CHANNELS
    # Table 2's literal 3x3 DconvOP kernels.
    assert conv_weight_count(NbNet(128, (160, 160), block="dcnn", deconv_kernel=3)) == 3_210_160


def test_geometry_112_and_resize():
    assert plan_geometry((160, 160)) == ((5, 5), 5)
    assert plan_geometry((112, 112)) == ((7, 7), 4)
    with pytest.raises(ValueError, match="resize"):
        plan_geometry((150, 150))
    native = NbNet(192, (112, 112), block="A", geometry="auto")
    assert native.geometry == "native" and native(torch.randn(2, 192)).shape == (2, 3, 112, 112)
    resized = NbNet(192, (150, 150), block="dcnn", geometry="auto")
    assert resized.build_size == (160, 160)
    assert resized(torch.randn(2, 192)).shape == (2, 3, 150, 150)
    small = NbNet(192, (112, 112), block="B", geometry="resize", build_size=(56, 56))
    assert small.build_size == (56, 56) and small.blocks[-1].dconv[0].stride == (1, 1)
    assert small(torch.randn(2, 192)).shape == (2, 3, 112, 112)


def test_init_is_normal_002():
    net = NbNet(128, (160, 160), block="dcnn")
    w = net.blocks[1][0].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.001 and abs(float(w.mean())) < 0.001


# ------------------------------------------------------------------------ inverters
def test_profiles_and_options():
    paper = NbNetBInverter.make_options({}, "paper")
    assert (paper.batch_size, paper.lr, tuple(paper.betas)) == (64, 2e-4, (0.5, 0.999))
    assert (paper.lr_decay, paper.lr_decay_every, paper.init_std) == (0.94, 5000, 0.02)
    assert (paper.pixel_steps, paper.perceptual_steps) == (300_000, 100_000)
    quick = NbNetBInverter.make_options({}, "quick")
    assert quick.pixel_steps + quick.perceptual_steps < 2000
    for cls in INVERTERS:
        assert "Mai et al., TPAMI 2018" in cls.summary()
    enc, _ = make_data(2)
    with pytest.raises(OptionsError):
        build(NbNetAInverter, enc, pixel_steps=0, perceptual_steps=0)


@pytest.mark.parametrize("cls", INVERTERS)
def test_invert_shape_range(cls):
    enc, data = make_data(4)
    inv = build(cls, enc)
    inv.load_state_dict(inv.state_dict())  # the untrained initial weights
    out = inv.invert(data.templates)
    assert out.shape == (4, 3, SIZE, SIZE) and out.dtype == torch.float32
    assert out.device.type == "cpu" and 0.0 <= float(out.min()) and float(out.max()) <= 1.0


@pytest.mark.parametrize("cls", INVERTERS)
def test_training_lowers_loss_and_is_deterministic(cls, caplog):
    enc, data = make_data(32)
    runs = []
    for _ in range(2):
        inv = build(cls, enc, pixel_steps=20, perceptual_steps=8, perceptual_net="attacked")
        summary = inv.fit(data, FitContext(seed=3, progress=False))
        runs.append(inv)
    pixel = [h["loss"] for h in summary["history"] if h["stage"] == "pixel"]
    perceptual = [h["loss"] for h in summary["history"] if h["stage"] == "perceptual"]
    assert pixel[-1] < pixel[0] and perceptual[-1] < perceptual[0]
    assert summary["train_seconds"] > 0 and summary["steps"] == 28
    assert (
        "fake-conv" in summary["perceptual_network"]
        and "white-box" in summary["perceptual_network"]
    )
    a, b = (r.state_dict()["model"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = build(cls, enc, pixel_steps=20, perceptual_steps=8, perceptual_net="attacked")
    other.fit(data, FitContext(seed=4, progress=False))
    assert not torch.equal(other.invert(data.templates), runs[0].invert(data.templates))


def test_perceptual_stage_pixel_anchor_and_lr():
    """``perceptual_pixel_weight`` adds w·MAE to the perceptual loss (0 = the paper's
    perceptual-only loss); ``perceptual_lr`` sets the perceptual stage's base lr."""
    enc, data = make_data(8)
    batch = (data.templates, data.images)
    plain = build(NbNetAInverter, enc, perceptual_net="attacked")
    anchored = build(NbNetAInverter, enc, perceptual_net="attacked", perceptual_pixel_weight=10.0)
    anchored.model.load_state_dict(plain.model.state_dict())
    for inv in (plain, anchored):
        inv.model.eval()
        inv._perceptual = nbnet_perceptual.resolve_perceptual(
            "attacked", None, enc, None, torch.device("cpu")
        )
    with torch.no_grad():
        loss0, logs0 = plain._perceptual_loss(batch)
        loss1, logs1 = anchored._perceptual_loss(batch)
    assert float(logs0["mae"]) > 0
    assert torch.allclose(loss0, logs0["perceptual"])
    assert torch.allclose(loss1, logs1["perceptual"] + 10.0 * logs1["mae"])

    inv = build(NbNetAInverter, enc, pixel_steps=2, perceptual_steps=2, perceptual_lr=3e-5)
    summary = inv.fit(data, FitContext(seed=0, progress=False))
    lrs = {h["stage"]: h["lr"] for h in summary["history"]}
    assert lrs["pixel"] == pytest.approx(TINY["lr"])
    assert lrs["perceptual"] == pytest.approx(3e-5)


@pytest.mark.parametrize("cls", INVERTERS)
def test_state_dict_round_trip(cls):
    enc, data = make_data(16)
    inv = build(cls, enc, perceptual_steps=0)
    inv.fit(data, FitContext(seed=0, progress=False))
    buf = io.BytesIO()
    torch.save(inv.state_dict(), buf)
    buf.seek(0)
    fresh = build(cls, enc, perceptual_steps=0)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(fresh.invert(data.templates), inv.invert(data.templates))
    assert fresh.fit_details()["perceptual_network"].startswith("none")


def test_checkpoint_resume_returns_finished_run(tmp_path):
    enc, data = make_data(16)
    first = build(NbNetAInverter, enc, perceptual_net="attacked")
    s1 = first.fit(data, FitContext(seed=1, checkpoint_dir=tmp_path, progress=False))
    again = build(NbNetAInverter, enc, perceptual_net="attacked")
    s2 = again.fit(data, FitContext(seed=1, checkpoint_dir=tmp_path, progress=False))
    assert s2["steps"] == s1["steps"]
    assert torch.equal(again.invert(data.templates), first.invert(data.templates))


# ---------------------------------------------------------------- perceptual network
def test_perceptual_auto_without_vgg_uses_attacked_encoder(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    enc, _ = make_data(2)
    inv = build(NbNetBInverter, enc)
    assert inv.provenance()["perceptual_net_option"] == "auto -> attacked"
    net = nbnet_perceptual.resolve_perceptual("auto", None, enc, None, torch.device("cpu"))
    assert net.name == "attacked" and "white-box" in net.description
    feat = net.features(torch.rand(2, 3, SIZE, SIZE))
    assert feat.shape == (2, 16, 10, 10) and net.layer == 1  # first map at <= 1/4 size
    with pytest.raises(AssetError, match="VGG-19"):
        nbnet_perceptual.resolve_perceptual("vgg19", None, enc, None, torch.device("cpu"))


def test_vgg19_file_is_verified_then_loaded(monkeypatch, tmp_path):
    """A file whose sha256 does not match its name is refused; a good one gives relu3_2."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    path = nbnet_perceptual.vgg19_weights_path()
    path.parent.mkdir(parents=True)
    trunk = nbnet_perceptual.vgg19_trunk().state_dict()
    torch.save({f"features.{k}": v for k, v in trunk.items()}, path)
    enc, _ = make_data(2)
    with pytest.raises(AssetError, match="sha256"):
        nbnet_perceptual.resolve_perceptual("auto", None, enc, None, torch.device("cpu"))
    monkeypatch.setattr(nbnet_perceptual, "sha256_prefix_matches", lambda p: True)
    net = nbnet_perceptual.resolve_perceptual("auto", None, enc, None, torch.device("cpu"))
    assert net.name == "vgg19"
    assert net.features(torch.rand(1, 3, 64, 64)).shape == (1, 256, 16, 16)
    assert not any(p.requires_grad for m in net.modules for p in m.parameters())


def test_vgg19_trunk_matches_torchvision_indices():
    from torchvision.models.vgg import cfgs, make_layers  # VGG-19 = config "E"

    ours = nbnet_perceptual.vgg19_trunk()
    ref = make_layers(cfgs["E"][:8])  # conv1_1 .. conv3_2, two max-pools
    assert [type(m) for m in ours] == [type(m) for m in ref]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }
    assert isinstance(ref[-1], nn.ReLU)  # ends with relu3_2


def test_half_squared_l2():
    a, b = torch.zeros(2, 3, 2, 2), torch.ones(2, 3, 2, 2)
    assert float(nbnet_perceptual.half_squared_l2(a, b)) == 6.0
