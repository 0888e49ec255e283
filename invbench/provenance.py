"""Where a number came from: invbench version and commit, libraries, device."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from invbench.allocator import malloc_state

LIBRARIES = (
    "torch",
    "torchvision",
    "numpy",
    "onnxruntime",
    "onnxruntime-gpu",
    "lpips",
    "scikit-learn",
    "scipy",
    "pluggy",
    "pydantic",
)


@lru_cache(maxsize=1)
def git_info() -> dict[str, Any]:
    """Commit and dirty flag of the invbench source tree, when it is a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that can change results."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def resolve_device(device: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; other values as given.

    Raises:
        invbench.errors.InvbenchError: When ``cuda`` is asked for but not available.
    """
    from invbench.errors import InvbenchError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvbenchError(
            "--device cuda was asked for but torch sees no CUDA device",
            hint="use --device cpu (or auto), or install a CUDA build of torch",
        )
    return dev


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name, ``"unknown"`` when the system does not say.

    Read from ``/proc/cpuinfo`` on Linux, ``sysctl`` on macOS, else ``platform.processor()``.
    Results are byte-identical on one machine but can differ in the last bits on another
    CPU (other instruction sets, other kernels; see :mod:`invbench.determinism`), so every
    record names it.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                    if value.strip():
                        return value.strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_capability() -> str:
    """The vector instruction set torch's CPU kernels use (``AVX2``, ``AVX512``, ...)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # pragma: no cover - very old torch
        return "unknown"


def peak_rss_mib() -> float | None:
    """The peak resident memory of this process so far, in MiB (``None`` where unknown).

    A process that runs several cells (a serial grid) reports the peak over all of them up
    to now; a worker process likewise.
    """
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def environment(device: torch.device) -> dict[str, Any]:
    """The environment block of a result record.

    Besides versions and the device: the CPU model, the instruction set torch's kernels use
    and the logical CPU count, and the thread counts the computations ran with
    (``cpu_threads``: torch intra-op threads; the built-in ONNX encoders give onnxruntime
    the same count). On one machine results are byte-identical run to run; these fields
    say what may differ when two records' last bits do not agree. ``malloc``: whether
    glibc's thresholds were raised (:mod:`invbench.allocator`; speed only, same bits).
    """
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
        "device": str(device),
        "cpu_model": cpu_model(),
        "cpu_capability": cpu_capability(),
        "cpu_count": os.cpu_count(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_interop_threads": torch.get_num_interop_threads(),
        "onnxruntime_threads": torch.get_num_threads(),
        "malloc": malloc_state(),
    }
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info
