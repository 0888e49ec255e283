"""Built-in datasets."""

from __future__ import annotations

from invbench.hookspecs import Register, hookimpl


@hookimpl
def register_datasets(register: Register) -> None:
    """Register the built-in datasets."""
    register("orl", "invbench_plugins.datasets.orl:ORLDataset")
    register("dcgan-faces", "invbench_plugins.datasets.dcgan_faces:DCGANFacesDataset")
    register("folder", "invbench_plugins.datasets.folder:FolderDataset")
    register("lfw", "invbench_plugins.datasets.folder:LFWDataset")
