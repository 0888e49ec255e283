"""Built-in inverters."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_inverters(register: Register) -> None:
    """Register the built-in inverters."""
    register(
        "dfd",
        "invbench_plugins.inverters.dfd:DFDInverter",
        description="DFD, Deep Face Decoder (Križaj et al., EAAI 2024): inverted-VGG "
        "decoder, pixel + gradient + perceptual loss",
    )
