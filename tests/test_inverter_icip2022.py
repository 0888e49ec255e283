"""ICIP'22 CNN inverter: architecture, white-box ID loss, training, I/O."""

from __future__ import annotations

import io
from typing import ClassVar

import pytest
import torch

from invbench.components import FitContext, TrainingData
from invbench.errors import IncompatibleComponentsError
from invbench.testing.fakes import FakeConvEncoder, FakeConvOptions, fake_training_data
from invbench_plugins.inverters.icip2022 import Icip2022Inverter
from invbench_plugins.inverters.icip2022_model import Icip2022Net, ResidualDeconvBlock

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 40  # 5 * 2^3: native geometry, 5x5 start, 3 doubling and 2 stride-1 blocks
TINY = {
    "channels": (32, 16, 16, 8, 8, 8),
    "batch_size": 8,
    "epochs": 50,
    "max_steps": 16,
    "val_fraction": 0.0,
    "checkpoint_every": 0,
}


class BlackBoxEncoder(FakeConvEncoder):
    differentiable: ClassVar[bool] = False


def make_data(n: int = 32, seed: int = 0) -> tuple[FakeConvEncoder, TrainingData]:
    """Smooth random colour images (``(n, 3, 40, 40)`` uint8) and their templates."""
    enc = FakeConvEncoder(FakeConvOptions(size=SIZE))
    return enc, fake_training_data(enc, n, seed)


def build(enc, **overrides):
    return Icip2022Inverter(enc, Icip2022Inverter.make_options({**TINY, **overrides}))


def test_paper_architecture_112():
    """512-D in; six blocks 512..16 filters: 1x1 -> 7x7 -> 14 -> 28 -> 56 -> 112 -> 112."""
    net = Icip2022Net(512, (112, 112), channels=(512, 256, 128, 64, 32, 16))
    assert net.geometry == "native" and net.build_size == (112, 112)
    blocks = list(net.blocks)
    assert len(blocks) == 6 and all(isinstance(b, ResidualDeconvBlock) for b in blocks)
    first = blocks[0].deconv[0]
    assert first.kernel_size == (7, 7) and first.in_channels == 512
    assert [b.deconv[0].kernel_size for b in blocks[1:5]] == [(4, 4)] * 4
    convs = [m for m in blocks[2].convs if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and all(c.kernel_size == (3, 3) for c in convs)
    x = torch.randn(1, 512)[:, :, None, None]
    sizes = []
    with torch.no_grad():
        for b in blocks:
            x = b(x)
            sizes.append(tuple(x.shape[1:]))
        y = net.out(x)
    assert sizes == [
        (512, 7, 7),
        (256, 14, 14),
        (128, 28, 28),
        (64, 56, 56),
        (32, 112, 112),
        (16, 112, 112),
    ]
    assert y.shape == (1, 3, 112, 112) and 0 <= float(y.min()) and float(y.max()) <= 1


def test_skip_connection_adds_deconv_output():
    block = ResidualDeconvBlock(4, 8, kernel=4, double=True).eval()
    x = torch.randn(2, 4, 3, 3)
    with torch.no_grad():
        d = block.deconv(x)
        assert torch.allclose(block(x), d + block.convs(d))
    assert block(x).shape == (2, 8, 6, 6)


def test_other_output_size_resizes():
    net = Icip2022Net(16, (150, 150), channels=(16, 16, 8, 8, 8, 8))
    assert net.geometry == "resize" and net.build_size == (112, 112)
    assert net(torch.randn(2, 16)).shape == (2, 3, 150, 150)
    small = Icip2022Net(
        16, (112, 112), geometry="resize", build_size=(56, 56), channels=(16, 16, 8, 8, 8, 8)
    )
    assert small.build_size == (56, 56) and small(torch.randn(2, 16)).shape == (2, 3, 112, 112)


def test_profiles_and_description():
    paper = Icip2022Inverter.make_options({}, "paper")
    assert (paper.lr, paper.lr_decay, paper.lr_decay_epochs) == (1e-3, 0.5, 10)
    assert (paper.dssim_weight, paper.id_weight, paper.val_fraction) == (0.1, 0.005, 0.1)
    assert tuple(paper.channels) == (512, 256, 128, 64, 32, 16)
    quick = Icip2022Inverter.make_options({}, "quick")
    assert quick.max_steps is not None and quick.max_steps <= 1000
    assert "Otroshi Shahreza et al., ICIP 2022" in Icip2022Inverter.summary()


def test_black_box_encoder_is_refused():
    with pytest.raises(IncompatibleComponentsError, match="white-box"):
        build(BlackBoxEncoder())
    build(BlackBoxEncoder(), id_weight=0.0)  # without the ID term it needs no gradients


def test_invert_shape_range():
    enc, data = make_data(4)
    inv = build(enc)
    inv.load_state_dict(inv.state_dict())  # the untrained initial weights
    out = inv.invert(data.templates)
    assert out.shape == (4, 3, SIZE, SIZE) and out.dtype == torch.float32
    assert out.device.type == "cpu" and 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_id_loss_reaches_the_network_not_the_encoder():
    enc, data = make_data(8)
    inv = build(enc, dssim_weight=0.0)
    loss, parts = inv._loss((data.templates, data.images))
    assert set(parts) == {"mse", "dssim", "id"}
    loss.backward()
    assert all(p.grad is not None for p in inv.model.parameters())
    before = [p.detach().clone() for p in enc.net.parameters()]
    enc.net.zero_grad(set_to_none=True)
    inv.fit(data, FitContext(seed=0, progress=False))  # fit freezes the attacked encoder
    after = list(enc.net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert all(p.grad is None and p.requires_grad for p in after)


def test_training_lowers_loss_and_is_deterministic():
    enc, data = make_data(32)
    runs, summary = [], {}
    for _ in range(2):
        inv = build(enc)
        summary = inv.fit(data, FitContext(seed=5, progress=False))
        runs.append(inv)
    losses = [h["loss"] for h in summary["history"]]
    assert losses[-1] < losses[0]
    assert summary["steps"] == 16 and summary["train_seconds"] > 0
    assert {"mse", "dssim", "id"} <= set(summary["parts"])
    a, b = (r.state_dict()["model"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_state_dict_round_trip():
    enc, data = make_data(16)
    inv = build(enc, max_steps=4)
    inv.fit(data, FitContext(seed=0, progress=False))
    buf = io.BytesIO()
    torch.save(inv.state_dict(), buf)
    buf.seek(0)
    fresh = build(enc, max_steps=4)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(fresh.invert(data.templates), inv.invert(data.templates))
