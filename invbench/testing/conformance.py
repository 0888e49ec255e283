"""Conformance checks for any registered component, on tiny fake data.

Used by ``invbench check-plugin NAME`` and by plugin authors' own test suites::

    from invbench.testing.conformance import check_component
    from invbench.plugin_manager import create_plugin_manager

    def test_my_encoder_conforms():
        checks = check_component(create_plugin_manager().registry, "encoder", "my-encoder")
        assert all(c.passed for c in checks), [c for c in checks if not c.passed]

Components can define a ``"smoke"`` profile (``profiles = {"smoke": {...}}``) with tiny
settings; the checks build every component with it.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invbench.components import EvalContext, FitContext, Metric, TrainingData
from invbench.components.contracts import check_alignment, check_images, check_templates
from invbench.registry import ComponentFactory, Registry
from invbench.testing.fakes import FakeFaces, FakeProjectionEncoder, FakeTrainFaces

PROFILE = "smoke"

#: Options given to the checked component (on top of its smoke profile).
Opts = dict[str, Any] | None


@dataclass
class Check:
    """The outcome of one conformance check."""

    name: str
    passed: bool
    detail: str = ""


class _Checks:
    def __init__(self) -> None:
        self.results: list[Check] = []

    def run(self, name: str, fn: Callable[[], str | None]) -> bool:
        try:
            detail = fn() or ""
            self.results.append(Check(name, True, detail))
            return True
        except Exception as exc:  # a conformance failure is a result, not a crash
            self.results.append(Check(name, False, f"{type(exc).__name__}: {exc}"))
            return False


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _fake_images(n: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, *size, generator=g)


def check_encoder(factory: ComponentFactory, name: str, c: _Checks, options: Opts = None) -> None:
    """Shapes, unit norm, determinism, and the differentiable path of an encoder."""
    enc: Any = None

    def build() -> str:
        nonlocal enc
        enc = factory.build("encoder", name, options)
        return f"D={enc.embedding_dim}, input {enc.input_size}, alignment {enc.alignment!r}"

    if not c.run("builds", build):
        return
    images = _fake_images(3, enc.input_size)
    out: dict[str, torch.Tensor] = {}

    def encode() -> str:
        out["e"] = check_templates(f"encoder {name!r}", enc.encode(images), 3, enc.embedding_dim)
        return f"(3, {enc.embedding_dim}) float32, finite, unit norm"

    def deterministic() -> str:
        same = torch.allclose(enc.encode(images), out.get("e", torch.zeros(1)), atol=1e-5)
        _expect(bool(same), "two calls differ")
        return "same output twice"

    c.run("encode contract", encode)
    c.run("deterministic", deterministic)
    if enc.differentiable:

        def grad() -> str:
            x = images.clone().to(enc.device).requires_grad_(True)
            t = enc.forward_torch(x)
            t.sum().backward()
            _expect(x.grad is not None and bool(x.grad.abs().sum() > 0), "no gradient")
            cos = torch.nn.functional.cosine_similarity(t.detach().cpu(), out["e"]).min()
            _expect(float(cos) > 0.99, f"forward_torch vs encode cosine {float(cos):.4f}")
            return f"gradients flow; min cosine to encode() {float(cos):.5f}"

        c.run("differentiable path", grad)


def check_inverter(
    factory: ComponentFactory,
    name: str,
    c: _Checks,
    options: Opts = None,
    encoder: str = "fake-projection",
) -> None:
    """Fit a few steps on fake data, invert, and round-trip the state."""
    enc = factory.build("encoder", encoder)
    inv: Any = None

    def build() -> str:
        nonlocal inv
        inv = factory.build("inverter", name, options, encoder=enc)
        return f"output {inv.output_size}"

    if not c.run(f"builds (against encoder {encoder})", build):
        return
    faces = FakeTrainFaces()
    images = torch.stack([faces[i].image for i in range(len(faces))])
    images = torch.nn.functional.interpolate(images, size=enc.input_size, mode="bilinear")
    data = TrainingData(
        templates=enc.encode(images),
        images=(images * 255).round().byte(),
        identities=[faces[i].identity for i in range(len(faces))],
    )
    templates = data.templates[:4]

    def fit() -> str:
        with tempfile.TemporaryDirectory() as tmp:
            summary = inv.fit(data, FitContext(seed=0, checkpoint_dir=Path(tmp), progress=False))
        _expect(isinstance(summary, dict), "fit must return a dict")
        return f"summary keys: {sorted(summary)}"

    c.run("fit", fit)

    def invert() -> str:
        check_images(f"inverter {name!r}", inv.invert(templates), 4, inv.output_size)
        return f"(4, 3, {inv.output_size[0]}, {inv.output_size[1]}) in [0, 1], finite"

    c.run("invert contract", invert)

    def round_trip() -> str:
        buf = io.BytesIO()
        torch.save(inv.state_dict(), buf)
        buf.seek(0)
        state = torch.load(buf, weights_only=True)
        other = factory.build("inverter", name, options, encoder=enc)
        other.load_state_dict(state)
        same = torch.allclose(inv.invert(templates), other.invert(templates), atol=1e-6)
        _expect(bool(same), "a restored inverter gives other reconstructions")
        return "weights_only save/load gives identical reconstructions"

    c.run("state round trip", round_trip)


def fake_eval_context(
    encoder: FakeProjectionEncoder | None = None, per_identity: int = 3
) -> EvalContext:
    """A perfect attack on fake faces: reconstructions re-encode to their templates.

    The fake pseudo-inverse inverts the fake projection encoder exactly; the context has
    every field, the attacked encoder, the inverter and training data included.

    Args:
        encoder: The fake encoder (default: ``FakeProjectionEncoder()``).
        per_identity: Faces of each of the 6 identities.
    """
    from invbench.testing.fakes import FakeFacesOptions, FakePseudoInverse

    enc = encoder or FakeProjectionEncoder()
    inv = FakePseudoInverse(enc)
    faces = FakeFaces(FakeFacesOptions(per_identity=per_identity))
    images = torch.stack([faces[i].image for i in range(len(faces))])
    templates = enc.templates(images)
    recon = inv.reconstructions(templates)
    train_faces = FakeTrainFaces()
    train = torch.stack([train_faces[i].image for i in range(len(train_faces))])
    return EvalContext(
        identities=np.array([faces[i].identity for i in range(len(faces))]),
        keys=np.array([faces[i].key for i in range(len(faces))]),
        images=images,
        templates=templates,
        reconstructions=recon,
        real_templates=templates,
        recon_templates=enc.templates(recon),
        baseline_templates=enc.templates(images.mean(0, keepdim=True)).expand(len(faces), -1),
        n_total=len(faces),
        n_failed_to_acquire=0,
        eval_encoder=enc,
        encoder=enc,
        invert=inv.reconstructions,
        training=TrainingData(enc.templates(train), (train * 255).round().byte()),
    )


def check_protocol(factory: ComponentFactory, name: str, c: _Checks, options: Opts = None) -> None:
    """Scores on a fake context, metrics with directions, recomputation from saved scores."""
    proto: Any = None
    saved: dict[str, np.ndarray] = {}

    def build() -> str:
        nonlocal proto
        proto = factory.build("protocol", name, options)
        return f"main metric {proto.main_metric!r}"

    if not c.run("builds", build):
        return

    def scores() -> str:
        raw = proto.scores(fake_eval_context())
        _expect(
            isinstance(raw, dict) and all(isinstance(v, np.ndarray) for v in raw.values()),
            "scores() must return a dict of numpy arrays",
        )
        for k, v in raw.items():
            buf = io.BytesIO()
            np.save(buf, v, allow_pickle=False)  # must be savable without pickle
            buf.seek(0)
            saved[k] = np.load(buf, allow_pickle=False)
        return f"{len(raw)} arrays: {sorted(raw)}"

    if not c.run("scores", scores):
        return

    def metrics() -> str:
        first = proto.metrics(saved)
        _expect(bool(first), "no metrics")
        for k, m in first.items():
            _expect(isinstance(m, Metric), f"{k} is not a Metric")
            _expect(m.value is None or math.isfinite(m.value), f"{k} is not finite")
            _expect(m.value is not None or bool(m.unavailable), f"{k} has no value nor reason")
        again = proto.metrics(saved)
        _expect(first == again, "metrics differ between two computations")
        for wanted in proto.headline():
            _expect(wanted in first, f"headline metric {wanted} missing from {sorted(first)}")
        both = sorted(set(proto.headline()) & set(proto.system_metric_names))
        _expect(not both, f"system metrics {both} must not be headline (attack) metrics")
        return f"{len(first)} metrics, recomputable from saved scores"

    c.run("metrics from scores", metrics)


def check_dataset(factory: ComponentFactory, name: str, c: _Checks, options: Opts = None) -> None:
    """Length, sample contract, stable fingerprint."""
    ds: Any = None

    def build() -> str:
        nonlocal ds
        ds = factory.build("dataset", name, options)
        return f"{len(ds)} samples, aligned={ds.aligned}"

    if not c.run("builds", build):
        return

    def samples() -> str:
        _expect(len(ds) > 0, "empty dataset")
        for i in (0, len(ds) - 1):
            s = ds[i]
            _expect(s.image.ndim == 3 and s.image.shape[0] == 3, f"image shape {s.image.shape}")
            _expect(float(s.image.min()) >= 0 and float(s.image.max()) <= 1, "outside [0, 1]")
            _expect(isinstance(s.identity, str) and isinstance(s.key, str), "labels not str")
        return f"sample image {tuple(ds[0].image.shape)}"

    c.run("sample contract", samples)

    def fingerprint() -> str:
        same = ds.fingerprint() == factory.build("dataset", name, options).fingerprint()
        _expect(same, "fingerprint differs between two instances")
        return ds.fingerprint()[:23]

    c.run("stable fingerprint", fingerprint)


def check_aligner(factory: ComponentFactory, name: str, c: _Checks, options: Opts = None) -> None:
    """Output shapes and the failure mask on images without faces."""
    al: Any = None

    def build() -> str:
        nonlocal al
        al = factory.build("aligner", name, options)
        return f"alignment {al.alignment!r}"

    if not c.run("builds", build):
        return

    def align() -> str:
        imgs = [_fake_images(1, (64, 48))[0], torch.zeros(3, 80, 80)]
        faces, ok = al.align(imgs, (32, 32))
        check_alignment(f"aligner {name!r}", faces, ok, 2, (32, 32))
        return f"(2, 3, 32, 32) faces, (2,) bool ok={ok.tolist()}"

    c.run("align contract", align)


def check_generator(factory: ComponentFactory, name: str, c: _Checks, options: Opts = None) -> None:
    """Latent shapes, output range, determinism, gradients to the latents."""
    gen: Any = None

    def build() -> str:
        nonlocal gen
        gen = factory.build("generator", name, options)
        return f"latents {gen.latent_shape}, output {gen.output_size}"

    if not c.run("builds", build):
        return

    def synth() -> str:
        z1 = gen.sample_latents(2, torch.Generator().manual_seed(0))
        z2 = gen.sample_latents(2, torch.Generator().manual_seed(0))
        _expect(torch.equal(z1, z2), "sampling is not deterministic under a seed")
        z = z1.clone().to(gen.device).requires_grad_(True)
        x = gen.synthesize(z)
        check_images(f"generator {name!r}", x, 2, gen.output_size)
        x.mean().backward()
        _expect(z.grad is not None, "no gradient to the latents")
        return "deterministic, in [0, 1], differentiable"

    c.run("synthesize contract", synth)


CHECKERS: dict[str, Callable[..., None]] = {
    "encoder": check_encoder,
    "inverter": check_inverter,
    "protocol": check_protocol,
    "dataset": check_dataset,
    "aligner": check_aligner,
    "generator": check_generator,
}


def check_component(
    registry: Registry,
    family: str,
    name: str,
    *,
    device: str = "cpu",
    encoder: str = "fake-projection",
    options: Opts = None,
) -> list[Check]:
    """Run the conformance checks of ``family`` on component ``name``.

    Args:
        registry: Where the component is registered.
        family: Its family.
        name: Its name.
        device: Device to build it on.
        encoder: Encoder an inverter is checked against.
        options: Options of the component, on top of its ``smoke`` profile (data paths).

    Returns:
        One :class:`Check` per check, passed or not (never raises for a failed check).
    """
    checks = _Checks()
    factory = ComponentFactory(registry, device=device, profile=PROFILE)
    entry = registry.get(family, name)
    if not checks.run("imports and subclasses the contract", lambda: entry.load().__name__):
        return checks.results
    torch.manual_seed(0)
    if family == "inverter":
        check_inverter(factory, entry.name, checks, options, encoder=encoder)
    else:
        CHECKERS[family](factory, entry.name, checks, options)
    return checks.results
