"""Built-in aligners."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_aligners(register: Register) -> None:
    """Register the built-in aligners."""
