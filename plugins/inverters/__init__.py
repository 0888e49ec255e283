"""Built-in inverters."""

from __future__ import annotations

from invbench.hookspecs import Register, hookimpl


@hookimpl
def register_inverters(register: Register) -> None:
    """Register the built-in inverters."""
    register("dfd", "invbench_plugins.inverters.dfd:DFDInverter")
    register("nbnet-a", "invbench_plugins.inverters.nbnet:NbNetAInverter")
    register("nbnet-b", "invbench_plugins.inverters.nbnet:NbNetBInverter")
    register("dcnn", "invbench_plugins.inverters.nbnet:DcnnInverter")
    register("icip2022", "invbench_plugins.inverters.icip2022:Icip2022Inverter")
    register("mlp-stylegan", "invbench_plugins.inverters.mlp_stylegan:MLPStyleGAN")
    register("ridge", "invbench_plugins.inverters.ridge:RidgeInverter")
    register("nearest-face", "invbench_plugins.inverters.nearest_face:NearestFaceInverter")
    register("latent-opt", "invbench_plugins.inverters.latent_opt:LatentOptInverter")
