"""Running a grid's cells on Dask: a local cluster of worker processes, or a scheduler.

``invbench run --workers N`` starts a :class:`distributed.LocalCluster` of ``N`` worker
processes (one cell at a time each); ``--scheduler tcp://host:8786`` sends the cells to an
existing cluster (``dask scheduler`` + ``dask worker``, or dask-jobqueue's
``SLURMCluster``). Without either option nothing here is imported and no Dask module is
loaded: the default run stays serial and in-process.

Each cell is one task, keyed by the cell (:func:`cell_key`); results come back with
``as_completed``, so each cell's report is shown as it finishes. A cell that fails inside
the runner writes its own error record (as in a serial run); a task that fails outside it
(its worker died more often than the scheduler allows, a worker that cannot import
invbench) gets an error record written by the client. The other cells go on either way.

Workers share the cache root, whose per-key locks make every stage be computed once (see
:mod:`invbench.runner.cache`), and write records to the same results folder: both must be
the same path on every worker (a shared file system on a cluster).

On a worker, components come from the normal plugin manager (built-ins and entry points,
:func:`invbench.plugin_manager.create_plugin_manager`), plus any plugin module the client
registered by hand (tests, notebooks), imported by name. Threads: a worker runs one cell at
a time and gives torch, onnxruntime and BLAS ``cores // workers`` threads (``N`` local
workers), or ``$INVBENCH_THREADS``, or its cores divided by its Dask threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from invbench.errors import InvbenchError
from invbench.plugin_manager import DEFAULT_PLUGINS, PluginHost, create_plugin_manager
from invbench.records import Record
from invbench.runner.cache import Cache, make_key
from invbench.runner.grid import CellSpec

logger = logging.getLogger(__name__)

#: The one line shown when the optional dependency is missing.
MISSING_EXTRA = (
    "running cells on Dask (--workers, --scheduler) needs the optional extra invbench[dask]"
)
EXTRA_HINT = "pip install 'invbench[dask]' (or run without --workers/--scheduler: serial)"

#: Environment variables that size the thread pools of native libraries; set on workers
#: before any of them is imported.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "INVBENCH_THREADS",
)

#: One cell at a time per worker process: cells seed the process-wide RNGs.
_CELL_LOCK = threading.Lock()
_HOSTS: dict[PluginPlan, PluginHost] = {}


def import_distributed() -> types.ModuleType:
    """``distributed``, or one clear error naming the extra that provides it.

    Raises:
        InvbenchError: When ``dask[distributed]`` is not installed.
    """
    try:
        import distributed
    except ImportError:
        raise InvbenchError(MISSING_EXTRA, hint=EXTRA_HINT) from None
    return distributed


def check_executor(workers: int | None, scheduler: str | None) -> None:
    """Refuse a bad ``--workers``/``--scheduler`` pair, or a missing extra, before any work.

    Raises:
        InvbenchError: Both options given, ``workers < 1``, or Dask missing.
    """
    if workers is None and scheduler is None:
        return
    if workers is not None and scheduler is not None:
        raise InvbenchError(
            "--workers and --scheduler exclude each other",
            hint="--workers N starts a local cluster; --scheduler uses one that is running",
        )
    if workers is not None and workers < 1:
        raise InvbenchError(f"--workers must be at least 1, not {workers}")
    import_distributed()


def cores() -> int:
    """CPU cores this process may use (its affinity mask: a SLURM allocation, a cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, available: int | None = None) -> int:
    """Library threads for each of ``workers`` processes sharing ``available`` cores.

    >>> threads_per_worker(2, 2), threads_per_worker(3, 8), threads_per_worker(4, 2)
    (1, 2, 1)
    """
    return max(1, (available or cores()) // workers)


def thread_env(threads: int) -> dict[str, str]:
    """:data:`THREAD_VARS` set to ``threads``, for a worker's environment."""
    return {var: str(threads) for var in THREAD_VARS}


def cell_key(spec: CellSpec) -> str:
    """The Dask key of a cell: a digest of everything that defines it and where it goes.

    Not a cache key (nothing is stored under it); two runs submitting the same cell to
    one scheduler share its task.
    """
    fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    return "invbench-cell-" + make_key("cell", fields)


def training_group(spec: CellSpec) -> str:
    """What decides a cell's trained inverter: cells of one group wait on one training.

    The attacked (or surrogate) encoder, the inverter, the training data, the seed and
    their options; not the evaluation dataset, the judging encoder or the protocols.
    """
    roles = ("encoder", "inverter", "train_dataset", "surrogate", "aligner")
    fields = {
        "cell": [spec.encoder, spec.inverter, spec.train_dataset, spec.seed, spec.surrogate],
        "more": [spec.adapter, spec.aligner, spec.profile, spec.device],
        "options": {role: spec.options.get(role, {}) for role in roles},
    }
    return make_key("training-group", fields)


def spread_ranks(cells: list[CellSpec]) -> list[int]:
    """Each cell's rank among the cells of its :func:`training_group`, in grid order.

    Submitted with priority ``-rank``, the first cell of every group runs before any
    second one, so workers train different inverters at once instead of queueing on the
    lock of one training (the grid puts the judging encoders of one training side by
    side).

    >>> from invbench.runner.grid import CellSpec
    >>> a = CellSpec("e", "i", "d", "t", "e", "none", (), 0, "quick")
    >>> b = CellSpec("e", "i", "d", "t", "f", "none", (), 0, "quick")
    >>> c = CellSpec("e", "j", "d", "t", "e", "none", (), 0, "quick")
    >>> spread_ranks([a, b, c])
    [0, 1, 0]
    """
    seen: dict[str, int] = {}
    ranks = []
    for spec in cells:
        group = training_group(spec)
        ranks.append(seen.get(group, 0))
        seen[group] = ranks[-1] + 1
    return ranks


# ------------------------------------------------------------------ worker side
@dataclasses.dataclass(frozen=True)
class PluginPlan:
    """What a worker loads to see the client's components.

    Attributes:
        entry_points: Load third-party entry points (as the client did).
        modules: ``(plugin name, module name)`` of plugins the client registered by hand.
        blocked: Plugin names the client blocked (``INVBENCH_DISABLE_PLUGINS``).
    """

    entry_points: bool
    modules: tuple[tuple[str, str], ...] = ()
    blocked: tuple[str, ...] = ()


def plugin_plan(host: PluginHost) -> PluginPlan:
    """The :class:`PluginPlan` that gives a worker the same components as ``host``."""
    testing = getattr(sys, "_invbench_testing", False)
    modules = []
    for name, plugin in host.pm.list_name_plugin():
        if plugin is None or name in DEFAULT_PLUGINS or name in host.distributions:
            continue
        if isinstance(plugin, types.ModuleType):
            modules.append((name, plugin.__name__))
        else:
            logger.warning(
                "plugin %r is not a module; Dask workers will not have its components", name
            )
    blocked = [name for name, plugin in host.pm.list_name_plugin() if plugin is None]
    return PluginPlan(bool(host.distributions) or not testing, tuple(modules), tuple(blocked))


def worker_host(plan: PluginPlan) -> PluginHost:
    """This worker process's plugin host for ``plan`` (built once per process)."""
    host = _HOSTS.get(plan)
    if host is None:
        host = create_plugin_manager(entry_points=plan.entry_points)
        for name in plan.blocked:
            registered = host.pm.get_plugin(name)
            if registered is not None:
                host.pm.unregister(registered)
            host.pm.set_blocked(name)
        for name, module_name in plan.modules:
            if host.pm.get_plugin(name) is None and not host.pm.is_blocked(name):
                host.pm.register(importlib.import_module(module_name), name=name)
        host.reset_registry()
        _HOSTS[plan] = host
    return host


def set_threads(threads: int) -> None:
    """Size torch's (hence onnxruntime's, see provenance) and BLAS pools to ``threads``."""
    os.environ.update(thread_env(threads))
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _worker_threads(threads: int | None) -> int:
    env = os.environ.get("INVBENCH_THREADS")
    if threads is not None:
        return threads
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        from distributed import get_worker

        slots = get_worker().state.nthreads
    except (ImportError, ValueError):
        slots = 1
    return threads_per_worker(slots)


def run_cell_task(
    spec: CellSpec,
    plan: PluginPlan,
    cache_root: str,
    cache_enabled: bool,
    command: list[str],
    threads: int | None,
) -> Record:
    """Run one cell on a worker (the Dask task): threads, plugins, then :func:`run_cell`."""
    from invbench.runner.cell import run_cell

    with _CELL_LOCK:
        set_threads(_worker_threads(threads))
        host = worker_host(plan)
        cache = Cache(Path(cache_root), enabled=cache_enabled)
        return run_cell(spec, host, cache, command=command, progress=False)


# ------------------------------------------------------------------ client side
@contextlib.contextmanager
def connect(
    workers: int | None, scheduler: str | None, threads: int | None = None
) -> Iterator[tuple[Any, int | None]]:
    """A Dask client on a new local cluster of ``workers`` processes, or on ``scheduler``.

    Yields:
        ``(client, threads)``: ``threads`` is what each worker gives its libraries: the
        ``threads`` asked for, else ``cores // workers`` on a local cluster, else ``None``
        (an existing cluster's workers decide, see :func:`run_cell_task`).

    Raises:
        InvbenchError: When the scheduler cannot be reached or the extra is missing.
    """
    distributed = import_distributed()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise InvbenchError(
                f"cannot reach the Dask scheduler at {scheduler}: {exc}",
                hint="start one (`dask scheduler`, then `dask worker ADDRESS`) or use --workers",
            ) from None
        with client:
            yield client, threads
        return
    assert workers is not None
    threads = threads or threads_per_worker(workers)
    if workers > cores():
        logger.warning("%d workers on %d cores: each cell gets less than a core", workers, cores())
    cluster = distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env=thread_env(threads),
    )
    with cluster, distributed.Client(cluster) as client:
        logger.info(
            "local Dask cluster: %d worker process(es), %d thread(s) each", workers, threads
        )
        yield client, threads


def run_on_dask(
    cells: list[CellSpec],
    host: PluginHost,
    cache: Cache,
    *,
    workers: int | None,
    scheduler: str | None,
    command: list[str],
    progress: bool,
    report: Callable[[CellSpec, Record], None],
    threads: int | None = None,
) -> list[Record]:
    """Run ``cells`` as Dask tasks; return their records in the order of ``cells``.

    ``report`` is called on the client for each cell as it finishes (in completion order).
    ``threads``: library threads per worker (default: see :func:`connect`).
    """
    from invbench.runner.cell import failed_cell_record

    distributed = import_distributed()
    out_abs = [dataclasses.replace(spec, out=spec.out.resolve()) for spec in cells]
    plan = plugin_plan(host)
    keys = [cell_key(spec) for spec in out_abs]
    ranks = spread_ranks(cells)
    done: dict[str, Record] = {}
    with connect(workers, scheduler, threads) as (client, threads):
        futures: dict[Any, int] = {}
        for i, (spec, key) in enumerate(zip(out_abs, keys, strict=True)):
            if key in done or key in {f.key for f in futures}:
                continue  # the same cell twice in one grid: run once
            future = client.submit(
                run_cell_task,
                spec,
                plan,
                str(cache.root.resolve()),
                cache.enabled,
                command,
                threads,
                key=key,
                priority=-ranks[i],
                retries=0,
            )
            futures[future] = i
        logger.info("submitted %d cell(s) to %s", len(futures), client.scheduler.address)
        t0 = time.perf_counter()
        bar = _bar(len(futures), progress)
        for n, future in enumerate(distributed.as_completed(list(futures)), 1):
            i = futures[future]
            spec = cells[i]
            try:
                record = future.result()
            except Exception as exc:  # the task failed outside the cell's own handling
                error = f"{type(exc).__name__}: {exc}".strip()
                logger.error("cell %s failed on its worker: %s", spec.describe(), error)
                record = failed_cell_record(out_abs[i], error, command=command)
            done[keys[i]] = record
            logger.info(
                "[%d/%d] %s: %s (%.1f s)",
                n,
                len(futures),
                spec.describe(),
                record.status,
                time.perf_counter() - t0,
            )
            if bar is not None:
                bar.update(1)
            report(spec, record)
        if bar is not None:
            bar.close()
    return [done[key] for key in keys]


def _bar(total: int, progress: bool) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="cells", unit="cell", leave=False)
