"""Built-in protocols (registered lazily: nothing is imported until a protocol is used)."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_protocols(register: Register) -> None:
    """Register the built-in protocols."""
    register(
        "type1",
        "invbench_plugins.protocols.type1:TypeIProtocol",
        description="Type-I TAR at FAR (reconstruction vs its source image), "
        "real 'Original' TAR, identity similarity, rank-1, template-ignoring baseline",
    )
    register(
        "type2",
        "invbench_plugins.protocols.type2:TypeIIProtocol",
        description="Type-II TAR at FAR per pair (reconstruction vs other images of the "
        "same identity), identity similarity, rank-1, baseline",
    )
    register(
        "sar",
        "invbench_plugins.protocols.sar:SARProtocol",
        description="ICIP'22 success attack rate at the system's FMR thresholds against "
        "enrolled references, with counts and Clopper-Pearson CI, system TMR, baseline",
    )
    register(
        "image-quality",
        "invbench_plugins.protocols.image_quality:ImageQualityProtocol",
        description="PSNR, SSIM (Wang 2004, Gaussian 11x11) and LPIPS-alex (or the reason "
        "it is unavailable) between reconstructions and their source images",
    )
