"""``invbench matrix``: attacked encoders x judging encoders for one inverter.

Runs the grid ``--encoder A --encoder B ... --eval-encoder A --eval-encoder B ...`` (cached
like every run) and prints one table per measure: rows are the attacked encoders (whose
leaked templates are inverted; with ``--surrogate`` through an adapter), columns the judging
encoders (each at its own threshold, from its own real impostor scores). The diagonal is the
attack on the system that leaked; the mean off-diagonal value is the transfer headline. The
tables are also written as ``matrix.md`` and ``matrix.csv`` in the results folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import pandas as pd
from tabulate import tabulate

from invbench.cli.run import execute, plan, run
from invbench.components import Metric
from invbench.errors import InvbenchError
from invbench.io import atomic_write_bytes
from invbench.metrics.thresholds import format_alpha
from invbench.records import Record

#: ``(protocol, metric template)`` shown, in order; ``{alpha}`` is the ``--fmr``.
MEASURES = (("sar", "sar@fmr={alpha}"), ("type1", "tar_type1@far={alpha}"))


def _cell(metric: Metric | None) -> str:
    if metric is None:
        return "n/a"
    if metric.value is None:
        return "unavailable"
    return f"{100 * metric.value:.1f} % ({metric.count}/{metric.n})"


def matrix_tables(records: list[Record], fmr: float = 1e-3) -> tuple[list[str], pd.DataFrame]:
    """Markdown lines (one table per measure at ``fmr``) and the long-form frame of values.

    A cell whose record failed reads ``n/a``; one whose metric is unavailable reads
    ``unavailable`` and the reasons are listed under the table.
    """
    attacked = list(dict.fromkeys(r.cell.encoder for r in records))
    judged = list(dict.fromkeys(r.cell.eval_encoder for r in records))
    lines, rows = [], []
    for protocol, template in MEASURES:
        name = template.format(alpha=format_alpha(fmr))
        grid: dict[tuple[str, str], Metric | None] = {}
        for r in records:
            m = r.metrics.get(protocol, {}).get(name) if r.status == "ok" else None
            grid[(r.cell.encoder, r.cell.eval_encoder)] = m
            rows.append(
                {
                    "measure": f"{protocol}/{name}",
                    "attacked": r.cell.encoder,
                    "judged by": r.cell.eval_encoder,
                    "access": r.threat.get("access", "undeclared") if r.threat else "undeclared",
                    "value": None if m is None else m.value,
                    "count": None if m is None else m.count,
                    "n": None if m is None else m.n,
                }
            )
        table = []
        for a in attacked:
            cells = [_cell(grid.get((a, j))) for j in judged]
            table.append(
                [a] + [f"**{c}**" if a == j else c for c, j in zip(cells, judged, strict=True)]
            )
        off = [m.value for (a, j), m in grid.items() if a != j and m and m.value is not None]
        mean = (
            f"Mean off-diagonal (transfer): {100 * sum(off) / len(off):.1f} % over {len(off)} "
            "pair(s)."
            if off
            else "No off-diagonal cell has a value."
        )
        reasons = sorted(
            {
                f"{a} judged by {j}: {m.unavailable}"
                for (a, j), m in grid.items()
                if m and m.unavailable
            }
        )
        lines += [
            f"### {name} (rows: attacked encoder; columns: judging encoder; diagonal in bold)",
            "",
            tabulate(table, headers=["attacked \\ judged", *judged], tablefmt="github"),
            "",
            mean,
            "",
            *(f"- unavailable: {r}" for r in reasons),
            *([""] if reasons else []),
        ]
    return lines, pd.DataFrame(rows)


def _unset(param: click.Parameter) -> Any:
    """What ``invbench run`` receives for an option the user did not give."""
    if getattr(param, "multiple", False):
        return ()
    return False if getattr(param, "is_flag", False) else None


@click.command()
@click.option("--encoder", "encoders", multiple=True, required=True, help="Encoders (>= 2).")
@click.option("--inverter", required=True, help="The inverter.")
@click.option("--surrogate", "surrogates", multiple=True, help="Attack through an adapter.")
@click.option("--adapter", type=click.Choice(["ridge", "mlp"]), default=None)
@click.option("--dataset", "datasets", multiple=True, help="Evaluation dataset.")
@click.option("--train-dataset", "train_datasets", multiple=True, help="Training dataset.")
@click.option("--seed", "seeds", multiple=True, type=int)
@click.option("--profile", default=None, help="quick (default), paper or smoke.")
@click.option(
    "--fmr",
    type=float,
    default=1e-3,
    show_default=True,
    help="Operating point of the tables (one of the protocols' fars).",
)
@click.option("--device", default=None)
@click.option("--out", type=click.Path(path_type=Path), default=None)
@click.option("--no-cache", is_flag=True)
@click.option("--no-progress", is_flag=True)
@click.option("--workers", type=int, default=None, help="Local Dask worker processes.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="A Dask scheduler.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Threads per cell.")
@click.option("--encoder-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
@click.option("--inverter-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
@click.option("--protocol-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
def matrix(**given: Any) -> None:
    """Attack every encoder and judge every attack with every encoder: the transfer matrix.

    \\b
    Examples:
      invbench matrix --encoder arcface --encoder dlib --encoder mobileface --inverter dfd
      invbench matrix --encoder arcface --encoder dlib --inverter dfd --surrogate arcface
    """
    if len(given["encoders"]) < 2:
        raise InvbenchError("invbench matrix needs at least two --encoder")
    kw: dict[str, Any] = {p.name: _unset(p) for p in run.params if p.name is not None}
    for key, value in given.items():
        if value not in (None, ()):
            kw[key] = value
    kw["inverters"] = (given["inverter"],)
    kw["eval_encoders"] = given["encoders"]
    kw["protocols"] = tuple(p for p, _ in MEASURES)
    kw.pop("fmr", None)
    if not any("fars" in a for a in given["protocol_arg"]) and given["fmr"] not in (1e-2, 1e-3):
        raise InvbenchError(
            f"--fmr {given['fmr']:g} is not computed by default (1e-2, 1e-3); add "
            f"--protocol-arg fars=[{given['fmr']:g}]"
        )
    cells, host, cache = plan(kw)
    records = execute(
        cells,
        host,
        cache,
        progress=not kw["no_progress"],
        workers=kw["workers"],
        scheduler=kw["scheduler"],
        threads=kw["threads"],
    )
    lines, frame = matrix_tables(records, given["fmr"])
    title = f"# Attack matrix: {given['inverter']} on {records[0].cell.dataset}"
    click.echo("\n".join([title, "", *lines]))
    out = cells[0].out
    atomic_write_bytes(out / "matrix.md", ("\n".join([title, "", *lines]) + "\n").encode())
    atomic_write_bytes(out / "matrix.csv", frame.to_csv(index=False).encode())
    click.echo(f"matrix written to {out / 'matrix.md'} and {out / 'matrix.csv'}")
    if any(r.status != "ok" for r in records):
        sys.exit(1)
