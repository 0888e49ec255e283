"""``invbench plugins``: the loaded plugins, their hooks, and the ones that failed."""

from __future__ import annotations

import click

from invbench.cli.common import echo_json
from invbench.plugin_manager import get_host


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """Show loaded plugins (built-in and third-party) and any that failed to load.

    Switches: INVBENCH_DISABLE_PLUGINS=a,b blocks plugins; INVBENCH_LOAD_PLUGINS=a,b loads
    only those third-party plugins; INVBENCH_TRACE_PLUGINS=1 logs every hook call.
    """
    host = get_host()
    host.registry  # noqa: B018  (building the registry runs the register hooks)
    info = host.plugin_info()
    failures = [vars(f) for f in host.failures]
    if as_json:
        echo_json({"plugins": info, "failures": failures})
        return
    for row in info:
        click.echo(
            f"{row['name']}  ({row['dist']} {row['version']}): "
            f"{', '.join(row['hooks']) or 'no hooks'}"
        )
    for f in failures:
        click.echo(f"FAILED {f['plugin']} ({f['stage']}): {f['error']}")
