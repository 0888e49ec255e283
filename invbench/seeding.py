"""Seeds: one run seed, per-component seeds derived from it.

Two mixers with stable values (unlike ``hash``): :func:`derive_seed` for a seed and named
purposes (the runner), :func:`mix_seed` for a seed and integers (training loops, network
initialisation). Both are part of what makes records reproducible: never change them.
"""

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


def mix_seed(*values: int) -> int:
    """Combine integers into one 63-bit seed (stable across processes and machines).

    >>> mix_seed(0, 1) == mix_seed(0, 1) != mix_seed(1, 0)
    True
    """
    acc = 0x2545F4914F6CDD1D
    for value in values:
        acc = (acc ^ (value & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3 % (1 << 64)
        acc ^= acc >> 29
    return acc % (1 << 63)
