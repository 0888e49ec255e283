"""The static report site: an index of the leaderboards and one page per record.

:func:`build_report` collects the records under one or more results folders (as
``invbench leaderboard`` does), writes ``index.html`` with the headline tables of
:mod:`invbench.leaderboard.headline` and the records that are not ranked (stale, failed,
invalid, unverified), and one folder per record under ``records/`` holding its page, a copy
of its reconstruction grid, other image artefacts, its ``record.json`` and the figures drawn
from its saved scores (:mod:`invbench.report.plots`).

The site is assembled in a hidden folder beside ``out`` and moved in complete. Every link
is relative and nothing is fetched from elsewhere, so the pages work from ``file://``. A
record whose page or figures cannot be drawn is listed on the index with the reason; it
never stops the build.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shlex
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invbench import __version__
from invbench.errors import InvbenchError
from invbench.io import probe_writable, replace_folder, staging_folder, storage_errors
from invbench.leaderboard.collect import Collected, collect
from invbench.leaderboard.headline import REF, Cell, HeadlineTable, headline_tables
from invbench.plugin_manager import PluginHost
from invbench.records import Record, load_record
from invbench.records.record import ComponentInfo
from invbench.report import plots
from invbench.report.html import CSS, esc, hover, hover_html, link, page, table

log = logging.getLogger(__name__)

#: A file in the site's root marking the folder as an invbench report (safe to replace).
MARKER = ".invbench-report"
#: Artefact suffixes copied beside a record's page and shown as images.
IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp")


@dataclass(frozen=True)
class PageTask:
    """What one record page needs; built in the main process, drawn in a worker.

    Attributes:
        record_path: The record's ``record.json``.
        page_dir: The folder its page goes to (inside the site being assembled).
        root: The relative path from that folder to the site's root (``../../``).
        standing: ``ranked``, ``stale``, ``failed``, ``invalid`` or ``unverified``.
        reason: Why it is not ranked (empty for ranked records).
        papers: ``role -> (paper, URL)`` of its components where known.
        system_metrics: Metric names that describe the FR system, per protocol.
    """

    record_path: Path
    page_dir: Path
    root: str
    standing: str
    reason: str = ""
    papers: dict[str, tuple[str, str]] = field(default_factory=dict)
    system_metrics: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class PageResult:
    """The outcome of one page: how many figures, and what went wrong (empty when nothing)."""

    page_dir: Path
    figures: int
    problem: str = ""
    written: bool = True


@dataclass
class Board:
    """One results folder in the report: its records and where their pages go."""

    results: Path
    prefix: str
    collected: Collected
    tables: list[HeadlineTable]
    unverified: list[tuple[Path, Record, str]]
    pages: dict[Path, PageResult] = field(default_factory=dict)

    def page_of(self, record_path: Path) -> str:
        """The page of a record, relative to the site's root."""
        rel = record_path.parent.relative_to(self.results).as_posix()
        return "/".join(
            p for p in ("records", self.prefix, rel, "index.html") if p not in ("", ".")
        )


@dataclass
class ReportSummary:
    """What :func:`build_report` wrote."""

    out: Path
    pages: int
    figures: int
    problems: list[tuple[Path, str]]
    seconds: float


# ---------------------------------------------------------------------------------------------
# record pages (run in worker processes: module-level, picklable)


def _fmt_value(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _metric_rows(task: PageTask, record: Record) -> str:
    """One table per protocol: every metric with its count, interval, threshold and notes."""
    parts = []
    for protocol, named in record.metrics.items():
        system = set(task.system_metrics.get(protocol, ()))
        rows, attrs = [], []
        for name, m in named.items():
            kind = "system" if name in system else "baseline" if "baseline" in name else "attack"
            d = m.details
            count = f"{m.count}/{m.n}" if m.count is not None and m.n else str(m.n or "")
            ci = f"[{m.ci95[0]:.4f}, {m.ci95[1]:.4f}]" if m.ci95 else ""
            value = "unavailable" if m.unavailable else _fmt_value(m.value)
            method = d.get("ci_method") or (
                "identity bootstrap" if isinstance(d.get("bootstrap"), dict) else ""
            )
            notes = [n for n in (m.unavailable, d.get("warning")) if n]
            tau = d.get("tau")
            realised = d.get("realised_fmr")
            rows.append(
                [
                    hover(name, m.implementation or None),
                    esc(kind),
                    esc(value) + (" ↑" if m.higher_is_better else " ↓"),
                    esc(count),
                    hover(ci, str(method) or None),
                    esc(f"{tau:.4f}") if isinstance(tau, int | float) else "",
                    esc(f"{realised:.2e}") if isinstance(realised, int | float) else "",
                    "<br>".join(esc(n) for n in notes),
                ]
            )
            attrs.append(f'data-metric="{esc(name)}" class="{kind}"')
        header = [
            "metric",
            "kind",
            "value",
            "count/N",
            "95 % interval",
            "τ",
            "realised FMR",
            "note",
        ]
        parts.append(f"<h3>{esc(protocol)}</h3>")
        parts.append(table(header, rows, cls="metrics", row_attrs=attrs, numeric=(2, 3, 4, 5, 6)))
    return "\n".join(parts)


def _asset_cell(info: ComponentInfo) -> str:
    assets = info.provenance.get("assets") or []
    out = []
    for asset in assets if isinstance(assets, list) else []:
        if not isinstance(asset, dict):
            continue
        sha = str(asset.get("sha256", ""))
        where = " ".join(str(asset[k]) for k in ("package", "member") if asset.get(k))
        title = f"sha256 {sha}" + (f"; {where}" if where else "")
        if asset.get("license"):
            title += f"; licence: {asset['license']}"
        out.append(
            f"{esc(asset.get('id', '?'))}: <code>{hover(sha[:12] or 'no hash', title)}</code>"
        )
    return "<br>".join(out)


def _paper_html(paper: str, url: str) -> str:
    if url:
        return link(paper or url, url)
    return esc(paper)


def _components(task: PageTask, record: Record) -> str:
    rows = []
    for role, info in record.components.items():
        options = json.dumps(info.options, indent=1, sort_keys=True, default=str)
        extra = {k: v for k, v in info.provenance.items() if k not in ("assets", "paper")}
        prov = json.dumps(extra, indent=1, sort_keys=True, default=str) if extra else ""
        details = f"<details><summary>options</summary><pre>{esc(options)}</pre>"
        if prov:
            details += f"<pre>{esc(prov)}</pre>"
        details += "</details>"
        rows.append(
            [
                esc(role),
                f"<b>{esc(info.name)}</b>",
                esc(info.version),
                esc(f"{info.dist} {info.dist_version}"),
                _paper_html(*task.papers.get(role, ("", ""))),
                _asset_cell(info),
                details,
            ]
        )
    header = ["role", "component", "version", "distribution", "paper", "assets (sha256)", ""]
    return table(header, rows, cls="components")


def _run_facts(record: Record) -> str:
    code = record.invbench
    env = record.environment
    facts = [
        ("command", f"<pre>{esc(shlex.join(record.command))}</pre>"),
        ("status", esc(record.status)),
        ("created", esc(record.created_at)),
        ("run id", esc(record.run_id)),
        (
            "code",
            esc(
                f"invbench {code.get('version', '?')}, commit {code.get('commit') or 'unknown'}"
                + (" (uncommitted changes)" if code.get("dirty") else "")
            ),
        ),
        (
            "machine",
            esc(
                ", ".join(
                    f"{k} {env[k]}"
                    for k in ("device", "cpu_model", "cpu_threads", "python", "platform")
                    if env.get(k) is not None
                )
            ),
        ),
    ]
    libraries = env.get("libraries")
    if isinstance(libraries, dict) and libraries:
        facts.append(("libraries", esc(", ".join(f"{k} {v}" for k, v in libraries.items()))))
    if record.threat:
        facts.append(
            ("threat model", esc(", ".join(f"{k}: {v}" for k, v in record.threat.items())))
        )
    data = record.data
    counts = {k: v for k, v in data.items() if k.startswith("n_")}
    if counts:
        facts.append(
            ("data", esc(", ".join(f"{k[2:].replace('_', ' ')}: {v}" for k, v in counts.items())))
        )
    rows = [[f"<b>{esc(k)}</b>", v] for k, v in facts]
    return table(None, rows, cls="facts")


def _plain(value: object) -> str:
    """Floats with four significant digits, anything else as it is."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _training(record: Record) -> str:
    t = record.training
    keys = (
        "seconds",
        "steps",
        "epochs",
        "final_loss",
        "val_loss",
        "stopped_early",
        "resumed_from_step",
        "n_train_images",
    )
    facts = [f"{k.replace('_', ' ')}: {_plain(t[k])}" for k in keys if t.get(k) is not None]
    timings = ", ".join(
        f"{k} {v * 1000:.2f} ms" if k.endswith("per_template") else f"{k} {v:.1f} s"
        for k, v in record.timings_s.items()
    )
    out = []
    if facts:
        out.append(f"<p>Inverter training: {esc('; '.join(facts))}.</p>")
    if timings:
        out.append(f"<p>Timings: {esc(timings)}.</p>")
    return "\n".join(out)


def _copy_artifacts(record: Record, folder: Path, page_dir: Path) -> tuple[str, list[str]]:
    """Copy image artefacts beside the page; return (grid file or '', other image files)."""
    grid, others = "", []
    for name, rel in record.artifacts.items():
        src = folder / rel
        if Path(rel).suffix.lower() not in IMAGE_SUFFIXES or not src.is_file():
            continue
        dest_name = Path(rel).as_posix().replace("/", "-")
        shutil.copyfile(src, page_dir / dest_name)
        if name == "reconstruction_grid":
            grid = dest_name
        else:
            others.append(dest_name)
    return grid, others


def _title(record: Record) -> str:
    c = record.cell
    return f"{c.inverter} against {c.encoder} on {c.dataset}"


def _subtitle(record: Record) -> str:
    c = record.cell
    parts = [
        f"judged by {c.eval_encoder}",
        f"trained on {c.train_dataset}",
        f"profile {c.profile}",
        f"seed {c.seed}",
    ]
    if c.surrogate:
        parts.append(f"surrogate {c.surrogate}")
    return ", ".join(parts)


def build_page(task: PageTask) -> PageResult:
    """Write one record's page, figures and copies; problems are returned, not raised."""
    try:
        return _build_page(task)
    except Exception as exc:  # a broken record is listed on the index, never fatal
        log.warning("no page for %s: %s", task.record_path, exc)
        return PageResult(task.page_dir, 0, f"{type(exc).__name__}: {exc}", written=False)


def _build_page(task: PageTask) -> PageResult:
    start = time.perf_counter()
    record = load_record(task.record_path)
    folder = task.record_path.parent
    task.page_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(task.record_path, task.page_dir / "record.json")
    grid, other_images = _copy_artifacts(record, folder, task.page_dir)
    figures: list[str] = []
    problem = ""
    if record.status == "ok":
        try:
            figures = plots.draw_figures(record, folder, task.page_dir)
        except Exception as exc:  # a score file missing or odd: the page still shows the rest
            problem = f"figures not drawn: {type(exc).__name__}: {exc}"
            log.warning("%s: %s", task.record_path, problem)
    body = [
        f"<nav>{link('← leaderboards', task.root + 'index.html')}</nav>",
        f"<h1>{esc(_title(record))}</h1>",
        f'<p class="muted">{esc(_subtitle(record))}</p>',
    ]
    if task.standing != "ranked":
        body.append(
            f'<p class="banner" data-standing="{esc(task.standing)}">Not ranked: '
            f"{esc(task.standing)}{': ' + esc(task.reason) if task.reason else ''}</p>"
        )
    if record.status != "ok":
        body.append(f'<p class="error">This run failed: {esc(record.error or "")}</p>')
    if problem:
        body.append(f'<p class="error">{esc(problem)}</p>')
    body += ["<h2>Run</h2>", _run_facts(record)]
    if grid:
        body += [
            "<h2>Reconstructions</h2>",
            f'<img class="grid" src="{esc(grid)}" alt="reconstruction grid">',
        ]
    if figures:
        body.append("<h2>Figures from the saved scores</h2>")
        for name in figures:
            caption = plots.FIGURES.get(name, "")
            body.append(
                f'<figure><img src="{esc(name)}" alt="{esc(caption)}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
    if other_images:
        body.append("<h2>Other figures of the record</h2>")
        for name in other_images:
            body.append(
                f'<figure><img src="{esc(name)}" alt="{esc(name)}">'
                f"<figcaption>{esc(name)}</figcaption></figure>"
            )
    if record.metrics:
        body += ["<h2>Metrics</h2>", _metric_rows(task, record)]
    body += ["<h2>Components</h2>", _components(task, record)]
    training = _training(record)
    if training:
        body += ["<h2>Training and timings</h2>", training]
    body.append(f"<p>{link('record.json', 'record.json')} (the full record).</p>")
    html_text = page(_title(record), "\n".join(body), root=task.root)
    (task.page_dir / "index.html").write_text(html_text, encoding="utf-8")
    log.debug("%s: page in %.2f s", task.record_path, time.perf_counter() - start)
    return PageResult(task.page_dir, len(figures), problem)


# ---------------------------------------------------------------------------------------------
# the index


def _target(link_text: str, board: Board) -> str:
    """A headline link: a URL as it is, a record folder as its page."""
    if "://" in link_text:
        return link_text
    return board.page_of(board.results / link_text / "record.json")


def _cell_html(cell: Cell, board: Board) -> str:
    """One headline cell: its links (one per seed, or one), hover note, second line."""
    if cell.links:
        text = ", ".join(link(label, _target(target, board)) for label, target in cell.links)
        text = hover_html(text, cell.note)
    elif cell.link:
        text = link(cell.text, _target(cell.link, board), cell.note)
    else:
        text = hover(cell.text, cell.note)
    if cell.strong:
        text = f"<b>{text}</b>"
    if cell.sub:
        text += f'<br><span class="sub">{esc(cell.sub)}</span>'
    return text


def _headline_html(t: HeadlineTable, board: Board) -> str:
    """A headline table with its system line, notes and details block."""
    out = [f"<h3>{esc(t.title)}</h3>"]
    if t.system:
        cells = " · ".join(_cell_html(c, board) for c in t.system)
        out.append(f'<p class="system">System: {cells}</p>')
    rows = [[_cell_html(c, board) for c in row] for row in t.rows]
    attrs = [
        'class="reference"' if row and row[0].text == REF else 'class="ranked"' for row in t.rows
    ]
    numeric = tuple(i for i, c in enumerate(t.columns) if i >= 2 and c not in ("seeds",))
    out.append(
        f'<div data-kind="{esc(t.kind)}" data-dataset="{esc(t.dataset)}">'
        + table(t.columns, rows, cls=f"headline {t.kind}", row_attrs=attrs, numeric=numeric)
        + "</div>"
    )
    if t.notes:
        out.append('<ol class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in t.notes) + "</ol>")
    if t.details:
        header = t.details_columns or [""] * max(len(r) for r in t.details)
        inner = table(header, [[_cell_html(c, board) for c in row] for row in t.details])
        out.append(f"<details><summary>All metrics and records</summary>{inner}</details>")
    return "\n".join(out)


def _record_link(board: Board, path: Path, text: str) -> str:
    result = board.pages.get(path)
    if result is None or not result.written:
        return esc(text)
    return link(text, board.page_of(path))


def _main_value(record: Record) -> str:
    """The record's type-I TAR at its lowest FAR with a value, with its counts."""
    rates = [
        (float(name.partition("=")[2]), name, m)
        for name, m in record.metrics.get("type1", {}).items()
        if name.startswith("tar_type1@far=") and name.count("@") == 1 and m.value is not None
    ]
    if not rates:
        return ""
    _, name, m = min(rates, key=lambda r: r[0])
    count = f" ({m.count}/{m.n})" if m.count is not None else ""
    return f"{name.partition('@')[2]}: {m.value:.4f}{count}"


def _records_table(board: Board) -> str:
    header = [
        "dataset",
        "attacked",
        "judged by",
        "inverter",
        "trained on",
        "profile",
        "seed",
        "type-I TAR",
    ]
    rows, attrs = [], []
    for path, record in board.collected.ranked:
        c = record.cell
        rows.append(
            [
                esc(c.dataset),
                esc(c.encoder),
                esc(c.eval_encoder),
                _record_link(board, path, c.inverter),
                esc(c.train_dataset),
                esc(c.profile),
                esc(c.seed),
                esc(_main_value(record)),
            ]
        )
        rel = path.parent.relative_to(board.results).as_posix()
        attrs.append(f'class="record" data-record="{esc(rel)}"')
    if not rows:
        return '<p class="muted">No ranked records.</p>'
    return table(header, rows, cls="records", row_attrs=attrs, numeric=(6,))


def _unranked(board: Board) -> str:
    c = board.collected
    groups: list[tuple[str, str, list[tuple[Path, str]]]] = [
        (
            "stale",
            "a component's version changed since the run",
            [(p, why) for p, _, why in c.stale],
        ),
        (
            "unverified",
            "not reproducible from public code and packages",
            [(p, why) for p, _, why in board.unverified],
        ),
        ("failed", "the run failed", [(p, r.error or "") for p, r in c.failed]),
        (
            "invalid",
            "does not validate, or its metrics are not what its scores give",
            list(c.invalid),
        ),
    ]
    out = []
    for standing, meaning, items in groups:
        if not items:
            continue
        rows = [
            [_record_link(board, p, p.parent.relative_to(board.results).as_posix()), esc(why)]
            for p, why in items
        ]
        attrs = [f'data-standing="{standing}"'] * len(rows)
        out.append(f"<h3>{esc(standing.capitalize())} ({len(items)}): {esc(meaning)}</h3>")
        out.append(table(["record", "reason"], rows, cls="unranked", row_attrs=attrs))
    return "\n".join(out)


def _problems(board: Board) -> list[tuple[Path, str]]:
    return [(p, r.problem) for p, r in board.pages.items() if r.problem]


def _index(boards: list[Board]) -> str:
    n = sum(len(b.pages) for b in boards)
    body = [
        "<h1>invbench leaderboards</h1>",
        f'<p class="muted">Built by invbench {esc(__version__)} from {n} record(s); every '
        "value links to its record's page with counts, intervals, components and figures. "
        "Hover a value for its interval or note.</p>",
    ]
    for board in boards:
        if len(boards) > 1:
            body.append(f"<h2>{esc(board.results.as_posix())}</h2>")
        if board.tables:
            body.append("<h2>Leaderboards</h2>" if len(boards) == 1 else "")
            body += [_headline_html(t, board) for t in board.tables]
        body += [f"<h3>Ranked records ({len(board.collected.ranked)})</h3>", _records_table(board)]
        unranked = _unranked(board)
        if unranked:
            body += ["<h3>Not ranked</h3>" if len(boards) > 1 else "<h2>Not ranked</h2>", unranked]
        problems = _problems(board)
        if problems:
            rows = [
                [_record_link(board, p, p.parent.relative_to(board.results).as_posix()), esc(w)]
                for p, w in problems
            ]
            body += [
                "<h3>Drawing problems</h3>",
                table(["record", "problem"], rows, cls="problems"),
            ]
    return page("invbench leaderboards", "\n".join(b for b in body if b), root="")


# ---------------------------------------------------------------------------------------------
# building


def _board_prefixes(results: Sequence[Path]) -> list[str]:
    """Where each board's record pages go below ``records/`` ('' when there is one board)."""
    if len(results) == 1:
        return [""]
    prefixes: list[str] = []
    for path in results:
        base = "-".join(p for p in Path(path).parts if p not in ("/", ".", "..")) or "results"
        name, i = base, 2
        while name in prefixes:
            name, i = f"{base}-{i}", i + 1
        prefixes.append(name)
    return prefixes


def _papers(record: Record, host: PluginHost) -> dict[str, tuple[str, str]]:
    """``role -> (paper, URL)``: the record's own provenance first, else the component's."""
    out = {}
    for role, info in record.components.items():
        try:
            cls: Any = host.registry.load(info.family, info.name)
        except InvbenchError:
            cls = None
        paper = str(info.provenance.get("paper") or getattr(cls, "paper", "") or "")
        url = str(getattr(cls, "paper_url", "") or "")
        if paper or url:
            out[role] = (paper, url)
    return out


def _system_metrics(record: Record, host: PluginHost) -> dict[str, tuple[str, ...]]:
    out = {}
    for role, info in record.components.items():
        if role.startswith("protocol:"):
            try:
                cls: Any = host.registry.load("protocol", info.name)
                out[info.name] = tuple(getattr(cls, "system_metric_names", ()))
            except InvbenchError:
                continue
    return out


def _check_folders(results: Sequence[Path], out: Path) -> None:
    if not results:
        raise InvbenchError("no results folder given", hint="invbench report RESULTS --out site")
    for path in results:
        if not path.exists():
            raise InvbenchError(
                f"results folder {path} does not exist",
                hint="give the folder `invbench run --out` wrote, e.g. leaderboards/results",
            )
        if not path.is_dir():
            raise InvbenchError(f"results folder {path} is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise InvbenchError(
            f"--out {out} is a folder that holds something other than an invbench report",
            hint="choose a new or empty folder (a report's folder is replaced whole)",
        )
    site = out.resolve()
    for path in results:
        folder = path.resolve()
        if site == folder or site in folder.parents or folder in site.parents:
            raise InvbenchError(
                f"--out {out} overlaps the results folder {path}",
                hint="the site holds copies of record.json files: keep it outside the results",
            )
    probe_writable(out, size=1024)


def _executor(jobs: int) -> Executor | None:
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))


def default_jobs() -> int:
    """Worker processes for figures: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def build_report(
    results: Sequence[Path], out: Path, host: PluginHost, *, jobs: int | None = None
) -> ReportSummary:
    """Build the static site for the records under ``results`` into ``out``.

    Args:
        results: Results folders (searched recursively for ``record.json``); with several,
            the index has one section per folder.
        out: The site's folder; created, or replaced when it holds a previous report.
        host: Where components are looked up (staleness, papers, headline tables).
        jobs: Worker processes drawing record pages (default :func:`default_jobs`).

    Raises:
        InvbenchError: When a results folder is missing or ``out`` holds something else.
        StorageError: When ``out`` cannot be written.
    """
    start = time.perf_counter()
    results = [Path(r) for r in results]
    out = Path(out)
    _check_folders(results, out)
    boards = []
    for path, prefix in zip(results, _board_prefixes(results), strict=True):
        log.info("collecting records in %s", path)
        collected = collect(path, host)
        unverified = collected.unverified
        boards.append(Board(path, prefix, collected, headline_tables(collected, host), unverified))
        log.info(
            "%s: %d ranked, %d stale, %d unverified, %d failed, %d invalid record(s)",
            path,
            len(collected.ranked),
            len(collected.stale),
            len(unverified),
            len(collected.failed),
            len(collected.invalid),
        )
    staging = staging_folder(out)
    try:
        summary = _assemble(boards, staging, host, jobs or default_jobs())
        with storage_errors(staging):
            (staging / MARKER).write_text(f"invbench {__version__}\n")
        replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary.out, summary.seconds = out, time.perf_counter() - start
    log.info(
        "report in %s: %d page(s), %d figure(s), %d problem(s), %.1f s",
        out,
        summary.pages,
        summary.figures,
        len(summary.problems),
        summary.seconds,
    )
    return summary


def _tasks(board: Board, site: Path, host: PluginHost) -> list[PageTask]:
    c = board.collected
    entries: list[tuple[Path, str, str]] = [(p, "ranked", "") for p, _ in c.ranked]
    entries += [(p, "stale", why) for p, _, why in c.stale]
    entries += [(p, "unverified", why) for p, _, why in board.unverified]
    entries += [(p, "failed", r.error or "") for p, r in c.failed]
    entries += [(p, "invalid", why) for p, why in c.invalid]
    tasks = []
    for path, standing, reason in entries:
        try:
            record = load_record(path)
        except InvbenchError:  # an unreadable record: listed on the index, no page
            board.pages[path] = PageResult(site, 0, written=False)  # reason: in c.invalid
            continue
        page_rel = Path(board.page_of(path)).parent
        depth = len(page_rel.parts)
        tasks.append(
            PageTask(
                record_path=path,
                page_dir=site / page_rel,
                root="../" * depth,
                standing=standing,
                reason=reason,
                papers=_papers(record, host),
                system_metrics=_system_metrics(record, host),
            )
        )
    return tasks


def _assemble(boards: list[Board], site: Path, host: PluginHost, jobs: int) -> ReportSummary:
    """Write the pages of every board and the index into ``site``."""
    with storage_errors(site):
        (site / "style.css").write_text(CSS)
    work = [(board, task) for board in boards for task in _tasks(board, site, host)]
    log.info("drawing %d record page(s) with %d process(es)", len(work), min(jobs, len(work)))
    plots.warm_up()
    pool = _executor(min(jobs, len(work)))
    results = (
        pool.map(build_page, [t for _, t in work])
        if pool
        else map(build_page, [t for _, t in work])
    )
    t0 = time.perf_counter()
    try:
        for i, ((board, task), result) in enumerate(zip(work, results, strict=True), 1):
            board.pages[task.record_path] = result
            log.info(
                "page %d/%d: %s (%d figure(s)%s) %.1f s",
                i,
                len(work),
                task.record_path.parent,
                result.figures,
                f"; {result.problem}" if result.problem else "",
                time.perf_counter() - t0,
            )
    finally:
        if pool is not None:
            pool.shutdown()
    with storage_errors(site):
        (site / "index.html").write_text(_index(boards), encoding="utf-8")
    problems = [(p, r.problem) for b in boards for p, r in b.pages.items() if r.problem]
    return ReportSummary(
        out=site,
        pages=sum(1 for b in boards for r in b.pages.values() if r.written),
        figures=sum(r.figures for b in boards for r in b.pages.values()),
        problems=problems,
        seconds=0.0,
    )
