"""Atomic writes: a crash leaves the old file (or folder) or the new one, never half of one.

Writes that fail because the disk is full, read-only or not ours raise
:class:`~invbench.errors.StorageError`: one line naming the path and the reason.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch

from invbench.errors import StorageError

#: ``errno`` values that mean "this place cannot take the file" rather than a bug.
STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a parent of it is a file, not a folder",
    errno.EEXIST: "a file is in the way",
}

#: The process umask, read once (``os.umask`` can only be read by setting it).
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write ``path`` through ``write(handle)`` on a temporary file, fsync, then rename.

    The temporary file sits in the same folder (so the rename is atomic) and is removed
    when anything fails.
    """
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically.

    The object is serialised in memory first, so a failing write surfaces as the
    operating system's error (e.g. no space left), not as torch's zip-writer message.
    """
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


@contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` of :data:`STORAGE_ERRNOS` in the block into a StorageError."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in STORAGE_ERRNOS:
            raise
        raise StorageError(
            f"cannot write {path}: {STORAGE_ERRNOS[exc.errno]}",
            hint="free space, or choose another folder (--out, INVBENCH_CACHE_DIR)",
        ) from None


def probe_writable(folder: Path, size: int = 1 << 20) -> None:
    """Create ``folder`` and write (then remove) a ``size``-byte file in it.

    Raises:
        StorageError: When the folder cannot be created or written, or the disk is full.
    """
    folder = Path(folder)
    with storage_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".invbench-probe-{uuid.uuid4().hex[:8]}"
        try:
            with open(probe, "wb") as fh:
                fh.write(b"\0" * size)
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            probe.unlink(missing_ok=True)


def staging_folder(folder: Path) -> Path:
    """A fresh hidden folder beside ``folder`` to assemble its new content in."""
    staging = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    with storage_errors(staging):
        staging.mkdir(parents=True)
    return staging


def replace_folder(staging: Path, folder: Path) -> None:
    """Move the complete ``staging`` folder to ``folder``, replacing what was there.

    The old folder is moved aside first and removed only after the new one is in place,
    so ``folder`` is always either the old or the new complete content.
    """
    old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
    with storage_errors(folder):
        if folder.exists():
            os.replace(folder, old)
        os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)
