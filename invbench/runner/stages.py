"""The cached stages of a cell: align -> encode -> train -> invert -> re-encode.

Each stage is a function of components and the keys of its inputs; its output is stored
in the content-addressed :class:`~invbench.runner.cache.Cache` under a key derived from
everything that determines it. Data flows one way through these functions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from invbench.components import (
    Aligner,
    Component,
    Encoder,
    EvalContext,
    FaceDataset,
    FaceSample,
    FitContext,
    Inverter,
    Protocol,
    TrainingData,
)
from invbench.components.contracts import check_alignment
from invbench.errors import UnreadableImageError
from invbench.images import resize, to_uint8
from invbench.runner.cache import Cache, make_key
from invbench.training.adapters import apply_adapter, fit_adapter

logger = logging.getLogger(__name__)

BATCH = 64
#: Faces per encoder call in the template stage, the last call padded to it (see
#: :mod:`invbench.determinism`): from 16 rows up torch sends every convolution to oneDNN
#: whatever the thread count, and 16 is as fast per face as 64 on CPU.
ENCODE_BATCH = 16


def component_spec(component: Component) -> dict[str, Any]:
    """What identifies a component's behaviour: name, version, options, assets."""
    return {
        "family": component.family,
        "name": component.name,
        "version": component.version,
        "options": component.options.model_dump(mode="json"),
        "provenance": component.provenance(),
    }


def training_data(train: Stage, templates: Stage) -> TrainingData:
    """The acquired training faces of an ``align`` stage with their ``encode`` stage's templates."""
    ok = train.arrays["ok"]
    latents = train.arrays.get("latents")
    return TrainingData(
        templates=torch.from_numpy(templates.arrays["templates"]),
        images=torch.from_numpy(train.arrays["images"][ok]),
        latents=None if latents is None else torch.from_numpy(latents[ok]),
        identities=[str(i) for i in train.arrays["identities"][ok]],
    )


def _who(component: Component) -> str:
    return f"{component.family} {component.name!r}"


@dataclass
class Stage:
    """A computed (or reused) stage output and the key it is stored under."""

    key: str
    arrays: dict[str, np.ndarray]
    seconds: float


class Stages:
    """Runs the stages of one cell against a cache, with progress bars."""

    def __init__(self, cache: Cache, *, progress: bool = True) -> None:
        self.cache = cache
        self.progress = progress

    def _bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, desc=desc, unit="img", disable=not self.progress, leave=False)

    def align(self, dataset: FaceDataset, aligner: Aligner | None, size: tuple[int, int]) -> Stage:
        """Aligned faces of ``dataset`` at ``size``.

        Returns arrays ``images`` ``(N, 3, H, W)`` uint8, ``ok`` ``(N,)`` bool (False =
        failure to acquire: no face found, or an image that cannot be read),
        ``identities`` and ``keys`` ``(N,)`` str, ``unreadable`` (``"key: reason"`` per
        unreadable image), and ``latents`` ``(N, n, d)`` for synthetic datasets.
        """
        spec = {
            "dataset": component_spec(dataset),
            "fingerprint": dataset.fingerprint(),
            "aligner": None if dataset.aligned or aligner is None else component_spec(aligner),
            "size": list(size),
        }
        key = make_key("aligned", spec)
        t0 = time.perf_counter()

        def compute() -> dict[str, np.ndarray]:
            n = len(dataset)
            images = np.zeros((n, 3, *size), dtype=np.uint8)
            ok = np.zeros(n, dtype=bool)
            identities, keys, latents = [], [], []
            unreadable: list[str] = []
            with self._bar(n, f"align {dataset.name}") as bar:
                for start in range(0, n, BATCH):
                    samples, readable = [], []
                    for i in range(start, min(n, start + BATCH)):
                        try:
                            samples.append(dataset[i])
                            readable.append(len(samples) - 1)
                        except UnreadableImageError as exc:  # a failure to acquire
                            logger.warning("%s", exc)
                            unreadable.append(f"{exc.key}: {exc}")
                            samples.append(FaceSample(torch.zeros(3, *size), exc.identity, exc.key))
                    raw = [samples[j].image for j in readable]
                    faces = torch.zeros(len(samples), 3, *size)
                    found = torch.zeros(len(samples), dtype=torch.bool)
                    if raw and (dataset.aligned or aligner is None):
                        faces[readable] = torch.cat([resize(im[None].float(), size) for im in raw])
                        found[readable] = True
                    elif raw and aligner is not None:
                        aligned, hit = aligner.align(raw, size)
                        check_alignment(_who(aligner), aligned, hit, len(raw), size)
                        faces[readable], found[readable] = aligned.cpu().float(), hit.cpu()
                    stop = start + len(samples)
                    images[start:stop] = to_uint8(faces)
                    ok[start:stop] = found.numpy()
                    identities += [s.identity for s in samples]
                    keys += [s.key for s in samples]
                    latents += [s.latent for s in samples if s.latent is not None]
                    bar.update(len(samples))
            out = {
                "images": images,
                "ok": ok,
                "identities": np.array(identities, dtype=str),
                "keys": np.array(keys, dtype=str),
                "unreadable": np.array(unreadable, dtype=str),
            }
            if latents and len(latents) == n:
                out["latents"] = torch.stack(latents).float().numpy()
            return out

        arrays = self.cache.arrays("aligned", key, compute)
        return Stage(key, arrays, time.perf_counter() - t0)

    def encode(
        self, encoder: Encoder, images: Stage | Tensor, source_key: str, label: str
    ) -> Stage:
        """Templates ``(N, D)`` of the acquired rows of ``images`` (uint8 stage or floats).

        Computed in batches of exactly :data:`ENCODE_BATCH` faces (the last padded; see
        :mod:`invbench.determinism`), so a face's template does not depend on how many faces
        are encoded with it nor on the thread count.
        """
        key = make_key(
            "templates",
            {
                "encoder": component_spec(encoder),
                "source": source_key,
                "size": list(encoder.input_size),
            },
        )
        t0 = time.perf_counter()

        def compute() -> dict[str, np.ndarray]:
            if isinstance(images, Stage):
                data = torch.from_numpy(images.arrays["images"][images.arrays["ok"]])
            else:
                data = images
            with self._bar(len(data), f"encode {label} ({encoder.name})") as bar:
                # one shape per forward pass: same bits whatever N and the thread count
                templates = encoder.templates(data, ENCODE_BATCH, bar.update, fixed_batch=True)
            return {"templates": templates.numpy()}

        arrays = self.cache.arrays("templates", key, compute)
        return Stage(key, arrays, time.perf_counter() - t0)

    def adapter(self, kind: str, victim: Stage, surrogate: Stage, seed: int) -> Stage:
        """An adapter from the victim's to the surrogate's templates of the training faces."""
        key = make_key(
            "adapter",
            {"kind": kind, "victim": victim.key, "surrogate": surrogate.key, "seed": seed},
        )
        t0 = time.perf_counter()

        def compute() -> dict[str, np.ndarray]:
            x = torch.from_numpy(victim.arrays["templates"])
            y = torch.from_numpy(surrogate.arrays["templates"])
            return fit_adapter(kind, x, y, seed=seed, progress=self.progress)  # type: ignore[arg-type]

        arrays = self.cache.arrays("adapter", key, compute)
        return Stage(key, arrays, time.perf_counter() - t0)

    def adapted(self, adapter: Stage, templates: Stage) -> Stage:
        """``templates`` mapped by ``adapter`` (unit rows in the surrogate's space)."""
        key = make_key("templates", {"adapter": adapter.key, "source": templates.key})
        t0 = time.perf_counter()

        def compute() -> dict[str, np.ndarray]:
            mapped = apply_adapter(adapter.arrays, torch.from_numpy(templates.arrays["templates"]))
            return {"templates": mapped.numpy()}

        arrays = self.cache.arrays("templates", key, compute)
        return Stage(key, arrays, time.perf_counter() - t0)

    def protocol_scores(
        self, protocol: Protocol, ctx: EvalContext, upstream: dict[str, str]
    ) -> Stage:
        """``protocol.scores(ctx)``, cached under the protocol and the keys it depends on."""
        key = make_key("scores", {"protocol": component_spec(protocol), **upstream})
        t0 = time.perf_counter()
        arrays = self.cache.arrays("scores", key, lambda: protocol.scores(ctx))
        return Stage(key, arrays, time.perf_counter() - t0)

    def train(self, inverter: Inverter, train: Stage, templates: Stage, seed: int) -> Stage:
        """Fit ``inverter`` (or load its cached state); arrays hold the fit summary."""
        key = make_key(
            "inverter",
            {
                "inverter": component_spec(inverter),
                "encoder": component_spec(inverter.encoder),
                "templates": templates.key,
                "seed": seed,
            },
        )
        t0 = time.perf_counter()

        def compute() -> dict[str, Any]:
            if not inverter.requires_training:
                return {"state": inverter.state_dict(), "summary": {"trained": False}}
            data = training_data(train, templates)
            ctx = FitContext(
                seed=seed,
                progress=self.progress,
                checkpoint_dir=self.cache.checkpoint_dir("inverter", key)
                if self.cache.enabled
                else None,
            )
            t_fit = time.perf_counter()
            summary = dict(inverter.fit(data, ctx))
            summary.setdefault("seconds", time.perf_counter() - t_fit)
            return {"state": inverter.state_dict(), "summary": summary}

        state = self.cache.state("inverter", key, compute)
        try:
            inverter.load_state_dict(state["state"])
        except Exception as exc:  # a cached state the inverter cannot use: train again
            self.cache.invalidate("inverter", key, ".pt", f"the inverter cannot load it: {exc}")
            state = self.cache.state("inverter", key, compute)
            inverter.load_state_dict(state["state"])
        return Stage(key, {"summary": state["summary"]}, time.perf_counter() - t0)

    def invert(self, inverter: Inverter, trained: Stage, templates: Stage) -> Stage:
        """Reconstructions ``(N, 3, h, w)`` float32 and the inversion time.

        For an iterative inverter (``budget()`` not empty) also ``budget_steps`` ``(K,)``,
        ``budget_gradient_calls`` ``(K,)`` (per template) and ``budget_images``
        ``(K, N, 3, h, w)`` uint8: the reconstructions after each step count (8-bit, to keep
        the cache small; ``images`` is the full-precision result of the last count).
        """
        key = make_key("reconstructions", {"inverter": trained.key, "templates": templates.key})
        t0 = time.perf_counter()

        def compute() -> dict[str, np.ndarray]:
            data = torch.from_numpy(templates.arrays["templates"])
            t_inv = time.perf_counter()
            steps = inverter.budget()
            with self._bar(len(data), f"invert ({inverter.name})") as bar:
                if not steps:
                    recon = inverter.reconstructions(data, BATCH, bar.update)
                    return {
                        "images": recon.numpy(),
                        "seconds": np.array(time.perf_counter() - t_inv),
                    }
                found = inverter.reconstructions_over_budget(data, BATCH, bar.update)
            return {
                "images": found[steps[-1]].numpy(),
                "seconds": np.array(time.perf_counter() - t_inv),
                "budget_steps": np.asarray(steps, dtype=np.int64),
                "budget_gradient_calls": np.asarray(
                    [inverter.gradient_calls(k) for k in steps], dtype=np.int64
                ),
                "budget_images": np.stack([to_uint8(found[k]) for k in steps]),
            }

        arrays = self.cache.arrays("reconstructions", key, compute)
        return Stage(key, arrays, time.perf_counter() - t0)
