"""glibc ``malloc`` settings for large tensors: freed buffers are reused, not unmapped.

By default glibc serves every allocation above a threshold (dynamic, at most 32 MiB) with a
fresh ``mmap`` and gives it back to the system when it is freed, and trims freed memory at
the top of the heap. A training or optimisation step allocates and frees the same large
activations every step, so each step page-faults them in again: on the 2-core development
machine that made elementwise kernels over 80 MB tensors 4-5x slower (a PReLU forward 43 ms
instead of 8 ms) and a latent-opt gradient step about 1.5x slower.

:func:`tune_malloc` raises both thresholds to ``2**31 - 1`` bytes through ``mallopt``, so
large buffers come from the heap and stay there for the next step. It changes where memory
lives, never a computed value: results are bit-identical with and without it. The cost is
that the process keeps its peak heap until it exits. ``INVBENCH_MALLOC=system`` leaves
glibc's defaults. Other C libraries (macOS, musl, Windows) are left alone, and
:func:`malloc_state` says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from typing import Any

logger = logging.getLogger(__name__)

#: ``mallopt`` parameters (``<malloc.h>``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: The largest value ``mallopt`` accepts (an ``int``).
LARGE_THRESHOLD = 2**31 - 1
#: glibc's initial thresholds, used to restore its behaviour (benchmarks).
GLIBC_DEFAULT_THRESHOLD = 128 * 1024

_STATE: dict[str, Any] = {}


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version")):
        return None
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    return libc


def set_thresholds(mmap_bytes: int, trim_bytes: int) -> bool:
    """Set glibc's mmap and trim thresholds; ``False`` where that is not possible."""
    libc = _libc()
    if libc is None:
        return False
    ok_mmap = libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(mmap_bytes)) == 1
    ok_trim = libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(trim_bytes)) == 1
    return ok_mmap and ok_trim


def tune_malloc() -> dict[str, Any]:
    """Raise glibc's thresholds once per process (see the module docstring).

    Returns:
        :func:`malloc_state`.
    """
    if _STATE:
        return malloc_state()
    if os.environ.get("INVBENCH_MALLOC", "").strip().lower() == "system":
        _STATE.update(tuned=False, reason="INVBENCH_MALLOC=system: the C library's defaults")
    elif _libc() is None:
        _STATE.update(tuned=False, reason="not glibc: the C library's defaults")
    elif set_thresholds(LARGE_THRESHOLD, LARGE_THRESHOLD):
        _STATE.update(
            tuned=True,
            mmap_threshold=LARGE_THRESHOLD,
            trim_threshold=LARGE_THRESHOLD,
            glibc=_libc().gnu_get_libc_version().decode(),  # type: ignore[union-attr]
        )
        logger.debug("malloc: mmap and trim thresholds raised to %d bytes", LARGE_THRESHOLD)
    else:
        _STATE.update(tuned=False, reason="mallopt refused the thresholds")
    return malloc_state()


def malloc_state() -> dict[str, Any]:
    """What :func:`tune_malloc` did in this process (``{"tuned": False, ...}`` before it ran)."""
    return dict(_STATE) if _STATE else {"tuned": False, "reason": "not tuned in this process"}
