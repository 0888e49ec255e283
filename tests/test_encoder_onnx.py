"""The ``onnx`` encoder: a model from a path, its preprocessing as options, clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from invbench.errors import AssetError, ContractError, IncompatibleComponentsError
from invbench_plugins.encoders.onnx_model import OnnxEncoder

SIZE = 16


class Net(torch.nn.Module):
    """(B, 3, 16, 16) -> (B, 8): a conv and a linear layer."""

    def __init__(self, nan: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)
        self.fc = torch.nn.Linear(4 * 7 * 7, 8)
        self.nan = nan

    def forward(self, x):
        y = self.fc(torch.relu(self.conv(x)).flatten(1))
        return torch.log(y - y - 1.0) if self.nan else y


def export(module: torch.nn.Module, path: Path, shape=(2, 3, SIZE, SIZE)) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (torch.rand(*shape),), path, dynamo=False, input_names=["x"],
            output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}},
        )  # fmt: skip
    return path


def build(path: Path, **options) -> OnnxEncoder:
    values = {"path": str(path), "input_size": (SIZE, SIZE), **options}
    return OnnxEncoder(OnnxEncoder.make_options(values))


def test_templates_match_the_source_model_with_its_preprocessing(tmp_path):
    net = Net().eval()
    enc = build(
        export(net, tmp_path / "m.onnx"), channels="bgr", mean=(10, 20, 30), std=(50, 60, 70)
    )
    images = torch.rand(5, 3, 24, 24)  # another size: resized to the model's input
    x = F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", antialias=True) * 255
    x = (x.flip(1) - torch.tensor([10.0, 20, 30]).view(1, 3, 1, 1)) / torch.tensor(
        [50.0, 60, 70]
    ).view(1, 3, 1, 1)
    expected = F.normalize(net(x), dim=1)
    got = enc.templates(images)
    assert enc.embedding_dim == 8 and got.shape == (5, 8)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_the_torch_path_is_differentiable_and_agrees(tmp_path):
    pytest.importorskip("onnx2torch")
    enc = build(export(Net(), tmp_path / "m.onnx"))
    assert enc.differentiable
    images = torch.rand(3, 3, SIZE, SIZE, requires_grad=True)
    t = enc.forward_torch(images)
    t.sum().backward()
    assert images.grad is not None and float(images.grad.abs().sum()) > 0
    torch.testing.assert_close(t.detach(), enc.encode(images.detach()), atol=1e-5, rtol=1e-4)
    assert enc.provenance()["torch_path"] == "onnx2torch"


def test_without_a_torch_path_it_is_black_box(tmp_path):
    enc = build(export(Net(), tmp_path / "m.onnx"), torch_path="off")
    assert not enc.differentiable
    assert "black-box" in enc.provenance()["torch_path"]
    with pytest.raises(NotImplementedError, match="no torch path"):
        enc.forward_torch(torch.rand(1, 3, SIZE, SIZE))


def test_missing_corrupt_and_wrong_models_are_one_line(tmp_path):
    with pytest.raises(AssetError, match="not found"):
        build(tmp_path / "absent.onnx")
    good = export(Net(), tmp_path / "m.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(AssetError, match="cannot load .*corrupt.onnx") as err:
        build(corrupt)
    assert "\n" not in str(err.value)

    class Flat(torch.nn.Module):
        def forward(self, x):
            return x[:, :8]

    with pytest.raises(IncompatibleComponentsError, match=r"rank 2.*rank 4"):
        build(export(Flat(), tmp_path / "flat.onnx", shape=(2, 20)))


def test_nan_outputs_fail_the_contract_check(tmp_path):
    enc = build(export(Net(nan=True), tmp_path / "nan.onnx"), torch_path="off")
    with pytest.raises(ContractError, match="encoder 'onnx' .*NaN"):
        enc.templates(torch.rand(2, 3, SIZE, SIZE))
