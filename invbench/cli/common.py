"""Helpers shared by the CLI subcommands: k=v parsing, config files, output."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import click

from invbench.errors import InvbenchError

#: The arguments of the running command (set by the ``invbench`` group), recorded in records.
COMMAND: list[str] = []


def parse_value(text: str) -> Any:
    """Parse a CLI option value: JSON when it parses (numbers, lists, true), else a string.

    >>> parse_value("3"), parse_value("[0.01, 0.001]"), parse_value("vgg")
    (3, [0.01, 0.001], 'vgg')
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_args(pairs: tuple[str, ...] | list[str], flag: str) -> dict[str, dict[str, Any]]:
    """Parse ``k=v`` / ``NAME.k=v`` pairs into ``{scope: {k: v}}`` (scope ``*`` = all).

    Raises:
        InvbenchError: On a pair without ``=``.
    """
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvbenchError(
                f"{flag} {pair!r} is not KEY=VALUE",
                hint=f"write e.g. {flag} epochs=3 (or {flag} NAME.epochs=3 for one component)",
            )
        scope, dot, name = key.partition(".")
        if not dot:
            scope, name = "*", key
        out.setdefault(scope, {})[name] = parse_value(value)
    return out


def load_config(path: Path | None) -> dict[str, Any]:
    """Read a TOML run config (keys as the long CLI options; ``[options.<role>]`` tables).

    Raises:
        InvbenchError: When the file cannot be read or parsed.
    """
    if path is None:
        return {}
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvbenchError(f"cannot read config {path}: {exc}") from None


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
