"""Headline leaderboard tables as data, independent of the renderer (Markdown, HTML).

:func:`headline_tables` turns collected records into :class:`HeadlineTable` objects: one per
evaluation dataset, attacked encoder, judging encoder, threat model and profile. The
Markdown renderer (:mod:`invbench.leaderboard.render`) and the HTML report both draw these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from invbench.leaderboard.collect import Collected
from invbench.plugin_manager import PluginHost


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, an optional note (footnote / hover) and link."""

    text: str
    note: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class HeadlineTable:
    """One headline table: title, FR system line, columns, rows, footnotes, details."""

    title: str
    system: list[Cell]
    columns: list[str]
    rows: list[list[Cell]]
    notes: list[str]
    details: list[list[Cell]] = field(default_factory=list)


def headline_tables(collected: Collected, host: PluginHost) -> list[HeadlineTable]:
    """The headline tables of the ranked records in ``collected`` (implementation pending)."""
    return []
