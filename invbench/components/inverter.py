"""The inverter contract: templates in, face images out; trainable and savable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from invbench.components.base import Component, Factory, OptionsT
from invbench.errors import ContractError, IncompatibleComponentsError

if TYPE_CHECKING:
    from invbench.components.encoder import Encoder


@dataclass
class TrainingData:
    """Pairs of templates and the aligned images they came from.

    Attributes:
        templates: ``(N, D)`` float32, L2-normalised, from the attacked encoder.
        images: ``(N, 3, H, W)`` uint8 RGB aligned faces at the encoder's input size.
        latents: ``(N, n, d)`` generator latents of synthetic images, else ``None``.
        identities: ``N`` identity labels (``""`` for synthetic faces).
    """

    templates: Tensor
    images: Tensor
    latents: Tensor | None = None
    identities: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.templates.shape[0] != self.images.shape[0]:
            raise ValueError(
                f"{self.templates.shape[0]} templates but {self.images.shape[0]} images"
            )

    def __len__(self) -> int:
        return int(self.templates.shape[0])

    def float_images(self, index: Tensor | slice) -> Tensor:
        """Images ``index`` as ``(b, 3, H, W)`` float32 in ``[0, 1]``."""
        return self.images[index].float() / 255.0


@dataclass
class FitContext:
    """What the runner gives ``Inverter.fit``.

    Attributes:
        seed: Seed for this inverter's training (derived from the run seed and the
            inverter's name); the same seed must give the same trained state on the CPU.
        checkpoint_dir: Folder for resumable checkpoints (``None``: do not checkpoint); a
            restarted run passes the same folder, so training continues where it stopped.
        progress: Whether to show progress bars.
    """

    seed: int
    checkpoint_dir: Path | None = None
    progress: bool = True


class Inverter(Component[OptionsT]):
    """A template-inversion method: maps templates back to face images.

    Contract:
        ``invert(templates)``: ``(B, D)`` float unit-norm -> ``(B, 3, H, W)`` float RGB in
        ``[0, 1]`` on the CPU, ``(H, W) == output_size``.

        ``fit(data, ctx)``: trains on :class:`TrainingData`; returns a summary
        (``{"final_loss": ..., "val_loss": ..., "steps": ...}``). Deterministic on the CPU
        for a fixed ``ctx.seed``.

        ``state_dict()`` / ``load_state_dict(state)``: everything needed to invert after
        training (tensors and plain values only, loadable with ``weights_only=True``).

    The constructor receives the attacked encoder (for its embedding size, input size and
    white-box access) and a factory to build further components (a perceptual network, a
    generator) by name.

    Class attributes:
        requires_training: ``False`` for inverters with nothing to fit (the runner then
            skips ``fit`` and caches ``state_dict()`` as it is).
        paper: The method's paper (authors, title, venue, year); leaderboards show it.
        paper_url: Where the paper can be read (a DOI or arXiv link); leaderboards link
            the inverter's name to it.
        reference: ``True`` for a reference method (a simple baseline every attack should
            beat, such as ``ridge``): leaderboards show its rows under the ranked ones,
            marked ``ref``, never ranked.

    Iterative attacks (an optimisation per template) also report what they would return
    after fewer steps: :meth:`budget` lists the step counts, :meth:`invert_over_budget`
    returns the reconstructions at each, and :meth:`gradient_calls` says what a step costs;
    the runner saves them and the ``budget`` protocol draws the attack-budget curve.
    """

    family: ClassVar[str] = "inverter"
    requires_training: ClassVar[bool] = True
    paper: ClassVar[str] = ""
    paper_url: ClassVar[str] = ""
    reference: ClassVar[bool] = False

    def __init__(
        self,
        encoder: Encoder,
        options: OptionsT | None = None,
        *,
        device: str | torch.device = "cpu",
        factory: Factory | None = None,
    ) -> None:
        super().__init__(options, device=device)
        self.encoder = encoder
        self.factory = factory

    def threat_model(self) -> str | None:
        """What training needs from the attacked encoder, recorded with every result.

        ``"white-box"``: its gradients or internal feature maps; ``"black-box"``: only its
        templates of the attacker's faces (queries). ``None``: not declared (recorded as
        "undeclared"); built-in inverters always declare it.
        """
        return None

    def require_gradients(self, loss: str, option: str) -> None:
        """Refuse an attacked encoder without a differentiable path when ``loss`` needs it.

        Args:
            loss: The loss term that backpropagates through the encoder (``"ID loss"``).
            option: The option that switches the term off (named in the hint).

        Raises:
            IncompatibleComponentsError: When ``self.encoder.differentiable`` is ``False``.
        """
        if not self.encoder.differentiable:
            raise IncompatibleComponentsError(
                f"inverter {self.name!r} is a white-box attack: its {loss} backpropagates "
                f"through the attacked encoder, but encoder {self.encoder.name!r} has no "
                "differentiable path (differentiable = False)",
                hint=f"attack a differentiable encoder, or set {option}=0 (then it is no "
                "longer the paper's loss)",
            )

    @property
    def output_size(self) -> tuple[int, int]:
        """``(H, W)`` of reconstructions; defaults to the encoder's input size."""
        return self.encoder.input_size

    def fit(self, data: TrainingData, ctx: FitContext) -> dict[str, Any]:
        """Train on ``data``; see the class docstring. Default: nothing to train."""
        return {}

    def invert(self, templates: Tensor) -> Tensor:
        """``(B, D)`` templates -> ``(B, 3, H, W)`` images in ``[0, 1]``."""
        raise NotImplementedError

    def reconstructions(
        self,
        templates: Tensor,
        batch_size: int = 64,
        progress: Callable[[int], object] | None = None,
    ) -> Tensor:
        """Checked reconstructions of any number of templates, in batches.

        Args:
            templates: ``(N, D)`` float unit-norm templates.
            batch_size: Templates per :meth:`invert` call.
            progress: Called with the number of templates done after each batch.

        Returns:
            ``(N, 3, H, W)`` float32 in ``[0, 1]`` on the CPU, ``(H, W) == output_size``.

        Raises:
            ContractError: When a batch breaks the contract (shape, dtype, range, NaN).
        """
        from invbench.components.contracts import check_images

        out = []
        for start in range(0, len(templates), batch_size):
            batch = templates[start : start + batch_size]
            images = self.invert(batch)
            check_images(f"inverter {self.name!r}", images, len(batch), self.output_size)
            out.append(images.float().cpu().clamp(0, 1))
            if progress is not None:
                progress(len(batch))
        return torch.cat(out) if out else torch.zeros(0, 3, *self.output_size)

    def budget(self) -> tuple[int, ...]:
        """Step counts at which an iterative inverter also reports its reconstructions.

        Ascending; the last one is what :meth:`invert` returns. ``()`` (the default): a
        one-shot inverter, no budget curve.
        """
        return ()

    def gradient_calls(self, steps: int) -> int:
        """Encoder forward+backward passes per template spent after ``steps`` steps."""
        return 0

    def invert_over_budget(self, templates: Tensor) -> dict[int, Tensor]:
        """``(B, D)`` templates -> ``{steps: (B, 3, H, W)}`` for every count in :meth:`budget`.

        One optimisation run, observed at each count.
        """
        raise NotImplementedError(f"inverter {self.name!r} is not iterative")

    def reconstructions_over_budget(
        self,
        templates: Tensor,
        batch_size: int = 64,
        progress: Callable[[int], object] | None = None,
    ) -> dict[int, Tensor]:
        """Checked :meth:`invert_over_budget` of any number of templates, in batches.

        Returns:
            ``{steps: (N, 3, H, W)}`` float32 in ``[0, 1]`` on the CPU for every budget.

        Raises:
            ContractError: When a batch breaks the contract at any budget.
        """
        from invbench.components.contracts import check_images

        parts: dict[int, list[Tensor]] = {k: [] for k in self.budget()}
        for start in range(0, len(templates), batch_size):
            batch = templates[start : start + batch_size]
            found = self.invert_over_budget(batch)
            for k in parts:
                if k not in found:
                    raise ContractError(
                        f"inverter {self.name!r} broke its output contract: no "
                        f"reconstructions after {k} steps (budget() lists it)"
                    )
                who = f"inverter {self.name!r} after {k} steps"
                check_images(who, found[k], len(batch), self.output_size)
                parts[k].append(found[k].float().cpu().clamp(0, 1))
            if progress is not None:
                progress(len(batch))
        empty = torch.zeros(0, 3, *self.output_size)
        return {k: torch.cat(v) if v else empty for k, v in parts.items()}

    def state_dict(self) -> dict[str, Any]:
        """Return the trained state (tensors and plain values)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state returned by :meth:`state_dict`."""
