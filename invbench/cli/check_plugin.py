"""``invbench check-plugin``: conformance run of components on tiny fake data."""

from __future__ import annotations

import sys

import click

from invbench.cli.common import parse_args
from invbench.errors import InvbenchError
from invbench.plugin_manager import get_host
from invbench.testing.conformance import check_component


@click.command("check-plugin")
@click.argument("name")
@click.option("--family", default=None, help="Family, when NAME exists in several.")
@click.option(
    "--encoder",
    default="fake-projection",
    show_default=True,
    help="Encoder an inverter is checked against.",
)
@click.option("--device", default="cpu", show_default=True)
@click.option(
    "--arg",
    "args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option of the checked component on top of its smoke profile (e.g. path=...).",
)
def check_plugin(
    name: str, family: str | None, encoder: str, device: str, args: tuple[str, ...]
) -> None:
    """Check that component NAME (or every component of plugin NAME) meets its contract.

    Runs on tiny fake data in seconds: shapes, value ranges, unit-norm templates,
    determinism, gradients, fit/invert/save/load round trips, protocol metrics that can
    be recomputed from saved scores. Exit status 1 when a check fails.

    \b
    Examples:
      invbench check-plugin fake-linear
      invbench check-plugin dfd --encoder arcface
      invbench check-plugin my_plugin_package      # every component it registers
      invbench check-plugin folder --arg path=/data/faces
    """
    options = parse_args(args, "--arg").get("*", {})
    registry = get_host().registry
    entries = [e for e in registry.entries() if e.provider == name]
    if not entries:
        families = (
            [family]
            if family
            else [f for f in ("encoder", "inverter", "protocol", "dataset", "aligner", "generator")]
        )
        entries = []
        for fam in families:
            try:
                entries.append(registry.get(fam, name))
            except InvbenchError:
                continue
        if not entries:
            known = sorted(
                {e.name for e in registry.entries()} | {e.provider for e in registry.entries()}
            )
            raise InvbenchError(
                f"no component or plugin named {name!r}", hint=f"known: {', '.join(known)}"
            )
    failed = 0
    for entry in entries:
        click.echo(f"{entry.family} {entry.name} (plugin {entry.provider})")
        for check in check_component(
            registry, entry.family, entry.name, device=device, encoder=encoder, options=options
        ):
            mark = "PASS" if check.passed else "FAIL"
            click.echo(f"  {mark} {check.name}" + (f": {check.detail}" if check.detail else ""))
            failed += not check.passed
    if failed:
        click.echo(f"{failed} check(s) failed", err=True)
        sys.exit(1)
    click.echo("all checks passed")
