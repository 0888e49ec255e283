"""Closed-form linear maps: ridge regression with its penalty chosen by leave-one-out.

Used by the ``ridge`` inverter (templates -> pixels) and by embedding adapters (one
encoder's templates -> another's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def loo_ridge(x: Tensor, y: Tensor, alphas: list[float]) -> tuple[float, dict[float, float]]:
    """The penalty with the lowest exact leave-one-out mean squared error.

    Args:
        x: ``(N, D)`` inputs (centred: the bias is fitted separately, unpenalised).
        y: ``(N, P)`` targets (centred).
        alphas: Penalties to try.

    Returns:
        ``(best alpha, {alpha: leave-one-out MSE})``.
    """
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    uty = u.T @ y
    n = x.shape[0]
    errors = {}
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        fitted = u @ (shrink[:, None] * uty)
        leverage = (u**2) @ shrink + 1.0 / n  # the unpenalised intercept adds 1/N
        loo = (y - fitted) / (1.0 - leverage)[:, None]
        errors[alpha] = float(loo.pow(2).mean())
    return min(errors, key=errors.__getitem__), errors


@dataclass
class LinearMap:
    """``y = (x - x_mean) W + y_mean``, fitted by :func:`fit_ridge`.

    Attributes:
        weight: ``(D_in, D_out)`` float64.
        x_mean: ``(D_in,)`` float64.
        y_mean: ``(D_out,)`` float64.
        alpha: The penalty used.
        loo_mse: Leave-one-out mean squared error per penalty tried.
    """

    weight: Tensor
    x_mean: Tensor
    y_mean: Tensor
    alpha: float
    loo_mse: dict[float, float]

    def __call__(self, x: Tensor) -> Tensor:
        """``(N, D_in)`` -> ``(N, D_out)`` float64."""
        return (x.double() - self.x_mean) @ self.weight + self.y_mean


def fit_ridge(x: Tensor, y: Tensor, alphas: list[float]) -> LinearMap:
    """Ridge regression ``x -> y`` with an unpenalised intercept, ``alpha`` by leave-one-out.

    Args:
        x: ``(N, D_in)`` inputs.
        y: ``(N, D_out)`` targets.
        alphas: Penalties to try.

    >>> x = torch.randn(40, 3, dtype=torch.float64)
    >>> m = fit_ridge(x, 2 * x + 1, [1e-9])
    >>> bool(torch.allclose(m(x), 2 * x + 1))
    True
    """
    x, y = x.double(), y.double()
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc, yc = x - x_mean, y - y_mean
    alpha, errors = loo_ridge(xc, yc, alphas)
    gram = xc.T @ xc + alpha * torch.eye(xc.shape[1], dtype=torch.float64)
    return LinearMap(torch.linalg.solve(gram, xc.T @ yc), x_mean, y_mean, alpha, errors)
