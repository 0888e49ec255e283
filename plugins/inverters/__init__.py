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
    register(
        "nbnet-a",
        "invbench_plugins.inverters.nbnet:NbNetAInverter",
        description="NbNet-A (Mai et al., TPAMI 2018): neighborly deconvolution blocks, "
        "ConvOPs in a chain; MAE then perceptual loss",
    )
    register(
        "nbnet-b",
        "invbench_plugins.inverters.nbnet:NbNetBInverter",
        description="NbNet-B (Mai et al., TPAMI 2018): neighborly deconvolution blocks, "
        "densely connected ConvOPs; MAE then perceptual loss",
    )
    register(
        "dcnn",
        "invbench_plugins.inverters.nbnet:DcnnInverter",
        description="D-CNN, the plain deconvolution baseline of NbNet (Mai et al., TPAMI 2018)",
    )
    register(
        "icip2022",
        "invbench_plugins.inverters.icip2022:Icip2022Inverter",
        description="ICIP'22 CNN (Otroshi Shahreza et al., ICIP 2022): deconv + residual conv "
        "blocks, MSE + DSSIM + white-box ID loss",
    )
    register(
        "mlp-stylegan",
        "invbench_plugins.inverters.mlp_stylegan:MLPStyleGAN",
        description="Latent-space MLP into a frozen generator (Ren et al., TIFS 2024): "
        "W+ residual branches, rec/per/id/guide/reg losses",
    )
