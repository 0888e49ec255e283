"""``invbench leaderboard``: render Markdown and CSV leaderboards from result records."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from invbench.leaderboard.collect import collect
from invbench.leaderboard.render import render, stale_files, write_files
from invbench.plugin_manager import get_host


@click.command()
@click.option(
    "--results",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("leaderboards/results"),
    show_default=True,
    help="Folder searched (recursively) for record.json files.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("leaderboards"),
    show_default=True,
    help="Where the .md and .csv tables go.",
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 when the tables on disk are stale."
)
def leaderboard(results: Path, out: Path, check: bool) -> None:
    """Render leaderboards from result records (tables are never edited by hand).

    One table per dataset, attacked encoder, judging encoder, threat model and profile
    (plus robustness and transfer tables where such records exist); a CSV per dataset with
    every metric. Failed, stale (a component's version changed), invalid (unreadable, not
    valid against the schema, or metrics that differ from their saved scores) and
    unverified (not reproducible from public code) records are listed under the tables,
    never ranked. ``--check`` fails on any invalid record, one line per file.

    \b
    Examples:
      invbench leaderboard
      invbench leaderboard --check
      invbench leaderboard --results invbench-results --out my-board
    """
    host = get_host()
    collected = collect(results, host)
    files = render(collected, out, host)
    if check:
        for _, why in collected.invalid:
            click.echo(f"invalid record: {why}", err=True)
        stale = stale_files(files, out)
        if collected.invalid:
            sys.exit(1)
        if stale:
            click.echo(
                f"leaderboards are stale: {', '.join(stale)}; run `invbench leaderboard "
                f"--results {results} --out {out}`",
                err=True,
            )
            sys.exit(1)
        click.echo(
            f"leaderboards in {out} are up to date ({len(collected.ranked)} ranked record(s))"
        )
        return
    write_files(files, out)
    click.echo(
        f"wrote {len(files)} file(s) to {out}: {len(collected.ranked)} ranked, "
        f"{len(collected.unverified)} unverified, {len(collected.stale)} stale, "
        f"{len(collected.failed)} failed, {len(collected.invalid)} invalid record(s)"
    )
