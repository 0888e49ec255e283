"""A cached rerun of a whole run against the same run on a fresh cache (fake components).

Each round makes a fresh cache, runs ``invbench run`` on it (the reference, ``fresh``),
then runs it again with a new output folder (the subject: every stage is reused from the
cache, only records and tables are written). Both in subprocesses, as a user runs them.
The main job itself (ORL, real encoders and inverters) is far too long for a benchmark;
its timings are in its records.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import compare

ARGS = [
    "run",
    "--encoder",
    "fake-projection",
    "--inverter",
    "fake-linear",
    "--dataset",
    "fake-faces",
    "--train-dataset",
    "fake-train-faces",
    "--protocol",
    "type1",
    "--protocol",
    "image-quality",
    "--no-progress",
]


def _run(cache: Path, out: Path) -> None:
    env = {**os.environ, "INVBENCH_CACHE_DIR": str(cache)}
    code = "from invbench.cli.main import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, *ARGS, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_cached_rerun(benchmark):
    root = Path(tempfile.mkdtemp(prefix="invbench-bench-"))
    state = {"round": 0}

    def fresh() -> None:
        state["round"] += 1
        _run(root / f"cache{state['round']}", root / f"fresh{state['round']}")

    def rerun() -> None:
        _run(root / f"cache{state['round']}", root / f"rerun{state['round']}")

    try:
        compare(benchmark, rerun, {"fresh": fresh}, rounds=2)
        records = list((root / f"rerun{state['round']}").rglob("record.json"))
        assert records, "the cached rerun wrote no record"
    finally:
        shutil.rmtree(root, ignore_errors=True)
