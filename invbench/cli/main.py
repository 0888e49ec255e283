"""The ``invbench`` command line: a click group, one module per subcommand."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from invbench import __version__
from invbench.cli.check_plugin import check_plugin
from invbench.cli.common import COMMAND
from invbench.cli.fetch import fetch
from invbench.cli.leaderboard import leaderboard
from invbench.cli.list_components import list_components
from invbench.cli.matrix import matrix
from invbench.cli.metrics import metrics
from invbench.cli.plugins import plugins
from invbench.cli.report import report
from invbench.cli.run import run
from invbench.errors import InvbenchError

#: The built-in subcommands.
BUILTIN_COMMANDS: tuple[click.Command, ...] = (
    run,
    list_components,
    plugins,
    leaderboard,
    check_plugin,
    metrics,
    fetch,
    matrix,
    report,
)

EPILOG = """\b
Quick start:
  invbench list                                   # what is installed
  invbench run --encoder arcface --inverter dfd   # the main job (offline, CPU minutes)
  invbench leaderboard --results invbench-results --out my-leaderboard
  invbench report leaderboards/results --out site # static HTML report with figures
  invbench check-plugin my-encoder                # conformance run for plugin authors
"""


class InvbenchGroup(click.Group):
    """A group that records its arguments and turns user errors into one clear line.

    Subcommands added by plugins (``register_commands``) are loaded on first need: when a
    name is not a built-in command, or when the help lists every command. Importing this
    module loads no plugin.
    """

    _plugins_added = False

    def _add_plugin_commands(self) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        from invbench.plugin_manager import get_host

        get_host().call_each("register_commands", cli=self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A built-in command, else one a plugin adds."""
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._add_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, plugins' included (for ``--help``)."""
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def main(self, args: Sequence[str] | None = None, *a: Any, **kw: Any) -> Any:
        """Run the CLI; InvbenchError becomes ``error: ...`` + ``hint: ...``, exit 2."""
        COMMAND[:] = ["invbench", *(sys.argv[1:] if args is None else list(args))]
        return super().main(args, *a, **kw)

    def invoke(self, ctx: click.Context) -> Any:
        """Invoke the subcommand, catching user errors."""
        try:
            return super().invoke(ctx)
        except InvbenchError as exc:
            click.echo(f"error: {exc}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(2)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=level, format="%(levelname).1s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    for noisy in ("PIL", "matplotlib", "urllib3", "tflite2onnx", "onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group(cls=InvbenchGroup, epilog=EPILOG)
@click.version_option(__version__, prog_name="invbench")
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
def cli(verbose: int, quiet: bool) -> None:
    """invbench: benchmark face template inversion attacks.

    Reconstruct faces from face-recognition templates with pluggable inverters, then
    measure how often the reconstructions are accepted as the person they came from.
    """
    _setup_logging(verbose, quiet)


for _command in BUILTIN_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli()
