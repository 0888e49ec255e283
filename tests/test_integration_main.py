"""The main job's whole pipeline with real assets, at toy scale: fetch -> align -> encode ->
train a few steps -> invert -> evaluate, on a handful of ORL and DCGAN faces."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from invbench.cli.main import cli
from invbench.metrics.image import alexnet_weights_path
from invbench.records import load_record

pytestmark = [pytest.mark.slow, pytest.mark.assets]

ARGS = [
    "run",
    "--encoder",
    "arcface",
    "--inverter",
    "dfd",
    "--no-progress",
    "--dataset",
    "orl",
    "--dataset-arg",
    "identities=10",
    "--train-dataset",
    "dcgan-faces",
    "--train-dataset-arg",
    "count=48",
    "--inverter-arg",
    "steps=3",
    "--inverter-arg",
    "batch_size=8",
    "--inverter-arg",
    "val_fraction=0.1",
    "--out",
    "results",
]


def test_main_pipeline_end_to_end_with_real_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(cli, ARGS, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    path = next(Path("results").rglob("record.json"))
    record = load_record(path)
    assert record.status == "ok"
    assert record.data["n_eval_images"] == 100 and record.data["n_train_images"] == 48
    # MTCNN finds every ORL face (all 400 in the committed records); the DCGAN faces are
    # aligned crops, so nothing fails to be acquired here
    assert record.data["n_eval_failed_to_acquire"] == 0
    assert record.data["n_train_failed_to_acquire"] == 0
    assets = record.components["encoder"].provenance["assets"]
    assert assets[0]["sha256"] and assets[0]["id"] == "mobilefacenet-arcface"
    assert record.components["aligner"].name == "mtcnn"
    type1 = record.metrics["type1"]
    # 100 faces of 10 identities give 4,500 impostor pairs: 45 false matches are allowed at
    # FAR 1e-2 (reachable), 4.5 at 1e-3 (fewer than min_false_matches=10, so unavailable)
    m = type1["tar_type1@far=1e-2"]
    assert m.value is not None and 0 <= m.value <= 1 and m.n == 100
    assert {"tau", "realised_fmr", "n_impostor"} <= set(m.details)
    assert m.details["n_impostor"] == 4500 and m.details["realised_fmr"] <= 1e-2
    low = type1["tar_type1@far=1e-3"]
    assert low.value is None and low.unavailable and "4500" in low.unavailable.replace(",", "")
    quality = record.metrics["image-quality"]
    assert quality["psnr"].value > 5 and -1 <= quality["ssim"].value <= 1
    if alexnet_weights_path().is_file():  # LPIPS needs torchvision's cached AlexNet weights
        assert 0 <= quality["lpips"].value <= 1 and quality["lpips"].unavailable is None
    else:
        assert quality["lpips"].value is None
        assert str(alexnet_weights_path()) in quality["lpips"].unavailable
    assert record.training["steps"] == 3
    assert (path.parent / "reconstructions.png").stat().st_size > 1000
    assert "tar_type1@far=1e-2" in first.output and "template-ignoring baseline" in first.output

    second = CliRunner().invoke(cli, ARGS, catch_exceptions=False)
    assert second.exit_code == 0 and "computed nothing" in second.output
    again = json.loads(path.read_text())
    assert again["metrics"] == json.loads(json.dumps(record.model_dump(mode="json")["metrics"]))
