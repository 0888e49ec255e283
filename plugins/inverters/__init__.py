"""Built-in inverters."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_inverters(register: Register) -> None:
    """Register the built-in inverters."""
