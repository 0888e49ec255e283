"""Tests of the shared training machinery (invbench.training)."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from invbench.seeding import mix_seed
from invbench.training import (
    FeatureLoss,
    OptimizerSpec,
    Stage,
    StepDecay,
    Trainer,
    center_crop,
    crop_box,
    frozen,
    gradient_loss,
    image_gradients,
    mae_loss,
    mse_loss,
    perceptual_loss,
    train,
)
from invbench.training.checkpoint import CHECKPOINT_NAME, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- helpers
def make_data(n: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    y = torch.tanh(x @ torch.randn(6, 3, generator=g))
    return x, y


def make_model(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    # BatchNorm (running stats) and Dropout (global RNG) make resuming non-trivial.
    return nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3)
    )


def mse_stage_loss(model: nn.Module):
    def loss(batch):
        x, y = batch
        mse = mse_loss(model(x), y)
        mae = mae_loss(model(x).detach(), y)
        return mse, {"mse": mse, "mae": mae}

    return loss


def two_stages(model: nn.Module) -> list[Stage]:
    return [
        Stage(
            mse_stage_loss(model),
            name="pixel",
            epochs=3,
            optimizer=OptimizerSpec(lr=1e-2, betas=(0.5, 0.999)),
            schedule=StepDecay(factor=0.5, every=4, unit="step"),
        ),
        Stage(
            mse_stage_loss(model),
            name="finetune",
            epochs=None,
            steps=11,
            optimizer=OptimizerSpec(lr=3e-3, weight_decay=1e-4),
            schedule=StepDecay(factor=0.5, every=1, unit="epoch"),
        ),
    ]


def run(model: nn.Module, ckpt=None, stages=None, every=3, **kw):
    data = make_data()
    return train(
        model,
        data,
        stages if stages is not None else two_stages(model),
        batch_size=16,
        seed=7,
        val_fraction=0.1,
        checkpoint_dir=ckpt,
        checkpoint_every=every,
        progress=False,
        **kw,
    )


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Crash(RuntimeError):
    pass


def crashing(stages: list[Stage], after_calls: int) -> list[Stage]:
    """Wrap the training losses so the ``after_calls``-th call raises (a simulated kill)."""
    calls = {"n": 0}

    def wrap(fn):
        def loss(batch):
            calls["n"] += 1
            if calls["n"] == after_calls:
                raise Crash("killed")
            return fn(batch)

        return loss

    for stage in stages:
        stage.val_loss = stage.loss
        stage.loss = wrap(stage.loss)
    return stages


# ------------------------------------------------------------------------- schedules
def test_step_decay_nbnet_and_icip():
    nbnet = StepDecay(factor=0.94, every=5000)
    assert nbnet.lr(2e-4, 0, 0) == 2e-4
    assert nbnet.lr(2e-4, 4999, 3) == 2e-4
    assert nbnet.lr(2e-4, 5000, 3) == pytest.approx(2e-4 * 0.94)
    assert nbnet.lr(2e-4, 12000, 9) == pytest.approx(2e-4 * 0.94**2)
    icip = StepDecay(factor=0.5, every=10, unit="epoch")
    assert icip.lr(1e-3, 10**6, 9) == 1e-3
    assert icip.lr(1e-3, 0, 10) == pytest.approx(5e-4)
    assert icip.lr(1e-3, 0, 25) == pytest.approx(2.5e-4)
    assert StepDecay(factor=0.1, every=1, min_lr=1e-5).lr(1e-3, 10, 0) == 1e-5
    assert StepDecay().lr(1e-3, 10**6, 10**3) == 1e-3


def test_trainer_applies_schedule_and_stage_optimizers():
    model = make_model()
    summary = run(model)
    pixel = [h for h in summary["history"] if h["stage"] == "pixel"]
    # 108 training samples / 16 = 7 batches per epoch; lr of each epoch's last step.
    assert [h["step"] for h in pixel] == [7, 14, 21]
    assert pixel[0]["lr"] == pytest.approx(1e-2 * 0.5 ** (6 // 4))
    assert pixel[2]["lr"] == pytest.approx(1e-2 * 0.5 ** (20 // 4))
    finetune = [h for h in summary["history"] if h["stage"] == "finetune"]
    assert [h["step"] for h in finetune] == [28, 32]  # 7 steps, then capped at 11
    assert [h["lr"] for h in finetune] == pytest.approx([3e-3, 1.5e-3])
    assert summary["steps"] == 32 and summary["epochs"] == 5


def test_optimizer_spec_builds_each_kind():
    p = [nn.Parameter(torch.zeros(2))]
    adam = OptimizerSpec(lr=2e-4, betas=(0.5, 0.999)).build(p)
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.5, 0.999)
    assert isinstance(OptimizerSpec(name="adamw").build(p), torch.optim.AdamW)
    assert isinstance(OptimizerSpec(name="sgd", momentum=0.9).build(p), torch.optim.SGD)


def test_stage_validates_lengths():
    with pytest.raises(ValueError):
        Stage(lambda b: (torch.zeros(()), {}), epochs=None, steps=None)
    with pytest.raises(ValueError):
        Stage(lambda b: (torch.zeros(()), {}), epochs=0)


# ------------------------------------------------------------ determinism and resume
def test_deterministic_under_seed_and_caller_rng_untouched():
    a, b = make_model(), make_model()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    sa = run(a)
    assert torch.equal(torch.get_rng_state(), before)
    sb = run(b)
    assert same_weights(a, b)
    assert sa["final_loss"] == sb["final_loss"] and sa["val_loss"] == sb["val_loss"]
    c = make_model()
    train(c, make_data(), two_stages(c), batch_size=16, seed=8, val_fraction=0.1, progress=False)
    assert not same_weights(a, c)


@pytest.mark.parametrize("crash_at", [5, 8, 15, 22, 30])
def test_resume_after_crash_gives_identical_weights(tmp_path, crash_at):
    """Crash mid-epoch, at an epoch end, across the stage boundary; resume; compare."""
    reference = make_model()
    ref = run(reference)

    interrupted = make_model()
    with pytest.raises(Crash):
        run(interrupted, ckpt=tmp_path, stages=crashing(two_stages(interrupted), crash_at))
    assert (tmp_path / CHECKPOINT_NAME).is_file()
    resumed = make_model(seed=99)  # a fresh process would start from other weights
    out = run(resumed, ckpt=tmp_path)
    assert out["resumed_from_step"] is not None and out["resumed_from_step"] < crash_at
    assert same_weights(reference, resumed)
    assert out["final_loss"] == ref["final_loss"] and out["val_loss"] == ref["val_loss"]
    assert [h["loss"] for h in out["history"]] == [h["loss"] for h in ref["history"]]


def test_checkpointing_does_not_change_training(tmp_path):
    a, b = make_model(), make_model()
    run(a)
    run(b, ckpt=tmp_path, every=1)
    assert same_weights(a, b)
    ckpt = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert ckpt is not None and ckpt["position"]["stage"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name != CHECKPOINT_NAME]  # no temp files


def test_finished_checkpoint_skips_training(tmp_path):
    a = make_model()
    first = run(a, ckpt=tmp_path)
    b = make_model(seed=5)
    stages = crashing(two_stages(b), after_calls=1)  # any training step would raise
    second = run(b, ckpt=tmp_path, stages=stages)
    assert same_weights(a, b)
    assert second["final_loss"] == first["final_loss"] and second["steps"] == first["steps"]


def test_other_configuration_starts_over(tmp_path, caplog):
    a = make_model()
    run(a, ckpt=tmp_path)
    b, c = make_model(), make_model()
    stages = two_stages(b)
    stages[0].epochs = 2
    with caplog.at_level(logging.WARNING):
        out = run(b, ckpt=tmp_path, stages=stages)
    assert "another configuration" in caplog.text and out["resumed_from_step"] is None
    stages_c = two_stages(c)
    stages_c[0].epochs = 2
    run(c, stages=stages_c)
    assert same_weights(b, c)


# -------------------------------------------------------------- validation, losses
def test_validation_split_is_seeded_and_disjoint():
    data = make_data(50)
    trainer = Trainer(
        make_model(), Stage(lambda b: (torch.zeros(()), {})), batch_size=8, val_fraction=0.2, seed=3
    )
    train_idx, val = trainer._split(data, 50)
    assert len(train_idx) == 40 and val is not None and val[0].shape[0] == 10
    val_rows = {tuple(r.tolist()) for r in val[0]}
    train_rows = {tuple(data[0][i].tolist()) for i in train_idx}
    assert not val_rows & train_rows
    again, val2 = trainer._split(data, 50)
    assert torch.equal(again, train_idx) and torch.equal(val2[0], val[0])
    no_val = Trainer(make_model(), Stage(lambda b: (torch.zeros(()), {})), batch_size=8)
    assert no_val._split(data, 50)[1] is None


def test_explicit_validation_data_and_loss_decreases():
    model = make_model()
    x, y = make_data(200)
    stage = Stage(mse_stage_loss(model), epochs=8, optimizer=OptimizerSpec(lr=1e-2))
    out = train(
        model, (x[:160], y[:160]), stage, batch_size=16, val_data=(x[160:], y[160:]), progress=False
    )
    hist = out["history"]
    assert hist[-1]["loss"] < 0.6 * hist[0]["loss"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert set(out["parts"]) == {"mse", "mae"} and set(out["val_parts"]) == {"mse", "mae"}
    assert out["val_loss"] == hist[-1]["val_loss"] and out["seconds"] > 0


def test_early_stopping_and_param_groups():
    model = make_model()
    frozen_first = model[0].weight.detach().clone()
    stage = Stage(
        mse_stage_loss(model),
        epochs=50,
        optimizer=OptimizerSpec(lr=0.0),  # nothing improves: stop after `patience`
        params=lambda m: [{"params": m[4].parameters(), "lr": 0.0}],
        patience=2,
    )
    out = train(model, make_data(), stage, batch_size=16, val_fraction=0.2, progress=False)
    assert out["stopped_early"] and out["epochs"] == 3
    assert torch.equal(model[0].weight, frozen_first)


def test_non_finite_loss_raises():
    model = make_model()

    def bad(batch):
        return model(batch[0]).sum() * float("nan"), {}

    with pytest.raises(FloatingPointError, match="nan"):
        train(model, make_data(), Stage(bad), batch_size=16, progress=False)


def test_image_gradients_and_gradient_loss():
    ramp = torch.arange(12.0).view(1, 1, 3, 4)
    dy, dx = image_gradients(ramp)
    assert dy.shape == (1, 1, 2, 4) and torch.all(dy == 4) and torch.all(dx == 1)
    img = torch.rand(2, 3, 8, 8)
    assert gradient_loss(img, img + 0.25) < 1e-12  # a constant shift keeps the gradients
    assert gradient_loss(img, torch.zeros_like(img)) > 0


def test_perceptual_loss_weights_and_feature_loss_gradients():
    a, b = (
        [torch.zeros(1, 2, 3, 3), torch.zeros(1, 4, 2, 2)],
        [torch.ones(1, 2, 3, 3), torch.full((1, 4, 2, 2), 2.0)],
    )
    assert perceptual_loss(a, b) == pytest.approx(2.5)
    assert perceptual_loss(a, b, weights=[3.0, 0.5]) == pytest.approx(3 + 2)
    with pytest.raises(ValueError):
        perceptual_loss(a, b[:1])
    conv = nn.Conv2d(3, 4, 3)
    loss_fn = FeatureLoss(lambda x: [conv(x), conv(x).relu()], layers=[1], input_size=(8, 8))
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    target = torch.rand(2, 3, 16, 16, requires_grad=True)
    with frozen(conv):
        loss_fn(pred, target).backward()
    assert pred.grad is not None and target.grad is None
    assert conv.weight.grad is None and conv.weight.requires_grad


def test_crops():
    img = torch.arange(100.0).view(1, 1, 10, 10)
    crop = crop_box(img, (0.2, 0.3, 0.8, 0.7))
    assert crop.shape == (1, 1, 6, 4) and crop[0, 0, 0, 0] == 23
    assert center_crop(img, 0.6).shape == (1, 1, 6, 6)
    assert crop_box(torch.rand(2, 3, 112, 112), size=(112, 112)).shape == (2, 3, 112, 112)
    with pytest.raises(ValueError):
        crop_box(img, (0.5, 0.1, 0.4, 0.9))


def test_mix_seed_is_stable():
    assert mix_seed(1, 2) == mix_seed(1, 2) != mix_seed(2, 1)
    assert 0 <= mix_seed(2**70, -5) < 2**63
