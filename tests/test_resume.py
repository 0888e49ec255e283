"""Killing a run midway and starting it again gives the records of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

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
    "--inverter-arg",
    "epochs=400",
    "--inverter-arg",
    "checkpoint_every=50",
]

pytestmark = pytest.mark.slow  # trains and kills real runs in subprocesses

STABLE = ("status", "cell", "components", "data", "metrics", "scores", "artifacts")


def _invbench(tmp: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "INVBENCH_CACHE_DIR": str(tmp / f"cache-{name}"), "PYTHONUNBUFFERED": "1"}
    code = "from invbench.cli.main import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *ARGS, "--out", str(tmp / name)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _record(folder: Path) -> tuple[dict, dict]:
    path = next(folder.rglob("record.json"))
    record = json.loads(path.read_text())
    scores = {
        f"{p}/{n}": np.load(path.parent / rel)
        for p, files in record["scores"].items()
        for n, rel in files.items()
    }
    return {k: record[k] for k in STABLE}, scores


def test_killed_run_resumes_to_the_same_record(tmp_path):
    straight = _invbench(tmp_path, "straight")
    assert straight.wait(timeout=300) == 0, straight.stdout.read().decode()

    killed = _invbench(tmp_path, "resumed")
    checkpoints = tmp_path / "cache-resumed" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and not list(checkpoints.rglob("trainer.pt")):
        assert killed.poll() is None, "run finished before it could be killed"
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)  # right after the first checkpoint: mid-training
    killed.wait()
    assert not list((tmp_path / "resumed").rglob("record.json")), "killed too late"
    # a kill during a write may leave a "*.tmp" file behind: it is never read, because
    # files only get their real name through an atomic rename once complete

    resumed = _invbench(tmp_path, "resumed")
    output = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, output
    rec_resumed, scores_resumed = _record(tmp_path / "resumed")
    rec_straight, scores_straight = _record(tmp_path / "straight")
    assert rec_resumed == rec_straight
    assert scores_resumed.keys() == scores_straight.keys()
    for name, array in scores_straight.items():
        np.testing.assert_array_equal(scores_resumed[name], array, err_msg=name)
    training = json.loads(next((tmp_path / "resumed").rglob("record.json")).read_text())
    assert training["training"]["resumed_from_step"] > 0, "the second run did not resume"
