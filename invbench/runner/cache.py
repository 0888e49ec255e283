"""A content-addressed cache of everything a run computes.

Every artefact (aligned faces, templates, trained inverter states, reconstructions,
scores) is stored under a key that is the sha256 of a canonical JSON description of
everything that determines it, including the keys of its inputs. A changed option thus
changes only the keys downstream of it. Files are written to a temporary name and
renamed into place, so an interrupted run never leaves a file a later run would trust.

Location: ``$INVBENCH_CACHE_DIR`` or ``<user cache dir>/invbench/cache``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import torch

from invbench.io import atomic_write_bytes

logger = logging.getLogger(__name__)


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


class Cache:
    """The content-addressed store; ``enabled=False`` computes everything afresh.

    Attributes:
        events: ``(stage, key, "reused" | "computed")`` in the order they happened, for
            the run's report.
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
        path = self.path(stage, key, ".npz")
        if self.enabled and path.is_file():
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            self.events.append((stage, key, "reused"))
            return arrays
        arrays = compute()
        if self.enabled:
            buf = io.BytesIO()
            named: dict[str, Any] = dict(arrays)
            np.savez(buf, **named)
            atomic_write_bytes(path, buf.getvalue())
        self.events.append((stage, key, "computed"))
        return arrays

    def state(self, stage: str, key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Like :meth:`arrays` for a torch state (tensors and plain values)."""
        path = self.path(stage, key, ".pt")
        if self.enabled and path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.events.append((stage, key, "reused"))
            return state
        state = compute()
        if self.enabled:
            buf = io.BytesIO()
            torch.save(state, buf)
            atomic_write_bytes(path, buf.getvalue())
        self.events.append((stage, key, "computed"))
        return state

    def summary(self) -> dict[str, dict[str, int]]:
        """Per stage: how many artefacts were reused and how many computed."""
        out: dict[str, dict[str, int]] = {}
        for stage, _, what in self.events:
            out.setdefault(stage, {"reused": 0, "computed": 0})[what] += 1
        return out
