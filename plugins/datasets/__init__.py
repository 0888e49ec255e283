"""Built-in datasets."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_datasets(register: Register) -> None:
    """Register the built-in datasets."""
    register(
        "orl",
        "invbench_plugins.datasets.orl:ORLDataset",
        description="ORL / AT&T faces: 40 people x 10 grey photos (92x112), real",
    )
    register(
        "dcgan-faces",
        "invbench_plugins.datasets.dcgan_faces:DCGANFacesDataset",
        description="Seeded synthetic 64x64 DCGAN faces, aligned, no identities (non-commercial)",
    )
    register(
        "folder",
        "invbench_plugins.datasets.folder:FolderDataset",
        description="Face images in identity sub-folders under a local path",
    )
    register(
        "lfw",
        "invbench_plugins.datasets.folder:LFWDataset",
        description="Labeled Faces in the Wild from a local copy (standard or sklearn layout)",
    )
