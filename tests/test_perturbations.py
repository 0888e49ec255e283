"""Tests for the robustness perturbation library (fast, seeded, CPU unless CUDA is present)."""

from __future__ import annotations

import pytest
import torch

from invbench_plugins.protocols.robustness.perturbations import (
    ARCFACE_POINTS_112,
    PERTURBATIONS,
    Perturbation,
    check_severity,
    gaussian_blur,
    gaussian_noise,
    get_perturbation,
    jpeg,
    occlude_eyes,
    occlude_mouth,
    occlude_random,
    rotate,
    scale,
    template_points,
    translate,
)

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = sorted(PERTURBATIONS)
RANDOM_NAMES = ("noise", "occlude-random")


def _images(batch: int = 2, size: tuple[int, int] = (48, 40), seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _template_pixels(size: tuple[int, int]) -> list[tuple[int, int]]:
    """(row, col) of the pixel nearest to each template point."""
    return [(round(y), round(x)) for x, y in template_points(size).tolist()]


def _bright_pixel(size: tuple[int, int], row: int, col: int) -> torch.Tensor:
    image = torch.zeros(1, 3, *size)
    image[..., row, col] = 1.0
    return image


def _argmax_rc(image: torch.Tensor) -> tuple[int, int]:
    plane = image[0, 0]
    index = int(plane.argmax())
    return index // plane.shape[1], index % plane.shape[1]


def _total_variation(images: torch.Tensor) -> float:
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().sum()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().sum()
    return float(dx + dy)


# --- registry-wide contract ----------------------------------------------------------------


def test_registry_names_and_levels():
    assert set(NAMES) == {
        "rotation",
        "rotation-dfd",
        "shift-left",
        "shift-right",
        "shift-up",
        "shift-down",
        "scale-down",
        "scale-up",
        "occlude-eyes",
        "occlude-mouth",
        "occlude-random",
        "noise",
        "blur",
        "jpeg",
    }
    assert PERTURBATIONS["rotation-dfd"].levels == (30.0, 60.0, 90.0, 120.0, 150.0)
    assert PERTURBATIONS["jpeg"].levels == (80, 60, 40, 20, 10)
    for name, perturbation in PERTURBATIONS.items():
        assert isinstance(perturbation, Perturbation)
        assert perturbation.name == name
        assert len(perturbation.levels) == 5
        assert perturbation.description and "\n" not in perturbation.description


def test_perturbation_needs_five_levels():
    with pytest.raises(ValueError, match="5 levels"):
        Perturbation("bad", "bad", (1.0, 2.0), lambda x, v, g: x)


@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_identity(name):
    images = _images()
    out = PERTURBATIONS[name](images, 0, _gen())
    assert torch.equal(out, images)
    assert out.data_ptr() != images.data_ptr()  # a copy, not the input itself


@pytest.mark.parametrize("name", NAMES)
def test_every_severity_keeps_contract_and_input(name):
    images = _images()
    original = images.clone()
    for severity in range(1, 6):
        out = PERTURBATIONS[name](images, severity, _gen(severity))
        assert out.shape == images.shape
        assert out.dtype == images.dtype
        assert out.device == images.device
        assert out.data_ptr() != images.data_ptr()
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert not torch.equal(out, images), f"{name} at severity {severity} changed nothing"
        assert torch.equal(images, original), f"{name} modified its input"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_dtype_is_kept(dtype):
    images = _images(1, (24, 24)).to(dtype)
    for name in NAMES:
        out = PERTURBATIONS[name](images, 3, _gen())
        assert out.dtype == dtype, name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_device_is_kept(name):
    images = _images().cuda()
    out = PERTURBATIONS[name](images, 4, torch.Generator(device="cuda").manual_seed(0))
    assert out.device == images.device and out.shape == images.shape
    cpu = PERTURBATIONS[name](images.cpu(), 4, _gen())
    if name not in RANDOM_NAMES:  # noise/boxes come from a different (CUDA) stream
        torch.testing.assert_close(out.cpu(), cpu, atol=2 / 255, rtol=0)


@pytest.mark.parametrize("name", RANDOM_NAMES)
def test_random_perturbations_need_a_generator(name):
    with pytest.raises(ValueError, match="Generator"):
        PERTURBATIONS[name](_images(), 2)


def test_geometric_perturbations_are_differentiable():
    images = _images(1, (24, 24)).requires_grad_()
    for name in ("rotation", "shift-left", "scale-up", "occlude-eyes", "noise", "blur"):
        images.grad = None
        PERTURBATIONS[name](images, 2, _gen()).sum().backward()
        assert images.grad is not None and float(images.grad.abs().sum()) > 0, name


# --- template points -------------------------------------------------------------------------


def test_template_points_scale_with_size():
    torch.testing.assert_close(
        template_points((112, 112)), torch.tensor(ARCFACE_POINTS_112, dtype=torch.float32)
    )
    points = template_points((56, 224))  # (H, W): x doubles, y halves
    assert points.shape == (5, 2)
    torch.testing.assert_close(points[0], torch.tensor([38.2946 * 2, 51.6963 / 2]))


# --- geometry --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 33, 112])
def test_rotate_quarter_and_full_turn(size):
    images = _images(2, (size, size))
    quarter = images.transpose(-2, -1).flip(-2)
    torch.testing.assert_close(rotate(images, 90), quarter, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(images, -270), quarter, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(images, 360), images, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(images, 180), images.flip(-1).flip(-2), atol=1e-5, rtol=0)
    dfd = PERTURBATIONS["rotation-dfd"](images, 3)  # severity 3 is 90 degrees
    torch.testing.assert_close(dfd, quarter, atol=1e-5, rtol=0)


def test_rotate_is_counter_clockwise():
    image = _bright_pixel((33, 33), row=16, col=26)  # 10 px right of the centre (16, 16)
    assert _argmax_rc(rotate(image, 90)) == (6, 16)  # moves up
    assert _argmax_rc(rotate(image, -90)) == (26, 16)  # clockwise moves down
    row, col = _argmax_rc(rotate(image, 30))
    assert row < 16 and col > 16  # a small positive turn lifts it, still right of centre


def test_rotate_zero_fills_the_corners():
    out = rotate(torch.ones(1, 3, 32, 32), 45)
    assert float(out[..., 0, 0].max()) == 0.0
    assert float(out[..., 16, 16].min()) == pytest.approx(1.0)


def test_translate_moves_a_bright_pixel():
    image = _bright_pixel((40, 50), row=20, col=20)  # H = 40, W = 50
    out = translate(image, 0.1, 0.25)  # 5 px right, 10 px down
    assert _argmax_rc(out) == (30, 25)
    assert float(out.max()) == pytest.approx(1.0, abs=1e-4)
    assert _argmax_rc(translate(image, -0.2, -0.1)) == (16, 10)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("shift-left", (25, 15)), ("shift-right", (25, 35)), ("shift-up", (15, 25)),
     ("shift-down", (35, 25))],
)  # fmt: skip
def test_named_shifts_move_by_their_level(name, expected):
    image = _bright_pixel((50, 50), row=25, col=25)
    assert _argmax_rc(PERTURBATIONS[name](image, 5)) == expected  # 0.20 * 50 = 10 px


def test_translate_zero_fills_the_uncovered_border():
    out = translate(torch.ones(1, 3, 20, 20), 0.25, 0.0)
    assert float(out[..., :, :5].max()) == 0.0
    assert float(out[..., :, 5:].min()) == pytest.approx(1.0)


def test_scale_down_shrinks_a_centred_square():
    image = torch.zeros(1, 3, 64, 64)
    image[..., 16:48, 16:48] = 1.0  # 32 x 32, centred
    bright = [int((PERTURBATIONS["scale-down"](image, s) > 0.5).sum()) // 3 for s in range(6)]
    assert bright[0] == 32 * 32
    assert all(a > b for a, b in zip(bright, bright[1:], strict=False))
    assert bright[5] == pytest.approx(16 * 16, rel=0.15)  # factor 0.5
    rows, cols = torch.nonzero(scale(image, 0.5)[0, 0] > 0.5, as_tuple=True)
    assert float(rows.float().mean()) == pytest.approx(31.5, abs=0.5)
    assert float(cols.float().mean()) == pytest.approx(31.5, abs=0.5)


def test_scale_up_enlarges_a_centred_square():
    image = torch.zeros(1, 3, 64, 64)
    image[..., 24:40, 24:40] = 1.0  # 16 x 16
    bright = int((scale(image, 1.5) > 0.5).sum()) // 3
    assert bright == pytest.approx(24 * 24, rel=0.15)


# --- occlusion -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(112, 112), (64, 64), (96, 80)])
@pytest.mark.parametrize("severity", range(1, 6))
def test_eye_band_covers_the_eyes_only(size, severity):
    out = PERTURBATIONS["occlude-eyes"](torch.ones(1, 3, *size), severity)
    (ley, lex), (rey, rex), nose, lmouth, rmouth = _template_pixels(size)
    assert float(out[0, :, ley, lex].max()) == 0.0
    assert float(out[0, :, rey, rex].max()) == 0.0
    for row, col in (nose, lmouth, rmouth):
        assert float(out[0, :, row, col].min()) == 1.0
    # The band stops 0.15 W beyond the eyes: the image's side columns are untouched.
    assert float(out[0, :, :, 0].min()) == 1.0 and float(out[0, :, :, -1].min()) == 1.0


def test_eye_band_height_grows_with_severity():
    heights = []
    for severity in range(1, 6):
        out = PERTURBATIONS["occlude-eyes"](torch.ones(1, 3, 112, 112), severity)
        heights.append(int((out[0, 0] == 0).any(dim=1).sum()))
    assert heights == sorted(heights) and heights[0] < heights[-1]
    assert heights[-1] == pytest.approx(0.18 * 112, abs=1)


@pytest.mark.parametrize("size", [(112, 112), (64, 64)])
@pytest.mark.parametrize("severity", range(1, 6))
def test_mouth_box_covers_the_mouth_only(size, severity):
    out = PERTURBATIONS["occlude-mouth"](torch.ones(1, 3, *size), severity)
    eye_l, eye_r, nose, (lmy, lmx), (rmy, rmx) = _template_pixels(size)
    assert float(out[0, :, lmy, lmx].max()) == 0.0
    assert float(out[0, :, rmy, rmx].max()) == 0.0
    for row, col in (eye_l, eye_r, nose):
        assert float(out[0, :, row, col].min()) == 1.0


def test_mouth_box_grows_with_size():
    covered = [int((occlude_mouth(torch.ones(1, 3, 112, 112), s) == 0).sum()) for s in (0.2, 1.0)]
    assert covered[0] < covered[1]


@pytest.mark.parametrize("severity", range(1, 6))
def test_random_box_covers_the_requested_area(severity):
    area = PERTURBATIONS["occlude-random"].levels[severity - 1]
    out = PERTURBATIONS["occlude-random"](torch.ones(6, 3, 112, 112), severity, _gen(severity))
    for image in out:
        black = image[0] == 0
        assert torch.equal(black, (image == 0).all(dim=0))  # all channels alike
        fraction = float(black.float().mean())
        assert fraction == pytest.approx(area, rel=0.02)
        rows, cols = torch.nonzero(black, as_tuple=True)  # one solid axis-aligned box
        box_h = int(rows.max() - rows.min()) + 1
        box_w = int(cols.max() - cols.min()) + 1
        assert box_h * box_w == int(black.sum())
        assert 0.5 * 0.9 <= box_w / box_h <= 2.0 * 1.1


def test_random_box_is_reproducible_and_seeded():
    images = _images(4, (64, 64))
    first = occlude_random(images, 0.25, _gen(7))
    again = occlude_random(images, 0.25, _gen(7))
    other = occlude_random(images, 0.25, _gen(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    # Boxes differ between the images of one batch too.
    masks = first[:, 0] == 0
    assert not all(torch.equal(masks[0], m) for m in masks[1:])


def test_occlusion_functions_reject_bad_parameters():
    images = _images()
    with pytest.raises(ValueError):
        occlude_eyes(images, 0.0)
    with pytest.raises(ValueError):
        occlude_mouth(images, 1.5)
    with pytest.raises(ValueError):
        occlude_random(images, 1.0, _gen())


# --- degradations ----------------------------------------------------------------------------


@pytest.mark.parametrize("severity", range(1, 6))
def test_noise_has_the_requested_sigma(severity):
    sigma = PERTURBATIONS["noise"].levels[severity - 1]
    grey = torch.full((1, 3, 64, 64), 0.5)
    out = PERTURBATIONS["noise"](grey, severity, _gen(severity))
    assert float((out - grey).std()) == pytest.approx(sigma, rel=0.10)
    assert float((out - grey).mean()) == pytest.approx(0.0, abs=sigma / 10)


def test_noise_is_reproducible_and_seeded():
    grey = torch.full((2, 3, 16, 16), 0.5)
    assert torch.equal(gaussian_noise(grey, 0.05, _gen(3)), gaussian_noise(grey, 0.05, _gen(3)))
    assert not torch.equal(gaussian_noise(grey, 0.05, _gen(3)), gaussian_noise(grey, 0.05, _gen(4)))


def test_blur_lowers_total_variation_monotonically():
    images = _images(1, (48, 48))
    tv = [_total_variation(PERTURBATIONS["blur"](images, s)) for s in range(6)]
    assert all(a > b for a, b in zip(tv, tv[1:], strict=False)), tv


def test_blur_preserves_a_constant_image_and_sigma_zero_copies():
    flat = torch.full((1, 3, 20, 20), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 3.0), flat)  # normalised kernel, reflect pad
    images = _images()
    copy = gaussian_blur(images, 0.0)
    assert torch.equal(copy, images) and copy.data_ptr() != images.data_ptr()
    assert gaussian_blur(torch.rand(1, 3, 4, 4), 3.0).shape == (1, 3, 4, 4)  # tiny image


def test_jpeg_error_grows_as_quality_falls():
    ramp = torch.linspace(0, 1, 64).expand(1, 3, 64, 64)
    images = (0.7 * ramp + 0.3 * _images(1, (64, 64))).contiguous()
    mae = {q: float((jpeg(images, q) - images).abs().mean()) for q in (80, 10)}
    assert mae[10] > mae[80] > 0
    levels = [float((PERTURBATIONS["jpeg"](images, s) - images).abs().mean()) for s in (1, 5)]
    assert levels[1] > levels[0]
    out = jpeg(images, 50)
    torch.testing.assert_close(out * 255, (out * 255).round(), atol=1e-4, rtol=0)  # uint8 grid


def test_jpeg_rejects_bad_quality():
    with pytest.raises(ValueError):
        jpeg(_images(), 0)
    with pytest.raises(ValueError):
        jpeg(_images(), 96)


# --- lookup and severity ---------------------------------------------------------------------


def test_get_perturbation():
    assert get_perturbation("blur") is PERTURBATIONS["blur"]
    with pytest.raises(ValueError, match="did you mean 'rotation'") as info:
        get_perturbation("rotatoin")
    assert "'rotatoin'" in str(info.value)
    with pytest.raises(ValueError, match="known: .*occlude-eyes"):
        get_perturbation("teleport")


@pytest.mark.parametrize("severity", [-1, 6, 2.5, 2.0, True, "3"])
def test_check_severity_rejects(severity):
    with pytest.raises(ValueError):
        check_severity(severity)
    with pytest.raises(ValueError):
        PERTURBATIONS["blur"](_images(), severity)


def test_check_severity_accepts_zero_to_five():
    for severity in range(6):
        check_severity(severity)
