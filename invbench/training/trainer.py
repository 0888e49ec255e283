"""The shared training loop: stages, validation split, seeding, progress, checkpoint/resume.

Every inverter trains through :func:`train` (or :class:`Trainer`)::

    def loss(batch):                          # tensors already on the device
        templates, images = batch
        recon = model(templates)
        pix = mse_loss(recon, images.float() / 255)
        return pix, {"pix": pix}

    summary = train(model, (data.templates, data.images), Stage(loss, epochs=10),
                    batch_size=64, seed=ctx.seed, val_fraction=0.05,
                    checkpoint_dir=ctx.checkpoint_dir, progress=ctx.progress)

Determinism and resume: shuffling uses a ``torch.Generator`` seeded from ``(seed, stage,
epoch)``; the loop runs inside a forked global RNG seeded from ``seed`` (so dropout or
random augmentation in a loss is reproducible, and the caller's RNG is left untouched).
Every ``checkpoint_every`` steps and at the end of every epoch the trainer atomically
writes ``checkpoint_dir/trainer.pt`` (model, optimizer, stage/epoch/batch/step counters,
epoch accumulators, RNG states, history). A later call with the same checkpoint folder and
the same configuration continues from there and, on the CPU, ends with exactly the weights
an uninterrupted run ends with. A checkpoint whose configuration differs is ignored (with a
warning) and overwritten; a finished one is loaded and returned without training.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from invbench.io import atomic_torch_save
from invbench.seeding import mix_seed
from invbench.training.checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_state, set_rng_state
from invbench.training.optim import LossFn, Stage

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1


@dataclass
class _Position:
    """Where training stands; everything here goes into the checkpoint."""

    stage: int = 0
    epoch: int = 0  # completed epochs in the stage
    batch: int = 0  # batches done in the current epoch
    stage_step: int = 0
    global_step: int = 0
    total_epochs: int = 0
    loss_sum: float = 0.0
    parts_sum: dict[str, float] = field(default_factory=dict)
    count: int = 0
    best_val: float = math.inf
    bad_epochs: int = 0
    stopped_early: bool = False
    done: bool = False

    def reset_epoch(self) -> None:
        self.batch, self.loss_sum, self.parts_sum, self.count = 0, 0.0, {}, 0

    def next_stage(self) -> None:
        self.stage += 1
        self.epoch = self.stage_step = self.bad_epochs = 0
        self.best_val = math.inf
        self.reset_epoch()


class Trainer:
    """Runs one or more :class:`Stage` s over tensors with a common first dimension.

    Args:
        model: Everything trained (several models: an ``nn.ModuleDict``). Its state is
            checkpointed; the stage losses close over it.
        stages: One stage or a sequence run in order.
        batch_size: Samples per optimizer step.
        seed: Seeds the split, the shuffling and the global RNG of the loop.
        val_fraction: Share of the samples held out for validation (seeded split).
        val_data: Explicit validation tensors instead of a split.
        checkpoint_dir: Folder for the resumable checkpoint (``None``: none).
        checkpoint_every: Also checkpoint every this many optimizer steps (``None`` or 0:
            only at the ends of epochs).
        progress: Show tqdm progress bars.
        device: Where batches go (default: the model's device).
        drop_last: Skip the last incomplete batch of each epoch.
        desc: Label for progress bars and logs.
    """

    def __init__(
        self,
        model: nn.Module,
        stages: Stage | Sequence[Stage],
        *,
        batch_size: int,
        seed: int = 0,
        val_fraction: float = 0.0,
        val_data: Sequence[Tensor] | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = 1000,
        progress: bool = True,
        device: str | torch.device | None = None,
        drop_last: bool = False,
        desc: str = "train",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), not {val_fraction}")
        self.model = model
        self.stages = [stages] if isinstance(stages, Stage) else list(stages)
        if not self.stages:
            raise ValueError("no stages to train")
        self.batch_size = batch_size
        self.seed = seed
        self.val_fraction = val_fraction
        self.val_data = tuple(val_data) if val_data is not None else None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every = checkpoint_every or 0
        self.progress = progress
        if device is None:
            first = next(model.parameters(), None)
            device = first.device if first is not None else "cpu"
        self.device = torch.device(device)
        self.drop_last = drop_last
        self.desc = desc
        self._fingerprint_cache: dict[str, Any] = {}

    # ----------------------------------------------------------------- public API
    def fit(self, data: Sequence[Tensor]) -> dict[str, Any]:
        """Train on ``data``: tensors whose row ``i`` is sample ``i`` (kept on the CPU).

        Returns:
            Summary: ``final_loss`` (mean training loss of the last epoch), ``val_loss``
            (last validation loss or ``None``), ``parts`` / ``val_parts`` (their terms),
            ``steps``, ``epochs``, ``seconds`` (over all resumed runs), ``stopped_early``,
            ``resumed_from_step`` and the per-epoch ``history``.
        """
        data = tuple(data)
        n = _common_length(data)
        train_idx, val_set = self._split(data, n)
        if len(train_idx) == 0:
            raise ValueError("no training samples left after the validation split")
        self._fingerprint_cache = self._fingerprint(data, len(train_idx), val_set)
        pos, history, seconds = _Position(), [], 0.0
        ckpt = self._load(self._fingerprint_cache)
        resumed_from = None
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        start = time.perf_counter()
        with torch.random.fork_rng(devices=devices):
            if ckpt is None:
                torch.manual_seed(mix_seed(self.seed, 1))
            else:
                pos = _Position(**ckpt["position"])
                history, seconds = list(ckpt["history"]), float(ckpt["seconds"])
                self.model.load_state_dict(ckpt["model"])
                set_rng_state(ckpt["rng"])
                resumed_from = pos.global_step
                logger.info("%s: resuming at step %d", self.desc, pos.global_step)
            while not pos.done and pos.stage < len(self.stages):
                opt_state = ckpt.get("optimizer") if ckpt is not None else None
                ckpt = None
                self._run_stage(data, train_idx, val_set, pos, history, opt_state, seconds, start)
            pos.done = True
        seconds += time.perf_counter() - start
        last = history[-1] if history else {}
        return {
            "final_loss": last.get("loss"),
            "val_loss": last.get("val_loss"),
            "parts": last.get("parts", {}),
            "val_parts": last.get("val_parts", {}),
            "steps": pos.global_step,
            "epochs": pos.total_epochs,
            "seconds": seconds,
            "stopped_early": pos.stopped_early,
            "resumed_from_step": resumed_from,
            "history": history,
        }

    # ------------------------------------------------------------------- the loop
    def _run_stage(
        self,
        data: tuple[Tensor, ...],
        train_idx: Tensor,
        val_set: tuple[Tensor, ...] | None,
        pos: _Position,
        history: list[dict[str, Any]],
        opt_state: dict[str, Any] | None,
        seconds: float,
        start: float,
    ) -> None:
        stage = self.stages[pos.stage]
        chosen = stage.params(self.model) if stage.params else self.model.parameters()
        params = [p for p in chosen if not isinstance(p, nn.Parameter) or p.requires_grad]
        optimizer = stage.optimizer.build(params)
        base_lrs = [group["lr"] for group in optimizer.param_groups]
        if opt_state is not None:
            optimizer.load_state_dict(opt_state)
        n_train, bs = len(train_idx), self.batch_size
        n_batches = n_train // bs if self.drop_last else math.ceil(n_train / bs)
        if n_batches == 0:
            raise ValueError(f"{n_train} training samples make no batch of {bs} (drop_last)")
        caps = [stage.steps, None if stage.epochs is None else stage.epochs * n_batches]
        total = min(c for c in caps if c is not None)
        bar = tqdm(
            total=total,
            initial=pos.stage_step,
            desc=f"{self.desc} [{stage.name}]",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        self.model.train()
        try:
            while True:
                gen = torch.Generator().manual_seed(mix_seed(self.seed, 2, pos.stage, pos.epoch))
                order = train_idx[torch.randperm(n_train, generator=gen)]
                capped = False
                for b in range(pos.batch, n_batches):
                    idx = order[b * bs : (b + 1) * bs]
                    batch = tuple(t[idx].to(self.device, non_blocking=True) for t in data)
                    for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                        group["lr"] = stage.schedule.lr(base, pos.stage_step, pos.epoch)
                    optimizer.zero_grad(set_to_none=True)
                    loss, parts = stage.loss(batch)
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise FloatingPointError(
                            f"{self.desc}: loss is {value} at step {pos.global_step} "
                            f"(stage {stage.name!r}); lower the learning rate"
                        )
                    loss.backward()
                    if stage.grad_clip is not None:
                        nn.utils.clip_grad_norm_(self.model.parameters(), stage.grad_clip)
                    optimizer.step()
                    pos.batch, pos.stage_step, pos.global_step = (
                        b + 1,
                        pos.stage_step + 1,
                        pos.global_step + 1,
                    )
                    pos.loss_sum += value * len(idx)
                    for key, part in parts.items():
                        pos.parts_sum[key] = pos.parts_sum.get(key, 0.0) + _scalar(part) * len(idx)
                    pos.count += len(idx)
                    bar.update(1)
                    bar.set_postfix(loss=f"{pos.loss_sum / pos.count:.4g}", refresh=False)
                    if stage.steps is not None and pos.stage_step >= stage.steps:
                        capped = True
                        break
                    if self.checkpoint_every and pos.global_step % self.checkpoint_every == 0:
                        self._save(pos, history, optimizer, seconds, start)
                self._end_epoch(stage, val_set, pos, history, optimizer)
                finished = capped or pos.stopped_early
                finished |= stage.epochs is not None and pos.epoch >= stage.epochs
                if finished:
                    pos.next_stage()
                self._save(pos, history, None if finished else optimizer, seconds, start)
                if finished:
                    return
        finally:
            bar.close()

    def _end_epoch(
        self,
        stage: Stage,
        val_set: tuple[Tensor, ...] | None,
        pos: _Position,
        history: list[dict[str, Any]],
        optimizer: torch.optim.Optimizer,
    ) -> None:
        count = max(pos.count, 1)
        record: dict[str, Any] = {
            "stage": stage.name,
            "epoch": pos.epoch + 1,
            "step": pos.global_step,
            "lr": optimizer.param_groups[0]["lr"],
            "loss": pos.loss_sum / count,
            "parts": {k: v / count for k, v in pos.parts_sum.items()},
        }
        if val_set is not None:
            val_loss, val_parts = self._validate(stage.val_loss or stage.loss, val_set)
            record.update(val_loss=val_loss, val_parts=val_parts)
            if val_loss < pos.best_val:
                pos.best_val, pos.bad_epochs = val_loss, 0
            else:
                pos.bad_epochs += 1
                if stage.patience is not None and pos.bad_epochs >= stage.patience:
                    pos.stopped_early = True
                    logger.info(
                        "%s [%s]: early stop at epoch %d", self.desc, stage.name, pos.epoch + 1
                    )
        history.append(record)
        logger.info(
            "%s [%s] epoch %d step %d: loss %.5g%s lr %.3g",
            self.desc,
            stage.name,
            record["epoch"],
            pos.global_step,
            record["loss"],
            f" val {record['val_loss']:.5g}" if "val_loss" in record else "",
            record["lr"],
        )
        pos.epoch += 1
        pos.total_epochs += 1
        pos.reset_epoch()

    def _validate(
        self, loss_fn: LossFn, val_set: tuple[Tensor, ...]
    ) -> tuple[float, dict[str, float]]:
        """Sample-weighted mean validation loss and parts (eval mode, no gradients)."""
        n = _common_length(val_set)
        total, parts_sum = 0.0, dict[str, float]()
        self.model.eval()
        try:
            with torch.no_grad():
                for i in range(0, n, self.batch_size):
                    batch = tuple(t[i : i + self.batch_size].to(self.device) for t in val_set)
                    loss, parts = loss_fn(batch)
                    k = batch[0].shape[0]
                    total += float(loss) * k
                    for key, part in parts.items():
                        parts_sum[key] = parts_sum.get(key, 0.0) + _scalar(part) * k
        finally:
            self.model.train()
        return total / n, {k: v / n for k, v in parts_sum.items()}

    # ------------------------------------------------------------ data, checkpoint
    def _split(self, data: tuple[Tensor, ...], n: int) -> tuple[Tensor, tuple[Tensor, ...] | None]:
        """Training indices and validation tensors (seeded split, or ``val_data``)."""
        if self.val_data is not None:
            _common_length(self.val_data)
            return torch.arange(n), self.val_data
        n_val = int(round(n * self.val_fraction))
        if n_val == 0:
            return torch.arange(n), None
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(mix_seed(self.seed, 3)))
        val_idx = perm[:n_val].sort().values
        train_idx = perm[n_val:].sort().values
        return train_idx, tuple(t[val_idx] for t in data)

    def _fingerprint(
        self, data: tuple[Tensor, ...], n_train: int, val_set: tuple[Tensor, ...] | None
    ) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed."""
        return {
            "format": CHECKPOINT_FORMAT,
            "n_train": n_train,
            "n_val": 0 if val_set is None else _common_length(val_set),
            "data": [_probe(t) for t in data],
            "batch_size": self.batch_size,
            "drop_last": self.drop_last,
            "seed": self.seed,
            "stages": [s.describe() for s in self.stages],
            "params": [[k, list(v.shape)] for k, v in self.model.state_dict().items()],
        }

    def _load(self, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
        if self.checkpoint_dir is None:
            return None
        ckpt = load_checkpoint(self.checkpoint_dir / CHECKPOINT_NAME)
        if ckpt is None:
            return None
        if ckpt.get("fingerprint") != fingerprint:
            logger.warning(
                "%s: checkpoint in %s is for another configuration; starting over",
                self.desc,
                self.checkpoint_dir,
            )
            return None
        return ckpt

    def _save(
        self,
        pos: _Position,
        history: list[dict[str, Any]],
        optimizer: torch.optim.Optimizer | None,
        seconds: float,
        start: float,
    ) -> None:
        if self.checkpoint_dir is None:
            return
        state = {
            "fingerprint": self._fingerprint_cache,
            "position": {**vars(pos)},
            "history": history,
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "rng": rng_state(),
            "seconds": seconds + time.perf_counter() - start,
        }
        atomic_torch_save(state, self.checkpoint_dir / CHECKPOINT_NAME)


def train(
    model: nn.Module, data: Sequence[Tensor], stages: Stage | Sequence[Stage], **kwargs: Any
) -> dict[str, Any]:
    """Train ``model`` on ``data``: ``Trainer(model, stages, **kwargs).fit(data)``."""
    return Trainer(model, stages, **kwargs).fit(data)


def _scalar(value: Any) -> float:
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


def _common_length(tensors: Sequence[Tensor]) -> int:
    if not tensors:
        raise ValueError("no data tensors")
    lengths = {int(t.shape[0]) for t in tensors}
    if len(lengths) != 1:
        raise ValueError(f"data tensors differ in length: {sorted(lengths)}")
    return lengths.pop()


def _probe(tensor: Tensor) -> list[Any]:
    """Cheap content probe of a tensor (shape, dtype, strided sum) for fingerprints."""
    flat = tensor.detach().reshape(-1)
    sample = flat[:: max(1, flat.numel() // 4096)]
    return [list(tensor.shape), str(tensor.dtype), round(float(sample.double().sum()), 6)]
