"""``latent-opt``, ``nearest-face`` and the ``budget`` protocol on tiny fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from invbench import FitContext, TrainingData
from invbench.cli.main import cli
from invbench.errors import IncompatibleComponentsError, OptionsError
from invbench.plugin_manager import get_host
from invbench.registry import ComponentFactory
from invbench.testing.fakes import FakeConvEncoder, FakeGenerator, FakeProjectionEncoder
from invbench_plugins.inverters.latent_opt import LatentOptInverter
from invbench_plugins.inverters.nearest_face import NearestFaceInverter

ENC = {"size": 16, "dim": 16}


def make(**options) -> LatentOptInverter:
    encoder = FakeConvEncoder(FakeConvEncoder.make_options(ENC))
    opts = {"generator": "fake-generator", "batch_size": 64, **options}
    factory = ComponentFactory(get_host().registry)
    return LatentOptInverter(encoder, LatentOptInverter.make_options(opts), factory=factory)


def bank(inv: LatentOptInverter, n: int = 64, seed: int = 0) -> TrainingData:
    """Generated faces with their latents and templates (what dcgan-faces gives)."""
    latents = FakeGenerator().sample_latents(n, torch.Generator().manual_seed(seed))
    images = FakeGenerator().synthesize(latents)
    templates = inv.encoder.templates(images)
    return TrainingData(templates, (images * 255).round().byte(), latents=latents)


def targets(inv: LatentOptInverter, n: int = 6) -> torch.Tensor:
    """Templates of generated faces that are not in the bank."""
    return bank(inv, n, seed=99).templates


def cos(inv: LatentOptInverter, images: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (inv.encoder.templates(images) * F.normalize(t, dim=1)).sum(1)


def test_optimisation_raises_the_similarity_step_by_step():
    inv = make(steps=30, starts=2, lr=0.1, budget=[0, 10, 30], average_last=1)
    summary = inv.fit(bank(inv), FitContext(seed=0))
    assert summary["bank"].startswith("the 64 generated training faces")
    t = targets(inv)
    found = inv.invert_over_budget(t)
    assert set(found) == {0, 10, 30} and found[30].shape == (6, 3, 16, 16)
    start, mid, end = (float(cos(inv, found[k], t).mean()) for k in (0, 10, 30))
    assert start < mid < end and end > 0.95, (start, mid, end)
    assert torch.equal(inv.invert(t), found[30])


def test_each_template_is_optimised_independently_of_its_batch():
    inv = make(steps=5, starts=2, budget=[5], flip="both")
    inv.fit(bank(inv), FitContext(seed=0))
    t = targets(inv, 5)
    together = inv.invert(t)
    alone = torch.cat([inv.invert(t[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_gradient_calls_count_every_start_flip_and_ensemble_pass():
    assert make(steps=10, starts=3, flip="both").gradient_calls(10) == 60
    assert make(steps=10, starts=3, flip="alternate").gradient_calls(10) == 30
    assert make(steps=10, starts=1, flip="none", ensemble=["fake-conv"]).gradient_calls(4) == 8
    assert make(steps=10, budget=[0, 5]).budget() == (0, 5, 10)


def test_a_bank_is_sampled_when_the_training_faces_have_no_latents():
    inv = make(steps=2, bank_size=32)
    data = bank(inv)
    summary = inv.fit(TrainingData(data.templates, data.images), FitContext(seed=3))
    assert summary["bank"] == "32 faces sampled from fake-generator (seed 3)"
    assert inv.bank_latents.shape == (32, 1, 8)
    again = make(steps=2, bank_size=32)
    again.load_state_dict(inv.state_dict())
    torch.testing.assert_close(again.invert(targets(inv)), inv.invert(targets(inv)))


def test_selection_and_ensemble_run_and_keep_one_image_per_template():
    inv = make(steps=3, starts=3, select_with="fake-projection", select_top=2,
               ensemble=["fake-projection"], augment=0.05)  # fmt: skip
    inv.fit(bank(inv), FitContext(seed=0))
    assert set(inv.maps) == {"fake-projection"}
    out = inv.invert(targets(inv, 4))
    assert out.shape == (4, 3, 16, 16)


def test_bad_options_and_black_box_encoders_are_refused():
    with pytest.raises(OptionsError):
        LatentOptInverter.make_options({"steps": 5, "budget": [10]})
    assert make(steps=20).budget() == (0, 1, 2, 5, 10, 20)  # the default counts

    class BlackBox(FakeProjectionEncoder):
        differentiable = False

    with pytest.raises(IncompatibleComponentsError, match="differentiable"):
        LatentOptInverter(BlackBox())


def test_nearest_face_returns_the_closest_training_face():
    enc = FakeConvEncoder(FakeConvEncoder.make_options(ENC))
    g = torch.Generator().manual_seed(0)
    images = torch.rand(20, 3, 16, 16, generator=g)
    data = TrainingData(enc.templates(images), (images * 255).round().byte())
    inv = NearestFaceInverter(enc)
    assert inv.fit(data, FitContext(seed=0)) == {"n_faces": 20}
    out = inv.invert(data.templates[[3, 7]])
    assert torch.equal(out, data.images[[3, 7]].float() / 255)
    assert inv.threat_model() == "black-box"


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_budget_runs_by_default_only_for_iterative_inverters(here):
    args = ["run", "--dataset", "fake-faces", "--train-dataset", "fake-train-faces",
            "--encoder", "fake-conv", "--encoder-arg", "size=16", "--inverter", "latent-opt",
            "--inverter-arg", "latent-opt.generator=fake-generator", "--inverter", "nearest-face",
            "--profile", "smoke", "--no-progress", "--out", "r"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    records = {p.parent.name: json.loads(p.read_text()) for p in Path("r").rglob("record.json")}
    lo = next(r for name, r in records.items() if "latent-opt" in name)
    nf = next(r for name, r in records.items() if "nearest-face" in name)
    assert "budget" in lo["metrics"] and "budget" not in nf["metrics"]
    budget = lo["metrics"]["budget"]
    assert budget["gradient_calls@steps=2"]["value"] == 2 * 2 * 2  # steps x starts x flip
    assert budget["gradient_calls@steps=0"]["value"] == 0
    final = budget["identity_similarity@steps=2"]["value"]
    assert abs(final - budget["identity_similarity@clean"]["value"]) < 0.02  # 8-bit snapshot
    assert "budget/curve" in lo["artifacts"]
    assert lo["threat"]["access"] == "white-box" and nf["threat"]["access"] == "black-box"


class TwoLayerGenerator(FakeGenerator):
    """The fake generator with two sub-codes (like StyleGAN2's W+ layers)."""

    name = "fake-generator-2"

    @property
    def latent_shape(self) -> tuple[int, int]:
        return (2, 8)

    def sample_latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, 1, 8, generator=generator).expand(-1, 2, -1).clone()

    def synthesize(self, latents: torch.Tensor) -> torch.Tensor:
        return super().synthesize(latents.mean(dim=1, keepdim=True))


@pytest.mark.parametrize(("space", "shape"), [("w", (1, 8)), ("w+", (2, 8))])
def test_w_optimises_one_shared_code_and_w_plus_one_per_layer(space, shape):
    inv = make(steps=3, latent_space=space, bank_size=8)
    inv._generator = TwoLayerGenerator()
    data = bank(inv, 8)
    inv.fit(TrainingData(data.templates, data.images), FitContext(seed=0))
    assert tuple(inv.bank_latents.shape[1:]) == shape
    assert inv.from_codes(inv.bank_latents).shape == (8, 2, 8)
    assert inv.invert(targets(inv, 2)).shape == (2, 3, 16, 16)
