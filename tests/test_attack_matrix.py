"""Threat models, embedding adapters, the attack matrix, and leaderboard groups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from invbench.cli.main import cli
from invbench.records import load_record
from invbench.training.adapters import apply_adapter, fit_adapter

FAKE = ["--dataset", "fake-faces", "--train-dataset", "fake-train-faces", "--no-progress"]


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("kind", ["ridge", "mlp"])
def test_adapters_learn_a_map_between_embedding_spaces(kind):
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(400, 8, generator=g), dim=1)
    y = torch.nn.functional.normalize(x @ torch.randn(8, 6, generator=g), dim=1)
    arrays = fit_adapter(kind, x[:300], y[:300], seed=0)
    held = torch.nn.functional.cosine_similarity(apply_adapter(arrays, x[300:]), y[300:])
    assert float(held.mean()) > (0.97 if kind == "ridge" else 0.9), float(held.mean())
    assert torch.allclose(apply_adapter(arrays, x[:3]).norm(dim=1), torch.ones(3), atol=1e-5)


def test_every_record_states_its_threat_model(here):
    args = ["--encoder", "fake-projection", "--inverter", "fake-pinv", "--inverter", "fake-linear"]
    result = run("run", *args, "--protocol", "type1", "--out", "r", *FAKE)
    assert result.exit_code == 0, result.output
    threats = {r.cell.inverter: r.threat for r in map(load_record, Path("r").rglob("record.json"))}
    assert threats["fake-pinv"]["access"] == "white-box"
    assert threats["fake-linear"]["access"] == "black-box"
    for t in threats.values():
        assert t["attacked_encoder"] == t["judged_by"] == "fake-projection"
        assert t["victim_queries"] == 64 and t["surrogate"] is None


def test_a_black_box_attack_through_an_adapter_beats_the_baseline(here):
    # victim: one random projection; the attacker owns another (its own white-box model)
    args = ["run", "--encoder", "fake-projection", "--encoder-arg", "fake-projection.seed=7",
            "--surrogate", "fake-projection", "--surrogate-arg", "seed=42",
            "--inverter", "fake-linear", "--inverter-arg", "epochs=30",
            "--protocol", "type1", "--out", "r", *FAKE]  # fmt: skip
    first = run(*args)
    assert first.exit_code == 0, first.output
    record = load_record(next(Path("r").rglob("record.json")))
    assert record.threat["access"] == "black-box: ridge adapter into fake-projection"
    assert record.threat["surrogate"] == "fake-projection" and record.threat["victim_queries"] == 64
    assert record.components["surrogate"].options["seed"] == 42
    assert record.components["encoder"].options["seed"] == 7
    attack = record.metrics["type1"]["identity_similarity_type1"].value
    baseline = record.metrics["type1"]["baseline_identity_similarity_type1"].value
    assert attack > baseline + 0.1, (attack, baseline)
    assert "via-fake-projection-ridge" in str(next(Path("r").rglob("record.json")))
    again = run(*args)
    assert again.exit_code == 0 and "computed nothing" in again.output


def test_the_matrix_marks_the_diagonal_and_reports_transfer(here):
    result = run("matrix", "--encoder", "fake-projection", "--encoder", "fake-conv",
                 "--inverter", "fake-linear", "--fmr", "1e-2", "--out", "m", *FAKE)  # fmt: skip
    assert result.exit_code == 0, result.output
    text = Path("m/matrix.md").read_text()
    assert "| attacked \\ judged" in text and "Mean off-diagonal (transfer)" in text
    assert text.count("**") == 2 * 2 * 2  # two bold diagonal cells in each of two tables
    frame = Path("m/matrix.csv").read_text().splitlines()
    assert len(frame) == 1 + 2 * 4  # header + 2 measures x 4 cells
    records = list(map(load_record, Path("m").rglob("record.json")))
    assert {(r.cell.encoder, r.cell.eval_encoder) for r in records} == {
        (a, j) for a in ("fake-projection", "fake-conv") for j in ("fake-projection", "fake-conv")
    }


def test_leaderboards_never_rank_different_systems_together(here):
    for enc in ("fake-projection", "fake-conv"):
        assert run("run", "--encoder", enc, "--inverter", "fake-linear", "--protocol", "type1",
                   "--out", "r", *FAKE).exit_code == 0  # fmt: skip
    assert run("leaderboard", "--results", "r", "--out", "board").exit_code == 0
    page = Path("board/fake-faces.md").read_text()
    headings = [line for line in page.splitlines() if line.startswith("## fake-faces · attacked")]
    setting = "## fake-faces · attacked: {0} · judged by: {0} · black-box · quick"
    assert headings == [setting.format("fake-conv"), setting.format("fake-projection")]
    csv = Path("board/fake-faces.csv").read_text()
    assert "encoder,eval encoder,access,profile" in csv.splitlines()[0]
    data = json.loads(next(Path("r").rglob("record.json")).read_text())
    assert np.isfinite(data["metrics"]["type1"]["tar_type1@far=1e-2"]["value"])
