"""Registers the tiny fake components (``fake-*``) used for smoke runs and conformance."""

from __future__ import annotations

from invbench.hookspecs import hookimpl
from invbench.registry import Register


@hookimpl
def register_encoders(register: Register) -> None:
    """Register the fake projection encoder."""
    register(
        "fake-projection",
        "invbench.testing.fakes:FakeProjectionEncoder",
        description="Toy: fixed random projection of 16x16 faces to 8-D (tests, smoke runs)",
    )


@hookimpl
def register_inverters(register: Register) -> None:
    """Register the fake inverters."""
    register(
        "fake-pinv",
        "invbench.testing.fakes:FakePseudoInverse",
        description="Toy: pseudo-inverse of fake-projection, a perfect attack",
    )
    register(
        "fake-linear",
        "invbench.testing.fakes:FakeLinearInverter",
        description="Toy: linear templates-to-pixels decoder trained with Adam",
    )


@hookimpl
def register_datasets(register: Register) -> None:
    """Register the fake face sets."""
    register(
        "fake-faces",
        "invbench.testing.fakes:FakeFaces",
        description="Toy: 6 identities x 3 noisy 16x16 patterns (evaluation)",
    )
    register(
        "fake-train-faces",
        "invbench.testing.fakes:FakeTrainFaces",
        description="Toy: 8 identities x 4 noisy 16x16 patterns (training)",
    )
