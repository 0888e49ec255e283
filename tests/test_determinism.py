"""Determinism on one machine (see :mod:`invbench.determinism`).

Fast: fixed-row batching, templates independent of batch size and thread count, and the
same fake ``invbench run`` twice with separate caches giving byte-identical cache entries
and records equal but for run id, timestamps and timings. Slow (``assets``): ORL crops
(MTCNN) and arcface/dlib templates, computed in fresh processes, byte-identical run to run,
at one and two threads, and for a face whatever subset it is computed with.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from invbench.cli.main import cli
from invbench.determinism import fixed_batches, pad_rows
from invbench.provenance import cpu_model, environment
from invbench.runner.cache import decode_entry
from invbench.testing.fakes import FakeConvEncoder, FakeConvOptions


def test_pad_rows_and_fixed_batches_keep_rows_and_order():
    x = torch.arange(10.0).view(5, 2)
    assert torch.equal(pad_rows(x, 7)[5:], x[4:].expand(2, 2))
    assert pad_rows(x, 3) is x and pad_rows(x[:0], 4).shape == (0, 2)
    calls: list[int] = []

    def two_outputs(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(len(t))
        return t.sum(1), t * 2

    total, double = fixed_batches(two_outputs, x, 3)
    assert calls == [3, 3]
    assert torch.equal(total, x.sum(1)) and torch.equal(double, x * 2)
    assert fixed_batches(lambda t: t + 1, x[:0], 4).shape == (0, 2)
    with pytest.raises(ValueError):
        fixed_batches(lambda t: t, x, 0)


def test_fixed_batch_templates_do_not_depend_on_neighbours_or_threads():
    enc = FakeConvEncoder(FakeConvOptions(size=32))
    images = torch.rand(21, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        ref = enc.templates(images, 16, fixed_batch=True)
        for n_threads in (1, 2):
            torch.set_num_threads(n_threads)
            for k in (1, 5, 16, 21):
                part = enc.templates(images[:k], 16, fixed_batch=True)
                assert torch.equal(part, ref[:k]), (n_threads, k)
    finally:
        torch.set_num_threads(threads)
    seen: list[int] = []
    enc.encode = lambda x: (seen.append(len(x)), FakeConvEncoder.encode(enc, x))[1]  # type: ignore[method-assign]
    assert enc.templates(images[:3], 16, fixed_batch=True).shape == (3, 16)
    assert enc.templates(images[:3], 16).shape == (3, 16)
    assert seen == [16, 3]  # padded only when asked


def test_environment_names_the_cpu_and_threads():
    env = environment(torch.device("cpu"))
    assert env["cpu_model"] == cpu_model() and env["cpu_model"]
    assert env["cpu_capability"] and env["cpu_count"] >= 1
    assert env["cpu_threads"] == torch.get_num_threads() == env["onnxruntime_threads"]


FAKE_RUN = [
    "run",
    "--encoder",
    "fake-projection",
    "--inverter",
    "fake-linear",
    "--dataset",
    "fake-faces",
    "--train-dataset",
    "fake-train-faces",
    "--no-progress",
    "--out",
    "results",
]

#: Record fields that say when and how long, not what.
# measurements of the run, not results: ids, clocks, and the process's peak memory so far
# (a second run in the same process can raise it)
VOLATILE = {"run_id", "created_at", "timings_s", "peak_rss_mib"}


def _scrub(value: Any) -> Any:
    """``value`` without the volatile fields and any ``*seconds`` (a measured duration)."""
    if isinstance(value, dict):
        return {
            k: _scrub(v)
            for k, v in value.items()
            if k not in VOLATILE and not k.endswith("seconds")
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _same(a: Any, b: Any) -> bool:
    """Exactly equal nested states: tensors bit for bit, containers item by item."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _payload(path: Path) -> bytes:
    data = path.read_bytes()
    manifest = json.loads(data.split(b"\n", 2)[1])
    return decode_entry(manifest["stage"], manifest["key"], data)


def _files(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def test_same_command_twice_gives_identical_cache_entries_and_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = []
    for name in ("first", "second"):
        monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / f"cache-{name}"))
        result = CliRunner().invoke(cli, FAKE_RUN, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        shutil.copytree(tmp_path / "results", tmp_path / f"results-{name}")
        runs.append((tmp_path / f"cache-{name}", tmp_path / f"results-{name}"))
    (cache_a, out_a), (cache_b, out_b) = runs

    entries_a, entries_b = _files(cache_a), _files(cache_b)
    assert entries_a.keys() == entries_b.keys()
    stages = {rel.split("/")[0] for rel in entries_a}
    assert {"aligned", "templates", "reconstructions", "scores", "inverter"} <= stages
    for rel, path in entries_a.items():
        other = entries_b[rel]
        stage = rel.split("/")[0]
        if stage in ("aligned", "templates", "scores"):
            assert path.read_bytes() == other.read_bytes(), rel
        elif stage == "reconstructions":  # the arrays and the time inversion took
            with (
                np.load(io.BytesIO(_payload(path))) as a,
                np.load(io.BytesIO(_payload(other))) as b,
            ):
                assert a.files == b.files
                for key in a.files:
                    if key != "seconds":
                        assert np.array_equal(a[key], b[key]), (rel, key)
        elif stage == "inverter":  # the trained weights and the fit summary with its time
            a = torch.load(io.BytesIO(_payload(path)), weights_only=True)
            b = torch.load(io.BytesIO(_payload(other)), weights_only=True)
            assert _same(a["state"], b["state"]), rel
            assert _scrub(a["summary"]) == _scrub(b["summary"])

    files_a, files_b = _files(out_a), _files(out_b)
    assert files_a.keys() == files_b.keys()
    for rel, path in files_a.items():
        if path.name != "record.json":  # score arrays and the reconstruction grid
            assert path.read_bytes() == files_b[rel].read_bytes(), rel
    (record_a,) = out_a.rglob("record.json")
    (record_b,) = out_b.rglob("record.json")
    first, second = json.loads(record_a.read_text()), json.loads(record_b.read_text())
    assert first["status"] == "ok" and first["run_id"] != second["run_id"]
    assert first["metrics"] == second["metrics"]
    assert first["score_digests"] == second["score_digests"]
    assert _scrub(first) == _scrub(second)
    assert first["environment"]["cpu_model"] == cpu_model()


# A fresh process: ORL persons 1..N aligned by MTCNN and encoded (arcface through
# onnxruntime and through torch, dlib), no cache, at a given torch thread count.
_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch

    out, threads, identities = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    from invbench.runner.cache import Cache
    from invbench.runner.stages import Stages
    from invbench_plugins.aligners.mtcnn import MTCNNAligner
    from invbench_plugins.datasets.orl import ORLDataset
    from invbench_plugins.encoders.arcface import ArcFaceEncoder
    from invbench_plugins.encoders.dlib import DlibEncoder

    dataset = ORLDataset(ORLDataset.make_options({"identities": identities}))
    stages = Stages(Cache(enabled=False), progress=False)
    aligned = stages.align(dataset, MTCNNAligner(), (112, 112))
    arrays = {"images": aligned.arrays["images"], "ok": aligned.arrays["ok"]}
    encoders = {
        "arcface_onnx": ArcFaceEncoder(),
        "arcface_torch": ArcFaceEncoder(ArcFaceEncoder.make_options({"backend": "torch"})),
        "dlib": DlibEncoder(),
    }
    for name, encoder in encoders.items():
        arrays[name] = stages.encode(encoder, aligned, aligned.key, name).arrays["templates"]
    np.savez(out, **arrays)
    """
)


def _fresh(tmp_path: Path, name: str, threads: int, identities: int) -> dict[str, np.ndarray]:
    out = tmp_path / f"{name}.npz"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(
        [sys.executable, "-c", _CHILD, str(out), str(threads), str(identities)],
        check=True,
        env=env,
        timeout=600,
    )
    with np.load(out) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.slow
@pytest.mark.assets
def test_orl_crops_and_real_templates_are_byte_identical(tmp_path):
    first = _fresh(tmp_path, "first", threads=2, identities=3)
    again = _fresh(tmp_path, "again", threads=2, identities=3)
    one_thread = _fresh(tmp_path, "one-thread", threads=1, identities=3)
    alone = _fresh(tmp_path, "one-person", threads=1, identities=1)  # 10 faces, short batches
    assert first["ok"].all() and len(first["ok"]) == 30
    for key, value in first.items():
        assert value.tobytes() == again[key].tobytes(), f"{key}: run to run"
        assert value.tobytes() == one_thread[key].tobytes(), f"{key}: 1 vs 2 threads"
        assert value[:10].tobytes() == alone[key].tobytes(), f"{key}: subset of the faces"
