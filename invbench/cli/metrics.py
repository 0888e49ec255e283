"""``invbench metrics``: recompute a record's metrics from its saved score files."""

from __future__ import annotations

from pathlib import Path

import click

from invbench.cli.common import echo_json, parse_args
from invbench.cli.tables import baseline_lines, metrics_table
from invbench.errors import InvbenchError
from invbench.plugin_manager import get_host
from invbench.records import load_record
from invbench.records.recompute import recompute


@click.command()
@click.argument("record_path", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--fmr",
    "--far",
    "rates",
    multiple=True,
    type=float,
    help="Operating point(s) to report instead of the recorded ones.",
)
@click.option(
    "--protocol-arg", multiple=True, metavar="[NAME.]KEY=VALUE", help="Protocol option override."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def metrics(
    record_path: Path, rates: tuple[float, ...], protocol_arg: tuple[str, ...], as_json: bool
) -> None:
    """Recompute metrics of RECORD_PATH (a record.json or its folder) from its scores.

    No model runs: the raw score files saved beside the record are enough.

    \b
    Examples:
      invbench metrics invbench-results/orl/arcface__dfd__train-dcgan-faces__quick__seed0
      invbench metrics RECORD --fmr 1e-4 --fmr 1e-3
    """
    path = record_path / "record.json" if record_path.is_dir() else record_path
    record = load_record(path)
    if record.status != "ok":
        raise InvbenchError(f"record {path} is a failed run: {record.error}")
    overrides = parse_args(protocol_arg, "--protocol-arg")
    new = recompute(record, path.parent, get_host().registry, overrides, list(rates))
    if as_json:
        echo_json({p: {k: m.model_dump() for k, m in ms.items()} for p, ms in new.items()})
        return
    click.echo(metrics_table(new))
    for line in baseline_lines(new):
        click.echo(line)
