"""Built-in generators."""

from __future__ import annotations

from invbench.hookspecs import Register, hookimpl


@hookimpl
def register_generators(register: Register) -> None:
    """Register the built-in generators."""
    register("dcgan-faces", "invbench_plugins.generators.dcgan:DCGANFacesGenerator")
    register("stylegan2", "invbench_plugins.generators.stylegan2:StyleGAN2Generator")
