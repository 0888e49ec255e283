"""The robustness protocols on fake components: identities that must hold, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from invbench import EvalContext
from invbench.cli.main import cli
from invbench.records import load_record
from invbench.testing.conformance import fake_eval_context
from invbench.testing.fakes import FakeFaces, FakeProjectionEncoder
from invbench_plugins.protocols.robustness.adversarial import (
    AdversarialProtocol,
    perturb_adversarially,
)
from invbench_plugins.protocols.robustness.aggregation import AggregationProtocol, split_pool
from invbench_plugins.protocols.robustness.geometric import (
    GeometricProtocol,
    fit_map,
    least_squares_map,
)
from invbench_plugins.protocols.robustness.leak import LeakProtocol
from invbench_plugins.protocols.robustness.occlusion import OcclusionProtocol
from invbench_plugins.protocols.type2 import TypeIIProtocol


def _stack(dataset):
    return torch.stack([dataset[i].image for i in range(len(dataset))])


def make_context(encoder: FakeProjectionEncoder | None = None) -> EvalContext:
    """A perfect attack (the fake pseudo-inverse) on 6 identities x 4 fake faces."""
    return fake_eval_context(encoder, per_identity=4)


def test_the_least_squares_map_recovers_a_known_linear_map():
    g = torch.Generator().manual_seed(0)
    perturbed = torch.randn(64, 8, generator=g, dtype=torch.float64)
    truth = torch.randn(8, 8, generator=g, dtype=torch.float64)
    torch.testing.assert_close(least_squares_map(perturbed, perturbed @ truth), truth)


def test_both_map_fits_recover_a_known_affine_map_and_ridge_generalises_from_few_faces():
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(16, 16, generator=g, dtype=torch.float64) / 4
    train = torch.randn(400, 16, generator=g, dtype=torch.float64)
    for how in ("lstsq", "ridge"):
        m = fit_map(train, train @ truth, how)
        torch.testing.assert_close(m(train[:5]), train[:5] @ truth, atol=1e-3, rtol=0)
    # 20 noisy faces for 16 dimensions: plain least squares overfits, ridge does not.
    few = torch.randn(20, 16, generator=g, dtype=torch.float64)
    noisy = few @ truth + 0.5 * torch.randn(20, 16, generator=g, dtype=torch.float64)
    test = torch.randn(200, 16, generator=g, dtype=torch.float64)
    errors = {
        how: float((fit_map(few, noisy, how)(test) - test @ truth).pow(2).mean())
        for how in ("lstsq", "ridge")
    }
    assert errors["ridge"] < 0.5 * errors["lstsq"], errors


@pytest.mark.parametrize("protocol", [GeometricProtocol, OcclusionProtocol])
def test_the_quick_profile_is_the_small_study_and_the_default_the_full_one(protocol):
    full = protocol.make_options()
    quick = protocol.make_options(profile="quick")
    assert full.severities == [1, 2, 3, 4, 5] and full.max_images is None
    assert (full.map_images, full.map_fit) == (2000, "lstsq")
    assert quick.severities == [2, 4] and quick.max_images == 120
    assert (quick.map_images, quick.map_fit) == (512, "ridge")
    assert set(quick.perturbations) <= set(full.perturbations)
    assert "rotation-dfd" not in quick.perturbations


def test_severity_zero_is_the_clean_case_for_system_and_attack():
    ctx = make_context()
    proto = GeometricProtocol(
        GeometricProtocol.make_options({"severities": [0], "max_images": None})
    )
    s = proto.scores(ctx)
    np.testing.assert_allclose(s["rotation=0__drift"], 1.0, atol=1e-6)
    np.testing.assert_allclose(s["rotation=0__system"], s["clean__system"], atol=1e-6)
    np.testing.assert_allclose(s["shift-left=0__type1"], s["clean__type1"], atol=1e-6)
    metrics = proto.metrics(s)
    assert (
        metrics["tar_type1@far=1e-2@rotation=0"].value == metrics["tar_type1@far=1e-2@clean"].value
    )
    assert metrics["tar_type1@far=1e-2@clean"].value == 1.0  # the pseudo-inverse is perfect


def test_leak_identity_conditions_equal_the_clean_attack():
    ctx = make_context()
    opts = {"sigmas": [0.0], "fractions": [1.0], "quantisations": ["float32"], "max_images": None}
    scores = LeakProtocol(LeakProtocol.make_options(opts)).scores(ctx)
    for cond in ("noise=0", "partial=1", "quantise=float32"):
        np.testing.assert_allclose(scores[f"{cond}__type1"], scores["clean__type1"], atol=1e-6)
        np.testing.assert_allclose(scores[f"{cond}__sar"], scores["clean__sar"], atol=1e-6)


def test_leak_degradations_lower_identity():
    ctx = make_context()
    opts = {"sigmas": [0.5], "fractions": [0.125], "quantisations": ["sign"], "max_images": None}
    proto = LeakProtocol(LeakProtocol.make_options(opts))
    metrics = proto.metrics(proto.scores(ctx))
    clean = metrics["identity_similarity@clean"].value
    for cond in ("noise=0.5", "partial=0.125", "quantise=sign"):
        assert metrics[f"identity_similarity@{cond}"].value < clean - 0.01, cond


def test_aggregation_with_one_image_equals_the_type2_scores():
    ctx = make_context()
    agg = AggregationProtocol(AggregationProtocol.make_options({"ks": [1], "cluster": False}))
    scores = agg.scores(ctx)
    t2 = TypeIIProtocol(TypeIIProtocol.make_options({})).scores(ctx)
    codes = np.unique(ctx.identities, return_inverse=True)[1]
    pool, held = split_pool(codes)
    firsts = {int(c): int(rows[0]) for c, rows in pool.items()}
    expected = [
        t2["type2"][(t2["type2_recon_index"] == firsts[c]) & (t2["type2_real_index"] == j)][0]
        for c in sorted(held)
        for j in held[c]
    ]
    np.testing.assert_allclose(scores["k=1__type2"], expected, atol=1e-6)


def test_fgsm_with_zero_budget_changes_nothing_and_pgd_moves_the_score():
    enc = FakeProjectionEncoder()
    images = _stack(FakeFaces())[:4]
    own = enc.templates(images)
    target = torch.roll(own, 1, dims=0)
    same = perturb_adversarially(
        enc, images, target, goal="impersonation", eps=0.0, steps=1, step_size=0.0
    )
    assert torch.equal(same, images)
    kw = {"eps": 8 / 255, "steps": 10, "step_size": 2.5 * 8 / 255 / 10}
    towards = perturb_adversarially(enc, images, target, goal="impersonation", **kw)
    reference = torch.roll(own, 2, dims=0)  # any template the face does not match exactly
    away = perturb_adversarially(enc, images, reference, goal="dodging", **kw)
    cos = torch.nn.functional.cosine_similarity
    assert (cos(enc.templates(towards), target) > cos(own, target) + 0.02).all()
    assert (cos(enc.templates(away), reference) < cos(own, reference) - 0.02).all()
    assert float((towards - images).abs().max()) <= 8 / 255 + 1e-6


class BlackBox(FakeProjectionEncoder):
    name: ClassVar[str] = "black-box"
    differentiable: ClassVar[bool] = False


def test_adversarial_on_a_black_box_encoder_is_unavailable_with_the_reason():
    ctx = make_context(BlackBox())
    proto = AdversarialProtocol(AdversarialProtocol.make_options({}))
    metrics = proto.metrics(proto.scores(ctx))
    attack = [m for n, m in metrics.items() if n.startswith(("adversarial_", "reconstruction_"))]
    assert attack and all(m.value is None for m in attack)
    assert all("no differentiable path" in (m.unavailable or "") for m in attack)
    assert proto.figures(proto.scores(ctx), metrics) == {}


FAKE = ["--encoder", "fake-projection", "--inverter", "fake-linear", "--dataset", "fake-faces"]
FAKE += ["--train-dataset", "fake-train-faces", "--no-progress"]


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ('perturbations=["rotashun"]', "unknown perturbation 'rotashun'"),
        ("severities=[7]", "severity"),
    ],
)
def test_bad_perturbations_are_one_line_before_any_work(tmp_path, monkeypatch, arg, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(
        cli, ["run", *FAKE, "--protocol", "geometric", "--protocol-arg", arg]
    )
    assert result.exit_code == 2, result.output
    assert "error: invalid options for protocol 'geometric'" in result.output
    assert message in result.output
    assert not (tmp_path / "cache").exists() and not (tmp_path / "invbench-results").exists()


def test_robustness_group_runs_the_five_protocols_and_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    args = ["run", *FAKE, "--protocol", "robustness", "--out", "r"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    record = load_record(next(Path("r").rglob("record.json")))
    names = {"geometric", "occlusion", "adversarial", "aggregation", "leak"}
    assert set(record.metrics) == names
    assert "tar_type1@far=1e-3@rotation=4" in record.metrics["geometric"]
    assert "system_tar_map@far=1e-2@scale-down=2" in record.metrics["geometric"]
    assert "identity_retention@occlude-eyes=2" in record.metrics["occlusion"]
    assert "reconstruction_self@far=1e-3@pgd-dodging=16" in record.metrics["adversarial"]
    assert "identity_similarity_type2@k=all" in record.metrics["aggregation"]
    assert "sar@far=1e-3@quantise=sign" in record.metrics["leak"]
    folder = next(Path("r").rglob("record.json")).parent
    for figure in ("geometric/faces", "adversarial/roc", "aggregation/similarity", "leak/sar"):
        assert (folder / record.artifacts[figure]).stat().st_size > 5000, figure
    assert "| condition" in first.output  # the compact tables
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0 and "computed nothing" in second.output
