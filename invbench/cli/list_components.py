"""``invbench list``: the registered components."""

from __future__ import annotations

import click
from tabulate import tabulate

from invbench.cli.common import echo_json
from invbench.components import FAMILIES
from invbench.plugin_manager import get_host


@click.command("list")
@click.argument("family", required=False, type=click.Choice(sorted(FAMILIES)))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_components(family: str | None, as_json: bool) -> None:
    """List registered components (all families, or one FAMILY).

    \b
    Examples:
      invbench list
      invbench list inverter
      invbench list --json
    """
    host = get_host()
    entries = host.registry.entries(family)
    if as_json:
        echo_json([e.as_dict() for e in entries])
        return
    rows = [[e.family, e.name, e.description(), e.provider] for e in entries]
    click.echo(
        tabulate(rows, headers=["family", "name", "description", "plugin"], tablefmt="simple")
    )
