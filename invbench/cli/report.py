"""``invbench report``: a static HTML site of the leaderboards and every record."""

from __future__ import annotations

from pathlib import Path

import click

from invbench.plugin_manager import get_host


@click.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("site"),
    show_default=True,
    help="The site's folder (created; a previous report there is replaced).",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Processes drawing record pages [default: the CPUs available, at most 4].",
)
def report(results: tuple[Path, ...], out: Path, jobs: int | None) -> None:
    """Build a static HTML report of the records under RESULTS (no server needed).

    The index shows the leaderboards and lists stale, failed, invalid and unverified
    records apart; each record gets a page with its command, code version, components,
    every metric with counts and 95 % intervals, the reconstruction grid, and ROC/DET,
    acceptance and score-histogram figures drawn from its saved scores. Pages link only
    to each other, so they open from file://.

    \b
    Examples:
      invbench report leaderboards/results --out site
      invbench report leaderboards/results leaderboards/robustness/results --out site
    """
    from invbench.report import build_report  # matplotlib is imported only when needed

    summary = build_report(list(results), out, get_host(), jobs=jobs)
    problems = (
        f", {len(summary.problems)} problem(s) listed on the index" if summary.problems else ""
    )
    click.echo(
        f"wrote {summary.pages} record page(s) and {summary.figures} figure(s) to "
        f"{out}/index.html in {summary.seconds:.1f}s{problems}"
    )
