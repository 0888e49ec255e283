"""An example invbench plugin: one encoder and one inverter, registered through hooks."""

from __future__ import annotations

from invbench import hookimpl


@hookimpl
def register_encoders(register):  # noqa: ANN001, ANN201
    """Register the example encoder (lazily: imported only when a run uses it)."""
    register("example-pixels", "invbench_example.components:PixelEncoder")


@hookimpl
def register_inverters(register):  # noqa: ANN001, ANN201
    """Register the example inverter (as a class: importing it here is cheap)."""
    from invbench_example.components import RidgeInverter

    register(RidgeInverter)
