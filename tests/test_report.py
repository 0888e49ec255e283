"""`invbench report`: the static site from fake records (structure, links, figures, faults)."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from invbench.cli.main import cli
from invbench.leaderboard import collect as collect_module
from invbench.leaderboard.collect import collect
from invbench.leaderboard.headline import group_of, inverter_class, seed_group_of
from invbench.plugin_manager import get_host
from invbench.records import load_record
from invbench.report import build_report
from invbench.report.plots import FIGURES, Scores, record_scores

FAKE = [
    "--encoder",
    "fake-projection",
    "--dataset",
    "fake-faces",
    "--train-dataset",
    "fake-train-faces",
    "--no-progress",
]


class Page(HTMLParser):
    """The links, images and headline-table rows of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.images: list[str] = []
        self.kind: list[str] = []  # data-kind of the enclosing headline table
        self.rows: dict[str, list[str]] = {}  # headline kind -> class of each body row
        self.standing: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.targets.append(a["href"])
        if tag == "link" and a.get("href"):
            self.targets.append(a["href"])
        if tag == "img":
            self.images.append(a["src"])
        if tag == "div" and "data-kind" in a:
            self.kind.append(a["data-kind"])
        if tag == "tr" and self.kind and a.get("class") in ("ranked", "reference"):
            self.rows.setdefault(self.kind[-1], []).append(a["class"])
        if tag == "tr" and "data-standing" in a:
            self.standing.append(a["data-standing"])

    def handle_endtag(self, tag):
        if tag == "div" and self.kind:
            self.kind.pop()


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def local_files(page_path: Path, page: Page) -> list[Path]:
    """Every link and image of a page that is not a URL, as the file it names."""
    out = []
    for target in page.targets + page.images:
        url = urlparse(target)
        if url.scheme in ("http", "https", "data"):
            continue
        assert not url.scheme and not url.netloc, target  # relative only: works from file://
        out.append((page_path.parent / unquote(url.path)).resolve())
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Fake records: fake-linear with two seeds, fake-pinv with one (type1, type2, sar)."""
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INVBENCH_CACHE_DIR", str(root / "cache"))
        for inverter, seeds in (("fake-linear", ["0", "1"]), ("fake-pinv", ["0"])):
            args = ["run", *FAKE, "--inverter", inverter, "--out", str(root / "results")]
            for seed in seeds:
                args += ["--seed", seed]
            run = CliRunner().invoke(cli, args)
            assert run.exit_code == 0, run.output
    return root / "results"


@pytest.fixture
def verified(monkeypatch):
    """Fake components are not from a public package: let them rank for these tests."""
    monkeypatch.setattr(collect_module, "unverified_reasons", lambda record: [])


def test_site_structure_links_figures_and_headline_rows(results, tmp_path, verified):
    host = get_host()
    summary = build_report([results], tmp_path / "site", host, jobs=1)
    site = tmp_path / "site"
    records = sorted(results.rglob("record.json"))
    assert summary.pages == len(records) == 3 and not summary.problems
    assert summary.figures == 3 * len(records)
    assert (site / "index.html").is_file() and (site / "style.css").is_file()

    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 1 + len(records)
    for path in pages:
        page = parse(path)
        text = path.read_text()
        assert "://" not in "".join(page.images), path  # nothing fetched from elsewhere
        assert "<script" not in text
        for file in local_files(path, page):
            assert file.is_file(), f"{path} links {file}, which is missing"

    for record_path in records:
        rel = record_path.parent.relative_to(results)
        folder = site / "records" / rel
        page = parse(folder / "index.html")
        assert set(FIGURES) <= set(page.images)
        assert "reconstructions.png" in page.images
        for name in FIGURES:
            with Image.open(folder / name) as image:
                assert image.format == "PNG" and image.width > 200
        text = (folder / "index.html").read_text()
        record = load_record(record_path)
        assert record.run_id in text and record.invbench["commit"] in text
        assert "tar_type1@far=1e-2" in text and "95 % interval" in text
        m = record.metrics["type1"]["tar_type1@far=1e-2"]
        assert f"{m.count}/{m.n}" in text and f"[{m.ci95[0]:.4f}, {m.ci95[1]:.4f}]" in text
        unavailable = record.metrics["type1"]["tar_type1@far=1e-3"]
        assert unavailable.unavailable and unavailable.unavailable[:40] in text
        assert json.loads((folder / "record.json").read_text())["run_id"] == record.run_id

    # the headline tables: one ranked row per seed group, derived from collect()
    collected = collect(results, host)
    expected = {
        (group_of(r), seed_group_of(r))
        for _, r in collected.ranked
        if not getattr(inverter_class(host, r.cell.inverter), "reference", False)
    }
    index = parse(site / "index.html")
    assert index.rows["headline"].count("ranked") == len(expected) == 2
    assert index.rows["headline"].count("reference") >= 1  # the template-ignoring baseline
    linked = {
        (site / unquote(t)).parent.resolve()
        for t in index.targets
        if t.startswith("records/")  # every ranked record is one click away
    }
    assert {(site / "records" / p.parent.relative_to(results)).resolve() for p in records} <= linked


def test_figures_follow_the_saved_scores(results):
    path = sorted(results.rglob("record.json"))[0]
    record = load_record(path)
    s = record_scores(record, path.parent)
    assert s.drawable and s.fmrs == [1e-2, 1e-3]
    assert [a.label for a in s.attacks] == ["type-I", "type-II", "SAR", "baseline"]
    type1 = np.load(path.parent / record.scores["type1"]["type1"])
    assert s.attacks[0].scores.n == type1.size
    # a NaN score never accepts but counts in the denominator, as in the metrics
    mixed = Scores.of(np.array([0.1, np.nan, 0.5, 0.9]))
    assert mixed.n == 4 and list(mixed.accepted(np.array([0.5, 2.0]))) == [0.5, 0.0]


def test_a_broken_record_is_listed_not_fatal(results, tmp_path, verified):
    broken = tmp_path / "results"
    shutil.copytree(results, broken)
    paths = sorted(broken.rglob("record.json"))
    # 1: a score file gone (invalid for the leaderboard; its page says why, no figures)
    record = load_record(paths[0])
    (paths[0].parent / record.scores["type1"]["impostor"]).unlink()
    # 2: not JSON (listed, no page)
    paths[1].write_text("{not json")
    # 3: a failed run (a page with its error)
    raw = json.loads(paths[2].read_text())
    raw.update(status="error", error="RuntimeError: the inverter diverged")
    paths[2].write_text(json.dumps(raw))

    summary = build_report([broken], tmp_path / "site", get_host(), jobs=2)
    site = tmp_path / "site"
    index = parse(site / "index.html")
    assert sorted(index.standing) == ["failed", "invalid", "invalid"]
    text = (site / "index.html").read_text()
    assert "is missing" in text and "cannot read record" in text
    assert "the inverter diverged" in text
    assert [p for p, _ in summary.problems] == [paths[0]]
    first = site / "records" / paths[0].parent.relative_to(broken) / "index.html"
    assert "figures not drawn" in first.read_text() and "Not ranked: invalid" in first.read_text()
    assert not (site / "records" / paths[1].parent.relative_to(broken) / "index.html").exists()
    failed = (site / "records" / paths[2].parent.relative_to(broken) / "index.html").read_text()
    assert "This run failed: RuntimeError: the inverter diverged" in failed
    for path in site.rglob("*.html"):
        for file in local_files(path, parse(path)):
            assert file.is_file(), f"{path} links {file}, which is missing"


def test_cli_builds_and_replaces_a_previous_report(results, tmp_path):
    out = tmp_path / "site"
    for _ in range(2):  # the second build replaces the first
        run = CliRunner().invoke(cli, ["report", str(results), "--out", str(out), "--jobs", "1"])
        assert run.exit_code == 0, run.output
        assert f"wrote 3 record page(s) and 9 figure(s) to {out}/index.html" in run.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_several_results_folders_are_sections(results, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(next(results.glob("*")), other / "fake-faces")
    out = tmp_path / "site"
    build_report([results, other], out, get_host(), jobs=1)
    text = (out / "index.html").read_text()
    assert text.count("<h2>") >= 2 and str(other.as_posix()) in text
    assert len(list(out.rglob("records/*/fake-faces/*/index.html"))) == 6


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: ["report", str(t / "nowhere"), "--out", str(t / "site")], "does not exist"),
        (lambda t: ["report", str(t / "afile"), "--out", str(t / "site")], "is not a folder"),
        (lambda t: ["report", str(t / "r"), "--out", str(t / "afile" / "site")], "cannot write"),
        (lambda t: ["report", str(t / "r"), "--out", str(t / "r" / "site")], "overlaps"),
        (lambda t: ["report", str(t / "r"), "--out", str(t / "full")], "other than an invbench"),
    ],
)
def test_one_line_errors(tmp_path, make, message):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "r").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    run = CliRunner().invoke(cli, make(tmp_path))
    assert run.exit_code == 2, run.output
    lines = [line for line in run.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], run.output
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


def test_ci_and_the_workflows_run_the_same_script():
    root = Path(__file__).resolve().parents[1]
    script = root / "scripts" / "leaderboards.sh"
    assert script.stat().st_mode & 0o111, "scripts/leaderboards.sh must be executable"
    ci = (root / ".ci" / "run").read_text()
    for step in ("check", "report", "regenerate --dry-run"):
        assert f"scripts/leaderboards.sh {step}" in ci
    assert "invbench leaderboard --check" not in ci  # only through the script
    push = (root / ".github" / "workflows" / "leaderboards.yml").read_text()
    assert "scripts/leaderboards.sh check" in push and "scripts/leaderboards.sh report" in push
    assert "leaderboards/results/**" in push and "upload-artifact" in push
    scheduled = (root / ".github" / "workflows" / "regenerate-leaderboards.yml").read_text()
    assert "scripts/leaderboards.sh regenerate" in scheduled and "schedule:" in scheduled
    assert "workflow_dispatch:" in scheduled and "create-pull-request" in scheduled
