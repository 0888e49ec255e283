"""Component outputs are checked against their contracts at run time.

A component that returns the wrong shape, range or values fails its own cell with one line
naming it, the expected and the actual; the other cells of the grid finish.
"""

import re

import pytest
import torch

from invbench.components.contracts import check_alignment, check_images, check_templates
from invbench.errors import ContractError
from invbench.plugin_manager import create_plugin_manager
from invbench.runner.cache import Cache
from invbench.runner.cell import run_cell
from invbench.runner.grid import expand_grid
from tests.plugins import contract_breakers


def test_check_templates_names_the_component_and_both_shapes():
    good = torch.nn.functional.normalize(torch.randn(4, 12), dim=1)
    assert check_templates("encoder 'x'", good, 4, 12) is good
    with pytest.raises(ContractError, match=r"encoder 'x'.*\(4, 7\), expected \(4, 12\)"):
        check_templates("encoder 'x'", good[:, :7], 4, 12)
    with pytest.raises(ContractError, match="NaN"):
        check_templates("encoder 'x'", torch.full((4, 12), float("nan")), 4, 12)
    with pytest.raises(ContractError, match="unit norm"):
        check_templates("encoder 'x'", good * 2, 4, 12)
    with pytest.raises(ContractError, match="float64"):
        check_templates("encoder 'x'", good.double(), 4, 12)


def test_check_images_names_shape_range_and_values():
    x = torch.rand(2, 3, 16, 16)
    assert check_images("inverter 'y'", x, 2, (16, 16)) is x
    with pytest.raises(ContractError, match=r"\(2, 3, 8, 8\), expected \(2, 3, 16, 16\)"):
        check_images("inverter 'y'", x[..., :8, :8], 2, (16, 16))
    with pytest.raises(ContractError, match=r"values in \[0, 2\], expected \[0, 1\]"):
        check_images("inverter 'y'", torch.where(x > 0.5, 2.0, 0.0), 2, (16, 16))
    with pytest.raises(ContractError, match="uint8"):
        check_images("inverter 'y'", (x * 255).byte(), 2, (16, 16))


def test_check_alignment_checks_the_mask_and_only_acquired_rows():
    faces = torch.rand(3, 3, 8, 8)
    faces[1] = 7.0  # not acquired: never used, never checked
    check_alignment("aligner 'z'", faces, torch.tensor([True, False, True]), 3, (8, 8))
    with pytest.raises(ContractError, match="ok mask"):
        check_alignment("aligner 'z'", faces, torch.ones(3), 3, (8, 8))


@pytest.fixture
def host():
    host = create_plugin_manager(entry_points=False)
    host.pm.register(contract_breakers, name="breakers")
    host.reset_registry()
    return host


def _grid(tmp_path, encoders, inverters):
    return expand_grid(
        encoders=encoders,
        inverters=inverters,
        datasets=["fake-faces"],
        train_datasets=["fake-train-faces"],
        eval_encoders=[],
        seeds=[0],
        aligner="none",
        protocols=["type1"],
        profile="quick",
        options={},
        device="cpu",
        out=tmp_path / "out",
    )


EXPECTED = {
    "small-images": r"inverter 'small-images' broke its output contract: returned images of "
    r"shape \(\d+, 3, 8, 8\), expected \(\d+, 3, 16, 16\)",
    "grey-images": r"inverter 'grey-images' .* shape \(\d+, 1, 16, 16\), expected \(\d+, 3, ",
    "out-of-range": r"inverter 'out-of-range' .* expected \[0, 1\]",
    "nan-images": r"inverter 'nan-images' .* NaN or infinite values \(1 of \d+ rows\)",
}


def test_a_broken_inverter_fails_its_cell_and_the_grid_goes_on(host, tmp_path):
    cells = _grid(tmp_path, ["fake-projection"], ["fake-pinv", *EXPECTED])
    records = {
        c.inverter: run_cell(c, host, Cache(enabled=False), command=[], progress=False)
        for c in cells
    }
    assert records["fake-pinv"].status == "ok"
    assert records["fake-pinv"].metrics["type1"]["tar_type1@far=1e-2"].value == 1.0
    for name, pattern in EXPECTED.items():
        record = records[name]
        assert record.status == "error", name
        assert "\n" not in record.error
        assert re.search(pattern, record.error), record.error


@pytest.mark.parametrize(
    ("role", "pattern"),
    [
        ("encoder", r"encoder 'wrong-dim' .* shape \(\d+, 7\), expected \(\d+, 12\)"),
        ("eval_encoder", r"encoder 'wrong-dim' .* shape \(\d+, 7\), expected \(\d+, 12\)"),
        ("nan", r"encoder 'nan-encoder' .* NaN or infinite"),
    ],
)
def test_a_broken_encoder_fails_its_cell_with_one_line(host, tmp_path, role, pattern):
    if role == "eval_encoder":
        (cell,) = _grid(tmp_path, ["fake-projection"], ["fake-linear"])
        cell = type(cell)(**{**cell.__dict__, "eval_encoder": "wrong-dim"})
    else:
        name = "wrong-dim" if role == "encoder" else "nan-encoder"
        (cell,) = _grid(tmp_path, [name], ["fake-linear"])
    record = run_cell(cell, host, Cache(enabled=False), command=[], progress=False)
    assert record.status == "error"
    assert re.search(pattern, record.error), record.error
