"""Seeds: one run seed, per-component seeds derived from it."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(seed: int, *parts: str) -> int:
    """Derive a component seed from the run seed and a purpose, e.g. ``("inverter", "dfd")``.

    >>> derive_seed(0, "inverter") == derive_seed(0, "inverter")
    True
    """
    text = ":".join([str(seed), *parts]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
