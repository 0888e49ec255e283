"""Built-in aligners."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_aligners(register: Register) -> None:
    """Register the built-in aligners."""
    register(
        "mtcnn",
        "invbench_plugins.aligners.mtcnn:MTCNNAligner",
        description="MTCNN detector + 5-point similarity alignment to the ArcFace template",
    )
    register(
        "resize",
        "invbench_plugins.aligners.resize:ResizeAligner",
        description="Resize already-aligned crops to the output size (no detection)",
    )
