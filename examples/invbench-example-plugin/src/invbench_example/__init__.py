"""An example invbench plugin: an encoder, two inverters and a protocol, through hooks."""

from __future__ import annotations

from invbench import hookimpl


@hookimpl
def register_encoders(register):  # noqa: ANN001, ANN201
    """Register the example encoder lazily: its module is imported when a run uses it."""
    register("example-pixels", "invbench_example.components:PixelEncoder")


@hookimpl
def register_inverters(register):  # noqa: ANN001, ANN201
    """Register the example inverters (as classes: importing them here is cheap)."""
    from invbench_example.components import MLPDecoder, RidgeInverter

    register(RidgeInverter)
    register(MLPDecoder)


@hookimpl
def register_protocols(register):  # noqa: ANN001, ANN201
    """Register the example protocol (not a default one: ask for it with --protocol)."""
    register("example-cosine", "invbench_example.components:CosineProtocol")
