"""Every registered component passes its conformance checks with its smoke profile.

Parametrised over the registry, so a new component is checked without a new test, and a
component whose smoke profile is missing (and so trains the paper's settings) shows up as
a slow test. Components that fetch pinned assets run in the slow set; components that need
user data (a folder of faces, a StyleGAN2 checkpoint) get tiny generated data.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from invbench import Component, Inverter
from invbench.plugin_manager import create_plugin_manager
from invbench.testing.conformance import check_component

HOST = create_plugin_manager(entry_points=False)

#: Inverters that decode through a generator whose weights are a pinned asset.
USES_ASSET_GENERATOR = {"mlp-stylegan"}


def fetches_assets(cls: type[Component]) -> bool:
    """Whether building the component fetches pinned files."""
    return bool(cls.assets) or cls.fetch_assets.__func__ is not Component.fetch_assets.__func__


def cases():
    for entry in HOST.registry.entries():
        cls = entry.load()
        slow = fetches_assets(cls) or entry.name in USES_ASSET_GENERATOR
        marks = [pytest.mark.slow, pytest.mark.assets] if slow else []
        yield pytest.param(entry.family, entry.name, marks=marks, id=f"{entry.family}-{entry.name}")


def _faces(root: Path, layout: str) -> Path:
    rng = np.random.default_rng(0)
    for person in ("Ann_Lee", "Bo_Chen"):
        folder = root / person if layout == "folder" else root / "lfw" / person
        folder.mkdir(parents=True)
        for k in range(2):
            pixels = rng.integers(0, 256, (40, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{person}_{k + 1:04d}.jpg")
    return root


@pytest.fixture
def data_options(tmp_path):
    """Options that point data-hungry components at tiny generated data."""

    def options(name: str) -> dict:
        if name == "folder":
            return {"path": str(_faces(tmp_path, "folder"))}
        if name == "lfw":
            return {"path": str(_faces(tmp_path, "lfw") / "lfw")}
        if name == "onnx":
            from tests.test_encoder_onnx import SIZE, Net, export

            path = export(Net(), tmp_path / "tiny.onnx")
            return {"path": str(path), "input_size": [SIZE, SIZE]}
        if name == "insightface":
            pytest.importorskip("insightface")
            from tests.test_encoder_insightface import tiny_pack

            return {"root": str(tiny_pack(tmp_path)), "pack": "tiny_pack"}
        if name == "stylegan2":
            from tests.test_generator_stylegan2 import STYLE_DIM, tiny_model

            model = tiny_model()
            w_avg = model.mapping(torch.randn(64, STYLE_DIM)).mean(0).detach()
            path = tmp_path / "tiny.pt"
            torch.save({"g_ema": model.state_dict(), "latent_avg": w_avg}, path)
            return {"path": str(path)}
        return {}

    return options


def test_no_plugin_failed_to_load():
    assert HOST.failures == []


@pytest.mark.parametrize(("family", "name"), list(cases()))
def test_component_conforms(family, name, data_options):
    checks = check_component(HOST.registry, family, name, options=data_options(name))
    failed = [c for c in checks if not c.passed]
    assert not failed, failed
    assert len(checks) >= 3, checks  # imports, builds, and at least one contract check


@pytest.mark.parametrize(
    "name", [e.name for e in HOST.registry.entries("inverter") if e.load().requires_training]
)
def test_every_trained_inverter_has_quick_and_smoke_profiles(name):
    cls = HOST.registry.load("inverter", name)
    assert issubclass(cls, Inverter)
    assert {"smoke"} <= set(cls.profiles), f"{name} has no smoke profile: checks would train it"
    if not name.startswith("fake-"):
        assert "quick" in cls.profiles, f"{name} has no quick profile (the default run's)"
