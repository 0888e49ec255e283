"""A content-addressed cache of everything a run computes.

Every artefact (aligned faces, templates, trained inverter states, reconstructions,
scores) is stored under a key that is the sha256 of a canonical JSON description of
everything that determines it, including the keys of its inputs. A changed option thus
changes only the keys downstream of it. Files are written to a temporary name and
renamed into place, so an interrupted run never leaves a file a later run would trust, and
every entry carries a manifest (its stage, key and content digest) checked on every read.

Location: ``$INVBENCH_CACHE_DIR`` or ``<user cache dir>/invbench/cache``.

Many processes (``invbench run --workers N``, Dask workers on other machines, two runs
started by hand) may share one cache root: computing an entry holds a per-key lock, so each
entry is computed once, and a reader sees either no entry or a complete one. The lock is
``fcntl.flock`` on ``<entry>.lock`` by default; ``INVBENCH_LOCK=file`` uses lock files
created with ``O_EXCL`` instead (for shared file systems where ``flock`` is missing or only
local to one host; see docs/scaling.md), ``INVBENCH_LOCK=none`` no lock at all.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import platformdirs
import torch

from invbench.errors import InvbenchError
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
    computed again. Computing an entry holds a per-key lock (:func:`key_lock`: ``flock`` on
    ``<entry>.lock``, or an ``O_EXCL`` lock file), so two runs or workers sharing a cache
    never compute the same entry at once: the second waits and then reuses the first's
    result. Every stage of a cell (aligned faces, templates, adapters, trained inverters,
    reconstructions, protocol scores) is stored through :meth:`arrays` or :meth:`state`,
    hence under this lock.

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

    def _read(
        self,
        stage: str,
        key: str,
        suffix: str,
        load: Callable[[bytes], T],
        *,
        locked: bool = False,
    ) -> T | None:
        """The stored value, or ``None`` when absent or invalid.

        An invalid entry is removed only under the key's lock (``locked``): without it, a
        process could remove the valid entry another one has just put in its place.
        """
        path = self.path(stage, key, suffix)
        if not path.is_file():
            return None
        try:
            value = load(decode_entry(stage, key, path.read_bytes()))
        except Exception as exc:  # any unreadable entry is recomputed, never trusted
            if locked:
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
            # another run may have made it meanwhile; an invalid entry is removed here
            found = self._read(stage, key, suffix, load, locked=True)
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


#: ``INVBENCH_LOCK`` values: ``flock`` (default), ``file`` (``O_EXCL`` lock files), ``none``.
LOCK_MODES = ("flock", "file", "none")
#: A lock file whose holder has not refreshed it for this many seconds is stale
#: (``INVBENCH_LOCK_STALE_S``); holders refresh theirs every quarter of it.
DEFAULT_STALE_S = 300.0
#: ``flock`` errors that mean "this file system has no flock": fall back to lock files.
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
_fallback_warned = False


def lock_mode() -> str:
    """The lock kind of this process: ``$INVBENCH_LOCK`` or ``flock``.

    Raises:
        InvbenchError: For a value that is not one of :data:`LOCK_MODES`.
    """
    mode = os.environ.get("INVBENCH_LOCK", "").strip().lower() or "flock"
    if mode not in LOCK_MODES:
        raise InvbenchError(
            f"INVBENCH_LOCK={mode!r} is not one of {', '.join(LOCK_MODES)}",
            hint="flock (default), file (O_EXCL lock files, for NFS without flock), none",
        )
    return mode


@contextmanager
def key_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of the cache entry ``path`` for the block.

    Waits (with a log line) while another process holds it. With ``INVBENCH_LOCK=flock``
    (the default) this is ``fcntl.flock`` on ``<path>.lock``; where the file system refuses
    ``flock`` it falls back to an ``O_EXCL`` lock file (:func:`file_lock`), as with
    ``INVBENCH_LOCK=file``. Where ``fcntl`` is unavailable (Windows) the block runs unlocked.
    """
    mode = lock_mode()
    if mode == "none":
        yield
        return
    if mode == "file":
        with file_lock(path):
            yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux or macOS
        yield
        return
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+b") as fh:
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.info("waiting: another run is computing %s", path.name)
                fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                raise
            _warn_fallback(path, exc)
            locked = False
        else:
            locked = True
        if not locked:
            with file_lock(path):
                yield
            return
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _warn_fallback(path: Path, exc: OSError) -> None:
    global _fallback_warned
    if not _fallback_warned:
        _fallback_warned = True
        logger.warning(
            "the file system of %s refuses flock (%s); using O_EXCL lock files "
            "(set INVBENCH_LOCK=file on every worker sharing this cache)",
            path.parent,
            os.strerror(exc.errno or 0),
        )


def _stale_s() -> float:
    try:
        return float(os.environ.get("INVBENCH_LOCK_STALE_S", DEFAULT_STALE_S))
    except ValueError:
        return DEFAULT_STALE_S


def _holder_dead(token: str) -> bool:
    """Whether the lock ``token`` (``host pid nonce``) names a dead process of this host."""
    parts = token.split()
    if len(parts) < 2 or parts[0] != socket.gethostname():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False
    return False


def _read_token(lock: Path) -> str | None:
    try:
        return lock.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _break_if_stale(lock: Path, stale_s: float) -> bool:
    """Remove ``lock`` when its holder is gone; ``True`` when the caller should retry.

    Stale means: not refreshed for ``stale_s`` seconds, or held by a process of this host
    that no longer exists. The lock is moved aside (an atomic rename only one breaker
    wins) and put back if, between the check and the rename, a new holder replaced it.
    """
    token = _read_token(lock)
    if token is None:
        return True  # released meanwhile
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return True
    if age < stale_s and not _holder_dead(token):
        return False
    aside = lock.with_name(f"{lock.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return True
    moved = _read_token(aside)
    if moved != token:  # a new holder's lock: give it back
        try:
            os.link(aside, lock)
        except FileExistsError:
            pass
    else:
        logger.warning("broke the stale lock %s (held by %s)", lock, token.strip())
    aside.unlink(missing_ok=True)
    return True


@contextmanager
def file_lock(path: Path, *, poll_s: float = 0.2) -> Iterator[None]:
    """Hold ``<path>.lockfile``, created with ``O_EXCL``, for the block.

    ``O_EXCL`` creation is atomic on local file systems and on NFS v3 and later, where
    ``flock`` may be missing or lock only within one host. The file holds ``host pid
    nonce``; a thread refreshes its time stamp while the block runs, so a lock whose holder
    died (a killed worker) is broken after ``INVBENCH_LOCK_STALE_S`` seconds (default
    300), or at once when the holder was a process of this host that no longer exists.
    """
    lock = path.with_name(path.name + ".lockfile")
    lock.parent.mkdir(parents=True, exist_ok=True)
    stale_s = _stale_s()
    token = f"{socket.gethostname()} {os.getpid()} {uuid.uuid4().hex}\n"
    waited = False
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            if _break_if_stale(lock, stale_s):
                continue
            if not waited:
                logger.info("waiting: another run is computing %s", path.name)
                waited = True
            time.sleep(poll_s)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
        break
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(stale_s / 4):
            try:
                os.utime(lock)
            except OSError:
                return

    beat = threading.Thread(target=refresh, name="invbench-lock-refresh", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        if _read_token(lock) == token:
            lock.unlink(missing_ok=True)
