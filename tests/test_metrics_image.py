"""PSNR per image, SSIM against an independent implementation, and the LPIPS guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from invbench.metrics import image
from invbench.metrics.image import (
    ALEXNET_WEIGHTS_FILE,
    load_lpips,
    lpips_distance,
    psnr,
    ssim,
    ssim_map,
)


def test_psnr_per_image_then_mean():
    # MSE 0.01 -> 20 dB and MSE 0.0001 -> 40 dB: the mean is 30, not PSNR(mean MSE) = 22.97
    a = torch.zeros(2, 3, 8, 8, dtype=torch.float64)
    b = torch.stack([torch.full((3, 8, 8), v, dtype=torch.float64) for v in (0.1, 0.01)])
    values = psnr(a, b)
    assert values.tolist() == pytest.approx([20.0, 40.0], abs=1e-9)
    assert values.mean().item() == pytest.approx(30.0, abs=1e-9)
    mse_mean = (0.01 + 0.0001) / 2
    assert 10 * np.log10(1 / mse_mean) == pytest.approx(22.967, abs=1e-3)


def test_psnr_identical_images_are_capped():
    x = torch.rand(2, 3, 8, 8)
    assert psnr(x, x).tolist() == pytest.approx([image.PSNR_MAX_DB] * 2)


def _skimage_ssim(x: torch.Tensor, y: torch.Tensor) -> list[float]:
    return [
        structural_similarity(
            a.permute(1, 2, 0).numpy(),
            b.permute(1, 2, 0).numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=-1,
        )
        for a, b in zip(x, y, strict=True)
    ]


@pytest.mark.parametrize(("h", "w"), [(11, 11), (32, 32), (40, 29), (112, 112)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ssim_matches_skimage(h, w, dtype):
    g = torch.Generator().manual_seed(h * 1000 + w)
    x = torch.rand(3, 3, h, w, generator=g, dtype=torch.float64)
    noise = 0.3 * torch.rand(3, 3, h, w, generator=g, dtype=torch.float64)
    y = (x * 0.7 + noise).clamp(0, 1)
    ref = _skimage_ssim(x, y)
    ours = ssim(x.to(dtype), y.to(dtype)).double().tolist()
    assert ours == pytest.approx(ref, abs=1e-5)


def test_ssim_constant_images_by_hand():
    # constant a vs constant b: variances and covariance vanish, so
    # SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * 1)^2
    a, b = 0.2, 0.6
    x = torch.full((1, 3, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 3, 16, 16), b, dtype=torch.float64)
    expected = (2 * a * b + 1e-4) / (a * a + b * b + 1e-4)
    assert ssim(x, y).item() == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.2401 / 0.4001)


def test_ssim_map_shape_identity_and_gradient():
    x = torch.rand(2, 3, 20, 24, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 3, 20, 24, dtype=torch.float64)
    assert ssim_map(x, y).shape == (2, 3, 10, 14)
    assert ssim(y, y).tolist() == pytest.approx([1.0, 1.0], abs=1e-12)
    loss = ((1 - ssim(x, y)) / 2).mean()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_ssim_rejects_small_images():
    with pytest.raises(ValueError):
        ssim(torch.rand(1, 3, 10, 10), torch.rand(1, 3, 10, 10))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub dir; any attempt to download fails the test."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_download(*args, **kwargs):
        raise AssertionError("LPIPS must never download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return tmp_path


def test_lpips_unavailable_without_weights(hub):
    status = load_lpips()
    assert status.model is None
    assert "not found" in status.reason and ALEXNET_WEIGHTS_FILE in status.reason


def _fake_alexnet_file(hub) -> dict[str, torch.Tensor]:
    """A stand-in weights file holding only the backbone's ``features.*`` tensors."""
    import torchvision

    state = {
        k: v
        for k, v in torchvision.models.alexnet(weights=None).state_dict().items()
        if k.startswith("features.")
    }
    (hub / "checkpoints").mkdir()
    torch.save(state, hub / "checkpoints" / ALEXNET_WEIGHTS_FILE)
    return state


def test_lpips_rejects_a_file_with_the_wrong_hash(hub):
    (hub / "checkpoints").mkdir()
    (hub / "checkpoints" / ALEXNET_WEIGHTS_FILE).write_bytes(b"not the ImageNet weights")
    status = load_lpips()
    assert status.model is None and "sha256" in status.reason


def test_lpips_loads_backbone_from_the_cached_file(hub):
    # plumbing test with a stand-in file (hash check off): the backbone must hold exactly
    # the file's tensors, never lpips' own random initialisation
    state = _fake_alexnet_file(hub)
    status = load_lpips(verify_hash=False)
    assert status.model is not None, status.reason
    own = status.model.state_dict()
    assert torch.equal(own["net.slice1.0.weight"], state["features.0.weight"])
    assert torch.equal(own["net.slice5.10.bias"], state["features.10.bias"])
    x = torch.rand(2, 3, 64, 64)
    d = lpips_distance(status.model, x, x)
    assert d.shape == (2,) and torch.allclose(d, torch.zeros(2), atol=1e-6)
    assert (lpips_distance(status.model, x, 1 - x) > 0).all()
