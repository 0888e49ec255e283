"""The command line end to end with the fake components (seconds)."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from invbench.cli.main import cli
from invbench.records import load_record

FAKE = [
    "--encoder",
    "fake-projection",
    "--dataset",
    "fake-faces",
    "--train-dataset",
    "fake-train-faces",
    "--no-progress",
]


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def invoke(runner, *args):
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    return result


def test_list_json_shows_registered_components(runner):
    result = invoke(runner, "list", "--json")
    assert result.exit_code == 0
    entries = json.loads(result.output)
    names = {(e["family"], e["name"]) for e in entries}
    assert ("encoder", "fake-projection") in names and ("protocol", "type1") in names
    assert all(e["description"] for e in entries)


def test_plugins_json_lists_builtins(runner):
    data = json.loads(invoke(runner, "plugins", "--json").output)
    names = {p["name"] for p in data["plugins"]}
    assert "invbench_plugins.protocols" in names and data["failures"] == []


def test_unknown_component_is_one_clear_line_with_a_suggestion(runner):
    result = invoke(
        runner,
        "run",
        "--encoder",
        "fake-projektion",
        "--inverter",
        "fake-pinv",
        "--dataset",
        "fake-faces",
        "--train-dataset",
        "fake-train-faces",
    )
    assert result.exit_code == 2
    assert "error: unknown encoder 'fake-projektion'; did you mean 'fake-projection'?" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_malformed_feature_cache_budget_is_refused_before_any_work(runner, monkeypatch):
    monkeypatch.setenv("INVBENCH_FEATURE_CACHE_MB", "lots")
    result = invoke(runner, "run", *FAKE, "--inverter", "fake-linear")
    assert result.exit_code == 2
    assert "error: INVBENCH_FEATURE_CACHE_MB='lots'" in result.output
    assert "Traceback" not in result.output and not Path("invbench-results").exists()


def test_bad_option_is_refused_before_any_work_with_known_options(runner):
    result = invoke(runner, "run", *FAKE, "--inverter", "fake-linear", "--inverter-arg", "epohcs=2")
    assert result.exit_code == 2
    assert "error: invalid options for inverter 'fake-linear': epohcs" in result.output
    assert "hint: known options:" in result.output and "epochs" in result.output
    assert not Path("invbench-results").exists()  # nothing was run, nothing written


def test_grid_run_records_cache_and_leaderboard(runner, tmp_path):
    args = [
        "run",
        *FAKE,
        "--inverter",
        "fake-pinv",
        "--inverter",
        "fake-linear",
        "--seed",
        "0",
        "--seed",
        "1",
        "--protocol",
        "type1",
        "--protocol",
        "image-quality",
        "--out",
        "results",
    ]
    first = invoke(runner, *args)
    assert first.exit_code == 0, first.output
    records = sorted(Path("results").rglob("record.json"))
    assert len(records) == 4  # 2 inverters x 2 seeds
    rec = load_record(next(r for r in records if "fake-pinv" in str(r)))
    assert rec.metrics["type1"]["tar_type1@far=1e-2"].value == 1.0
    assert rec.metrics["type1"]["identity_similarity_type1"].value == pytest.approx(1.0)
    assert rec.metrics["type1"]["tar_type1@far=1e-2"].higher_is_better
    assert (records[0].parent / "reconstructions.png").is_file()
    assert all(
        (records[0].parent / p).is_file()
        for files in load_record(records[0]).scores.values()
        for p in files.values()
    )
    assert rec.command[:2] == ["invbench", "run"] and rec.invbench["version"]
    assert rec.components["encoder"].provider == "invbench.testing.plugin"
    assert rec.data["fingerprints"]["dataset"].startswith("sha256:")
    # the process's peak memory so far: at least the Python interpreter with torch loaded
    assert rec.environment["peak_rss_mib"] > 50
    # glibc's thresholds raised by the runner (speed only), or the reason they were not
    malloc = rec.environment["malloc"]
    assert malloc["tuned"] or malloc["reason"]

    second = invoke(runner, *args)
    assert second.exit_code == 0
    assert "computed nothing" in second.output
    again = load_record(next(r for r in records if "fake-pinv" in str(r)))
    assert again.metrics == rec.metrics
    assert all(c["computed"] == 0 for c in again.cache.values())

    board = invoke(runner, "leaderboard", "--results", "results", "--out", "board")
    assert board.exit_code == 0, board.output
    md = (tmp_path / "board" / "fake-faces.md").read_text()
    # the perfect attack: identity similarity 1 (the headline column), TAR 1 in the CSV
    assert "fake-pinv" in md and "| 1.000 " in md and "do not edit" in md
    assert (tmp_path / "board" / "fake-faces.csv").is_file()
    assert (
        invoke(runner, "leaderboard", "--results", "results", "--out", "board", "--check").exit_code
        == 0
    )

    board_md = tmp_path / "board" / "fake-faces.md"
    board_md.write_text(board_md.read_text() + "hand edit\n")
    stale = invoke(runner, "leaderboard", "--results", "results", "--out", "board", "--check")
    assert stale.exit_code == 1 and "leaderboards are stale: fake-faces.md" in stale.output


def test_failed_and_stale_records_are_listed_not_ranked(runner):
    invoke(
        runner, "run", *FAKE, "--inverter", "fake-pinv", "--protocol", "type1", "--out", "results"
    )
    path = next(Path("results").rglob("record.json"))
    data = json.loads(path.read_text())
    data["components"]["inverter"]["version"] = "0"
    path.write_text(json.dumps(data))
    invoke(
        runner,
        "run",
        *FAKE,
        "--inverter",
        "fake-linear",
        "--inverter-arg",
        "epochs=-1",
        "--out",
        "results",
    )
    invoke(runner, "leaderboard", "--results", "results", "--out", "board")
    index = Path("board/README.md").read_text()
    assert "## Stale records (not ranked)" in index and "record has 0" in index
    assert "## Failed runs (not ranked)" in index


def test_metrics_recomputes_at_another_fmr_from_scores(runner):
    invoke(
        runner, "run", *FAKE, "--inverter", "fake-linear", "--protocol", "type1", "--out", "results"
    )
    folder = next(Path("results").rglob("record.json")).parent
    same = json.loads(invoke(runner, "metrics", str(folder), "--json").output)
    rec = load_record(folder / "record.json")
    assert same["type1"]["tar_type1@far=1e-2"]["value"] == (
        rec.metrics["type1"]["tar_type1@far=1e-2"].value
    )
    other = json.loads(invoke(runner, "metrics", str(folder), "--fmr", "0.2", "--json").output)
    assert other["type1"]["tar_type1@far=2e-1"]["details"]["alpha"] == 0.2
    assert (
        other["type1"]["tar_type1@far=2e-1"]["value"]
        >= same["type1"]["tar_type1@far=1e-2"]["value"]
    )
    assert "tar_type1@far=1e-2" not in other["type1"]


def test_metrics_at_an_fmr_the_impostors_cannot_reach_is_unavailable(runner):
    invoke(runner, "run", *FAKE, "--inverter", "fake-pinv", "--out", "results")
    folder = next(Path("results").rglob("record.json")).parent
    low = json.loads(invoke(runner, "metrics", str(folder), "--fmr", "1e-6", "--json").output)
    rates = {(p, k): m for p, ms in low.items() for k, m in ms.items() if k.endswith("=1e-6")}
    assert {k for _, k in rates} >= {"tar_type1@far=1e-6", "sar@fmr=1e-6", "tmr@fmr=1e-6"}
    for m in rates.values():
        assert m["value"] is None and "below 10/|I|" in m["unavailable"]
    text = invoke(runner, "metrics", str(folder), "--fmr", "1e-6").output
    row = next(line for line in text.splitlines() if "tar_type1@far=1e-6" in line)
    assert "unavailable" in row and "too few to place a threshold" in text


def test_check_plugin_passes_for_fakes_and_fails_cleanly_for_unknown(runner):
    ok = invoke(runner, "check-plugin", "invbench.testing.plugin")
    assert ok.exit_code == 0, ok.output
    assert "all checks passed" in ok.output and "FAIL" not in ok.output
    bad = invoke(runner, "check-plugin", "nothing-like-this")
    assert bad.exit_code == 2 and "no component or plugin" in bad.output


def test_config_file_and_cli_override(runner, tmp_path):
    (tmp_path / "run.toml").write_text(
        'encoder = "fake-projection"\ninverter = ["fake-linear"]\ndataset = "fake-faces"\n'
        'train_dataset = "fake-train-faces"\nprotocol = ["type1"]\nout = "cfg-results"\n'
        "[options.inverter]\nepochs = 1\n"
    )
    result = invoke(
        runner, "run", "--config", "run.toml", "--inverter-arg", "lr=0.01", "--no-progress"
    )
    assert result.exit_code == 0, result.output
    rec = load_record(next(Path("cfg-results").rglob("record.json")))
    assert rec.components["inverter"].options["epochs"] == 1
    assert rec.components["inverter"].options["lr"] == 0.01
