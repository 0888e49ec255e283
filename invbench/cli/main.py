"""The ``invbench`` command line: a click group, one module per subcommand."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from invbench import __version__
from invbench.errors import InvbenchError

#: The arguments of the running command, recorded in result records.
COMMAND: list[str] = []

EPILOG = """\b
Quick start:
  invbench list                                   # what is installed
  invbench run --encoder arcface --inverter dfd   # the main job (offline, CPU minutes)
  invbench leaderboard --results invbench-results --out my-leaderboard
  invbench check-plugin my-encoder                # conformance run for plugin authors
"""


class InvbenchGroup(click.Group):
    """A group that records its arguments and turns user errors into one clear line."""

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


def _add_commands() -> None:
    from invbench.cli.check_plugin import check_plugin
    from invbench.cli.fetch import fetch
    from invbench.cli.leaderboard import leaderboard
    from invbench.cli.list_components import list_components
    from invbench.cli.metrics import metrics
    from invbench.cli.plugins import plugins
    from invbench.cli.run import run

    for command in (run, list_components, plugins, leaderboard, check_plugin, metrics, fetch):
        cli.add_command(command)
    from invbench.plugin_manager import get_host

    get_host().pm.hook.register_commands(cli=cli)


_add_commands()


def main() -> None:
    """Console-script entry point."""
    cli()
