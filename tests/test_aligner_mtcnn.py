"""MTCNN aligner, the similarity transform and the resize aligner.

Tests marked ``assets`` fetch the three MTCNN state dicts (PyPI ``facenet-pytorch`` wheel,
sha256 pinned) into the user cache on first run. The real photo is
``skimage.data.astronaut()`` (NASA, public domain), shipped with scikit-image.
"""

from __future__ import annotations

import math

import pytest
import torch

from invbench_plugins.aligners.mtcnn_nets import ONet, PNet, RNet
from invbench_plugins.aligners.resize import ResizeAligner
from invbench_plugins.aligners.similarity import (
    ARCFACE_TEMPLATE_112,
    align_to_template,
    apply_affine,
    arcface_template,
    estimate_similarity,
    warp_affine,
)

# --- similarity transform (no assets) --------------------------------------------------


def _similarity(scale: float, angle: float, tx: float, ty: float) -> torch.Tensor:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return torch.tensor([[c, -s, tx], [s, c, ty]], dtype=torch.float64)


def test_similarity_recovers_known_transform_exactly():
    g = torch.Generator().manual_seed(0)
    src = torch.rand(4, 5, 2, generator=g, dtype=torch.float64) * 200
    truth = torch.stack(
        [
            _similarity(1.0, 0.0, 0.0, 0.0),
            _similarity(0.37, 0.4, -12.0, 30.5),
            _similarity(2.5, -1.2, 100.0, -7.0),
            _similarity(0.8, math.pi * 0.9, 3.0, 3.0),
        ]
    )
    dst = apply_affine(truth, src)
    est = estimate_similarity(src, dst)
    assert est.shape == (4, 2, 3)
    torch.testing.assert_close(est, truth, atol=1e-10, rtol=0)


def test_similarity_unbatched_and_template_fixed_point():
    tmpl = arcface_template((112, 112))
    torch.testing.assert_close(tmpl, ARCFACE_TEMPLATE_112)
    m = estimate_similarity(tmpl, tmpl)
    assert m.shape == (2, 3)
    torch.testing.assert_close(m, _similarity(1.0, 0.0, 0.0, 0.0), atol=1e-12, rtol=0)
    # Scaled template: a pure scaling about the origin.
    m2 = estimate_similarity(tmpl, arcface_template((224, 224)))
    torch.testing.assert_close(m2, _similarity(2.0, 0.0, 0.0, 0.0), atol=1e-10, rtol=0)


def test_similarity_is_least_squares_on_noisy_points():
    g = torch.Generator().manual_seed(1)
    src = torch.rand(5, 2, generator=g, dtype=torch.float64) * 100
    truth = _similarity(1.3, 0.2, 5.0, -4.0)
    dst = apply_affine(truth, src) + torch.randn(5, 2, generator=g, dtype=torch.float64)
    est = estimate_similarity(src, dst)
    best = (apply_affine(est, src) - dst).pow(2).sum()
    # Any perturbation of the four parameters does not fit better.
    for delta in torch.eye(4, dtype=torch.float64) * 1e-3:
        a, b = est[0, 0] + delta[0], est[1, 0] + delta[1]
        other = torch.stack(
            [torch.stack([a, -b, est[0, 2] + delta[2]]), torch.stack([b, a, est[1, 2] + delta[3]])]
        )
        assert (apply_affine(other, src) - dst).pow(2).sum() >= best


def test_warp_moves_a_pixel_where_the_matrix_says():
    image = torch.zeros(3, 60, 80)
    image[:, 20, 30] = 1.0  # (x=30, y=20)
    out = warp_affine(image, _similarity(1.0, 0.0, 7.0, -4.0), (50, 50))
    flat = int(out[0].argmax())
    assert (flat // 50, flat % 50) == (16, 37)
    assert out[0].max() == pytest.approx(1.0, abs=1e-5)


def test_warp_downscale_keeps_positions():
    # A 40x40 square shrunk 4x (antialiasing path) lands centred where the map puts it.
    image = torch.zeros(3, 200, 200)
    image[:, 80:120, 40:80] = 1.0
    out = warp_affine(image, _similarity(0.25, 0.0, 0.0, 0.0), (64, 64))[0]
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    cx, cy = float((out * xs).sum() / out.sum()), float((out * ys).sum() / out.sum())
    assert cx == pytest.approx(59.5 * 0.25, abs=0.3)  # centre x = (40 + 79) / 2, scaled
    assert cy == pytest.approx(99.5 * 0.25, abs=0.3)
    assert float(out.sum()) == pytest.approx(100.0, rel=0.02)  # area 1600 / 16


def test_align_to_template_puts_landmarks_on_template():
    tmpl = arcface_template((112, 112))
    truth = _similarity(0.5, 0.3, 10.0, 20.0)
    landmarks = apply_affine(_invert(truth), tmpl)
    crop, matrix = align_to_template(torch.rand(3, 300, 300), landmarks, (112, 112))
    assert crop.shape == (3, 112, 112)
    torch.testing.assert_close(apply_affine(matrix, landmarks), tmpl, atol=1e-9, rtol=0)


def _invert(m: torch.Tensor) -> torch.Tensor:
    lin = torch.linalg.inv(m[:, :2])
    return torch.cat([lin, -(lin @ m[:, 2:])], dim=1)


# --- networks (random weights, no assets) ----------------------------------------------


def test_network_shapes():
    with torch.no_grad():
        probs, reg = PNet().eval()(torch.randn(2, 3, 30, 40))
        assert probs.shape == (2, 10, 15) and reg.shape == (2, 4, 10, 15)
        p, r = RNet().eval()(torch.randn(5, 3, 24, 24))
        assert p.shape == (5,) and r.shape == (5, 4)
        p, r, pts = ONet().eval()(torch.randn(5, 3, 48, 48))
        assert p.shape == (5,) and r.shape == (5, 4) and pts.shape == (5, 5, 2)
        assert ((p >= 0) & (p <= 1)).all()


# --- resize aligner (no assets) --------------------------------------------------------


def test_resize_aligner():
    aligner = ResizeAligner()
    images = [torch.rand(3, 64, 64), torch.rand(3, 112, 112), torch.rand(3, 64, 64)]
    faces, ok = aligner.align(images, (112, 112))
    assert faces.shape == (3, 3, 112, 112) and ok.all()
    torch.testing.assert_close(faces[1], images[1])
    assert faces.min() >= 0 and faces.max() <= 1


# --- MTCNN with real weights -----------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    return torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255.0


@pytest.fixture(scope="module")
def mtcnn():
    from invbench_plugins.aligners.mtcnn import MTCNNAligner

    return MTCNNAligner(MTCNNAligner.Options(min_face_size=60))  # a short pyramid: fast


@pytest.mark.assets
def test_mtcnn_finds_the_astronaut(mtcnn, astronaut):
    (found,) = mtcnn.detect(astronaut[None])
    assert found is not None and float(found.scores[0]) > 0.99
    x1, y1, x2, y2 = found.boxes[0].tolist()
    assert 160 < x1 < 200 and 40 < y1 < 80 and 250 < x2 < 290 and 155 < y2 < 195
    pts = found.landmarks[0]
    # Reference positions (x, y) of Eileen Collins' eyes, nose tip and mouth corners.
    expected = torch.tensor(
        [[204.0, 101.0], [247.0, 103.0], [224.5, 129.0], [201.0, 139.0], [245.0, 142.0]]
    )
    assert (pts - expected).norm(dim=1).max() < 4.0
    left_eye, right_eye, nose, mouth_l, mouth_r = pts
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_l[0] < mouth_r[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])


@pytest.mark.assets
def test_mtcnn_aligned_crop_follows_template(mtcnn, astronaut):
    faces, ok = mtcnn.align([astronaut], (112, 112))
    assert ok.tolist() == [True] and faces.shape == (1, 3, 112, 112)
    (found,) = mtcnn.detect(astronaut[None])
    (again,) = mtcnn.detect(faces)  # detect again, on the crop
    assert found is not None and again is not None
    # The landmarks land where the least-squares fit puts them; that is on the template
    # up to the fit's residual (her face proportions differ from the template's).
    tmpl = arcface_template((112, 112))
    points = found.landmarks[0].double()
    fitted = apply_affine(estimate_similarity(points, tmpl), points)
    assert (fitted - tmpl).norm(dim=1).max() < 8.0  # a wide smile: mouth corners ~6.5 px
    assert (again.landmarks[0] - fitted.float()).norm(dim=1).mean() < 2.0


@pytest.mark.assets
def test_mtcnn_reports_failures_and_keeps_order(mtcnn, astronaut):
    blank = torch.zeros(3, 200, 150)
    small = torch.nn.functional.interpolate(astronaut[None], size=(256, 256))[0]
    faces, ok = mtcnn.align([blank, astronaut, torch.full((3, 64, 64), 0.5), small], (112, 96))
    assert faces.shape == (4, 3, 112, 96)
    assert ok.tolist() == [False, True, False, True]
    assert faces[0].abs().sum() == 0 and faces[2].abs().sum() == 0
    assert (faces[1] - faces[3]).abs().mean() < 0.08  # the same face found at half size


@pytest.mark.assets
def test_mtcnn_upsample_and_pad_keep_coordinates(astronaut):
    from invbench_plugins.aligners.mtcnn import MTCNNAligner

    plain = MTCNNAligner(MTCNNAligner.Options(pad=0.0, min_face_size=60)).detect(astronaut[None])[0]
    opts = MTCNNAligner.Options(upsample_below=640, pad=0.2, select="center", min_face_size=80)
    moved = MTCNNAligner(opts).detect(astronaut[None])[0]
    assert plain is not None and moved is not None
    assert (plain.landmarks - moved.landmarks).norm(dim=-1).max() < 3.0


@pytest.mark.assets
def test_mtcnn_provenance_pins_weights(mtcnn):
    info = mtcnn.provenance()["assets"]
    assert [a["member"] for a in info] == [
        f"facenet_pytorch/data/{n}net.pt" for n in ("p", "r", "o")
    ]
    assert all(a["package"] == "facenet-pytorch==2.6.0" and len(a["sha256"]) == 64 for a in info)
