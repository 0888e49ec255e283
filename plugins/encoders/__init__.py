"""Built-in encoders."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_encoders(register: Register) -> None:
    """Register the built-in encoders."""
