"""Built-in aligners."""

from __future__ import annotations

from invbench.hookspecs import Register, hookimpl


@hookimpl
def register_aligners(register: Register) -> None:
    """Register the built-in aligners."""
    register("mtcnn", "invbench_plugins.aligners.mtcnn:MTCNNAligner")
    register("resize", "invbench_plugins.aligners.resize:ResizeAligner")
