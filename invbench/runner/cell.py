"""Running one grid cell end to end and writing its record, scores and pictures."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import shutil
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invbench import __version__
from invbench.allocator import tune_malloc
from invbench.components import Component, Encoder, EvalContext, FaceDataset, Protocol
from invbench.errors import IncompatibleComponentsError, InvbenchError, RecordError
from invbench.images import resize
from invbench.io import atomic_write_bytes, replace_folder, staging_folder
from invbench.plugin_manager import PluginHost
from invbench.provenance import environment, git_info, peak_rss_mib
from invbench.records import CellInfo, ComponentInfo, Record, load_record, save_record
from invbench.registry import ComponentFactory, Registry
from invbench.runner.cache import Cache, make_key
from invbench.runner.grid import CellSpec, default_protocols
from invbench.runner.picture import save_reconstruction_grid
from invbench.runner.stages import Stage, Stages, training_data
from invbench.seeding import derive_seed, seed_everything
from invbench.training.adapters import apply_adapter

logger = logging.getLogger(__name__)


@dataclass
class Built:
    """The components of one cell, built and role-named."""

    encoder: Encoder
    eval_encoder: Encoder
    inverter: Any
    dataset: FaceDataset
    train_dataset: FaceDataset
    aligner: Any
    protocols: list[Protocol]
    surrogate: Encoder | None = None


def role_options(spec: CellSpec, role: str, name: str) -> dict[str, Any]:
    """The user's options for component ``name`` in ``role`` (``"*"`` scope, then its own)."""
    scoped = spec.options.get(role, {})
    return {**scoped.get("*", {}), **scoped.get(name, {})}


def check_options(spec: CellSpec, registry: Registry) -> None:
    """Validate every component's options of ``spec`` without building anything.

    Raises:
        OptionsError: Naming the component, the bad key or value, and the known options.
    """
    roles = [
        ("encoder", "encoder", spec.encoder),
        ("eval_encoder", "encoder", spec.eval_encoder),
        ("inverter", "inverter", spec.inverter),
        ("dataset", "dataset", spec.dataset),
        ("train_dataset", "dataset", spec.train_dataset),
    ]
    if spec.aligner != "none":
        roles.append(("aligner", "aligner", spec.aligner))
    if spec.surrogate is not None:
        roles.append(("surrogate", "encoder", spec.surrogate))
    roles += [("protocol", "protocol", p) for p in spec.protocols or default_protocols(registry)]
    for role, family, name in roles:
        registry.load(family, name).make_options(role_options(spec, role, name), spec.profile)


def build_components(spec: CellSpec, host: PluginHost) -> Built:
    """Build every component of ``spec`` with its validated options and profile."""
    factory = ComponentFactory(host.registry, device=spec.device, profile=spec.profile)

    def opts(role: str, name: str) -> dict[str, Any]:
        return role_options(spec, role, name)

    encoder = factory.build("encoder", spec.encoder, opts("encoder", spec.encoder))
    if spec.eval_encoder == spec.encoder and not spec.options.get("eval_encoder"):
        eval_encoder = encoder
    else:
        eval_encoder = factory.build(
            "encoder", spec.eval_encoder, opts("eval_encoder", spec.eval_encoder)
        )
        if eval_encoder.alignment != encoder.alignment:
            raise IncompatibleComponentsError(
                f"evaluation encoder {spec.eval_encoder!r} expects {eval_encoder.alignment!r} "
                f"crops but {spec.encoder!r} uses {encoder.alignment!r}",
                hint="pick an evaluation encoder with the same alignment template",
            )
    dataset = factory.build("dataset", spec.dataset, opts("dataset", spec.dataset))
    train_dataset = factory.build(
        "dataset", spec.train_dataset, opts("train_dataset", spec.train_dataset)
    )
    aligner = None
    if not (dataset.aligned and train_dataset.aligned):
        aligner = factory.build("aligner", spec.aligner, opts("aligner", spec.aligner))
    surrogate = None
    if spec.surrogate is not None:
        surrogate = factory.build("encoder", spec.surrogate, opts("surrogate", spec.surrogate))
        if surrogate.alignment != encoder.alignment:
            raise IncompatibleComponentsError(
                f"surrogate {spec.surrogate!r} expects {surrogate.alignment!r} crops but the "
                f"victim {spec.encoder!r} uses {encoder.alignment!r}",
                hint="pick a surrogate with the same alignment template",
            )
    inverter = factory.build(
        "inverter", spec.inverter, opts("inverter", spec.inverter), encoder=surrogate or encoder
    )
    names = list(spec.protocols) or [
        n for n in default_protocols(host.registry) if _protocol_class(host, n).applies_to(inverter)
    ]
    protocols = [factory.build("protocol", n, opts("protocol", n)) for n in names]
    return Built(
        encoder, eval_encoder, inverter, dataset, train_dataset, aligner, protocols, surrogate
    )


def _protocol_class(host: PluginHost, name: str) -> type[Protocol]:
    cls = host.registry.load("protocol", name)
    if not issubclass(cls, Protocol):
        raise InvbenchError(f"protocol {name!r} is not a Protocol subclass")
    return cls


def check_disjoint(train: Stage, evaluation: Stage, spec: CellSpec) -> None:
    """Refuse training and evaluation data that share identities."""
    if spec.train_dataset != spec.dataset:
        return
    shared = set(train.arrays["identities"]) & set(evaluation.arrays["identities"]) - {""}
    if shared:
        raise IncompatibleComponentsError(
            f"training and evaluation data share {len(shared)} identities "
            f"(e.g. {sorted(shared)[:3]}); the attack would be tested on faces it trained on",
            hint="use a different --train-dataset, or dataset options that split identities",
        )


def _info(component: Component, role: str, host: PluginHost) -> ComponentInfo:
    entry = host.registry.get(component.family, component.name)
    dist, dist_version = host.dist_of(entry.provider)
    return ComponentInfo(
        family=component.family,
        name=component.name,
        version=component.version,
        options=component.options.model_dump(mode="json"),
        provider=entry.provider,
        dist=dist,
        dist_version=dist_version,
        provenance=component.provenance(),
    )


def _save_scores(
    folder: Path, protocol: str, scores: dict[str, np.ndarray]
) -> tuple[dict[str, str], dict[str, str]]:
    """Write ``scores/<protocol>/<name>.npy``; return their relative paths and sha256s."""
    paths, digests = {}, {}
    for name, array in sorted(scores.items()):
        rel = f"scores/{protocol}/{name}.npy"
        buf = io.BytesIO()
        np.save(buf, np.asarray(array), allow_pickle=False)
        atomic_write_bytes(folder / rel, buf.getvalue())
        paths[name], digests[name] = rel, hashlib.sha256(buf.getvalue()).hexdigest()
    return paths, digests


def _has_good_record(folder: Path) -> bool:
    try:
        return load_record(folder / "record.json").status == "ok"
    except RecordError:
        return False


def _error_text(exc: Exception) -> str:
    """One line: the user-facing message, or for a bug the exception and where it was."""
    if isinstance(exc, InvbenchError):
        return f"{type(exc).__name__}: {exc}"
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"


def _base_record(spec: CellSpec, command: list[str]) -> dict[str, Any]:
    """The fields of a cell's record known before it runs: ids, the cell, the environment."""
    started = dt.datetime.now(dt.UTC)
    return {
        "run_id": f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        "command": command,
        "cell": CellInfo(
            encoder=spec.encoder,
            inverter=spec.inverter,
            dataset=spec.dataset,
            train_dataset=spec.train_dataset,
            eval_encoder=spec.eval_encoder,
            aligner=spec.aligner,
            protocols=list(spec.protocols),
            seed=spec.seed,
            profile=spec.profile,
            surrogate=spec.surrogate,
        ),
        "invbench": {"version": __version__, **git_info()},
        "environment": environment(torch.device(spec.device)),
    }


def run_cell(
    spec: CellSpec, host: PluginHost, cache: Cache, *, command: list[str], progress: bool = True
) -> Record:
    """Run ``spec`` and write its folder: ``record.json``, ``scores/``, the picture.

    The folder is assembled aside and moved into place complete, so it is always either
    the previous complete result or the new one. A failed run writes a record with status
    ``error`` and the reason, as ``record.json`` when the cell has no good record yet, else
    as ``last-error.json`` beside the good one (which is kept).

    Returns:
        The record of this run.
    """
    tune_malloc()  # large buffers reused between steps (same bits, see invbench.allocator)
    host.call_each("run_started", spec=spec)
    cache.events.clear()
    timings: dict[str, float] = {}
    base = _base_record(spec, command)
    components: dict[str, ComponentInfo] = {}
    staging: Path | None = None
    try:
        # components that initialise weights when built do so from the run seed
        seed_everything(derive_seed(spec.seed, "build"))
        built = build_components(spec, host)
        roles = ["encoder", "eval_encoder", "surrogate", "inverter", "dataset", "train_dataset"]
        for role in [*roles, "aligner"]:
            comp = getattr(built, role)
            if comp is not None:
                components[role] = _info(comp, role, host)
        for p in built.protocols:
            components[f"protocol:{p.name}"] = _info(p, "protocol", host)
        base["cell"] = base["cell"].model_copy(
            update={"protocols": [p.name for p in built.protocols]}
        )
        staging = staging_folder(spec.folder)
        record = _run_built(spec, built, cache, progress, timings, staging)
        record.update(
            base, components=components, timings_s=timings, cache=cache.summary(), status="ok"
        )
    except Exception as exc:
        logger.debug("cell failed", exc_info=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
            staging = None
        record = {
            **base,
            "components": components,
            "timings_s": timings,
            "cache": cache.summary(),
            "status": "error",
            "error": _error_text(exc),
        }
    record["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    record["environment"] = {**record["environment"], "peak_rss_mib": peak_rss_mib()}
    result = Record.model_validate(record)
    _write_record(spec, result, staging)
    host.call_each("run_finished", spec=spec, record=result.model_dump(mode="json"))
    return result


def _write_record(spec: CellSpec, result: Record, staging: Path | None) -> None:
    """Move a complete ``staging`` folder into place, or write an error record.

    An error never replaces a good record: it goes to ``last-error.json`` beside it.
    """
    if staging is not None:
        save_record(result, staging / "record.json")
        replace_folder(staging, spec.folder)
    elif _has_good_record(spec.folder):
        save_record(result, spec.folder / "last-error.json")
        logger.warning(
            "kept the good record in %s; this run's error is in last-error.json", spec.folder
        )
    else:
        staging = staging_folder(spec.folder)
        save_record(result, staging / "record.json")
        replace_folder(staging, spec.folder)


def failed_cell_record(spec: CellSpec, error: str, *, command: list[str]) -> Record:
    """Write and return the error record of a cell that ended without a record of its own.

    For a cell whose worker died or could not run it (a Dask task that failed, not the
    cell): the record names the cell and the ``error``; like every error record it never
    replaces a good one (it goes to ``last-error.json`` then).
    """
    record = {
        **_base_record(spec, command),
        "components": {},
        "timings_s": {},
        "cache": {},
        "status": "error",
        "error": error,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    result = Record.model_validate(record)
    _write_record(spec, result, None)
    return result


def _through_adapter(
    arrays: dict[str, np.ndarray], invert: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Victim templates -> the adapter -> the surrogate's inverter."""

    def run(templates: torch.Tensor) -> torch.Tensor:
        return invert(apply_adapter(arrays, templates))

    return run


def _budget(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """``budget`` and ``gradient_calls`` of the evaluation context from a reconstruction stage."""
    if "budget_steps" not in arrays:
        return {}
    steps = [int(k) for k in arrays["budget_steps"]]
    images = arrays["budget_images"]
    return {
        "budget": {k: torch.from_numpy(images[i]).float() / 255.0 for i, k in enumerate(steps)},
        "gradient_calls": {
            k: int(c) for k, c in zip(steps, arrays["budget_gradient_calls"], strict=True)
        },
    }


def _timed(timings: dict[str, float], name: str, stage: Stage) -> Stage:
    timings[name] = round(stage.seconds, 3)
    return stage


def _run_built(
    spec: CellSpec,
    b: Built,
    cache: Cache,
    progress: bool,
    timings: dict[str, float],
    out: Path,
) -> dict[str, Any]:
    seed_everything(spec.seed)
    st = Stages(cache, progress=progress)
    size = b.encoder.input_size
    ev = _timed(timings, "align_eval", st.align(b.dataset, b.aligner, size))
    tr = _timed(timings, "align_train", st.align(b.train_dataset, b.aligner, size))
    check_disjoint(tr, ev, spec)
    ev_t = _timed(timings, "encode_eval", st.encode(b.encoder, ev, ev.key, "evaluation faces"))
    tr_t = _timed(timings, "encode_train", st.encode(b.encoder, tr, tr.key, "training faces"))
    fit_seed = derive_seed(spec.seed, "inverter", spec.inverter)
    threat: dict[str, Any] = {
        "attacked_encoder": spec.encoder,
        "judged_by": spec.eval_encoder,
        "access": b.inverter.threat_model() or "undeclared",
        "surrogate": None,
        "victim_queries": int(tr.arrays["ok"].sum()),
    }
    leaked, inverter_train = ev_t, tr_t
    invert_fn: Callable[[torch.Tensor], torch.Tensor] = b.inverter.reconstructions
    if b.surrogate is not None:  # black-box through an adapter into the surrogate's space
        tr_a = _timed(
            timings, "encode_train_surrogate", st.encode(b.surrogate, tr, tr.key, "surrogate")
        )
        fitted = _timed(timings, "adapter", st.adapter(spec.adapter, tr_t, tr_a, fit_seed))
        leaked, inverter_train = st.adapted(fitted, ev_t), tr_a
        invert_fn = _through_adapter(fitted.arrays, b.inverter.reconstructions)
        threat.update(
            access=f"black-box: {spec.adapter} adapter into {spec.surrogate}",
            surrogate=spec.surrogate,
            surrogate_access=b.inverter.threat_model() or "undeclared",
        )
    trained = _timed(timings, "train", st.train(b.inverter, tr, inverter_train, fit_seed))
    recon = _timed(timings, "invert", st.invert(b.inverter, trained, leaked))
    ok = ev.arrays["ok"]
    images = torch.from_numpy(ev.arrays["images"][ok]).float() / 255.0
    recon_images = torch.from_numpy(recon.arrays["images"])
    ev_real = _timed(
        timings,
        "encode_eval_real",
        st.encode(b.eval_encoder, ev, ev.key, "originals (evaluation encoder)"),
    )
    ev_recon = _timed(
        timings,
        "encode_eval_recon",
        st.encode(b.eval_encoder, recon_images, recon.key, "reconstructions"),
    )
    mean_face = torch.from_numpy(tr.arrays["images"][tr.arrays["ok"]]).float() / 255.0
    mean_face = resize(mean_face.mean(0, keepdim=True), b.inverter.output_size)
    base_t = st.encode(
        b.eval_encoder, mean_face, make_key("mean-face", {"train": tr.key}), "baseline"
    )
    n = int(ok.sum())
    baseline = torch.from_numpy(base_t.arrays["templates"]).expand(n, -1)
    ctx = EvalContext(
        identities=ev.arrays["identities"][ok],
        keys=ev.arrays["keys"][ok],
        images=images,
        templates=torch.from_numpy(ev_t.arrays["templates"]),
        reconstructions=recon_images,
        real_templates=torch.from_numpy(ev_real.arrays["templates"]),
        recon_templates=torch.from_numpy(ev_recon.arrays["templates"]),
        baseline_templates=baseline,
        n_total=len(ok),
        n_failed_to_acquire=len(ok) - n,
        eval_encoder=b.eval_encoder,
        same_system=b.eval_encoder is b.encoder,
        device=torch.device(spec.device),
        info={"baseline": "mean aligned training face, the same image for every template"},
        encoder=b.encoder,
        invert=invert_fn,
        training=training_data(tr, tr_t),
        **_budget(recon.arrays),
    )
    upstream = {
        "aligned": ev.key,
        "templates": ev_t.key,
        "real": ev_real.key,
        "recon": ev_recon.key,
        "baseline": base_t.key,
        "inverter": trained.key,
        "train_templates": tr_t.key,
    }
    t0 = time.perf_counter()
    metrics, scores, digests = {}, {}, {}
    artifacts = {"reconstruction_grid": "reconstructions.png"}
    for protocol in b.protocols:
        raw = st.protocol_scores(protocol, ctx, upstream).arrays
        scores[protocol.name], digests[protocol.name] = _save_scores(out, protocol.name, raw)
        metrics[protocol.name] = protocol.metrics(raw)
        for name, png in protocol.figures(raw, metrics[protocol.name]).items():
            rel = f"figures/{protocol.name}/{name}.png"
            atomic_write_bytes(out / rel, png)
            artifacts[f"{protocol.name}/{name}"] = rel
    timings["evaluate"] = round(time.perf_counter() - t0, 3)
    # the time inversion took when it was computed (also when this run reused it)
    timings["invert_per_template"] = float(recon.arrays["seconds"]) / max(1, len(recon_images))
    save_reconstruction_grid(
        out / artifacts["reconstruction_grid"], images, recon_images, ctx.identities
    )
    train_ok = tr.arrays["ok"]
    return {
        "data": {
            "n_eval_images": len(ok),
            "n_eval_failed_to_acquire": len(ok) - n,
            "n_eval_identities": len(set(ctx.identities)),
            "n_train_images": len(train_ok),
            "n_train_failed_to_acquire": int((~train_ok).sum()),
            "unreadable_images": {
                "evaluation": [str(u) for u in ev.arrays.get("unreadable", [])],
                "training": [str(u) for u in tr.arrays.get("unreadable", [])],
            },
            "fingerprints": {
                "dataset": b.dataset.fingerprint(),
                "train_dataset": b.train_dataset.fingerprint(),
            },
        },
        "training": trained.arrays["summary"],
        "threat": threat,
        "metrics": metrics,
        "scores": scores,
        "score_digests": digests,
        "artifacts": artifacts,
    }
