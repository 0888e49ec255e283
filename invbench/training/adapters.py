"""Embedding adapters: a map from a victim encoder's templates to a surrogate encoder's.

A black-box attacker who can only query the victim ``F`` encodes its own faces with ``F``
and with a surrogate ``A`` it owns, fits ``F -> A`` on those pairs, and inverts
``adapter(F(x))`` with an inverter trained for ``A``. Two kinds:

- ``ridge``: a linear map (ridge regression, penalty by leave-one-out);
- ``mlp``: a two-layer MLP trained on the cosine between its output and ``A``'s template.

An adapter is stored as named arrays (cache-friendly) and rebuilt from them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from invbench.seeding import mix_seed
from invbench.training.linear import fit_ridge
from invbench.training.optim import OptimizerSpec, Stage
from invbench.training.trainer import Trainer

AdapterKind = Literal["ridge", "mlp"]
#: Penalties the ridge adapter tries.
RIDGE_ALPHAS = [10.0**k for k in range(-4, 3)]


def fit_adapter(
    kind: AdapterKind, victim: Tensor, surrogate: Tensor, *, seed: int = 0, progress: bool = False
) -> dict[str, np.ndarray]:
    """Fit ``victim (N, D_F) -> surrogate (N, D_A)`` templates; returns the adapter's arrays.

    Raises:
        ValueError: On an unknown kind or mismatched rows.
    """
    if victim.shape[0] != surrogate.shape[0]:
        raise ValueError(f"{victim.shape[0]} victim but {surrogate.shape[0]} surrogate templates")
    if kind == "ridge":
        m = fit_ridge(victim, surrogate, RIDGE_ALPHAS)
        return {
            "kind": np.asarray("ridge"),
            "weight": m.weight.numpy(),
            "x_mean": m.x_mean.numpy(),
            "y_mean": m.y_mean.numpy(),
            "alpha": np.asarray(m.alpha),
        }
    if kind == "mlp":
        net = _mlp(victim.shape[1], surrogate.shape[1], seed)

        def loss(batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, Tensor]]:
            x, y = batch
            cos = F.cosine_similarity(net(x), y, dim=1).mean()
            return 1.0 - cos, {"cos": cos.detach()}

        stage = Stage(
            loss, name="adapter", epochs=200, steps=2000, optimizer=OptimizerSpec(lr=1e-3)
        )
        Trainer(net, stage, batch_size=64, seed=seed, progress=progress, desc="adapter").fit(
            (victim.float(), surrogate.float())
        )
        arrays = {f"mlp.{k}": v.detach().numpy() for k, v in net.state_dict().items()}
        return {"kind": np.asarray("mlp"), **arrays}
    raise ValueError(f"unknown adapter kind {kind!r}: ridge or mlp")


def _mlp(d_in: int, d_out: int, seed: int) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(mix_seed(seed, 0xADA))
        return nn.Sequential(nn.Linear(d_in, 512), nn.ReLU(), nn.Linear(512, d_out))


def apply_adapter(arrays: dict[str, np.ndarray], templates: Tensor) -> Tensor:
    """``(N, D_F)`` victim templates -> ``(N, D_A)`` unit-norm surrogate-space templates."""
    kind = str(arrays["kind"])
    if kind == "ridge":
        x = templates.double() - torch.from_numpy(arrays["x_mean"])
        out = x @ torch.from_numpy(arrays["weight"]) + torch.from_numpy(arrays["y_mean"])
    else:
        state = {
            k.removeprefix("mlp."): torch.from_numpy(v) for k, v in arrays.items() if k != "kind"
        }
        net = _mlp(state["0.weight"].shape[1], state["2.weight"].shape[0], 0)
        net.load_state_dict(state)
        with torch.no_grad():
            out = net(templates.float())
    return F.normalize(out.float(), dim=1)
