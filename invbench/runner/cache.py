"""A content-addressed cache of everything a run computes.

Every artefact (aligned faces, templates, trained inverter states, reconstructions,
scores) is stored under a key that is the sha256 of a canonical JSON description of
everything that determines it, including the keys of its inputs. A changed option thus
changes only the keys downstream of it. Files are written to a temporary name and
renamed into place, so an interrupted run never leaves a file a later run would trust, and
every entry carries a manifest (its stage, key and content digest) checked on every read.

Location: ``$INVBENCH_CACHE_DIR`` or ``<user cache dir>/invbench/cache``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import platformdirs
import torch

from invbench.io import atomic_write_bytes

logger = logging.getLogger(__name__)

T = TypeVar("T")


def default_cache_dir() -> Path:
    """``$INVBENCH_CACHE_DIR`` or the user cache folder."""
    env = os.environ.get("INVBENCH_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("invbench")) / "cache"


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the text that is hashed into keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def make_key(stage: str, spec: dict[str, Any]) -> str:
    """Cache key of ``stage`` determined by ``spec`` (a JSON-ready dict)."""
    return hashlib.sha256(canonical_json({"stage": stage, **spec}).encode()).hexdigest()[:40]


#: First line of every cache entry file.
MAGIC = b"INVBENCH-CACHE 1\n"


class InvalidEntry(Exception):
    """A cache entry that cannot be trusted (unreadable, corrupted, or another key's)."""


def encode_entry(stage: str, key: str, payload: bytes) -> bytes:
    """The bytes of an entry file: :data:`MAGIC`, a manifest line, the payload.

    The manifest is JSON: stage, key, sha256 and size of the payload (an ``.npz`` archive or
    a ``torch.save`` state).
    """
    manifest = {
        "stage": stage,
        "key": key,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "size": len(payload),
    }
    return MAGIC + json.dumps(manifest, sort_keys=True).encode() + b"\n" + payload


def decode_entry(stage: str, key: str, data: bytes) -> bytes:
    """The payload of an entry file, after checking its manifest against ``stage``/``key``.

    Raises:
        InvalidEntry: Naming what does not hold.
    """
    if not data.startswith(MAGIC):
        raise InvalidEntry("not an invbench cache entry (no manifest)")
    head, sep, payload = data[len(MAGIC) :].partition(b"\n")
    try:
        manifest = json.loads(head) if sep else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        raise InvalidEntry("its manifest is unreadable")
    if (manifest.get("stage"), manifest.get("key")) != (stage, key):
        raise InvalidEntry(
            f"it holds {manifest.get('stage')} {manifest.get('key')}, not {stage} {key} "
            "(copied or moved from another key)"
        )
    if len(payload) != manifest.get("size"):
        raise InvalidEntry(f"it is {len(payload)} bytes, its manifest says {manifest.get('size')}")
    if hashlib.sha256(payload).hexdigest() != manifest.get("sha256"):
        raise InvalidEntry("its content does not match its digest (corrupted)")
    return payload


class Cache:
    """The content-addressed store; ``enabled=False`` computes everything afresh.

    Every entry carries a manifest with its stage, its key and the sha256 of its content,
    checked on every read: an entry that is unreadable, truncated, corrupted or copied
    from another key is never trusted; it is reported (a warning naming the file) and
    computed again. Computing an entry holds a per-key lock (``fcntl.flock`` on
    ``<entry>.lock``), so two runs sharing a cache never compute the same entry at once:
    the second waits and then reuses the first's result.

    Attributes:
        events: ``(stage, key, "reused" | "computed" | "invalid")`` in the order they
            happened, for the run's report.
    """

    def __init__(self, root: Path | None = None, *, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled
        self.events: list[tuple[str, str, str]] = []

    def path(self, stage: str, key: str, suffix: str) -> Path:
        """Where the artefact ``key`` of ``stage`` lives."""
        return self.root / stage / key[:2] / f"{key}{suffix}"

    def checkpoint_dir(self, stage: str, key: str) -> Path:
        """A folder for resumable work on ``key`` (training checkpoints)."""
        return self.root / "checkpoints" / stage / key

    def arrays(
        self, stage: str, key: str, compute: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """Return the arrays stored under ``key``, computing and storing them if absent."""

        def load(payload: bytes) -> dict[str, np.ndarray]:
            with np.load(io.BytesIO(payload), allow_pickle=False) as data:
                return {name: data[name] for name in data.files}

        def dump(arrays: dict[str, np.ndarray]) -> bytes:
            buf = io.BytesIO()
            named: dict[str, Any] = dict(arrays)
            np.savez(buf, **named)
            return buf.getvalue()

        return self._entry(stage, key, ".npz", compute, load, dump)

    def state(self, stage: str, key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Like :meth:`arrays` for a torch state (tensors and plain values, ``weights_only``)."""

        def load(payload: bytes) -> dict[str, Any]:
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise InvalidEntry(f"it holds a {type(state).__name__}, not a state dict")
            return state

        def dump(state: dict[str, Any]) -> bytes:
            buf = io.BytesIO()
            torch.save(state, buf)
            return buf.getvalue()

        return self._entry(stage, key, ".pt", compute, load, dump)

    def invalidate(self, stage: str, key: str, suffix: str, why: str) -> None:
        """Remove an entry that turned out unusable (warning naming the file)."""
        path = self.path(stage, key, suffix)
        logger.warning("cache entry %s is invalid (%s); computing it again", path, why)
        path.unlink(missing_ok=True)
        self.events.append((stage, key, "invalid"))

    def _read(self, stage: str, key: str, suffix: str, load: Callable[[bytes], T]) -> T | None:
        path = self.path(stage, key, suffix)
        if not path.is_file():
            return None
        try:
            value = load(decode_entry(stage, key, path.read_bytes()))
        except Exception as exc:  # any unreadable entry is recomputed, never trusted
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.invalidate(stage, key, suffix, why)
            return None
        self.events.append((stage, key, "reused"))
        return value

    def _entry(
        self,
        stage: str,
        key: str,
        suffix: str,
        compute: Callable[[], T],
        load: Callable[[bytes], T],
        dump: Callable[[T], bytes],
    ) -> T:
        if not self.enabled:
            value = compute()
            self.events.append((stage, key, "computed"))
            return value
        found = self._read(stage, key, suffix, load)
        if found is not None:
            return found
        path = self.path(stage, key, suffix)
        with key_lock(path):
            found = self._read(stage, key, suffix, load)  # another run may have made it
            if found is not None:
                return found
            value = compute()
            atomic_write_bytes(path, encode_entry(stage, key, dump(value)))
        self.events.append((stage, key, "computed"))
        return value

    def summary(self) -> dict[str, dict[str, int]]:
        """Per stage: how many artefacts were reused, computed, and found invalid."""
        out: dict[str, dict[str, int]] = {}
        for stage, _, what in self.events:
            counts = out.setdefault(stage, {"reused": 0, "computed": 0})
            counts[what] = counts.get(what, 0) + 1
        return out


@contextmanager
def key_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (``fcntl.flock``) for the block.

    Waits (with a log line) while another process holds it. Where ``fcntl`` is unavailable
    (Windows) the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield
        return
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting: another run is computing %s", path.name)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
