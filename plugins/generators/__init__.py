"""Built-in generators."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_generators(register: Register) -> None:
    """Register the built-in generators."""
