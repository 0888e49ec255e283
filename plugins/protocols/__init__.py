"""Built-in protocols."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_protocols(register: Register) -> None:
    """Register the built-in protocols."""
