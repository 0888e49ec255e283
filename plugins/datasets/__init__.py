"""Built-in datasets."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_datasets(register: Register) -> None:
    """Register the built-in datasets."""
