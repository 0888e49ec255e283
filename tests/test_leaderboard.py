"""Leaderboard rendering: seeds as mean ± sd, system metrics apart, unavailable with reasons."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from invbench.cli.main import cli
from invbench.components import Metric, Protocol
from invbench.leaderboard.collect import Collected
from invbench.leaderboard.render import render
from invbench.plugin_manager import create_plugin_manager
from invbench.records import load_record
from invbench.records.record import CellInfo, Record

FAKE = [
    "--encoder",
    "fake-projection",
    "--dataset",
    "fake-faces",
    "--train-dataset",
    "fake-train-faces",
    "--no-progress",
]


def body_rows(md: str) -> list[list[str]]:
    """The cells of every Markdown table row below a header (in page order)."""
    rows = []
    for line in md.splitlines():
        if line.startswith("|") and not line.startswith(("| inverter", "|--")):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def table_rows(md: str, first_cell: str) -> list[list[str]]:
    """The cells of the Markdown table rows whose first cell is ``first_cell``."""
    return [r for r in body_rows(md) if r[0] == first_cell]


def header(md: str) -> list[str]:
    line = next(line for line in md.splitlines() if line.startswith("| inverter"))
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_system_metrics_are_never_attack_columns():
    registry = create_plugin_manager(entry_points=False).registry
    names = registry.names("protocol")
    assert {"type1", "sar"} <= set(names)
    for name in names:
        cls = registry.load("protocol", name)
        assert issubclass(cls, Protocol)
        assert not set(cls.headline()) & set(cls.system_metric_names), name
        assert cls.main_metric not in cls.system_metric_names, name
    assert "fta" in registry.load("protocol", "type1").system_metric_names
    assert "tmr@fmr=1e-3" in registry.load("protocol", "sar").system_metric_names


def test_seeds_are_one_row_with_mean_and_sd_and_the_csv_keeps_every_record(here):
    run = CliRunner().invoke(
        cli,
        [
            "run",
            *FAKE,
            "--inverter",
            "fake-linear",
            "--seed",
            "0",
            "--seed",
            "1",
            "--seed",
            "2",
            "--protocol",
            "type1",
            "--out",
            "results",
        ],  # fmt: skip
    )
    assert run.exit_code == 0, run.output
    records = sorted(
        map(load_record, Path("results").rglob("record.json")), key=lambda r: r.cell.seed
    )
    assert [r.cell.seed for r in records] == [0, 1, 2]
    board = CliRunner().invoke(cli, ["leaderboard", "--results", "results", "--out", "board"])
    assert board.exit_code == 0, board.output
    md = Path("board/fake-faces.md").read_text()

    (row,) = table_rows(md, "fake-linear")
    cols = header(md)
    assert cols[2] == "seeds" and row[2] == "0, 1, 2"
    for metric in ("identity_similarity_type1", "tar_type1@far=1e-2"):
        values = np.array([r.metrics["type1"][metric].value for r in records])
        expected = f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"
        assert row[cols.index(f"type1: {metric} ↑")] == expected
    sd = np.std([r.metrics["type1"]["identity_similarity_type1"].value for r in records], ddof=1)
    assert sd > 1e-4  # the seeds really differ: the ± is not a formatting accident
    links = row[-1].split(" ")
    assert [link.split("]")[0] for link in links] == ["[0", "[1", "[2"]
    assert all("seed0" in links[0] and f"seed{s}" in links[s] for s in range(3))
    assert "mean ± sample standard deviation (ddof=1)" in md

    # system metrics: on the System line, not columns
    assert not any("tar_original" in c or "fta" in c for c in cols)
    tar = records[0].metrics["type1"]["tar_original@far=1e-2"].value
    assert all(r.metrics["type1"]["tar_original@far=1e-2"].value == tar for r in records)
    system = next(line for line in md.splitlines() if line.startswith("System ("))
    assert f"type1 tar_original@far=1e-2 = {tar:.4f}" in system and "fta = 0.0000" in system

    # unavailable (not n/a), with the record's reason under the table, once
    unavailable = records[0].metrics["type1"]["tar_type1@far=1e-3"]
    assert unavailable.value is None and unavailable.unavailable
    assert row[cols.index("type1: tar_type1@far=1e-3 ↑")] == "unavailable"
    note = f"- `type1: tar_type1@far=1e-3`: {unavailable.unavailable}"
    assert md.count(note) == 1

    # the CSV: one row per record, raw values
    frame = list(csv.DictReader(io.StringIO(Path("board/fake-faces.csv").read_text())))
    assert len(frame) == 3 and sorted(int(r["seed"]) for r in frame) == [0, 1, 2]
    for r in frame:
        record = records[int(r["seed"])]
        value = record.metrics["type1"]["identity_similarity_type1"].value
        assert float(r["type1/identity_similarity_type1"]) == pytest.approx(value, abs=1e-12)
        assert float(r["type1/tar_original@far=1e-2"]) == pytest.approx(tar)
        assert r["type1/tar_type1@far=1e-3"] == ""

    check = CliRunner().invoke(
        cli, ["leaderboard", "--results", "results", "--out", "board", "--check"]
    )
    assert check.exit_code == 0, check.output


# ------------------------------------------------------------ records built directly
def record(inverter: str, seed: int, type1: dict[str, float | str | None], **cell) -> Record:
    """A ranked-looking record whose type1 metrics are ``type1`` (a str: unavailable)."""
    metrics = {
        name: (
            Metric(value=None, higher_is_better=name != "fta", unavailable=value)
            if isinstance(value, str)
            else Metric(value=value, higher_is_better=name != "fta")
        )
        for name, value in type1.items()
        if value is not None
    }
    info = dict(
        encoder="enc",
        inverter=inverter,
        dataset="faces",
        train_dataset="train",
        eval_encoder="enc",
        aligner="none",
        protocols=["type1"],
        seed=seed,
        profile="quick",
    )
    info.update(cell)
    return Record(
        status="ok",
        run_id=f"{inverter}-{seed}",
        created_at="2026-01-01T00:00:00+00:00",
        command=["invbench", "run"],
        cell=CellInfo(**info),  # type: ignore[arg-type]
        invbench={"version": "0"},
        components={},
        environment={},
        threat={"access": "white-box"},
        metrics={"type1": metrics},
    )


def page(records: list[Record], tmp_path: Path) -> tuple[str, str]:
    ranked = [
        (
            tmp_path
            / "res"
            / f"{r.cell.inverter}-{r.cell.train_dataset}-{r.cell.seed}"
            / "record.json",
            r,
        )
        for r in records
    ]
    files = render(
        Collected(ranked=ranked), tmp_path / "board", create_plugin_manager(entry_points=False)
    )
    return files["faces.md"], files["faces.csv"]


MAIN = "tar_type1@far=1e-3"


def test_rows_of_seeds_are_ranked_by_their_mean(tmp_path):
    # a: seeds 0.5 and 0.1 (mean 0.3; first seed and best seed 0.5) vs b: one seed 0.35
    records = [
        record("a", 0, {MAIN: 0.5}),
        record("a", 1, {MAIN: 0.1}),
        record("b", 0, {MAIN: 0.35}),
    ]
    md, csv_text = page(records, tmp_path)
    rows = body_rows(md)
    assert [r[0] for r in rows] == ["b", "a"]
    by_name = {r[0]: r for r in rows}
    assert by_name["a"][3] == f"0.3000 ± {np.std([0.5, 0.1], ddof=1):.4f}"
    assert by_name["b"][2:4] == ["0", "0.3500"]  # one seed: its value, as before
    assert "[json](../res/b-train-0/record.json)" in by_name["b"][-1]
    assert len(csv_text.strip().splitlines()) == 1 + 3


def test_only_records_that_differ_by_seed_alone_are_merged(tmp_path):
    records = [
        record("a", 0, {MAIN: 0.5}),
        record("a", 1, {MAIN: 0.4}, train_dataset="other"),
    ]
    md, _ = page(records, tmp_path)
    rows = table_rows(md, "a")
    assert [r[1:4] for r in rows] == [["train", "0", "0.5000"], ["other", "1", "0.4000"]]
    assert header(md)[2] == "seed"
    # the same seed twice (a copied record) is two rows, never averaged with itself
    md, _ = page([record("a", 0, {MAIN: 0.5}), record("a", 0, {MAIN: 0.5})], tmp_path / "x")
    assert [r[2:4] for r in table_rows(md, "a")] == [["0", "0.5000"], ["0", "0.5000"]]


def test_partly_available_seeds_say_how_many_and_unavailable_is_not_na(tmp_path):
    reason = "target rate 1e-3 is below 10/|I|"
    records = [
        record("a", 0, {MAIN: 0.2, "identity_similarity_type1": 0.5}),
        record("a", 1, {MAIN: 0.4, "identity_similarity_type1": reason}),
        record("a", 2, {MAIN: reason, "identity_similarity_type1": 0.7}),
        record("b", 0, {MAIN: reason, "identity_similarity_type1": None}),  # no such metric
    ]
    md, _ = page(records, tmp_path)
    cols = header(md)
    (a,) = table_rows(md, "a")
    (b,) = table_rows(md, "b")
    assert (
        a[cols.index(f"type1: {MAIN} ↑")] == f"0.3000 ± {np.std([0.2, 0.4], ddof=1):.4f} (2 of 3)"
    )
    assert b[cols.index(f"type1: {MAIN} ↑")] == "unavailable"
    assert b[cols.index("type1: identity_similarity_type1 ↑")] == "n/a"
    assert md.count(f"- `type1: {MAIN}`: {reason}") == 1
    assert md.count(f"- `type1: identity_similarity_type1`: {reason}") == 1


def test_the_system_line_shows_a_range_when_records_disagree(tmp_path):
    agree = [
        record("a", 0, {MAIN: 0.2, "tar_original@far=1e-3": 0.99561, "fta": 0.0}),
        record("b", 0, {MAIN: 0.3, "tar_original@far=1e-3": 0.99559, "fta": 0.0}),
    ]
    md, csv_text = page(agree, tmp_path)
    assert (
        "System (the FR system itself, same for every row): "
        "type1 tar_original@far=1e-3 = 0.9956, fta = 0.0000." in md
    )
    assert "tar_original" not in "".join(header(md)) and "type1/tar_original@far=1e-3" in csv_text
    disagree = [
        record("a", 0, {MAIN: 0.2, "tar_original@far=1e-3": 0.995}),
        record("b", 0, {MAIN: 0.3, "tar_original@far=1e-3": 0.996}),
    ]
    md, _ = page(disagree, tmp_path)
    assert "type1 tar_original@far=1e-3 = 0.9950–0.9960 across records." in md
    assert "same for every row unless a range shows records disagree" in md
