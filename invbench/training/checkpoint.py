"""Reading checkpoints and capturing random-number-generator states."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

#: File name of the trainer's checkpoint inside ``checkpoint_dir``.
CHECKPOINT_NAME = "trainer.pt"


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Load a checkpoint (``weights_only``) on the CPU.

    Returns:
        The checkpoint, or ``None`` when the file does not exist or cannot be read (a
        warning is logged for the latter; training then starts over).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file means "start over"
        logger.warning("ignoring unreadable checkpoint %s: %s", path, exc)
        return None
    return state if isinstance(state, dict) else None


def rng_state() -> dict[str, Any]:
    """The global torch RNG states (CPU and, where present, every CUDA device)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`rng_state`."""
    torch.set_rng_state(state["cpu"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            logger.warning("checkpoint has %d CUDA RNG states; not restoring them", len(cuda))
