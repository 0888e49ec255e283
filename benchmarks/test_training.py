"""Inversion networks: per-template inversion time and one DFD training step, as a share
of a float32 matrix-product peak measured in the same run.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
products, forward and backward). The peak is the fastest single float32 product
``(1024, 1024) @ (1024, 1024)`` (``2 * 1024**3`` FLOP) of three libraries, run in bursts of
``PEAK_BURST`` round by round beside the subject (references ``matmul_peak_burst_<lib>``,
whose own ratios are of a whole burst): MKL's ``torch.mm``, numpy's BLAS, and oneDNN as a
1x1 convolution in the default and the channels_last layout. One library, or one call,
understates the machine: on an AVX-512 AMD EPYC, MKL's ``torch.mm`` reached ~190 GFLOP/s,
oneDNN's default-layout 1x1 convolution 250-410 from one process to the next, and its
channels_last one ~400. Recorded: ms per
template, GFLOP per call, the peak and the library that set it, ``share_of_matmul_peak``.
The DFD step is ``dfd``'s own loss
and optimizer step with the originals' perceptual features computed once before training,
as ``fit`` does (:class:`~invbench.training.TargetFeatureCache`); its references are the
same step computing them every step (``target_features_every_step``: the step before the
cache; the two are checked bit-identical) and, not applied because it changes training
numerics (``docs/performance.md``), channels_last (``channels_last_not_applied``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch
from conftest import compare, record
from torch.utils.flop_counter import FlopCounterMode

from invbench.testing.fakes import FakeConvEncoder, FakeConvOptions

PEAK_N = 1024
PEAK_BURST = 5


class MatmulPeak:
    """The fastest single ``(PEAK_N, PEAK_N) @ (PEAK_N, PEAK_N)`` float32 product seen."""

    def __init__(self) -> None:
        a = torch.randn(PEAK_N, PEAK_N, generator=torch.Generator().manual_seed(0))
        b = torch.randn(PEAK_N, PEAK_N, generator=torch.Generator().manual_seed(1))
        a_np, b_np = a.numpy(), b.numpy()
        # oneDNN: a 1x1 convolution of PEAK_N channels over PEAK_N pixels is the same product
        x, w = b.reshape(1, PEAK_N, 32, PEAK_N // 32), a.reshape(PEAK_N, PEAK_N, 1, 1)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        self.products: dict[str, Callable[[], Any]] = {
            "mkl": lambda: torch.mm(a, b),
            "numpy": lambda: a_np @ b_np,
            "onednn": lambda: torch.nn.functional.conv2d(x, w),
            "onednn_channels_last": lambda: torch.nn.functional.conv2d(x_cl, w),
        }
        self.best_s = dict.fromkeys(self.products, float("inf"))

    def references(self) -> dict[str, Callable[[], None]]:
        """One burst per library, for :func:`compare` to run beside the subject."""
        return {f"matmul_peak_burst_{k}": partial(self._burst, k) for k in self.products}

    def _burst(self, library: str) -> None:
        for _ in range(PEAK_BURST):
            start = time.perf_counter()
            self.products[library]()
            self.best_s[library] = min(self.best_s[library], time.perf_counter() - start)

    def gflops(self) -> tuple[str, float]:
        """The library of the fastest product and its GFLOP/s."""
        library = min(self.best_s, key=self.best_s.__getitem__)
        return library, 2 * PEAK_N**3 / self.best_s[library] / 1e9


def _flops(fn: Any) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _share(benchmark: Any, name: str, flops: int, peak: MatmulPeak) -> None:
    if not benchmark.enabled:
        return
    t = benchmark.extra_info["subject_min_s"]
    library, gflops = peak.gflops()
    record(
        benchmark,
        name,
        "share_of_matmul_peak",
        flops / t / (gflops * 1e9),
        gflop_per_call=flops / 1e9,
        achieved_gflops=flops / t / 1e9,
        matmul_peak_gflops=gflops,
        matmul_peak_library=library,
    )


def _inverters() -> list[tuple[str, Any, int, int]]:
    from invbench_plugins.inverters.dfd import DFDInverter
    from invbench_plugins.inverters.icip2022 import Icip2022Inverter
    from invbench_plugins.inverters.nbnet import DcnnInverter, NbNetAInverter, NbNetBInverter

    # (name, class, encoder input side, template length): the papers' settings
    return [
        ("dcnn", DcnnInverter, 160, 128),
        ("nbnet-a", NbNetAInverter, 160, 128),
        ("nbnet-b", NbNetBInverter, 160, 128),
        ("dfd", DFDInverter, 112, 192),
        ("icip2022", Icip2022Inverter, 112, 192),
    ]


@pytest.mark.parametrize("profile", ["quick", "paper"])
@pytest.mark.parametrize("which", [i[0] for i in _inverters()])
def test_inversion_per_template(benchmark, full, which, profile):
    name, cls, side, dim = next(i for i in _inverters() if i[0] == which)
    encoder = FakeConvEncoder(FakeConvOptions(size=side, dim=dim))
    options = cls.make_options({"perceptual": "none"} if name == "dfd" else {}, profile=profile)
    net = cls(encoder, options).build_network().eval()
    batch = 2 if benchmark.disabled else (64 if full else 16)
    templates = torch.nn.functional.normalize(torch.randn(batch, dim), dim=1)

    def invert() -> torch.Tensor:
        with torch.no_grad():
            return net(templates)

    peak = MatmulPeak()
    out, _ = compare(benchmark, invert, peak.references(), rounds=3)
    assert out.shape[0] == batch
    if benchmark.enabled:
        benchmark.extra_info["ms_per_template"] = (
            1e3 * benchmark.extra_info["subject_min_s"] / batch
        )
    _share(benchmark, f"invert {name} {profile} (batch {batch})", _flops(invert), peak)


def _perceptual_network():
    """The white-box φ of DFD's quick profile (arcface) if cached, else a stand-in."""
    from invbench.assets import locate
    from invbench_plugins.encoders.arcface import MOBILEFACENET_ASSET, ArcFaceEncoder

    if locate(MOBILEFACENET_ASSET) is not None:
        return ArcFaceEncoder()
    return FakeConvEncoder(FakeConvOptions(size=112, dim=192))


def test_dfd_training_step(benchmark, full):
    from invbench.components import FitContext, TrainingData
    from invbench_plugins.inverters.dfd import DFDInverter

    phi = _perceptual_network()
    inverter = DFDInverter(phi, DFDInverter.make_options(profile="quick"))
    batch = 4 if benchmark.disabled else 32
    gen = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(batch, 192, generator=gen), dim=1)
    faces = torch.randint(0, 256, (batch, 3, 112, 112), generator=gen, dtype=torch.uint8)
    # what fit() does before the first step: φ's map weights, the originals' features
    inverter.prepare(TrainingData(emb, faces), FitContext(seed=0, progress=False))
    cached = dict(inverter._target_feats)
    assert cached["perc"] is not None, "the benchmark's 32 faces fit any cache budget"
    data = (emb, faces, torch.arange(batch))

    def make(channels_last: bool = False) -> tuple[Any, Any]:
        torch.manual_seed(0)
        net = inverter.build_network()
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        return net, torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(net: Any, opt: Any, cache: dict[str, Any]) -> float:
        """One optimizer step of dfd's own loss (Eq. 2, quick weights) on ``data``."""
        inverter._model, inverter._target_feats = net, cache
        opt.zero_grad(set_to_none=True)
        loss, _ = inverter._loss(data)
        loss.backward()
        opt.step()
        return float(loss.detach())

    net, opt = make()
    net_cl, opt_cl = make(channels_last=True)
    peak = MatmulPeak()
    compare(
        benchmark,
        lambda: step(net, opt, cached),
        {
            **peak.references(),
            "target_features_every_step": lambda: step(net, opt, {}),
            "channels_last_not_applied": lambda: step(net_cl, opt_cl, cached),
        },
        rounds=3,
    )
    net_f, opt_f = make()
    flops = _flops(lambda: step(net_f, opt_f, cached))
    _share(benchmark, f"dfd quick training step (batch {batch}, phi={phi.name})", flops, peak)
    if benchmark.enabled:  # the same share for the step issue 14 measured (features per step)
        flops_ref = _flops(lambda: step(net_f, opt_f, {}))
        t_ref = benchmark.extra_info["target_features_every_step_min_s"]
        record(
            benchmark,
            "dfd step, originals' features every step",
            "share_of_matmul_peak_target_features_every_step",
            flops_ref / t_ref / (peak.gflops()[1] * 1e9),
            gflop_per_call_target_features_every_step=flops_ref / 1e9,
        )
    # bits: one step from the same initial weights; cached targets vs every step (exact),
    # channels_last vs the default layout (other kernels)
    a, oa = make()
    loss_a = step(a, oa, cached)
    b, ob = make()
    loss_b = step(b, ob, {})
    assert loss_a == loss_b and all(
        torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True)
    ), "cached target features changed the step"
    if benchmark.enabled:
        c, oc = make(channels_last=True)
        step(c, oc, cached)
        same = all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))
        benchmark.extra_info["channels_last_bit_identical_after_one_step"] = same
