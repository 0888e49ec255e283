"""``invbench run``: run a grid of encoder x inverter x dataset x seed cells."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
import torch

from invbench.cli.common import COMMAND, load_config, parse_args
from invbench.cli.tables import record_report
from invbench.components import PROFILES
from invbench.errors import InvbenchError
from invbench.io import probe_writable
from invbench.plugin_manager import PluginHost, get_host
from invbench.provenance import resolve_device
from invbench.records import Record
from invbench.registry import Registry
from invbench.runner.cache import Cache
from invbench.runner.cell import check_options, run_cell
from invbench.runner.distributed import check_executor, run_on_dask
from invbench.runner.grid import (
    CellSpec,
    default_aligner,
    default_dataset,
    expand_grid,
    expand_protocols,
)
from invbench.training.feature_cache import budget_bytes as feature_cache_budget

logger = logging.getLogger(__name__)

ROLES = (
    "encoder",
    "inverter",
    "dataset",
    "train_dataset",
    "eval_encoder",
    "surrogate",
    "aligner",
    "protocol",
)

EPILOG = """\b
Examples:
  invbench run --encoder arcface --inverter dfd
  invbench run --encoder arcface --inverter nbnet-a --inverter dfd --seed 0 --seed 1
  invbench run --encoder arcface --inverter dfd --inverter-arg epochs=2 --device cuda
  invbench run --encoder arcface --inverter dfd --eval-encoder dlib    # judged by dlib
  invbench run --encoder dlib --inverter dfd --surrogate arcface       # black-box, adapter
  invbench run --encoder arcface --inverter dfd --protocol robustness
  invbench run --config run.toml
  invbench run --encoder arcface --inverter nbnet-a --inverter dcnn --workers 2   # on Dask
  invbench run --encoder arcface --inverter dfd --seed 0 --seed 1 --scheduler tcp://head:8786
  invbench run --encoder fake-projection --inverter fake-pinv \\
      --dataset fake-faces --train-dataset fake-train-faces             # 1-second smoke run
"""


def _pick(cli: tuple[Any, ...], config: dict[str, Any], key: str, default: list[Any]) -> list:
    if cli:
        return list(cli)
    value = config.get(key, config.get(key.replace("_", "-")))
    if value is None:
        return default
    return value if isinstance(value, list) else [value]


def summaries(record: Record, registry: Registry) -> dict[str, list[str]]:
    """Compact tables of the record's protocols that offer one."""
    out = {}
    for role, info in record.components.items():
        if role.startswith("protocol:") and info.name in record.metrics:
            cls: Any = registry.load("protocol", info.name)
            lines = cls(cls.make_options(info.options)).summary_lines(record.metrics[info.name])
            if lines is not None:
                out[info.name] = lines
    return out


@click.command(epilog=EPILOG)
@click.option("--encoder", "encoders", multiple=True, help="Attacked encoder F (repeat: grid).")
@click.option("--inverter", "inverters", multiple=True, help="Inversion method (repeat: grid).")
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    help="Protocol or protocol group to evaluate (repeatable; default: every default "
    "protocol; `robustness`: the five robustness protocols).",
)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    help="Evaluation dataset (repeat: grid; default: the one declared the default, orl).",
)
@click.option(
    "--train-dataset",
    "train_datasets",
    multiple=True,
    help="Training dataset of the inverter (default: the declared one, dcgan-faces).",
)
@click.option(
    "--eval-encoder",
    "eval_encoders",
    multiple=True,
    help="Encoder F' judging reconstructions (default: the attacked encoder).",
)
@click.option(
    "--surrogate",
    "surrogates",
    multiple=True,
    help="Black-box attack through an adapter: train the inverter for this encoder A and "
    "map the victim's templates into A's space (repeat: grid).",
)
@click.option(
    "--adapter",
    type=click.Choice(["ridge", "mlp"]),
    default=None,
    help="Adapter from the victim's templates to the surrogate's (default ridge).",
)
@click.option("--aligner", default=None, help="Face aligner (default: the declared one, mtcnn).")
@click.option("--seed", "seeds", multiple=True, type=int, help="Run seed (repeat: grid; 0).")
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default=None,
    help="quick: CPU minutes (default); paper: the papers' settings, for a GPU; smoke: "
    "seconds, tiny settings to check a pipeline (numbers mean nothing).",
)
@click.option("--device", default=None, help="auto (default: cuda if present), cpu, cuda.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Results folder (default ./invbench-results).",
)
@click.option(
    "--config",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="TOML file with these options; the command line wins.",
)
@click.option("--no-cache", is_flag=True, help="Recompute everything (nothing stored).")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Run the cells on a local Dask cluster of this many worker processes (needs the "
    "extra invbench[dask]; default: serial, in this process).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run the cells on the Dask cluster of this scheduler (tcp://host:8786); the cache "
    "and --out must be on a file system every worker shares.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch/onnxruntime/BLAS threads per cell (default: every core serially, cores "
    "divided by --workers on Dask). Training results depend on it: give the same value "
    "to reproduce a record bit for bit.",
)
@click.option("--encoder-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
@click.option("--inverter-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
@click.option("--dataset-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
@click.option("--train-dataset-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
@click.option("--eval-encoder-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
@click.option("--surrogate-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
@click.option("--aligner-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
@click.option("--protocol-arg", multiple=True, metavar="[NAME.]KEY=VALUE")
def run(**kw: Any) -> None:
    """Train inverters on leaked templates, attack, and record the results.

    Every repeated --encoder/--inverter/--dataset/--train-dataset/--eval-encoder/--seed
    expands to a grid: one record per cell, written to OUT/<dataset>/<cell>/record.json
    with raw scores and a reconstruction picture beside it. Work is cached by content, so
    a repeated run reuses it and a changed option recomputes only what it changes.
    """
    cells, host, cache = plan(kw)
    records = execute(
        cells,
        host,
        cache,
        progress=not kw["no_progress"],
        workers=kw["workers"],
        scheduler=kw["scheduler"],
        threads=kw["threads"],
    )
    failed = sum(r.status != "ok" for r in records)
    if failed:
        click.echo(f"{failed} of {len(cells)} cell(s) failed; their records say why.", err=True)
        sys.exit(1)


def plan(kw: dict[str, Any]) -> tuple[list[CellSpec], PluginHost, Cache]:
    """The grid of ``invbench run``'s options, checked before any work.

    Names, every cell's options, the output and cache folders are all validated here.

    Raises:
        InvbenchError: One line on the first problem found.
    """
    config = load_config(kw["config"])
    if kw.get("workers") is None and config.get("workers") is not None:
        kw["workers"] = int(config["workers"])
    if kw.get("scheduler") is None and config.get("scheduler") is not None:
        kw["scheduler"] = str(config["scheduler"])
    check_executor(kw.get("workers"), kw.get("scheduler"))
    try:
        feature_cache_budget()  # a malformed INVBENCH_FEATURE_CACHE_MB fails here, not mid-grid
    except ValueError as exc:
        raise InvbenchError(str(exc), hint="unset it, or give a size in MiB") from None
    encoders = _pick(kw["encoders"], config, "encoder", [])
    inverters = _pick(kw["inverters"], config, "inverter", [])
    if not encoders or not inverters:
        raise InvbenchError(
            "invbench run needs --encoder and --inverter",
            hint="e.g. invbench run --encoder arcface --inverter dfd (see `invbench list`)",
        )
    options: dict[str, Any] = {}
    cfg_opts = config.get("options", {})
    for role in ROLES:
        scoped: dict[str, dict[str, Any]] = {}
        for scope, values in (cfg_opts.get(role) or {}).items():
            if isinstance(values, dict):
                scoped.setdefault(scope, {}).update(values)
            else:  # options.inverter.epochs = 3 applies to all inverters
                scoped.setdefault("*", {})[scope] = values
        for scope, values in parse_args(
            kw[f"{role}_arg"], f"--{role.replace('_', '-')}-arg"
        ).items():
            scoped.setdefault(scope, {}).update(values)
        options[role] = scoped
    device = resolve_device(kw["device"] or config.get("device", "auto"))
    host = get_host()
    registry = host.registry
    # fail fast on unknown names, before any work
    protocols = expand_protocols(registry, _pick(kw["protocols"], config, "protocol", []))
    datasets = _pick(kw["datasets"], config, "dataset", []) or [
        default_dataset(registry, "evaluation")
    ]
    train_datasets = _pick(kw["train_datasets"], config, "train_dataset", []) or [
        default_dataset(registry, "training")
    ]
    eval_encoders = _pick(kw["eval_encoders"], config, "eval_encoder", [])
    surrogates = _pick(kw["surrogates"], config, "surrogate", [])
    aligner = kw["aligner"] or config.get("aligner")
    for family, names in (
        ("encoder", encoders + eval_encoders + surrogates),
        ("inverter", inverters),
        ("dataset", datasets + train_datasets),
        ("protocol", protocols),
    ):
        for name in names:
            registry.get(family, name)
    if all(
        getattr(registry.load("dataset", d), "aligned", False) for d in datasets + train_datasets
    ):
        aligner = aligner or "none"
    else:
        aligner = aligner or default_aligner(registry)
        registry.get("aligner", aligner)
    cells = expand_grid(
        encoders=encoders,
        inverters=inverters,
        datasets=datasets,
        train_datasets=train_datasets,
        eval_encoders=eval_encoders,
        seeds=[int(s) for s in _pick(kw["seeds"], config, "seed", [0])],
        surrogates=surrogates,
        adapter=kw["adapter"] or config.get("adapter", "ridge"),
        aligner=aligner,
        protocols=protocols,
        profile=kw["profile"] or config.get("profile", "quick"),
        options=options,
        device=str(device),
        out=Path(kw["out"] or config.get("out", "invbench-results")),
    )
    for spec in cells:  # every cell's options, before any work
        check_options(spec, registry)
    for out in sorted({spec.out for spec in cells}):
        probe_writable(out)
    cache = Cache(enabled=not kw["no_cache"])
    if cache.enabled:
        probe_writable(cache.root)
    logger.info("running %d cell(s) on %s; cache at %s", len(cells), device, cache.root)
    return cells, host, cache


def execute(
    cells: list[CellSpec],
    host: PluginHost,
    cache: Cache,
    *,
    progress: bool,
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
) -> list[Record]:
    """Run every cell, print its report, and return the records (failed ones included).

    ``threads`` sets torch's thread count (onnxruntime follows it) for every cell.
    Serial and in this process by default; with ``workers`` or ``scheduler`` on Dask
    (:mod:`invbench.runner.distributed`; Dask is imported only then), reports in completion order.
    """

    def report(spec: CellSpec, record: Record) -> None:
        click.echo(record_report(record, spec.folder, summaries(record, host.registry)))
        click.echo("")

    if workers is not None or scheduler is not None:
        return run_on_dask(
            cells,
            host,
            cache,
            workers=workers,
            scheduler=scheduler,
            command=list(COMMAND),
            progress=progress,
            report=report,
            threads=threads,
        )
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    records = []
    try:
        for i, spec in enumerate(cells, 1):
            logger.info("[%d/%d] %s", i, len(cells), spec.describe())
            record = run_cell(spec, host, cache, command=list(COMMAND), progress=progress)
            report(spec, record)
            records.append(record)
    finally:
        torch.set_num_threads(previous)
    return records
