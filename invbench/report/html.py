"""Small HTML building blocks of the report: escaping, tables, the page skeleton, the CSS.

Pages are plain HTML5 with one stylesheet beside them (``style.css``) and no script, font or
anything else fetched from elsewhere, so a report opens from ``file://`` and can be zipped,
uploaded as a CI artefact or served by any static host.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from urllib.parse import quote

#: The stylesheet every page links (written once to the site's root).
CSS = """\
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto;
       max-width: 78em; padding: 0 1em; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05em; margin-top: 1.2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.85em; }
th, td { border: 1px solid #d0d0d0; padding: 0.2em 0.5em; text-align: left;
         vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.reference td { color: #555; font-style: italic; }
[title] { text-decoration: underline dotted #999; cursor: help; }
a[title] { cursor: pointer; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; white-space: pre-wrap; }
.muted { color: #666; }
.banner { background: #fff3cd; border: 1px solid #e0c36a; padding: 0.5em; }
.error { background: #fde2e1; border: 1px solid #e6a3a0; padding: 0.5em; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.8em; color: #555; max-width: 36em; }
img.grid { max-width: 100%; image-rendering: pixelated; }
details { margin: 0.5em 0; }
summary { cursor: pointer; color: #134e8c; }
ol.notes { font-size: 0.85em; }
.sub { font-size: 0.8em; color: #666; }
p.system { font-size: 0.9em; }
nav { font-size: 0.9em; margin-bottom: 1em; }
"""


def esc(value: object) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def href(path: str) -> str:
    """A relative link target: each path segment percent-encoded, ``/`` kept."""
    return quote(path, safe="/#")


def link(text: str, target: str, title: str | None = None) -> str:
    """``<a href=target>text</a>`` (``text`` is escaped; ``target`` is a relative path or URL)."""
    url = target if "://" in target else href(target)
    attr = f' title="{esc(title)}"' if title else ""
    return f'<a href="{esc(url)}"{attr}>{esc(text)}</a>'


def hover(text: str, title: str | None) -> str:
    """``text`` escaped, in a ``<span title>`` when there is a ``title`` to show on hover."""
    return f'<span title="{esc(title)}">{esc(text)}</span>' if title else esc(text)


def hover_html(snippet: str, title: str | None) -> str:
    """An HTML ``snippet`` in a ``<span title>`` when there is a ``title`` to show on hover."""
    return f'<span title="{esc(title)}">{snippet}</span>' if title else snippet


def table(
    header: Sequence[str] | None,
    rows: Iterable[Sequence[str]],
    *,
    cls: str | None = None,
    row_attrs: Sequence[str] | None = None,
    numeric: Sequence[int] = (),
) -> str:
    """An HTML table; ``header`` cells are escaped here, ``rows`` cells are HTML already.

    Args:
        header: Column titles (plain text), or ``None`` for a table without a header.
        rows: Rows of HTML snippets.
        cls: The table's class attribute.
        row_attrs: Per row, attributes for its ``<tr>`` (e.g. ``class="reference"``).
        numeric: Column indices aligned right (numbers).
    """
    head = "".join(f"<th>{esc(h)}</th>" for h in header or ())
    body = []
    for i, row in enumerate(rows):
        attrs = f" {row_attrs[i]}" if row_attrs and row_attrs[i] else ""
        cells = "".join(
            f'<td class="num">{c}</td>' if j in numeric else f"<td>{c}</td>"
            for j, c in enumerate(row)
        )
        body.append(f"<tr{attrs}>{cells}</tr>")
    cls_attr = f' class="{esc(cls)}"' if cls else ""
    thead = f"<thead><tr>{head}</tr></thead>" if header else ""
    return f"<table{cls_attr}>{thead}<tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: str, *, root: str) -> str:
    """A complete HTML page linking ``style.css`` at ``root`` (a relative path ending in /)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title>"
        f'<link rel="stylesheet" href="{root}style.css"></head>\n'
        f"<body>\n{body}\n</body></html>\n"
    )
