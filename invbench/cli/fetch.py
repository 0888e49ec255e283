"""``invbench fetch``: download and verify the assets a run needs, ahead of time."""

from __future__ import annotations

import click

from invbench.plugin_manager import get_host
from invbench.runner.grid import default_aligner, default_dataset


@click.command()
@click.option("--encoder", "encoders", multiple=True, default=("arcface",), show_default=True)
@click.option("--inverter", "inverters", multiple=True, default=(), help="Inverters.")
@click.option("--dataset", "datasets", multiple=True, help="Datasets (default: the default ones).")
@click.option("--aligner", "aligners", multiple=True, help="Aligners (default: the default one).")
@click.option("--generator", "generators", multiple=True, default=(), help="Generators.")
@click.option("--all", "everything", is_flag=True, help="Every registered component's assets.")
def fetch(
    encoders: tuple[str, ...],
    inverters: tuple[str, ...],
    datasets: tuple[str, ...],
    aligners: tuple[str, ...],
    generators: tuple[str, ...],
    everything: bool,
) -> None:
    """Pre-fetch the pinned assets (weights, face data) of components, verified by sha256.

    With no options: everything the main job (`invbench run --encoder arcface --inverter
    dfd`) needs. Afterwards runs work offline.
    """
    registry = get_host().registry
    datasets = datasets or (
        default_dataset(registry, "evaluation"),
        default_dataset(registry, "training"),
    )
    aligners = aligners or (default_aligner(registry),)
    if everything:
        wanted = [(e.family, e.name) for e in registry.entries()]
    else:
        wanted = [("encoder", n) for n in encoders] + [("inverter", n) for n in inverters]
        wanted += [("dataset", n) for n in datasets] + [("aligner", n) for n in aligners]
        wanted += [("generator", n) for n in generators]
    seen: set[str] = set()
    for family, name in wanted:
        for line in registry.load(family, name).fetch_assets():
            if line not in seen:
                seen.add(line)
                click.echo(line)
    if not seen:
        click.echo("these components need no assets")
