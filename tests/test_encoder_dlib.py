"""Tests of the ``dlib`` encoder (dlib ResNet from face-api.js weights, ArcFace -> dlib chip).

Tests marked ``assets`` fetch the pinned face-api weights (npm) and the ORL photos used by
the arcface tests into the user cache on first run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invbench_plugins.encoders.dlib import (
    ARCFACE_TEMPLATE,
    DLIB_CHIP_TEMPLATE,
    DlibEncoder,
    arcface_to_chip_grid,
    similarity_transform,
)
from invbench_plugins.encoders.dlib_resnet import DlibResNet, read_tfjs_weights
from tests.test_encoder_arcface import auc, load_orl_faces, pair_scores

# --- without assets ---------------------------------------------------------------------


def test_class_contract_and_registration() -> None:
    from invbench_plugins.encoders import register_encoders

    calls: list[tuple] = []
    register_encoders(lambda *args, **kwargs: calls.append(args))
    assert ("dlib", "invbench_plugins.encoders.dlib:DlibEncoder") in calls
    assert DlibEncoder.differentiable and DlibEncoder.alignment == "arcface"
    assert DlibEncoder.input_size == (112, 112)
    assert DlibEncoder.make_options({}).fill == "reflection"


def test_similarity_transform_recovers_a_known_map() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([4.0, -2.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = similarity_transform(src, src @ (scale * rot).T + shift)
    np.testing.assert_allclose(m, np.hstack([scale * rot, shift[:, None]]), atol=1e-9)


def test_chip_grid_maps_template_points() -> None:
    """Each dlib-chip template point reads the crop near the matching ArcFace point."""
    grid = arcface_to_chip_grid()[0].numpy()  # (150, 150, 2), normalised crop coordinates
    for chip_pt, arc_pt in zip(DLIB_CHIP_TEMPLATE, ARCFACE_TEMPLATE, strict=True):
        u, v = np.round(chip_pt).astype(int)
        read = (grid[v, u] + 1) * 112 / 2 - 0.5  # back to crop pixels
        assert np.abs(read - arc_pt).max() < 3.0  # the two templates differ by ~2 px
    rows = (grid[..., 1] + 1) * 112 / 2 - 0.5
    outside = (rows > 111.5).mean()
    assert 0.08 < outside < 0.15  # the chin rows the ArcFace crop lacks


def test_to_chip_is_differentiable_and_fills() -> None:
    encoder = DlibEncoder()
    x = torch.rand(2, 3, 112, 112, requires_grad=True)
    chip = encoder.to_chip(x)
    assert chip.shape == (2, 3, 150, 150)
    chip.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    zeros = DlibEncoder(DlibEncoder.make_options({"fill": "zeros"})).to_chip(
        torch.ones(1, 3, 112, 112)
    )
    assert zeros[0, :, -1].abs().max() == 0  # bottom row lies outside the crop
    assert torch.allclose(zeros[0, :, 75, 75], torch.ones(3))


def _random_face_api_files(tmp_path, model: DlibResNet):
    """Write ``model`` as a face-api manifest + bin (fc uint8-quantised, rest float32)."""
    specs, blobs, expected = [], [], {}
    for name, param in model.named_parameters():
        from invbench_plugins.encoders.dlib_resnet import _manifest_key

        key, layout = _manifest_key(name)
        value = param.detach().numpy()
        if layout:  # torch OIHW -> TF.js HWIO
            value = value.transpose(2, 3, 1, 0)
        spec = {"name": key, "shape": list(value.shape), "dtype": "float32"}
        if key == "fc":
            lo, hi = float(value.min()), float(value.max())
            scale = max(hi - lo, 1e-6) / 255
            q = np.round((value - lo) / scale).astype(np.uint8)
            spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
            blobs.append(q.tobytes())
            value = q.astype(np.float32) * np.float32(scale) + np.float32(lo)
        else:
            blobs.append(value.astype(np.float32).tobytes())
        specs.append(spec)
        expected[key] = value
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"paths": ["m.bin"], "weights": specs}]))
    (tmp_path / "m.bin").write_bytes(b"".join(blobs))
    return manifest, tmp_path / "m.bin", expected


def test_face_api_loader_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    source = DlibResNet()
    with torch.no_grad():
        for p in source.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    manifest, weights, expected = _random_face_api_files(tmp_path, source)
    decoded = read_tfjs_weights(manifest, [weights])
    assert decoded.keys() == expected.keys()
    np.testing.assert_allclose(decoded["fc"], expected["fc"], rtol=0, atol=1e-6)
    loaded = DlibResNet.from_face_api(manifest, weights)
    x = torch.rand(2, 3, 150, 150) * 255
    with torch.no_grad():
        source.fc.copy_(torch.from_numpy(expected["fc"]))
        torch.testing.assert_close(loaded(x), source(x))
        maps = loaded.feature_maps(x)
    assert [tuple(m.shape[1:]) for m in maps] == [
        (32, 35, 35),
        (64, 17, 17),
        (128, 8, 8),
        (256, 4, 4),
    ]


def test_face_api_loader_rejects_wrong_files(tmp_path) -> None:
    torch.manual_seed(0)
    manifest, weights, _ = _random_face_api_files(tmp_path, DlibResNet())
    specs = json.loads(manifest.read_text())
    specs[0]["weights"][0]["name"] = "renamed"
    manifest.write_text(json.dumps(specs))
    with pytest.raises(ValueError, match="missing"):
        DlibResNet.from_face_api(manifest, weights)


# --- with the real weights --------------------------------------------------------------


@pytest.fixture(scope="module")
def orl() -> tuple[torch.Tensor, np.ndarray]:
    return load_orl_faces()


@pytest.fixture(scope="module")
def encoder() -> DlibEncoder:
    return DlibEncoder()


@pytest.mark.assets
def test_templates_shape_norm_determinism(encoder: DlibEncoder, orl: tuple) -> None:
    faces, _ = orl
    out = encoder.encode(faces)
    assert out.shape == (16, 128) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=1), torch.ones(16), atol=1e-5)
    assert torch.equal(encoder.encode(faces), out)
    torch.testing.assert_close(encoder.encode(faces[:3]), out[:3], atol=1e-5, rtol=0)
    raw = encoder.net(encoder.to_chip(faces[:4]) * 255)
    assert 0.5 < float(raw.norm(dim=1).mean()) < 2.0  # dlib descriptors have norm ~ 1


@pytest.mark.assets
def test_gradient_through_real_weights(encoder: DlibEncoder, orl: tuple) -> None:
    faces = orl[0][:2].clone().requires_grad_(True)
    target = encoder.encode(orl[0][2:4])
    loss = 1 - (encoder.forward_torch(faces) * target).sum(dim=1).mean()
    loss.backward()
    assert faces.grad is not None and torch.isfinite(faces.grad).all()
    assert faces.grad.abs().sum() > 0
    maps = encoder.feature_maps(orl[0][:1])
    assert [m.shape[1] for m in maps] == [32, 64, 128, 256]


@pytest.mark.assets
def test_same_identity_scores_higher(encoder: DlibEncoder, orl: tuple) -> None:
    faces, ids = orl
    templates = encoder.encode(faces)
    genuine, impostor = pair_scores(templates, ids)
    # dlib descriptors are not zero-mean: impostor cosines are high, but separable.
    # Measured: genuine mean 0.97, impostor mean 0.88, AUC 1.0 on these 16 photos
    # (all 400 ORL photos: 0.962 / 0.873, AUC 0.998).
    assert genuine.mean() > impostor.mean() + 0.03
    assert auc(genuine, impostor) > 0.95
    # dlib's own rule: same person when the L2 distance of raw descriptors < 0.6
    raw = encoder.net(encoder.to_chip(faces) * 255).detach()
    dist = torch.cdist(raw, raw).numpy()[np.triu_indices(len(ids), 1)]
    same = (ids[:, None] == ids[None, :])[np.triu_indices(len(ids), 1)]
    assert (dist[same] < 0.6).mean() > 0.8 and (dist[~same] >= 0.6).mean() > 0.8


@pytest.mark.assets
def test_provenance(encoder: DlibEncoder) -> None:
    info = encoder.provenance()
    assert [a["sha256"] for a in info["assets"]] == [a.sha256 for a in DlibEncoder.assets]
    assert info["fill"] == "reflection"


def test_reflection_default_matches_grid_sample() -> None:
    encoder = DlibEncoder()
    x = torch.rand(1, 3, 112, 112)
    grid = arcface_to_chip_grid()
    ref = F.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
    torch.testing.assert_close(encoder.to_chip(x), ref)
