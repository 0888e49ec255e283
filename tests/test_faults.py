"""Every fault a hostile user can cause ends in one clear line or a correct result.

Nothing wrong is trusted (assets, cache entries, records), nothing good is lost (records,
cache entries), and every failure names the file or component at fault. Each test builds
one fault on fake components or small generated files.
"""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from invbench.assets import Asset, fetch, locate
from invbench.cli.main import cli
from invbench.errors import AssetError, StorageError
from invbench.io import atomic_torch_save, atomic_write_bytes
from invbench.plugin_manager import create_plugin_manager, reset_host
from invbench.records import load_record
from invbench.runner.cache import Cache

FAKE = ["--encoder", "fake-projection", "--dataset", "fake-faces"]
FAKE += ["--train-dataset", "fake-train-faces", "--no-progress"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private cache and assets folder, the working directory in ``tmp_path``."""
    monkeypatch.setenv("INVBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("INVBENCH_ASSETS_DIR", str(tmp_path / "assets"))
    monkeypatch.chdir(tmp_path)
    reset_host()
    yield tmp_path
    reset_host()


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def record_of(out: str | Path, inverter: str):
    return load_record(next(Path(out).rglob(f"*{inverter}*/record.json")))


def metrics_of(record) -> dict:
    return {p: {k: m.model_dump() for k, m in ms.items()} for p, ms in record.metrics.items()}


def flip(path: Path, offset: int = -100, count: int = 64) -> None:
    data = bytearray(path.read_bytes())
    for i in range(count):
        data[offset + i] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- 1. assets
def _local_asset(tmp_path: Path, content: bytes = b"weights " * 1000) -> Asset:
    source = tmp_path / "upstream" / "model.bin"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    return Asset("test-model", "url", source.as_uri(), "", digest, license="test")


def test_a_corrupted_cached_asset_is_fetched_again(env, caplog):
    asset = _local_asset(env)
    path = fetch(asset)
    assert locate(asset) == path
    flip(path)  # 64 flipped bytes, same size
    with caplog.at_level("WARNING"):
        again = fetch(asset)
    assert again == path and hashlib.sha256(path.read_bytes()).hexdigest() == asset.sha256
    assert any(
        str(path) in r.getMessage() and "does not match" in r.getMessage() for r in caplog.records
    )


def test_a_corrupted_asset_without_a_source_is_refused_with_one_line(env):
    asset = _local_asset(env)
    path = fetch(asset)
    flip(path)
    Path(asset.package.removeprefix("file://")).unlink()  # the registry is unreachable
    with pytest.raises(AssetError) as err:
        fetch(asset)
    assert "test-model" in str(err.value) and "\n" not in str(err.value)
    assert not path.exists()  # the corrupted copy is gone, never used


def test_a_wrong_file_given_by_path_is_refused(env, monkeypatch):
    asset = _local_asset(env)
    wrong = env / "wrong.bin"
    wrong.write_bytes(b"not the weights")
    monkeypatch.setenv(asset.env_var, str(wrong))
    with pytest.raises(AssetError, match=f"{wrong} has sha256 .*, expected {asset.sha256}"):
        fetch(asset)


def test_the_fast_path_notices_a_rewrite_of_the_same_size(env):
    asset = _local_asset(env)
    path = fetch(asset)
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    time.sleep(0.01)
    path.write_bytes(bytes(data))  # same size, new mtime: hashed again
    assert locate(asset) is None


# ----------------------------------------------------------- 2. and 3. cache
def _entries(cache: Path, stage: str) -> list[Path]:
    return sorted((cache / stage).rglob("*.npz")) + sorted((cache / stage).rglob("*.pt"))


@pytest.mark.parametrize(
    ("stage", "damage"),
    [
        ("reconstructions", "truncate"),
        ("templates", "flip"),
        ("inverter", "garbage"),
        ("aligned", "old-format"),
    ],
)
def test_an_unreadable_cache_entry_is_named_and_recomputed(env, stage, damage):
    first = run("run", *FAKE, "--inverter", "fake-linear", "--protocol", "type1", "--out", "a")
    assert first.exit_code == 0, first.output
    good = record_of("a", "fake-linear")
    for path in _entries(env / "cache", stage):
        if damage == "truncate":
            path.write_bytes(path.read_bytes()[:-500])
        elif damage == "flip":
            flip(path)
        elif damage == "garbage":
            path.write_bytes(b"\x80\x02garbage, not a state" * 10)
        else:  # a plain .npz of an earlier invbench: no manifest
            data = path.read_bytes()
            path.write_bytes(data[data.index(b"\n", data.index(b"\n") + 1) + 1 :])
    second = run("run", *FAKE, "--inverter", "fake-linear", "--protocol", "type1", "--out", "b")
    assert second.exit_code == 0, second.output
    assert "weights_only" not in second.output and "Traceback" not in second.output
    warned = [line for line in second.output.splitlines() if "is invalid" in line]
    assert warned and all(f"/{stage}/" in w and "computing it again" in w for w in warned)
    assert f"found invalid and recomputed {stage} {len(warned)}" in second.output
    assert metrics_of(record_of("b", "fake-linear")) == metrics_of(good)


def test_an_entry_copied_over_another_key_is_not_trusted(env):
    first = run("run", *FAKE, "--inverter", "fake-pinv", "--protocol", "type1", "--out", "a")
    assert first.exit_code == 0, first.output
    good = record_of("a", "fake-pinv")
    templates = _entries(env / "cache", "templates")
    assert len(templates) >= 3
    # the evaluation templates replaced by the templates of the reconstructions: an attack
    # that would look perfect if the copy were trusted
    sizes = {p: p.stat().st_size for p in templates}
    victim, donor = sorted(templates, key=sizes.get)[-2:]
    victim.write_bytes(donor.read_bytes())
    second = run("run", *FAKE, "--inverter", "fake-pinv", "--protocol", "type1", "--out", "b")
    assert second.exit_code == 0, second.output
    assert "copied or moved from another key" in second.output
    assert metrics_of(record_of("b", "fake-pinv")) == metrics_of(good)
    assert "computed nothing" not in second.output


# ------------------------------------------------------- 4. options, 5. output
def test_a_wrong_option_is_refused_before_any_work_and_keeps_the_good_record(env):
    first = run("run", *FAKE, "--inverter", "fake-linear", "--protocol", "type1", "--out", "r")
    assert first.exit_code == 0
    before = Path(next(Path("r").rglob("record.json"))).read_text()
    bad = run(
        "run", *FAKE, "--inverter", "fake-linear", "--protocol", "type1", "--out", "r",
        "--inverter-arg", "stepz=1",
    )  # fmt: skip
    assert bad.exit_code == 2
    assert "error: invalid options for inverter 'fake-linear': stepz" in bad.output
    assert "hint: known options:" in bad.output and "epochs" in bad.output
    assert Path(next(Path("r").rglob("record.json"))).read_text() == before


def test_a_failing_cell_keeps_the_good_record_and_writes_last_error(env, monkeypatch):
    first = run("run", *FAKE, "--inverter", "fake-linear", "--protocol", "type1", "--out", "r")
    assert first.exit_code == 0
    folder = next(Path("r").rglob("record.json")).parent
    before = (folder / "record.json").read_text()

    def broken(self, templates):
        raise RuntimeError("the inverter broke")

    monkeypatch.setattr("invbench.testing.fakes.FakeLinearInverter.invert", broken)
    again = run(
        "run", *FAKE, "--inverter", "fake-linear", "--protocol", "type1", "--out", "r", "--no-cache"
    )
    assert again.exit_code == 1
    assert (folder / "record.json").read_text() == before
    assert "the inverter broke" in json.loads((folder / "last-error.json").read_text())["error"]


def test_out_under_a_file_is_one_line_before_any_work(env):
    Path("afile").write_text("I am a file")
    result = run("run", *FAKE, "--inverter", "fake-pinv", "--out", "afile/results")
    assert result.exit_code == 2
    assert "error: cannot write afile/results: a parent of it is a file" in result.output
    assert not (env / "cache").exists()  # no work was done


def test_a_full_disk_is_one_line_naming_the_path(env, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("invbench.io.os.fsync", full)
    result = run("run", *FAKE, "--inverter", "fake-pinv", "--out", "results")
    assert result.exit_code == 2
    assert "error: cannot write results: no space left on the device" in result.output
    assert "Traceback" not in result.output and "unexpected pos" not in result.output


def test_a_full_disk_while_saving_a_state_names_the_file(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("invbench.io.os.fsync", full)
    with pytest.raises(StorageError, match=r"cannot write .*trainer.pt: no space left"):
        atomic_torch_save({"w": np.zeros(3)}, tmp_path / "ckpt" / "trainer.pt")
    assert not list((tmp_path / "ckpt").iterdir())  # no half file, no temp file


def test_a_cell_folder_is_complete_or_absent(env, monkeypatch):
    real_write = atomic_write_bytes
    written = []

    def failing(path, data):
        written.append(path)
        if len(written) == 5:  # in the middle of the score files
            raise OSError(errno.EIO, "I/O error")
        real_write(path, data)

    monkeypatch.setattr("invbench.runner.cell.atomic_write_bytes", failing)
    result = run("run", *FAKE, "--inverter", "fake-pinv", "--protocol", "type1", "--out", "r")
    assert result.exit_code == 1
    cells = [p for p in Path("r").rglob("*") if p.is_dir() and "__" in p.name]
    (folder,) = [p for p in cells if not p.name.startswith(".")]
    record = load_record(folder / "record.json")
    assert record.status == "error" and "I/O error" in record.error
    assert not (folder / "scores").exists()  # no score files without their record
    assert not [p for p in cells if p.name.startswith(".")]  # no staging folder left


# -------------------------------------------------------------- 6. images
def test_unreadable_images_are_failures_to_acquire_named_in_the_record(env):
    rng = np.random.default_rng(0)
    root = env / "faces"
    for person in ("ann", "bob", "cy"):
        (root / person).mkdir(parents=True)
        for k in range(3):
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / person / f"{k}.jpg", quality=90)
    (root / "ann" / "0.jpg").write_bytes(b"")  # empty
    full = (root / "bob" / "0.jpg").read_bytes()
    (root / "bob" / "0.jpg").write_bytes(full[: len(full) // 2])  # truncated
    (root / "cy" / "0.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 4)  # corrupt
    result = run(
        "run", "--encoder", "fake-projection", "--inverter", "fake-pinv",
        "--dataset", "folder", "--dataset-arg", f"path={root}", "--dataset-arg", "aligned=true",
        "--train-dataset", "fake-train-faces", "--protocol", "type1", "--no-progress",
        "--out", "r",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = next(Path("r").rglob("record.json"))
    rec = load_record(record)
    assert rec.data["n_eval_images"] == 9 and rec.data["n_eval_failed_to_acquire"] == 3
    named = rec.data["unreadable_images"]["evaluation"]
    assert sorted(line.split(":")[0] for line in named) == ["ann/0.jpg", "bob/0.jpg", "cy/0.jpg"]
    assert rec.metrics["type1"]["fta"].count == 3
    assert "unreadable evaluation images" in result.output


# ---------------------------------------------------------- 7. components
def test_wrong_dim_and_nan_evaluation_encoders_fail_their_cells(env):
    from tests.plugins import contract_breakers

    host = create_plugin_manager(entry_points=False)
    host.pm.register(contract_breakers, name="breakers")
    reset_host(host)
    args = [*FAKE, "--inverter", "fake-pinv", "--protocol", "type1", "--out", "r"]
    result = run("run", *args, "--eval-encoder", "wrong-dim", "--eval-encoder", "nan-encoder")
    assert result.exit_code == 1
    errors = {
        r.cell.eval_encoder: r.error for r in map(load_record, Path("r").rglob("record.json"))
    }
    # the template stage encodes fixed batches of 16 (invbench.determinism)
    assert "expected (16, 12)" in errors["wrong-dim"] and "(16, 7)" in errors["wrong-dim"]
    assert "encoder 'nan-encoder'" in errors["nan-encoder"] and "NaN" in errors["nan-encoder"]


# ------------------------------------------------------------ 8. records
@pytest.fixture
def board(env):
    result = run("run", *FAKE, "--inverter", "fake-pinv", "--protocol", "type1", "--out", "res")
    assert result.exit_code == 0, result.output
    assert run("leaderboard", "--results", "res", "--out", "board").exit_code == 0
    return next(Path("res").rglob("record.json"))


def test_a_hand_edited_metric_is_an_invalid_record(board):
    data = json.loads(board.read_text())
    data["metrics"]["type1"]["tar_type1@far=1e-2"]["value"] = 0.945
    board.write_text(json.dumps(data))
    assert run("leaderboard", "--results", "res", "--out", "board").exit_code == 0
    check = run("leaderboard", "--results", "res", "--out", "board", "--check")
    assert check.exit_code == 1
    assert f"invalid record: {board}: metric type1/tar_type1@far=1e-2 is 0.945" in check.output
    assert "its scores give 1.0" in check.output


def test_an_edited_score_file_is_an_invalid_record(board):
    scores = board.parent / "scores" / "type1" / "type1.npy"
    np.save(scores, np.zeros(18))
    check = run("leaderboard", "--results", "res", "--out", "board", "--check")
    assert check.exit_code == 1 and "differs from the digest in its record" in check.output


def test_a_truncated_record_is_invalid_not_stale(board):
    board.write_text(board.read_text()[:200])
    check = run("leaderboard", "--results", "res", "--out", "board", "--check")
    assert check.exit_code == 1
    assert f"invalid record: cannot read record {board}" in check.output
    assert "stale" not in check.output


# ------------------------------------------------------------- 10. locks
def _compute_once(root: str, log: str) -> None:
    def compute():
        with open(log, "a") as fh:
            fh.write("computed\n")
        time.sleep(1.0)
        return {"x": np.arange(5)}

    Cache(Path(root)).arrays("templates", "k" * 40, compute)


def test_two_runs_sharing_a_cache_compute_an_entry_once(tmp_path):
    log = tmp_path / "log.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_compute_once, args=(str(tmp_path), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert log.read_text() == "computed\n"
    got = Cache(tmp_path).arrays("templates", "k" * 40, lambda: {"x": np.zeros(1)})
    np.testing.assert_array_equal(got["x"], np.arange(5))
