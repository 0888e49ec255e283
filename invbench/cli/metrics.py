"""``invbench metrics``: recompute a record's metrics from its saved score files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from invbench.cli.common import echo_json, parse_args
from invbench.cli.report import baseline_lines, metrics_table
from invbench.components.protocol import Metric
from invbench.errors import InvbenchError
from invbench.plugin_manager import get_host
from invbench.records import Record, load_record

#: Option names a protocol may use for its list of operating points.
RATE_OPTIONS = ("fars", "fmrs")


def recompute(
    record: Record, folder: Path, overrides: dict[str, dict[str, Any]], rates: list[float]
) -> dict[str, dict[str, Metric]]:
    """Recompute every protocol's metrics from the score files beside ``record``.

    Args:
        record: The loaded record.
        folder: The record's folder (score paths are relative to it).
        overrides: ``{scope: {option: value}}`` protocol option overrides.
        rates: New FAR/FMR operating points (empty: keep the recorded ones).
    """
    registry = get_host().registry
    out = {}
    for role, info in record.components.items():
        if not role.startswith("protocol:"):
            continue
        cls: Any = registry.load("protocol", info.name)
        options = {**info.options, **overrides.get("*", {}), **overrides.get(info.name, {})}
        if rates:
            for key in RATE_OPTIONS:
                if key in cls.Options.model_fields:
                    options[key] = rates
        protocol = cls(cls.make_options(options))
        files = record.scores.get(info.name, {})
        scores = {}
        for name, rel in files.items():
            path = folder / rel
            if not path.is_file():
                raise InvbenchError(
                    f"score file {path} is missing",
                    hint="re-run the cell to write its scores again",
                )
            scores[name] = np.load(path, allow_pickle=False)
        out[info.name] = protocol.metrics(scores)
    return out


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
    new = recompute(record, path.parent, parse_args(protocol_arg, "--protocol-arg"), list(rates))
    if as_json:
        echo_json({p: {k: m.model_dump() for k, m in ms.items()} for p, ms in new.items()})
        return
    click.echo(metrics_table(new))
    for line in baseline_lines(new):
        click.echo(line)
