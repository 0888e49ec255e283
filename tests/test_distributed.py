"""Grids on Dask (``--workers``, ``--scheduler``) and a cache many processes share.

Fake components only. One local cluster is shared by the tests that use ``--scheduler``;
the ``--workers`` test starts its own, as the command does.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from invbench.cli.main import cli
from invbench.errors import InvbenchError
from invbench.plugin_manager import create_plugin_manager, reset_host
from invbench.records import load_record
from invbench.runner.cache import Cache, decode_entry, file_lock, key_lock
from tests.plugins import grid_components

FAKE = ["--encoder", "fake-projection", "--dataset", "fake-faces"]
FAKE += ["--train-dataset", "fake-train-faces", "--no-progress", "--protocol", "type1"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private cache, the working directory in ``tmp_path``, the grid test plugin."""
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    host = create_plugin_manager()
    host.pm.register(grid_components, name="grid")
    reset_host(host)
    yield tmp_path
    reset_host()


@pytest.fixture(scope="module")
def scheduler():
    """The address of a local cluster of two one-thread worker processes."""
    distributed = pytest.importorskip("distributed")
    from invbench.runner.distributed import thread_env

    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env=thread_env(1),
    )
    try:
        yield cluster.scheduler_address
    finally:
        with contextlib.suppress(Exception):  # a slow shutdown is not a failure
            cluster.close(timeout=30)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def records(out: Path) -> dict[str, object]:
    return {p.parent.name: load_record(p) for p in sorted(Path(out).rglob("record.json"))}


def metrics_of(record) -> dict:
    return {p: {k: m.model_dump() for k, m in ms.items()} for p, ms in record.metrics.items()}


def entries(root: Path) -> dict[str, bytes]:
    """Every cache entry (checked against its manifest) by ``stage/key``: its payload."""
    out = {}
    for path in sorted(root.rglob("*")):
        stage = path.relative_to(root).parts[0]
        if path.suffix not in (".npz", ".pt") or path.name.startswith("."):
            continue
        if stage == "checkpoints":  # training checkpoints: the trainer checks those
            continue
        out[f"{stage}/{path.stem}"] = decode_entry(stage, path.stem, path.read_bytes())
    return out


def no_partial_files(*roots: Path) -> None:
    for root in roots:
        leftovers = [p for p in root.rglob("*") if p.name.endswith(".tmp") or ".partial-" in p.name]
        assert not leftovers, leftovers


# ------------------------------------------------------------------ executors
def test_six_cells_on_two_local_workers_match_the_serial_run(env, monkeypatch):
    pytest.importorskip("distributed")
    grid = [*FAKE, "--inverter", "fake-linear", "--inverter", "fake-pinv"]
    grid += ["--seed", "0", "--seed", "1", "--seed", "2"]
    t0 = time.perf_counter()
    serial = run("run", *grid, "--out", "serial")
    t_serial = time.perf_counter() - t0
    assert serial.exit_code == 0, serial.output
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(env / "cache-dask"))
    t0 = time.perf_counter()
    dask = run("run", *grid, "--out", "dask", "--workers", "2")
    t_dask = time.perf_counter() - t0
    assert dask.exit_code == 0, dask.output
    print(f"6 fake cells: serial {t_serial:.1f} s, --workers 2 {t_dask:.1f} s")

    a, b = records(env / "serial"), records(env / "dask")
    assert len(a) == 6 and a.keys() == b.keys()
    for name, rec in a.items():
        other = b[name]
        assert rec.status == other.status == "ok"
        assert metrics_of(rec) == metrics_of(other), name
        assert rec.score_digests == other.score_digests, name
        assert rec.components == other.components, name
    # the same cache keys; the same bytes except the stages that store a duration
    serial_entries, dask_entries = entries(env / "cache"), entries(env / "cache-dask")
    assert serial_entries.keys() == dask_entries.keys()
    timed = ("inverter/", "reconstructions/")
    for key, payload in serial_entries.items():
        if not key.startswith(timed):
            assert payload == dask_entries[key], key
    no_partial_files(env / "cache-dask", env / "dask")


def test_a_failing_cell_is_an_error_record_and_the_others_finish(env, scheduler):
    grid = [*FAKE, "--inverter", "fake-pinv", "--inverter", "fake-raising", "--inverter"]
    result = run("run", *grid, "fake-linear", "--scheduler", scheduler, "--out", "res")
    assert result.exit_code == 1, result.output
    assert "1 of 3 cell(s) failed" in result.output
    recs = records(env / "res")
    status = {name.split("__")[1]: rec.status for name, rec in recs.items()}
    assert status == {"fake-pinv": "ok", "fake-raising": "error", "fake-linear": "ok"}
    failed = next(rec for name, rec in recs.items() if "fake-raising" in name)
    assert "boom" in failed.error


def test_two_grids_sharing_stages_compute_each_stage_once(env, scheduler):
    """A grid on two workers and another in this process, at once, on one cache."""
    from invbench.cli.run import execute, plan
    from invbench.cli.run import run as run_command

    kw = {p.name: () if p.multiple else None for p in run_command.params}
    kw.update(no_cache=False, no_progress=True, config=None, adapter=None)
    kw.update(encoders=("fake-projection",), datasets=("fake-faces",))
    kw.update(train_datasets=("fake-train-faces",), protocols=("type1",))
    kw.update(inverters=("fake-linear", "fake-pinv"), seeds=(0, 1), out=str(env / "a"))
    cells, host, cache = plan(kw)
    done: list = []
    worker = threading.Thread(
        target=lambda: done.extend(execute(cells, host, cache, progress=False, scheduler=scheduler))
    )
    worker.start()
    other = run("run", *FAKE, "--inverter", "fake-linear", "--inverter", "fake-pinv", "--out", "b")
    worker.join(timeout=900)
    assert other.exit_code == 0, other.output
    assert [r.status for r in done] == ["ok"] * 4

    computed: dict[str, int] = {}
    for rec in [*records(env / "a").values(), *records(env / "b").values()]:
        for stage, counts in rec.cache.items():
            computed[stage] = computed.get(stage, 0) + counts.get("computed", 0)
    stored: dict[str, int] = {}
    for key in entries(env / "cache"):  # every entry decodes: none is partial
        stored[key.split("/")[0]] = stored.get(key.split("/")[0], 0) + 1
    assert computed == stored  # each stage computed exactly once
    no_partial_files(env / "cache", env / "a", env / "b")


def test_the_default_run_imports_no_dask(tmp_path):
    code = (
        "import sys; from click.testing import CliRunner; from invbench.cli.main import cli; "
        f"r = CliRunner().invoke(cli, ['run', *{FAKE!r}, '--inverter', 'fake-pinv']); "
        "assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    env = {**os.environ, "INVBENCH_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_missing_extra_is_one_line_naming_it(env, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    result = run("run", *FAKE, "--inverter", "fake-pinv", "--workers", "2")
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (
        "error: running cells on Dask (--workers, --scheduler) needs the optional extra "
        "invbench[dask]"
    )
    assert not (env / "invbench-results").exists()  # refused before any work


def test_workers_and_scheduler_are_checked_before_any_work(env):
    both = run("run", *FAKE, "--inverter", "fake-pinv", "--workers", "2", "--scheduler", "x")
    assert both.exit_code == 2 and "exclude each other" in both.output
    zero = run("run", *FAKE, "--inverter", "fake-pinv", "--workers", "0")
    assert zero.exit_code == 2 and "at least 1" in zero.output


def test_threads_sets_the_thread_count_of_every_cell(env):
    import torch

    before = torch.get_num_threads()
    result = run("run", *FAKE, "--inverter", "fake-pinv", "--threads", "1")
    assert result.exit_code == 0, result.output
    (rec,) = records(env / "invbench-results").values()
    assert rec.environment["cpu_threads"] == 1
    assert torch.get_num_threads() == before  # restored after the run


# ---------------------------------------------------------------------- locks
def _compute_once(root: str, log: str) -> None:
    def compute():
        with open(log, "a") as fh:
            fh.write("computed\n")
        time.sleep(0.5)
        return {"x": np.arange(5)}

    Cache(Path(root)).arrays("templates", "k" * 40, compute)


def test_lock_files_also_compute_an_entry_once(tmp_path, monkeypatch):
    monkeypatch.setenv("INVBENCH_LOCK", "file")
    log = tmp_path / "log.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_compute_once, args=(str(tmp_path), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text() == "computed\n"
    assert not list(tmp_path.rglob("*.lockfile"))  # released


def test_a_lock_file_of_a_dead_process_is_broken(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("INVBENCH_LOCK", "file")
    entry = tmp_path / "templates" / "ab" / "entry.npz"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    ).stdout.strip()
    import socket

    entry.parent.mkdir(parents=True)
    (entry.parent / "entry.npz.lockfile").write_text(f"{socket.gethostname()} {dead} x\n")
    with caplog.at_level("WARNING"), key_lock(entry):
        pass
    assert "broke the stale lock" in caplog.text


def test_a_lock_file_not_refreshed_is_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("INVBENCH_LOCK_STALE_S", "1")
    entry = tmp_path / "entry.npz"
    lock = tmp_path / "entry.npz.lockfile"
    lock.write_text("another-host 1 x\n")
    old = time.time() - 5
    os.utime(lock, (old, old))
    with file_lock(entry):
        assert lock.read_text().split()[1] == str(os.getpid())
    assert not lock.exists()


def test_an_unknown_lock_mode_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("INVBENCH_LOCK", "nfs")
    with pytest.raises(InvbenchError, match="INVBENCH_LOCK='nfs' is not one of"):
        with key_lock(tmp_path / "x.npz"):
            pass


def test_records_of_a_dask_run_say_where_they_ran(env, scheduler):
    result = run("run", *FAKE, "--inverter", "fake-pinv", "--scheduler", scheduler)
    assert result.exit_code == 0, result.output
    (rec,) = records(env / "invbench-results").values()
    assert rec.environment["cpu_threads"] == 1  # one thread per worker, as configured
    assert json.loads(rec.model_dump_json())["command"][-2:] == ["--scheduler", scheduler]


# kills a worker of the shared cluster (its nanny starts another): last
def test_killing_a_worker_mid_cell_leaves_the_cache_consistent(env, scheduler):
    marker = env / "stalled.pid"
    args = [*FAKE, "--inverter", "fake-stalling", "--inverter-arg", f"marker={marker}"]
    result: list = []
    grid = threading.Thread(
        target=lambda: result.append(run("run", *args, "--scheduler", scheduler, "--out", "r"))
    )
    grid.start()
    deadline = time.time() + 60
    while not (marker.exists() and marker.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    pid = int(marker.read_text())
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)  # the worker dies in the middle of training
    grid.join(timeout=900)
    # the scheduler gave the cell to another worker, which completed it
    assert result and result[0].exit_code == 0, result and result[0].output
    entries(env / "cache")  # every entry there is complete and checks out
    (record,) = records(env / "r").values()
    assert record.status == "ok"
    again = run("run", *args, "--out", "r")  # and a serial rerun reuses all of it
    assert again.exit_code == 0, again.output
    (rerun,) = records(env / "r").values()
    assert sum(c.get("computed", 0) for c in rerun.cache.values()) == 0
    assert metrics_of(rerun) == metrics_of(record)
