"""Registers the tiny fake components (``fake-*``) used for smoke runs and conformance."""

from __future__ import annotations

from invbench.hookspecs import Register, hookimpl


@hookimpl
def register_encoders(register: Register) -> None:
    """Register the fake encoders."""
    register("fake-projection", "invbench.testing.fakes:FakeProjectionEncoder")
    register("fake-conv", "invbench.testing.fakes:FakeConvEncoder")


@hookimpl
def register_inverters(register: Register) -> None:
    """Register the fake inverters."""
    register("fake-pinv", "invbench.testing.fakes:FakePseudoInverse")
    register("fake-linear", "invbench.testing.fakes:FakeLinearInverter")


@hookimpl
def register_datasets(register: Register) -> None:
    """Register the fake face sets."""
    register("fake-faces", "invbench.testing.fakes:FakeFaces")
    register("fake-train-faces", "invbench.testing.fakes:FakeTrainFaces")


@hookimpl
def register_generators(register: Register) -> None:
    """Register the fake generator."""
    register("fake-generator", "invbench.testing.fakes:FakeGenerator")
