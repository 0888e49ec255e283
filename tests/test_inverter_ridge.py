"""The ``ridge`` linear baseline: exact leave-one-out, exact solution, the contract."""

import torch

from invbench import FitContext, TrainingData
from invbench.testing.fakes import FakeProjectionEncoder
from invbench.training.linear import loo_ridge
from invbench_plugins.inverters.ridge import RidgeInverter


def _brute_force_loo(x, y, alpha):
    """Refit without each row in turn (with an unpenalised intercept)."""
    errors = []
    for i in range(len(x)):
        keep = torch.arange(len(x)) != i
        xm, ym = x[keep].mean(0), y[keep].mean(0)
        xc, yc = x[keep] - xm, y[keep] - ym
        w = torch.linalg.solve(xc.T @ xc + alpha * torch.eye(x.shape[1], dtype=x.dtype), xc.T @ yc)
        errors.append(((x[i] - xm) @ w + ym - y[i]).pow(2).mean())
    return float(torch.stack(errors).mean())


def test_the_closed_form_leave_one_out_equals_refitting():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 5, generator=g, dtype=torch.float64)
    y = x @ torch.randn(5, 7, generator=g, dtype=torch.float64) + 0.3 * torch.randn(
        30, 7, generator=g, dtype=torch.float64
    )
    xc, yc = x - x.mean(0), y - y.mean(0)
    best, errors = loo_ridge(xc, yc, [0.01, 1.0, 100.0])
    for alpha, error in errors.items():
        assert abs(error - _brute_force_loo(x, y, alpha)) < 1e-10, alpha
    assert best == min(errors, key=errors.get)


def test_ridge_fits_a_linear_decoder_and_round_trips():
    enc = FakeProjectionEncoder()
    g = torch.Generator().manual_seed(1)
    images = torch.rand(64, 3, 16, 16, generator=g)
    data = TrainingData(enc.templates(images), (images * 255).round().byte())
    inv = RidgeInverter(enc, RidgeInverter.make_options({"alphas": [1e-6]}))
    summary = inv.fit(data, FitContext(seed=0))
    assert summary["alpha"] == 1e-6 and summary["n_train_images"] == 64
    out = inv.invert(data.templates)
    assert out.shape == (64, 3, 16, 16) and 0 <= float(out.min()) and float(out.max()) <= 1
    # with 8-D templates and 64 faces the fit is a projection: it must beat the mean image
    target = data.images.float() / 255
    assert (out - target).pow(2).mean() < (target.mean(0) - target).pow(2).mean()
    other = RidgeInverter(enc, RidgeInverter.make_options({}))
    other.load_state_dict(inv.state_dict())
    assert torch.equal(other.invert(data.templates), out)
