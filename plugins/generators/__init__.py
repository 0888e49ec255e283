"""Built-in generators."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_generators(register: Register) -> None:
    """Register the built-in generators."""
    register(
        "dcgan-faces",
        "invbench_plugins.generators.dcgan:DCGANFacesGenerator",
        description="DCGAN (Radford et al., ICLR 2016) 64x64 synthetic faces (DigiFace-1M; "
        "non-commercial research)",
    )
    register(
        "stylegan2",
        "invbench_plugins.generators.stylegan2:StyleGAN2Generator",
        description="StyleGAN2 (Karras et al., CVPR 2020): rosinality g_ema checkpoint given by "
        "path, W+ latents",
    )
