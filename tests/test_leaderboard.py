"""Leaderboards: headline tables, seeds as mean ± sd, reference rows, unverified records.

The golden test renders synthetic records (every number chosen here, nothing computed by a
model, so the page is the same on every machine) and compares the Markdown page and CSV
with ``tests/golden/leaderboard-faces.md`` and ``.csv``. After an intended change of the
layout, regenerate them and review the diff::

    INVBENCH_UPDATE_GOLDEN=1 python -m pytest tests/test_leaderboard.py -k golden
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from invbench.cli.main import cli
from invbench.components import Metric, Protocol
from invbench.leaderboard.collect import Collected, collect
from invbench.leaderboard.headline import Cell, HeadlineTable, headline_tables, machine_of
from invbench.leaderboard.render import render
from invbench.leaderboard.verify import unverified_reasons
from invbench.plugin_manager import create_plugin_manager
from invbench.records import load_record, save_record
from invbench.records.record import CellInfo, ComponentInfo, Record

GOLDEN = Path(__file__).parent / "golden"
FAKE = [
    "--encoder",
    "fake-projection",
    "--dataset",
    "fake-faces",
    "--train-dataset",
    "fake-train-faces",
    "--no-progress",
]
MAIN = "tar_type1@far=1e-3"
TAR = "type-I TAR @FAR 1e-3 ↑"
SIM = "identity similarity ↑"


def host():
    return create_plugin_manager(entry_points=False)


def tables_of(md: str) -> list[tuple[list[str], list[list[str]]]]:
    """``(header, rows)`` of every Markdown table on a page (cells stripped)."""
    out: list[tuple[list[str], list[list[str]]]] = []
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|--"):
            header = [c.strip() for c in line.strip("|").split("|")]
            rows = []
            for body in lines[i + 2 :]:
                if not body.startswith("|"):
                    break
                rows.append([c.strip() for c in body.strip("|").split(" | ")])
            out.append((header, rows))
    return out


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_system_metrics_are_never_attack_columns():
    registry = host().registry
    names = registry.names("protocol")
    assert {"type1", "sar"} <= set(names)
    for name in names:
        cls = registry.load("protocol", name)
        assert issubclass(cls, Protocol)
        assert not set(cls.headline()) & set(cls.system_metric_names), name
        assert cls.main_metric not in cls.system_metric_names, name
    assert "fta" in registry.load("protocol", "type1").system_metric_names
    assert "tmr@fmr=1e-3" in registry.load("protocol", "sar").system_metric_names


def test_protocols_name_their_metrics():
    registry = host().registry
    type1 = registry.load("protocol", "type1")
    assert type1.label("tar_type1@far=1e-3") == "type-I TAR @FAR 1e-3"
    assert type1.label("baseline_tar_type1@far=1e-2") == "baseline type-I TAR @FAR 1e-2"
    assert registry.load("protocol", "sar").label("tmr@fmr=1e-2") == "TMR @FMR 1e-2"
    leak = registry.load("protocol", "leak")
    assert leak.label("sar@far=1e-3@mean") == "SAR @FAR 1e-3 (mean)"
    assert leak.label("unknown_family@noise=0.1") == "unknown_family (noise=0.1)"


# ----------------------------------------------------------------- a real run, end to end
def test_seeds_are_one_row_with_mean_and_sd_and_the_csv_keeps_every_record(here):
    args = ["run", *FAKE, "--inverter", "fake-linear", "--protocol", "type1", "--out", "results"]
    run = CliRunner().invoke(cli, [*args, "--seed", "0", "--seed", "1", "--seed", "2"])
    assert run.exit_code == 0, run.output
    records = sorted(
        map(load_record, Path("results").rglob("record.json")), key=lambda r: r.cell.seed
    )
    assert [r.cell.seed for r in records] == [0, 1, 2]
    board = CliRunner().invoke(cli, ["leaderboard", "--results", "results", "--out", "board"])
    assert board.exit_code == 0, board.output
    md = Path("board/fake-faces.md").read_text()
    (header, rows), *_ = tables_of(md)
    (row,) = [r for r in rows if r[1] == "fake-linear"]
    assert header[:3] == ["rank", "inverter", "seeds"] and row[2] == "0, 1, 2"
    values = np.array([r.metrics["type1"]["identity_similarity_type1"].value for r in records])
    assert row[header.index(SIM)] == f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"
    assert values.std(ddof=1) > 1e-4  # the seeds really differ: the ± is not an accident
    assert "mean ± sample standard deviation (ddof=1)" in md

    # system metrics: on the System line, not columns
    assert not any("real-pair" in c or "FTA" in c for c in header)
    tar = records[0].metrics["type1"]["tar_original@far=1e-2"]
    assert tar.value is not None and tar.count is not None
    system = next(line for line in md.splitlines() if line.startswith("**System**"))
    assert f"real-pair TAR @FAR 1e-2: {100 * tar.value:.1f} % ({tar.count}/{tar.n})" in system
    assert "FTA: 0.0 % (0/48)" in system

    # unavailable (not n/a), with the record's reason under the table, once
    unavailable = records[0].metrics["type1"][MAIN]
    assert unavailable.value is None and unavailable.unavailable
    assert row[header.index(TAR)] == "unavailable" and row[0] == "—"  # nothing to rank by
    assert md.count(f"type-I TAR @FAR 1e-3 unavailable: {unavailable.unavailable}") == 1

    # the CSV: one row per record, raw values of every metric
    frame = list(csv.DictReader(io.StringIO(Path("board/fake-faces.csv").read_text())))
    assert len(frame) == 3 and sorted(int(r["seed"]) for r in frame) == [0, 1, 2]
    for r in frame:
        record = records[int(r["seed"])]
        for name, metric in record.metrics["type1"].items():
            if metric.value is None:
                assert r[f"type1/{name}"] == ""
            else:
                assert float(r[f"type1/{name}"]) == pytest.approx(metric.value, abs=1e-12)
        assert r["commit"] == "0" * 40 and float(r["training s"]) > 0

    check = CliRunner().invoke(
        cli, ["leaderboard", "--results", "results", "--out", "board", "--check"]
    )
    assert check.exit_code == 0, check.output


# ------------------------------------------------------------ records built directly
def rate(value: float | None, count: int = 0, n: int = 400, **details: Any) -> Metric:
    if value is None:
        return Metric(value=None, higher_is_better=True, unavailable="too few impostors")
    lo, hi = max(0.0, value - 0.05), min(1.0, value + 0.05)
    return Metric(
        value=value,
        higher_is_better=True,
        count=count,
        n=n,
        ci95=(lo, hi),
        details={"ci_method": "Clopper-Pearson exact interval", **details},
    )


def mean(value: float, higher: bool = True) -> Metric:
    return Metric(value=value, higher_is_better=higher)


def record(
    inverter: str,
    seed: int = 0,
    tar: float | None = 0.26,
    *,
    access: str = "white-box",
    sim: float = 0.34,
    extra: dict[str, dict[str, Metric]] | None = None,
    **cell: Any,
) -> Record:
    """A complete-looking record of the four default protocols; ``tar`` is type-I @1e-3."""
    count = None if tar is None else round(tar * 400)
    metrics: dict[str, dict[str, Metric]] = {
        "type1": {
            MAIN: rate(tar, count or 0),
            "tar_type1@far=1e-2": rate(0.5, 200),
            "identity_similarity_type1": mean(sim),
            "rank1_type1": rate(0.475, 19, 40),
            "baseline_tar_type1@far=1e-3": rate(0.0, 0),
            "baseline_identity_similarity_type1": mean(-0.0045),
            "tar_original@far=1e-2": rate(0.99, 1799, 1800),
            "tar_original@far=1e-3": rate(0.99, 1792, 1800),
            "fta": Metric(value=0.0, higher_is_better=False, count=0, n=400, ci95=(0.0, 0.01)),
        },
        "type2": {
            "tar_type2@far=1e-3": rate(None if tar is None else tar / 2, (count or 0) * 4, 3600),
            "baseline_tar_type2@far=1e-3": rate(0.0, 0, 3600),
        },
        "sar": {
            "sar@fmr=1e-3": rate(0.175, 7, 40),
            "baseline_sar@fmr=1e-3": rate(0.0, 0, 40),
            "tmr@fmr=1e-2": rate(1.0, 360, 360),
            "tmr@fmr=1e-3": rate(1.0, 360, 360),
        },
        "image-quality": {
            "ssim": mean(0.289),
            "psnr": mean(10.99),
            "lpips": Metric(value=None, higher_is_better=False, unavailable="lpips not installed"),
        },
    }
    for protocol, named in (extra or {}).items():
        metrics.setdefault(protocol, {}).update(named)
    info = dict(
        encoder="enc-a",
        inverter=inverter,
        dataset="faces",
        train_dataset="train",
        eval_encoder="enc-a",
        aligner="none",
        protocols=sorted(metrics),
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
        invbench={"version": "0.1.0", "commit": "a" * 40, "dirty": False},
        components={},
        environment={"device": "cpu", "cpu_model": "Test CPU 3000", "cpu_threads": 2},
        timings_s={"invert_per_template": 0.0078},
        training={"seconds": 515.08 + seed},
        threat={"access": access, "attacked_encoder": info["encoder"]},
        metrics=metrics,
    )


def collected(records: list[Record], root: Path) -> Collected:
    ranked = []
    for r in records:
        c = r.cell
        name = f"{c.encoder}__{c.inverter}__eval-{c.eval_encoder}__{c.train_dataset}__seed{c.seed}"
        ranked.append((root / c.dataset / name / "record.json", r))
    return Collected(ranked=ranked, root=root)


def page(records: list[Record], tmp_path: Path) -> tuple[str, str]:
    files = render(collected(records, tmp_path / "res"), tmp_path / "board", host())
    return files["faces.md"], files["faces.csv"]


def leak(sar_clean: float, sim_mean: float) -> dict[str, dict[str, Metric]]:
    named = {}
    for cond, scale in (("clean", 1.0), ("baseline", 0.0), ("noise=0.1", 0.5), ("sign", 0.4)):
        cond = "quantise=sign" if cond == "sign" else cond
        named[f"sar@far=1e-3@{cond}"] = rate(sar_clean * scale, round(40 * sar_clean * scale), 40)
        named[f"tar_type1@far=1e-3@{cond}"] = rate(sar_clean * scale, 0, 40)
        named[f"tar_type1@far=1e-2@{cond}"] = rate(0.9, 36, 40)
        named[f"identity_similarity@{cond}"] = mean(sim_mean * scale)
    named["sar@far=1e-3@mean"] = mean(sar_clean * 0.45)
    named["tar_type1@far=1e-3@mean"] = mean(sar_clean * 0.45)
    named["identity_similarity@mean"] = mean(sim_mean * 0.45)
    return {"leak": named}


def fixture_records() -> list[Record]:
    """A white-box table (two seeds of dfd, icip2022, a reference ridge), a black-box table,
    a second judging encoder (a transfer table) and robustness metrics."""
    return [
        record("dfd", 0, 0.26, sim=0.34, extra=leak(0.3, 0.3)),
        record("dfd", 1, 0.30, sim=0.36, extra=leak(0.35, 0.32)),
        record("icip2022", 0, 0.31, sim=0.33),
        record("nbnet-a", 0, None, sim=0.20),
        record("ridge", 0, 0.40, sim=0.45, access="black-box", extra=leak(0.2, 0.25)),
        record("fake-linear", 0, 0.10, sim=0.15, access="black-box"),
        record("dfd", 0, 0.05, sim=0.12, eval_encoder="enc-b"),
        record("icip2022", 0, 0.07, sim=0.14, eval_encoder="enc-b"),
    ]


def test_golden_leaderboard_page(tmp_path):
    md, csv_text = page(fixture_records(), tmp_path)
    for name, text in (("leaderboard-faces.md", md), ("leaderboard-faces.csv", csv_text)):
        golden = GOLDEN / name
        if os.environ.get("INVBENCH_UPDATE_GOLDEN"):
            golden.parent.mkdir(exist_ok=True)
            golden.write_text(text)
        assert golden.is_file(), f"{golden} is missing: run with INVBENCH_UPDATE_GOLDEN=1"
        assert text == golden.read_text(), (
            f"{name} differs from the golden file; if the change is intended, regenerate it "
            "(see this module's docstring) and review the diff"
        )


def headline_of(tables: list[HeadlineTable], title: str) -> HeadlineTable:
    return next(t for t in tables if t.title == title)


def cells_by_inverter(table: HeadlineTable) -> dict[str, list[Cell]]:
    return {row[1].text: row for row in table.rows}


def test_headline_tables_rank_within_a_setting_with_reference_rows(tmp_path):
    tables = headline_tables(collected(fixture_records(), tmp_path / "res"), host())
    assert [t.kind for t in tables] == ["headline"] * 3 + ["robustness"] * 2 + ["transfer"]
    white = headline_of(tables, "faces · attacked: enc-a · judged by: enc-a · white-box · quick")
    assert white.columns == [
        "rank", "inverter", "seeds", TAR, "SAR @FMR 1e-3 ↑", "type-II TAR @FAR 1e-3 ↑",
        SIM, "SSIM ↑", "training", "ms / template",
    ]  # fmt: skip
    rows = cells_by_inverter(white)
    # ranked by the mean of type-I TAR; ridge (better, but a reference) and the baseline last
    assert [r[0].text for r in white.rows] == ["1", "2", "—", "ref", "ref"]
    assert [r[1].text for r in white.rows] == [
        "icip2022", "dfd", "nbnet-a", "ridge", "template-ignoring baseline"
    ]  # fmt: skip
    icip = rows["icip2022"]
    assert icip[1].link == "https://doi.org/10.1109/ICIP46576.2022.9897535"
    assert icip[1].note and "ICIP 2022" in icip[1].note
    assert icip[3].text == "31.0 % (124/400)" and icip[3].sub == "[26.0, 36.0]"
    assert icip[3].note == "95 % CI [26.0 %, 36.0 %], Clopper-Pearson"
    assert icip[-2].text == "515 s" and "Test CPU 3000, 2 threads" in (icip[-2].note or "")
    assert icip[-1].text == "7.80 ms"
    dfd = rows["dfd"]
    assert (
        dfd[2].text == "0, 1" and dfd[3].text == f"28.0 ± {100 * np.std([0.26, 0.3], ddof=1):.1f} %"
    )
    assert dfd[3].sub == "104/400, 120/400"
    assert rows["nbnet-a"][3].text == "unavailable"
    assert rows["nbnet-a"][3].note == "too few impostors"
    baseline = rows["template-ignoring baseline"]
    assert baseline[3].text == "0.0 % (0/400)" and baseline[6].text == "-0.004"
    assert baseline[7].text == "—"  # no baseline SSIM
    assert "Reference rows from black-box records" in " ".join(white.notes)
    assert [c.text for c in white.system] == [
        "real-pair TAR @FAR 1e-2: 99.0 % (1799/1800)",
        "real-pair TAR @FAR 1e-3: 99.0 % (1792/1800)",
        "FTA: 0.0 % (0/400)",
        "TMR @FMR 1e-2: 100.0 % (360/360)",
        "TMR @FMR 1e-3: 100.0 % (360/360)",
    ]
    # everything else is in the details: PSNR, LPIPS, type-I @1e-2, rank-1, record links
    assert "PSNR (dB) ↑" in white.details_columns and "LPIPS ↓" in white.details_columns
    dfd_details = next(d for d in white.details if d[0].text == "dfd")
    assert [t for t, _ in dfd_details[-1].links] == ["0", "1"]
    assert dfd_details[-1].links[0][1] == "faces/enc-a__dfd__eval-enc-a__train__seed0"

    black = headline_of(tables, "faces · attacked: enc-a · judged by: enc-a · black-box · quick")
    assert [r[1].text for r in black.rows] == [
        "fake-linear", "ridge", "template-ignoring baseline"
    ]  # fmt: skip
    assert [r[0].text for r in black.rows] == ["1", "ref", "ref"]


def test_robustness_and_transfer_tables(tmp_path):
    tables = headline_tables(collected(fixture_records(), tmp_path / "res"), host())
    robust = headline_of(
        tables, "faces · leak · attacked: enc-a · judged by: enc-a · white-box · quick"
    )
    assert robust.columns[:2] == ["inverter", "seeds"]
    assert "SAR @FAR 1e-3 (mean) ↑" in robust.columns
    assert robust.details_columns == [
        "inverter", "condition", "type-I TAR @FAR 1e-3", "SAR @FAR 1e-3", "identity similarity"
    ]  # fmt: skip
    conditions = [d[1].text for d in robust.details]
    assert conditions == ["clean", "baseline", "noise=0.1", "quantise=sign"]
    transfer = next(t for t in tables if t.kind == "transfer")
    assert transfer.title == "faces · transfer · white-box · quick"
    assert transfer.columns == ["inverter", "attacked \\ judged by", "enc-a", "enc-b",
                                "mean off-diagonal"]  # fmt: skip
    dfd = next(r for r in transfer.rows if r[0].text == "dfd")
    assert dfd[2].strong and not dfd[3].strong
    assert dfd[3].text == "5.0 % (20/400)" and dfd[4].text == "5.0 %"


def test_only_records_that_differ_by_seed_alone_are_merged(tmp_path):
    records = [record("dfd", 0, 0.5), record("dfd", 1, 0.4, train_dataset="other")]
    table = headline_tables(collected(records, tmp_path), host())[0]
    assert "seeds" not in table.columns
    assert [r[1].text for r in table.rows[:2]] == [
        "dfd (trained on train)", "dfd (trained on other)"
    ]  # fmt: skip
    # the same seed twice (a copied record) is two rows, never averaged with itself
    twice = headline_tables(collected([record("dfd", 0, 0.5)] * 2, tmp_path), host())[0]
    assert [r[2].text for r in twice.rows[:2]] == ["50.0 % (200/400)"] * 2


def test_rows_run_with_other_options_name_them(tmp_path):
    plain = record("dfd", 0, 0.5)
    given = record("dfd", 0, 0.4).model_copy(
        update={"command": ["invbench", "run", "--protocol-arg", "geometric.map_images=2000"]}
    )
    table = headline_tables(collected([plain, given], tmp_path), host())[0]
    labels = {r[1].text for r in table.rows[:2]}
    assert labels == {"dfd", "dfd (geometric.map_images=2000)"}


def test_partly_available_seeds_say_how_many(tmp_path):
    records = [record("dfd", 0, 0.2), record("dfd", 1, 0.4), record("dfd", 2, None)]
    table = headline_tables(collected(records, tmp_path), host())[0]
    dfd = table.rows[0]
    assert dfd[3].text == f"30.0 ± {100 * np.std([0.2, 0.4], ddof=1):.1f} % (2 of 3)"
    assert "seed 2: unavailable" in (dfd[3].note or "")


def test_the_system_line_shows_a_range_when_records_disagree(tmp_path):
    a, b = record("dfd", 0), record("icip2022", 0)
    b.metrics["sar"]["tmr@fmr=1e-3"] = rate(0.99, 356, 360)
    table = headline_tables(collected([a, b], tmp_path), host())[0]
    (tmr,) = [c for c in table.system if c.text.startswith("TMR @FMR 1e-3")]
    assert tmr.text == "TMR @FMR 1e-3: 99.0–100.0 % across records"


# ------------------------------------------------------------------- item 5: submissions
def test_a_record_with_invalid_json_or_a_changed_metric_fails_check_one_line_each(here):
    args = ["run", *FAKE, "--inverter", "fake-pinv", "--protocol", "type1", "--out", "res"]
    assert CliRunner().invoke(cli, [*args, "--seed", "0", "--seed", "1"]).exit_code == 0
    assert CliRunner().invoke(cli, ["leaderboard", "--results", "res", "--out", "b"]).exit_code == 0
    first, second = sorted(Path("res").rglob("record.json"))
    first.write_text(first.read_text()[:-40])  # truncated: not JSON
    data = json.loads(second.read_text())
    data["metrics"]["type1"]["identity_similarity_type1"]["value"] = 0.5
    second.write_text(json.dumps(data))
    check = CliRunner().invoke(cli, ["leaderboard", "--results", "res", "--out", "b", "--check"])
    assert check.exit_code == 1
    lines = [line for line in check.output.splitlines() if line.startswith("invalid record")]
    assert len(lines) == 2
    assert str(first) in lines[0] and "cannot read record" in lines[0]
    assert str(second) in lines[1] and "identity_similarity_type1 is 0.5" in lines[1]


class _Dist:
    def __init__(self, version: str, direct_url: str | None) -> None:
        self.version, self._direct = version, direct_url

    def read_text(self, name: str) -> str | None:
        return self._direct if name == "direct_url.json" else None


def plugin_record(dist: str, version: str, provider: str = "my_plugin") -> Record:
    r = record("dfd")
    r.components["inverter"] = ComponentInfo(
        family="inverter",
        name="my-inverter",
        version="1",
        provider=provider,
        dist=dist,
        dist_version=version,
    )
    return r


def test_the_unverified_rule(monkeypatch):
    assert unverified_reasons(record("dfd")) == []
    dirty = record("dfd")
    dirty.invbench["dirty"] = True
    assert unverified_reasons(dirty) == [
        f"the source tree was dirty (uncommitted changes) at commit {'a' * 12}"
    ]
    unknown = record("dfd")
    unknown.invbench = {"version": "0.1.0", "commit": None, "dirty": None}
    assert unverified_reasons(unknown) == ["the code commit is not recorded"]
    by_hand = plugin_record("invbench", "0.1.0", provider="tests.plugins.breakers")
    assert "registered by hand" in unverified_reasons(by_hand)[0]

    installed = {
        "from-index": _Dist("1.2.0", None),
        "editable": _Dist("1.2.0", '{"url": "file:///src", "dir_info": {"editable": true}}'),
    }

    def distribution(name: str) -> _Dist:
        if name not in installed:
            from importlib.metadata import PackageNotFoundError

            raise PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr("invbench.leaderboard.verify.metadata.distribution", distribution)
    assert unverified_reasons(plugin_record("from-index", "1.2.0")) == []
    assert (
        "is 1.2.0 here, the record has 1.1.0"
        in unverified_reasons(plugin_record("from-index", "1.1.0"))[0]
    )
    assert "not from a package index" in unverified_reasons(plugin_record("editable", "1.2.0"))[0]
    assert "not installed here" in unverified_reasons(plugin_record("elsewhere", "1.0"))[0]
    assert "local version label" in unverified_reasons(plugin_record("from-index", "1.2.0+g12"))[0]


def test_unverified_records_are_listed_never_ranked(here):
    args = ["run", *FAKE, "--inverter", "fake-pinv", "--inverter", "fake-linear"]
    result = CliRunner().invoke(cli, [*args, "--protocol", "type1", "--out", "res"])
    assert result.exit_code == 0, result.output
    path = next(p for p in Path("res").rglob("record.json") if "fake-linear" in str(p))
    dirty = load_record(path)
    dirty.invbench["dirty"] = True
    save_record(dirty, path)
    found = collect(Path("res"), host())
    assert [r.cell.inverter for _, r in found.ranked] == ["fake-pinv"]
    assert [(p, r.cell.inverter) for p, r, _ in found.unverified] == [(path, "fake-linear")]
    board = CliRunner().invoke(cli, ["leaderboard", "--results", "res", "--out", "b"])
    assert board.exit_code == 0 and "1 unverified" in board.output
    md = Path("b/fake-faces.md").read_text()
    table_text = md.split("## Unverified records")[0]
    assert "fake-linear" not in table_text
    listed = md.split("## Unverified records (not ranked)")[1]
    assert "fake-linear" in listed and "uncommitted changes" in listed
    assert "## Unverified records (not ranked)" in Path("b/README.md").read_text()


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (
            {"device": "cpu", "cpu_model": "AMD EPYC", "cpu_capability": "AVX2", "cpu_threads": 2},
            "AMD EPYC (AVX2), 2 threads",
        ),
        ({"device": "cpu", "cpu_model": "AMD EPYC", "cpu_threads": 2}, "AMD EPYC, 2 threads"),
        (
            {"device": "cuda:0", "device_name": "NVIDIA H100", "cpu_capability": "AVX512"},
            "NVIDIA H100",
        ),
    ],
)
def test_machine_names_the_cpu_instruction_set_when_recorded(environment, expected):
    class Stub:  # machine_of reads only the environment
        pass

    stub = Stub()
    stub.environment = environment  # type: ignore[attr-defined]
    assert machine_of(stub) == expected  # type: ignore[arg-type]
