"""Optimizer and learning-rate schedule specifications, and training stages.

Specs are small frozen dataclasses: plain values, so they can be compared, logged and
fingerprinted into checkpoints. The schedule is a pure function of the stage's step and
epoch counters, so resuming needs no scheduler state beyond those counters.

Examples:
    NbNet (Adam β₁ = 0.5, lr 2e-4 ×0.94 every 5K batches)::

        OptimizerSpec(lr=2e-4, betas=(0.5, 0.999)), StepDecay(factor=0.94, every=5000)

    ICIP'22 (Adam lr 1e-3, halved every 10 epochs)::

        OptimizerSpec(lr=1e-3), StepDecay(factor=0.5, every=10, unit="epoch")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

#: A loss callable: the batch (tuple of tensors already on the device) -> (total, parts).
#: ``total`` is the scalar to minimise; ``parts`` maps term names to scalar tensors or
#: floats (logged, averaged per epoch).
LossFn = Callable[[tuple[Tensor, ...]], tuple[Tensor, dict[str, Any]]]

#: Selects what a stage optimises: the model -> parameters, or param-group dicts
#: (``[{"params": [...], "lr": 1e-4}, ...]``; a group's ``lr`` overrides the spec's).
ParamsFn = Callable[[nn.Module], Iterable[nn.Parameter] | Iterable[dict[str, Any]]]


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build the optimizer of a stage.

    Attributes:
        name: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        lr: Base learning rate (the schedule multiplies it).
        betas: Adam's ``(β₁, β₂)``.
        weight_decay: L2 penalty (decoupled for ``adamw``).
        eps: Adam's epsilon.
        momentum: SGD momentum.
    """

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    eps: float = 1e-8
    momentum: float = 0.0

    def build(self, params: Iterable[Any]) -> torch.optim.Optimizer:
        """Create the optimizer over ``params`` (parameters or param-group dicts)."""
        params = list(params)
        if self.name == "adam":
            return torch.optim.Adam(
                params, lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay
            )
        if self.name == "adamw":
            return torch.optim.AdamW(
                params, lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay
            )
        if self.name == "sgd":
            return torch.optim.SGD(
                params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
            )
        raise ValueError(f"unknown optimizer {self.name!r} (adam, adamw, sgd)")


@dataclass(frozen=True)
class StepDecay:
    """Step decay: ``lr = base_lr · factor ** (count // every)``, floored at ``min_lr``.

    ``count`` is the number of optimizer steps (``unit="step"``) or completed epochs
    (``unit="epoch"``) of the current stage. ``every = 0`` keeps the rate constant.

    Attributes:
        factor: Multiplier applied every ``every`` units (0.94 for NbNet, 0.5 for ICIP'22).
        every: Period in ``unit``; 0 disables decay.
        unit: ``"step"`` (batches) or ``"epoch"``.
        min_lr: Lower bound of the decayed learning rate.
    """

    factor: float = 1.0
    every: int = 0
    unit: Literal["step", "epoch"] = "step"
    min_lr: float = 0.0

    def lr(self, base_lr: float, step: int, epoch: int) -> float:
        """Learning rate for the step about to run.

        Args:
            base_lr: The group's initial learning rate.
            step: Optimizer steps already done in this stage.
            epoch: Epochs already completed in this stage.
        """
        if self.every <= 0 or self.factor == 1.0:
            return base_lr
        count = step if self.unit == "step" else epoch
        return max(base_lr * self.factor ** (count // self.every), self.min_lr)


@dataclass
class Stage:
    """One phase of training (NbNet: a pixel-loss stage, then a perceptual fine-tune).

    Every stage builds a fresh optimizer from ``optimizer`` and restarts its schedule; the
    model weights carry over from the previous stage.

    Attributes:
        loss: Training loss ``batch -> (total, parts)``.
        name: Label for logs, progress bars and the history.
        epochs: Number of passes over the training split (``None``: until ``steps``).
        steps: Optimizer-step cap for the stage (``None``: until ``epochs``). When both
            are set, the stage ends at whichever comes first.
        optimizer: The optimizer spec.
        schedule: The learning-rate schedule.
        params: What to optimise (default: every parameter of the model that requires a
            gradient).
        val_loss: Validation loss (default: ``loss``); evaluated under ``no_grad`` with the
            model in eval mode at the end of every epoch and of the stage.
        grad_clip: Clip the global gradient norm to this value (``None``: no clipping).
        patience: Stop the stage after this many validations without improvement
            (needs a validation split; ``None``: never stop early).
    """

    loss: LossFn
    name: str = "train"
    epochs: int | None = 1
    steps: int | None = None
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    schedule: StepDecay = field(default_factory=StepDecay)
    params: ParamsFn | None = None
    val_loss: LossFn | None = None
    grad_clip: float | None = None
    patience: int | None = None

    def __post_init__(self) -> None:
        if self.epochs is None and self.steps is None:
            raise ValueError(f"stage {self.name!r}: give epochs, steps or both")
        for label, value in (("epochs", self.epochs), ("steps", self.steps)):
            if value is not None and value < 1:
                raise ValueError(f"stage {self.name!r}: {label} must be >= 1, not {value}")

    def describe(self) -> dict[str, Any]:
        """Plain description (for checkpoint fingerprints and logs)."""
        return {
            "name": self.name,
            "epochs": self.epochs,
            "steps": self.steps,
            "optimizer": repr(self.optimizer),
            "schedule": repr(self.schedule),
            "grad_clip": self.grad_clip,
            "patience": self.patience,
        }
