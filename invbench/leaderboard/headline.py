"""Leaderboard tables as data, independent of the renderer (Markdown, HTML).

:func:`headline_tables` turns the ranked records of a results folder into
:class:`HeadlineTable` objects; the Markdown pages (:mod:`invbench.leaderboard.render`) and
the HTML report both draw them. Three kinds of table (``HeadlineTable.kind``):

``headline``
    One per evaluation dataset, attacked encoder, judging encoder, threat model and
    profile: rows of different systems or threat models are never ranked against each
    other. Above it the FR system line (the system's own TMR/TAR at the target FMRs, its
    FTA); then one row per configuration (records that differ only in the run seed share a
    row, as mean ± sample sd), ranked by the main metric of the present protocol with the
    lowest ``rank_priority``; the protocols' declared ``headline()`` metrics as columns,
    then the training time and the inversion time per template. Reference inverters
    (``Inverter.reference``, e.g. ``ridge``) and the template-ignoring baseline (the
    ``baseline_*`` metrics) follow as ``ref`` rows, never ranked. Every other metric is in
    ``details``.
``robustness``
    One per protocol that is measured under conditions (``Protocol.table_columns``) and
    setting: its headline metrics per inverter, the per-condition values in ``details``
    (or, without headline metrics, the conditions as rows).
``transfer``
    Where one folder holds records of several (attacked, judging) encoder pairs: per
    dataset, threat model and profile, the main metric with attacked encoders as rows and
    judging encoders as columns, for each inverter.

Cells carry their text, a note (the 95 % interval, a reason, the machine: hover text or a
footnote) and a link (a paper, or a record folder relative to the results root).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from invbench.components import Inverter, Metric, Protocol
from invbench.errors import InvbenchError
from invbench.leaderboard.collect import Collected
from invbench.plugin_manager import PluginHost
from invbench.records import Record

#: Cell text of a metric the record has but could not compute (the reason is its note).
UNAVAILABLE = "unavailable"
#: Cell text of a metric the record does not have.
ABSENT = "n/a"
#: Cell text where a column does not apply (the baseline has no training time).
DASH = "—"
#: Rank cell of reference rows.
REF = "ref"


@dataclass(frozen=True)
class Cell:
    """One table cell.

    Attributes:
        text: What the table shows, e.g. ``26.0 % (104/400)``.
        note: Footnote / hover text, e.g. ``95 % CI [21.8 %, 30.6 %], Clopper-Pearson``.
        link: A URL (a paper) or a record folder path relative to the results root.
        sub: A short second line a text renderer may print under ``text`` (the interval
            ``[21.8, 30.6]``, the per-seed counts).
        strong: Emphasised (the diagonal of a transfer table).
        links: Several labelled links ``(text, link)`` (one record per seed); ``text`` then
            lists their labels and ``link`` is the first.
    """

    text: str
    note: str | None = None
    link: str | None = None
    sub: str | None = None
    strong: bool = False
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class HeadlineTable:
    """One leaderboard table.

    Attributes:
        title: e.g. ``orl · attacked: arcface · judged by: arcface · white-box · quick``.
        system: The FR system line (one cell per system metric).
        columns: Column headers of ``rows``.
        rows: Ranked rows first, then reference rows.
        notes: Footnotes under the table (how to read it, unavailable reasons, machines).
        details: Extra rows for a details block (may be empty), under ``details_columns``.
        details_columns: Column headers of ``details``.
        kind: ``headline``, ``robustness`` or ``transfer``.
        dataset: The evaluation dataset (renderers make one page per dataset).
    """

    title: str
    system: list[Cell]
    columns: list[str]
    rows: list[list[Cell]]
    notes: list[str]
    details: list[list[Cell]] = field(default_factory=list)
    details_columns: list[str] = field(default_factory=list)
    kind: str = "headline"
    dataset: str = ""


Item = tuple[Path, Record]
Column = tuple[str, str]  # (protocol, metric)


# ------------------------------------------------------------------------------ lookups
def protocol_class(host: PluginHost, name: str) -> type[Protocol] | None:
    """The installed protocol class ``name`` (``None`` when it is not installed)."""
    try:
        cls = host.registry.load("protocol", name)
    except InvbenchError:
        return None
    return cls if isinstance(cls, type) and issubclass(cls, Protocol) else None


def inverter_class(host: PluginHost, name: str) -> type[Inverter] | None:
    """The installed inverter class ``name`` (``None`` when it is not installed)."""
    try:
        cls = host.registry.load("inverter", name)
    except InvbenchError:
        return None
    return cls if isinstance(cls, type) and issubclass(cls, Inverter) else None


def label(host: PluginHost, protocol: str, metric: str) -> str:
    """The protocol's name for ``metric`` (``protocol: metric`` when not installed)."""
    cls = protocol_class(host, protocol)
    return cls.label(metric) if cls is not None else f"{protocol}: {metric}"


def is_condition_protocol(host: PluginHost, protocol: str) -> bool:
    """Whether ``protocol`` is measured under conditions (a table of its own)."""
    cls = protocol_class(host, protocol)
    return cls is not None and bool(cls.table_columns)


def access_of(record: Record) -> str:
    """The record's threat model (``undeclared`` for records from before threat models)."""
    return str(record.threat.get("access", "undeclared")) if record.threat else "undeclared"


def group_of(record: Record) -> tuple[str, str, str, str, str]:
    """``(dataset, attacked encoder, judging encoder, access, profile)``: one table."""
    c = record.cell
    return c.dataset, c.encoder, c.eval_encoder, access_of(record), c.profile


def seed_group_of(record: Record) -> str:
    """What must agree for records to be one row of seeds: everything but the run seed.

    The cell without its seed (inverter, datasets, encoders, aligner, profile, surrogate,
    protocols), the threat model, and every component's name, version and options (the
    inverter's without an option called ``seed``).
    """
    components = {
        role: {
            "name": info.name,
            "version": info.version,
            "options": {
                k: v for k, v in info.options.items() if not (role == "inverter" and k == "seed")
            },
        }
        for role, info in record.components.items()
    }
    key = {
        "cell": record.cell.model_dump(mode="json", exclude={"seed"}),
        "threat": record.threat,
        "components": components,
    }
    return json.dumps(key, sort_keys=True, default=str)


def record_link(path: Path, root: Path | None) -> str:
    """The record's folder relative to the results root (POSIX), or as given."""
    folder = path.parent
    if root is not None:
        try:
            return Path(os.path.relpath(folder, root)).as_posix()
        except ValueError:  # another drive (Windows)
            pass
    return folder.as_posix()


# --------------------------------------------------------------------------- formatting
def pct(value: float) -> str:
    """``0.26`` -> ``26.0``."""
    return f"{100 * value:.1f}"


def number(value: float) -> str:
    """A non-rate value with three decimals."""
    return f"{value:.3f}"


def is_rate(metric: Metric) -> bool:
    """A rate with its counts (``count`` successes of ``n`` trials)."""
    return metric.count is not None and metric.n is not None


def ci_method(metric: Metric) -> str:
    """A short name of how the interval was computed."""
    method = str(metric.details.get("ci_method", ""))
    if "bootstrap" in method and "Clopper" in method:
        return "identity bootstrap ∪ Clopper-Pearson"
    if "bootstrap" in method:
        return "identity bootstrap"
    if "Clopper" in method:
        return "Clopper-Pearson"
    return method or "method not recorded"


def rate_name(name: str) -> bool:
    """Whether ``name`` is an acceptance rate at an operating point (``...@far=1e-3...``)."""
    return "@far=" in name or "@fmr=" in name


def metric_cell(metric: Metric | None, percent: bool = False) -> Cell:
    """One record's metric: ``26.0 % (104/400)`` with its interval, or a number.

    ``percent``: show a rate without counts (a mean of rates) in percent.
    """
    if metric is None:
        return Cell(ABSENT, note="the record has no such metric")
    if metric.value is None:
        return Cell(UNAVAILABLE, note=metric.unavailable or "no reason recorded")
    if is_rate(metric):
        text = f"{pct(metric.value)} % ({metric.count}/{metric.n})"
        if metric.ci95 is None:
            return Cell(text)
        lo, hi = metric.ci95
        return Cell(
            text,
            note=f"95 % CI [{pct(lo)} %, {pct(hi)} %], {ci_method(metric)}",
            sub=f"[{pct(lo)}, {pct(hi)}]",
        )
    return Cell(f"{pct(metric.value)} %" if percent else number(metric.value))


def merged_cell(metrics: list[Metric | None], seeds: list[int], percent: bool = False) -> Cell:
    """Several seeds' values of one metric: ``mean ± sd`` (``(k of n)`` when some lack it).

    ``percent``: rates without counts (means of rates) in percent.
    """
    if len(metrics) == 1:
        return metric_cell(metrics[0], percent)
    values = [m.value for m in metrics if m is not None and m.value is not None]
    if not values:
        reasons = sorted({m.unavailable or "no reason recorded" for m in metrics if m})
        if reasons:
            return Cell(UNAVAILABLE, note="; ".join(reasons))
        return Cell(ABSENT, note="the records have no such metric")
    counted = all(is_rate(m) for m in metrics if m is not None and m.value is not None)
    rate = counted or percent
    mean = float(np.mean(values))
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
    if rate:
        text = f"{pct(mean)} %" if sd is None else f"{pct(mean)} ± {pct(sd)} %"
    else:
        text = number(mean) if sd is None else f"{number(mean)} ± {number(sd)}"
    if len(values) < len(metrics):
        text += f" ({len(values)} of {len(metrics)})"
    per_seed = []
    for seed, m in zip(seeds, metrics, strict=True):
        per_seed.append(f"seed {seed}: {metric_cell(m, percent).text}")
    sub = None
    if counted:
        counts = [f"{m.count}/{m.n}" for m in metrics if m is not None and m.value is not None]
        sub = ", ".join(counts)
    return Cell(text, note="mean ± sample sd over seeds; " + "; ".join(per_seed), sub=sub)


def seconds_text(seconds: float) -> str:
    """``515 s``; below 10 s with one decimal."""
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def ms_text(ms: float) -> str:
    """Milliseconds with two significant decimals for small values."""
    if ms < 10:
        return f"{ms:.2f} ms"
    return f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"


def machine_of(record: Record) -> str:
    """The machine the record's times were measured on: the GPU, else the CPU model.

    The CPU's instruction set (torch's ``cpu_capability``) is named when recorded: it
    changes times and, through the kernels oneDNN picks, trained weights.
    """
    env = record.environment
    device = str(env.get("device", "unknown device"))
    if device.startswith("cuda"):
        return str(env.get("device_name") or device)
    cpu = str(env.get("cpu_model") or "CPU model not recorded")
    if env.get("cpu_capability"):
        cpu += f" ({env['cpu_capability']})"
    threads = env.get("cpu_threads")
    return f"{cpu}, {threads} threads" if threads else cpu


# ---------------------------------------------------------------------------------- rows
@dataclass
class Row:
    """The records of one configuration, one per seed (sorted by seed)."""

    items: list[Item]

    @property
    def first(self) -> Record:
        """The record of the lowest seed."""
        return self.items[0][1]

    @property
    def seeds(self) -> list[int]:
        """The run seeds of the records."""
        return [r.cell.seed for _, r in self.items]

    def metrics(self, column: Column) -> list[Metric | None]:
        """Each seed's metric ``column`` (``None`` where a record lacks it)."""
        return [r.metrics.get(column[0], {}).get(column[1]) for _, r in self.items]

    def mean(self, column: Column) -> float | None:
        """The mean over the seeds that have a value (``None`` when none has one)."""
        values = [m.value for m in self.metrics(column) if m is not None and m.value is not None]
        return float(np.mean(values)) if values else None

    def cell(self, column: Column) -> Cell:
        """The table cell of ``column``."""
        return merged_cell(self.metrics(column), self.seeds, rate_name(column[1]))


def merge_seeds(items: list[Item]) -> list[Row]:
    """Rows of records that differ only by seed; a repeated seed starts another row."""
    groups: dict[str, list[list[Item]]] = {}
    for item in items:
        rows = groups.setdefault(seed_group_of(item[1]), [])
        row = next((r for r in rows if all(i[1].cell.seed != item[1].cell.seed for i in r)), None)
        if row is None:
            rows.append([item])
        else:
            row.append(item)
    return [
        Row(sorted(row, key=lambda it: it[1].cell.seed)) for rows in groups.values() for row in rows
    ]


# ------------------------------------------------------------------------------- columns
def _protocols(records: Iterable[Record], host: PluginHost) -> list[tuple[int, str]]:
    """``(rank_priority, name)`` of the installed protocols present, in rank order."""
    found = set()
    for record in records:
        for name in record.metrics:
            cls = protocol_class(host, name)
            if cls is not None:
                found.add((cls.rank_priority, name))
    return sorted(found)


def headline_columns(records: list[Record], host: PluginHost) -> list[Column]:
    """The declared headline metrics of the headline protocols present, in column order.

    Operating-point rates (names with ``@far=``/``@fmr=``) first, then the other metrics
    (similarities, image quality), each in protocol rank order and declaration order.
    System metrics are never columns.
    """
    present = {(p, m) for r in records for p, named in r.metrics.items() for m in named}
    out: list[tuple[int, int, int, Column]] = []
    for priority, name in _protocols(records, host):
        cls = protocol_class(host, name)
        if cls is None or cls.table_columns:
            continue
        for i, metric in enumerate(cls.headline()):
            if (name, metric) in present and metric not in cls.system_metric_names:
                rate = "@far=" in metric or "@fmr=" in metric
                out.append((0 if rate else 1, priority, i, (name, metric)))
    return [c for *_, c in sorted(out)]


def system_columns(records: list[Record], host: PluginHost) -> list[Column]:
    """``(protocol, metric)``: the declared system metrics present in some record."""
    present = {(p, m) for r in records for p, named in r.metrics.items() for m in named}
    out = []
    for _, name in _protocols(records, host):
        cls = protocol_class(host, name)
        for metric in cls.system_metric_names if cls is not None else ():
            if (name, metric) in present:
                out.append((name, metric))
    return out


def ranking_key(records: list[Record], host: PluginHost) -> Column | None:
    """The main metric of the present headline protocol with the lowest ``rank_priority``."""
    for _, name in _protocols(records, host):
        cls = protocol_class(host, name)
        if (
            cls is not None
            and not cls.table_columns
            and cls.main_metric
            and cls.main_metric not in cls.system_metric_names
        ):
            return name, cls.main_metric
    return None


def _higher_is_better(records: list[Record], column: Column) -> bool:
    for record in records:
        metric = record.metrics.get(column[0], {}).get(column[1])
        if metric is not None:
            return metric.higher_is_better
    return True


def _arrow(records: list[Record], column: Column) -> str:
    return "↑" if _higher_is_better(records, column) else "↓"


# -------------------------------------------------------------------------- system line
def system_cells(records: list[Record], columns: list[Column], host: PluginHost) -> list[Cell]:
    """The FR system's own metrics, once: one value, or the range where records disagree.

    Values that agree to the printed precision are one value.
    """
    cells = []
    for column in columns:
        metrics = [m for r in records if (m := r.metrics.get(column[0], {}).get(column[1]))]
        name = label(host, *column)
        texts = list(dict.fromkeys(metric_cell(m).text for m in metrics if m.value is not None))
        missing = [m for m in metrics if m.value is None]
        if not texts:
            reason = "; ".join(sorted({m.unavailable or "no reason recorded" for m in missing}))
            cells.append(Cell(f"{name}: {UNAVAILABLE}", note=reason))
            continue
        if len(texts) == 1:
            only = metric_cell(next(m for m in metrics if m.value is not None))
            text, note = f"{name}: {texts[0]}", only.note
        else:
            values = [m.value for m in metrics if m.value is not None]
            fmt = pct if all(is_rate(m) for m in metrics if m.value is not None) else number
            unit = " %" if fmt is pct else ""
            text = f"{name}: {fmt(min(values))}–{fmt(max(values))}{unit} across records"
            note = "records of this table disagree: " + "; ".join(texts)
        if missing:
            text += f" (unavailable in {len(missing)} of {len(metrics)})"
        cells.append(Cell(text, note=note))
    return cells


def given_options(record: Record) -> list[str]:
    """The ``--*-arg`` values of the record's command (``geometric.map_images=2000``).

    Rows of one table that differ only in such options would otherwise look alike.
    """
    command = list(record.command)
    return [
        command[i + 1]
        for i, word in enumerate(command[:-1])
        if word.startswith("--") and word.endswith("-arg")
    ]


# ------------------------------------------------------------------------ headline table
def _inverter_cell(row: Row, host: PluginHost, train_column: bool) -> Cell:
    record = row.first
    name = record.cell.inverter
    cls = inverter_class(host, name)
    paper = cls.paper if cls is not None else ""
    info = record.components.get("inverter")
    if not paper and info is not None:
        paper = str(info.provenance.get("paper", ""))
    url = cls.paper_url if cls is not None else ""
    text = name
    if record.cell.surrogate:
        text += f" via {record.cell.surrogate}"
    given = given_options(record)
    if given:
        text += f" ({', '.join(given)})"
    if train_column:
        text += f" (trained on {record.cell.train_dataset})"
    return Cell(text, note=paper or None, link=url or None)


def _training_cell(row: Row, machines: dict[str, str]) -> Cell:
    seconds = []
    for _, record in row.items:
        summary = record.training
        if summary.get("trained") is False or "seconds" not in summary:
            continue
        seconds.append(float(summary["seconds"]))
    if not seconds:
        return Cell(DASH, note="nothing to train")
    machine = machine_of(row.first)
    mark = machines.get(machine, "")
    text = seconds_text(float(np.mean(seconds)))
    note = f"the inverter's fit on {machine}"
    if len(seconds) > 1:
        note = f"mean over {len(seconds)} seeds of " + note
    return Cell(text + (f" {mark}" if mark else ""), note=note)


def _ms_cell(row: Row) -> Cell:
    values = [
        1000 * float(r.timings_s["invert_per_template"])
        for _, r in row.items
        if "invert_per_template" in r.timings_s
    ]
    if not values:
        return Cell(ABSENT, note="the record has no inversion time")
    note = f"inversion of all templates / their number, on {machine_of(row.first)}"
    return Cell(ms_text(float(np.mean(values))), note=note)


def _records_cell(row: Row, root: Path | None) -> Cell:
    """A link to the record folder; several seeds: one labelled link per seed."""
    first = record_link(row.items[0][0], root)
    if len(row.items) == 1:
        return Cell("record", link=first)
    links = tuple((str(r.cell.seed), record_link(p, root)) for p, r in row.items)
    text = ", ".join(seed for seed, _ in links)
    return Cell(text, note="one record per seed", link=first, links=links)


def _other_metrics(records: list[Record], host: PluginHost, shown: set[Column]) -> list[Column]:
    """Every attack metric of the headline protocols not shown as a column, for details."""
    out: list[tuple[int, str, str]] = []
    for record in records:
        for protocol, named in record.metrics.items():
            cls = protocol_class(host, protocol)
            if cls is not None and cls.table_columns:
                continue
            priority = cls.rank_priority if cls is not None else 1000
            system = set(cls.system_metric_names) if cls is not None else set()
            for name in named:
                if (protocol, name) in shown or name in system or name.startswith("baseline_"):
                    continue
                out.append((priority, protocol, name))
    return [(p, m) for _, p, m in sorted(set(out))]


def _rank_rows(rows: list[Row], key: Column | None, higher: bool) -> list[Row]:
    def order(row: Row) -> tuple[bool, float, str, str, int]:
        mean = row.mean(key) if key else None
        value = 0.0 if mean is None else (-mean if higher else mean)
        return mean is None, value, row.first.cell.inverter, row.first.cell.train_dataset, 0

    return sorted(rows, key=order)


def _ranks(rows: list[Row], key: Column | None) -> list[str]:
    """Competition ranks ``1, 2, 2, 4`` by the mean of ``key``; ``—`` without a value."""
    out: list[str] = []
    previous: float | None = None
    for i, row in enumerate(rows):
        mean = row.mean(key) if key else None
        if mean is None:
            out.append(DASH)
            continue
        if previous is not None and abs(mean - previous) < 1e-12 and out and out[-1] != DASH:
            out.append(out[-1])
        else:
            out.append(str(i + 1))
        previous = mean
    return out


def _baseline_rows(
    rows: list[Row], columns: list[Column], extra: int, details: list[Column]
) -> tuple[list[list[Cell]], list[list[Cell]]]:
    """The template-ignoring baseline: one row per training dataset (mean face of it)."""
    by_train: dict[str, list[Item]] = {}
    for row in rows:
        for item in row.items:
            by_train.setdefault(item[1].cell.train_dataset, []).append(item)
    main, more = [], []
    several = len(by_train) > 1
    for train, items in sorted(by_train.items()):
        per_seed: dict[int, Item] = {}
        for item in items:
            per_seed.setdefault(item[1].cell.seed, item)
        base = Row(sorted(per_seed.values(), key=lambda it: it[1].cell.seed))

        def cell(column: Column, base: Row = base) -> Cell:
            name = (column[0], f"baseline_{column[1]}")
            metrics = base.metrics(name)
            if all(m is None for m in metrics):
                return Cell(DASH, note="no baseline value for this metric")
            if all(m == metrics[0] for m in metrics):  # the same baseline for every seed
                return metric_cell(metrics[0])
            return base.cell(name)

        if not any(
            any(m is not None for m in base.metrics((p, f"baseline_{n}"))) for p, n in columns
        ):
            continue
        text = "template-ignoring baseline" + (f" ({train})" if several else "")
        name = Cell(
            text,
            note=f"the mean aligned face of {train} for every template, judged like an attack",
        )
        main.append(
            [Cell(REF), name]
            + [Cell("") for _ in range(extra)]
            + [cell(c) for c in columns]
            + [Cell(DASH), Cell(DASH)]
        )
        more.append(
            [name, Cell(train), Cell(", ".join(str(s) for s in base.seeds))]
            + [cell(c) for c in details]
            + [Cell(DASH)]
        )
    return main, more


def _table_for(
    key: tuple[str, str, str, str, str],
    items: list[Item],
    references: list[Item],
    root: Path | None,
    host: PluginHost,
) -> HeadlineTable | None:
    dataset, attacked, judged, access, profile = key
    all_items = items + references
    records = [r for _, r in all_items]
    columns = headline_columns(records, host)
    if not columns:
        return None
    rank = ranking_key(records, host)
    higher = _higher_is_better(records, rank) if rank else True

    def is_reference(row: Row) -> bool:
        cls = inverter_class(host, row.first.cell.inverter)
        return cls is not None and cls.reference

    rows = merge_seeds(all_items)
    ranked = _rank_rows([r for r in rows if not is_reference(r)], rank, higher)
    refs = _rank_rows([r for r in rows if is_reference(r)], rank, higher)
    several_seeds = any(len(r.items) > 1 for r in rows)
    trains = {r.first.cell.train_dataset for r in rows}
    train_column = len(trains) > 1
    machines_found = list(dict.fromkeys(machine_of(r.first) for r in rows))
    marks = "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲ"
    machines = (
        {m: marks[i % len(marks)] for i, m in enumerate(machines_found)}
        if len(machines_found) > 1
        else {}
    )

    header = ["rank", "inverter"] + (["seeds"] if several_seeds else [])
    header += [f"{label(host, *c)} {_arrow(records, c)}" for c in columns]
    header += ["training", "ms / template"]
    details_cols = _other_metrics(records, host, set(columns))
    details_header = ["inverter", "trained on", "seeds"]
    details_header += [f"{label(host, *c)} {_arrow(records, c)}" for c in details_cols]
    details_header += ["records"]

    body: list[list[Cell]] = []
    details: list[list[Cell]] = []
    for ranks, group in ((_ranks(ranked, rank), ranked), ([REF] * len(refs), refs)):
        for rank_text, row in zip(ranks, group, strict=True):
            inverter = _inverter_cell(row, host, train_column)
            cells = [Cell(rank_text), inverter]
            if several_seeds:
                cells.append(Cell(", ".join(str(s) for s in row.seeds)))
            cells += [row.cell(c) for c in columns]
            cells += [_training_cell(row, machines), _ms_cell(row)]
            body.append(cells)
            details.append(
                [
                    inverter,
                    Cell(row.first.cell.train_dataset),
                    Cell(", ".join(str(s) for s in row.seeds)),
                ]
                + [row.cell(c) for c in details_cols]
                + [_records_cell(row, root)]
            )
    base_main, base_details = _baseline_rows(
        ranked + refs, columns, 1 if several_seeds else 0, details_cols
    )
    body += base_main
    details += base_details

    notes = []
    if rank:
        notes.append(
            f"Ranked by {label(host, *rank)} ({'higher' if higher else 'lower'} is better; "
            "rows of several seeds by their mean); `ref` rows are references, never ranked."
        )
    if any(
        m is not None and m.ci95 is not None and is_rate(m)
        for r in records
        for c in columns
        for m in [r.metrics.get(c[0], {}).get(c[1])]
    ):
        methods = sorted(
            {
                f"{label(host, *c)}: {ci_method(m)}"
                for r in records
                for c in columns
                if (m := r.metrics.get(c[0], {}).get(c[1])) is not None and m.ci95 is not None
            }
        )
        notes.append(
            "Rates read `percent (successes/trials)`; under them the 95 % interval [low, high] "
            f"in percent ({'; '.join(methods)})."
        )
    if several_seeds:
        notes.append(
            "Rows of several seeds: mean ± sample standard deviation (ddof=1) over the seeds "
            "with a value, `(k of n)` when only k of n have one; under a rate, each seed's "
            "counts."
        )
    if refs:
        ref_access = sorted({access_of(r.first) for r in refs} - {access})
        if ref_access:
            notes.append(
                f"Reference rows from {', '.join(ref_access)} records: an attacker with "
                f"{access} access can run them too."
            )
    if len(trains) == 1:
        notes.append(f"Inverters trained on {next(iter(trains))}.")
    if machines:
        notes += [f"{mark}: times measured on {m}." for m, mark in machines.items()]
    elif machines_found:
        notes.append(
            f"Training time: the inverter's fit; ms / template: inverting all evaluation "
            f"templates divided by their number; measured on {machines_found[0]}."
        )
    notes += _unavailable_notes(records, columns, host)
    system = system_cells(records, system_columns(records, host), host)
    title = f"{dataset} · attacked: {attacked} · judged by: {judged} · {access} · {profile}"
    return HeadlineTable(
        title=title,
        system=system,
        columns=header,
        rows=body,
        notes=notes,
        details=details,
        details_columns=details_header,
        kind="headline",
        dataset=dataset,
    )


def _unavailable_notes(records: list[Record], columns: list[Column], host: PluginHost) -> list[str]:
    """One line per (metric, reason) shown as unavailable."""
    found: dict[str, None] = {}
    for column in columns:
        for record in records:
            m = record.metrics.get(column[0], {}).get(column[1])
            if m is not None and m.value is None:
                reason = m.unavailable or "no reason recorded"
                found.setdefault(f"{label(host, *column)} unavailable: {reason}", None)
    return list(found)


def _can_reference(ref_access: str, table_access: str) -> bool:
    """A reference row (black-box, needing only the victim's templates) fits any table."""
    return ref_access == table_access or ref_access == "black-box"


def _headline(ranked: list[Item], root: Path | None, host: PluginHost) -> list[HeadlineTable]:
    def reference(record: Record) -> bool:
        cls = inverter_class(host, record.cell.inverter)
        return cls is not None and cls.reference

    groups: dict[tuple[str, str, str, str, str], list[Item]] = {}
    refs: dict[tuple[str, str, str, str, str], list[Item]] = {}
    for item in ranked:
        target = refs if reference(item[1]) else groups
        target.setdefault(group_of(item[1]), []).append(item)
    tables = []
    placed: set[tuple[str, str, str, str, str]] = set()
    for key in sorted(groups):
        dataset, attacked, judged, access, profile = key
        chosen: list[Item] = []
        for rkey, items in sorted(refs.items()):
            if rkey[:3] + rkey[4:] == key[:3] + key[4:] and _can_reference(rkey[3], access):
                chosen += items
                placed.add(rkey)
        table = _table_for(key, groups[key], chosen, root, host)
        if table is not None:
            tables.append(table)
    for rkey in sorted(set(refs) - placed):  # references no other table took
        table = _table_for(rkey, [], refs[rkey], root, host)
        if table is not None:
            tables.append(table)
    return sorted(tables, key=lambda t: (t.dataset, t.title))


# ---------------------------------------------------------------------- robustness table
def _conditions(names: Iterable[str]) -> list[str]:
    """Condition names (the last ``@`` part) in first-seen order, ``mean`` left out."""
    found = dict.fromkeys(n.rpartition("@")[2] for n in names if "@" in n)
    found.pop("mean", None)
    return [c for c in found if "=" in c or c in ("clean", "baseline")]


def _condition_metric(named: dict[str, Metric], family: str, condition: str) -> Metric | None:
    """``family@condition``, else ``family@far=X@condition`` at the lowest ``X``."""
    exact = named.get(f"{family}@{condition}")
    if exact is not None:
        return exact
    found: list[tuple[float, Metric]] = []
    for name, metric in named.items():
        if name.startswith(f"{family}@") and name.endswith(f"@{condition}"):
            middle = name[len(family) + 1 : -(len(condition) + 1)]
            key, eq, value = middle.partition("=")
            if eq and key in ("far", "fmr"):
                try:
                    found.append((float(value), metric))
                except ValueError:
                    continue
    return min(found, key=lambda f: f[0])[1] if found else None


def _condition_label(cls: type[Protocol], family: str, named: dict[str, Metric]) -> str:
    alphas = sorted(
        {
            part
            for name in named
            if name.startswith(f"{family}@")
            for part in name.split("@")[1:2]
            if part.startswith(("far=", "fmr="))
        },
        key=lambda p: float(p.partition("=")[2]),
    )
    return cls.label(f"{family}@{alphas[0]}" if alphas else family)


def _condition_rows(
    row: Row, protocol: str, families: list[str], conditions: list[str]
) -> list[list[Cell]]:
    """One row per condition: the inverter, the condition, each family's value there."""
    out = []
    for condition in conditions:
        metrics = [
            [_condition_metric(r.metrics.get(protocol, {}), f, condition) for _, r in row.items]
            for f in families
        ]
        if all(m is None for ms in metrics for m in ms):
            continue
        out.append(
            [Cell(" ".join([row.first.cell.inverter, *given_options(row.first)])), Cell(condition)]
            + [merged_cell(ms, row.seeds) for ms in metrics]
        )
    return out


def _robustness(ranked: list[Item], root: Path | None, host: PluginHost) -> list[HeadlineTable]:
    tables = []
    groups: dict[tuple[str, str, str, str, str], list[Item]] = {}
    for item in ranked:
        groups.setdefault(group_of(item[1]), []).append(item)
    for key in sorted(groups):
        dataset, attacked, judged, access, profile = key
        items = groups[key]
        records = [r for _, r in items]
        rows = sorted(
            merge_seeds(items), key=lambda r: (r.first.cell.inverter, r.first.cell.train_dataset)
        )
        for _, protocol in _protocols(records, host):
            cls = protocol_class(host, protocol)
            if cls is None or not cls.table_columns:
                continue
            mine = [r for r in rows if protocol in r.first.metrics]
            if not mine:
                continue
            several = any(len(r.items) > 1 for r in mine)
            named_all: dict[str, Metric] = {}
            for row in mine:
                for _, record in row.items:
                    named_all.update(record.metrics[protocol])
            conditions = _conditions(named_all)
            families = list(cls.table_columns)
            cond_header = ["inverter", "condition"] + [
                _condition_label(cls, f, named_all) for f in families
            ]

            headline = [m for m in cls.headline() if m in named_all]
            notes = [
                f"Protocol `{protocol}`: each condition judged like the clean attack; "
                "`clean`: no condition, `baseline`: the template-ignoring baseline."
            ]
            if several:
                notes.append("Rows of several seeds: mean ± sample sd over the seeds.")
            if headline:
                columns = ["inverter"] + (["seeds"] if several else [])
                columns += [f"{cls.label(m)} {_arrow(records, (protocol, m))}" for m in headline]
                body = []
                details = []
                for row in mine:
                    cells = [_inverter_cell(row, host, False)]
                    if several:
                        cells.append(Cell(", ".join(str(s) for s in row.seeds)))
                    body.append(cells + [row.cell((protocol, m)) for m in headline])
                    details += _condition_rows(row, protocol, families, conditions)
                notes.append("Per condition: in the details.")
                table = HeadlineTable(
                    title=f"{dataset} · {protocol} · attacked: {attacked} · judged by: {judged}"
                    f" · {access} · {profile}",
                    system=[],
                    columns=columns,
                    rows=body,
                    notes=notes,
                    details=details,
                    details_columns=cond_header,
                    kind="robustness",
                    dataset=dataset,
                )
            else:
                body = [
                    cells
                    for row in mine
                    for cells in _condition_rows(row, protocol, families, conditions)
                ]
                table = HeadlineTable(
                    title=f"{dataset} · {protocol} · attacked: {attacked} · judged by: {judged}"
                    f" · {access} · {profile}",
                    system=[],
                    columns=cond_header,
                    rows=body,
                    notes=notes,
                    kind="robustness",
                    dataset=dataset,
                )
            tables.append(table)
    return tables


# ------------------------------------------------------------------------ transfer table
def _transfer(ranked: list[Item], root: Path | None, host: PluginHost) -> list[HeadlineTable]:
    groups: dict[tuple[str, str, str], list[Item]] = {}
    for item in ranked:
        c = item[1].cell
        groups.setdefault((c.dataset, access_of(item[1]), c.profile), []).append(item)
    tables = []
    for (dataset, access, profile), items in sorted(groups.items()):
        records = [r for _, r in items]
        pairs = {(r.cell.encoder, r.cell.eval_encoder) for r in records}
        if len(pairs) < 2 or all(a == j for a, j in pairs):
            continue
        key = ranking_key(records, host)
        if key is None:
            continue
        attacked = sorted({a for a, _ in pairs})
        judges = sorted({j for _, j in pairs})
        grid: dict[tuple[str, str, str, str], dict[str, Row]] = {}
        for merged in merge_seeds(items):
            c = merged.first.cell
            line = (c.inverter, c.train_dataset, c.surrogate or "", c.encoder)
            grid.setdefault(line, {}).setdefault(c.eval_encoder, merged)
        several_train = len({line[1] for line in grid}) > 1
        body = []
        for line in sorted(grid, key=lambda ln: (ln[0], ln[1], ln[2], attacked.index(ln[3]))):
            inverter, train, surrogate, enc = line
            text = inverter + (f" (trained on {train})" if several_train else "")
            cls = inverter_class(host, inverter)
            cells = [Cell(text, link=(cls.paper_url or None) if cls else None), Cell(enc)]
            off = []
            for judge in judges:
                found = grid[line].get(judge)
                if found is None:
                    cells.append(Cell(ABSENT, note="no record for this pair"))
                    continue
                cell = found.cell(key)
                link = record_link(found.items[0][0], root)
                cells.append(
                    Cell(cell.text, note=cell.note, sub=cell.sub, strong=judge == enc, link=link)
                )
                mean = found.mean(key)
                if judge != enc and mean is not None:
                    off.append(mean)
            cells.append(Cell(f"{pct(float(np.mean(off)))} %" if off else DASH))
            body.append(cells)
        name = label(host, *key)
        tables.append(
            HeadlineTable(
                title=f"{dataset} · transfer · {access} · {profile}",
                system=[],
                columns=["inverter", "attacked \\ judged by", *judges, "mean off-diagonal"],
                rows=body,
                notes=[
                    f"{name}: rows are the attacked encoders (whose templates leaked), columns "
                    "the judging encoders (each at its own threshold); the diagonal (bold) is "
                    f"the attack on the system that leaked. Threat model: {access}.",
                ],
                kind="transfer",
                dataset=dataset,
            )
        )
    return tables


# ----------------------------------------------------------------------------- entry
def headline_tables(collected: Collected, host: PluginHost) -> list[HeadlineTable]:
    """Every leaderboard table of the ranked records in ``collected``.

    Per dataset: the headline tables, then the robustness tables, then the transfer
    tables; record links are relative to ``collected.root`` (the results folder).
    """
    root = collected.root
    ranked = list(collected.ranked)
    tables = _headline(ranked, root, host) + _robustness(ranked, root, host)
    tables += _transfer(ranked, root, host)
    order = {"headline": 0, "robustness": 1, "transfer": 2}
    return sorted(tables, key=lambda t: (t.dataset, order.get(t.kind, 3)))
