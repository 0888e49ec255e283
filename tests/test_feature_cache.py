"""The originals' perceptual features computed once per image (TargetFeatureCache)."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import Tensor, nn

from invbench.training import TargetFeatureCache
from invbench.training.feature_cache import BUDGET_ENV, DEFAULT_BUDGET_MIB, budget_bytes

pytestmark = pytest.mark.usefixtures("one_thread")


class TwoMaps(nn.Module):
    """A seeded conv net on uint8 images that records the batch sizes it is called with."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.calls: list[int] = []

    def forward(self, images: Tensor) -> list[Tensor]:
        self.calls.append(images.shape[0])
        first = self.a(images.float() / 255.0)
        return [first, self.b(first.relu())]


def images(n: int) -> Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (n, 3, 16, 16), generator=g, dtype=torch.uint8)


def test_budget_default_override_and_bad_values(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    assert budget_bytes() == DEFAULT_BUDGET_MIB * 2**20
    monkeypatch.setenv(BUDGET_ENV, "12")
    assert budget_bytes() == 12 * 2**20
    monkeypatch.setenv(BUDGET_ENV, "0")
    assert budget_bytes() == 0
    for bad in ("lots", "-1", "1.5"):
        monkeypatch.setenv(BUDGET_ENV, bad)
        with pytest.raises(ValueError, match=BUDGET_ENV):
            budget_bytes()


def test_rows_are_the_per_batch_features_and_every_call_has_the_batch_size():
    net, x = TwoMaps(), images(11)
    cache = TargetFeatureCache.build(x, net, 4, budget=2**30)
    assert cache is not None and len(cache) == 11
    assert net.calls == [4, 4, 4]  # 4 + 4 + 3 real images, the last batch padded to 4
    with torch.no_grad():
        direct = net(x)
    index = torch.tensor([10, 0, 7, 7])
    for got, want in zip(cache[index], direct, strict=True):
        assert got.shape == (4, *want.shape[1:]) and not got.requires_grad
        torch.testing.assert_close(got, want[index], rtol=0, atol=1e-6)
    assert cache.nbytes == sum(m[0].numel() * 4 for m in direct) * 11


def test_over_budget_gives_none_after_one_batch(caplog):
    net, x = TwoMaps(), images(11)
    per_image = sum(f[0].numel() * 4 for f in net(x[:1]))
    net.calls.clear()
    with caplog.at_level(logging.INFO, logger="invbench.training.feature_cache"):
        assert TargetFeatureCache.build(x, net, 4, budget=per_image * 11 - 1) is None
    assert net.calls == [4] and BUDGET_ENV in caplog.text
    assert TargetFeatureCache.build(x, net, 4, budget=per_image * 11) is not None


def test_maps_must_share_their_first_size():
    with pytest.raises(ValueError, match="common first size"):
        TargetFeatureCache([torch.zeros(3, 2), torch.zeros(4, 2)])
    with pytest.raises(ValueError, match="common first size"):
        TargetFeatureCache([])


def test_zero_budget_computes_nothing():
    net = TwoMaps()
    assert TargetFeatureCache.build(images(11), net, 4, budget=0) is None
    assert net.calls == []
