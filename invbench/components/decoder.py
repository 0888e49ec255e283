"""The decoder-inverter base: a network from templates to faces, trained by the shared trainer.

A subclass declares what differs between methods and nothing else::

    class MyDecoder(DecoderInverter[MyOptions]):
        name = "my-decoder"
        paper = "Doe et al., Face decoders, 2026"

        def build_network(self) -> nn.Module:          # (B, D) -> (B, 3, h, w)
            return MyNet(self.encoder.embedding_dim, self.output_size)

        def stages(self, data: TrainingData) -> list[Stage]:
            def loss(batch):                             # (templates, uint8 images)
                templates, images = batch
                recon = self.model(templates)
                pix = mse_loss(recon, self.targets(images))
                return pix, {"pix": pix}
            return [Stage(loss, epochs=self.options.epochs,
                          optimizer=OptimizerSpec(lr=self.options.lr))]

The base builds the network (seeded), trains it through :class:`invbench.training.Trainer`
(validation split, checkpoint/resume, progress, determinism), times the fit, inverts in
batches, maps the network's output range to ``[0, 1]``, saves and restores the weights, and
fills the fit summary and the record's provenance (architecture, parameter count, paper).
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import Tensor, nn

from invbench.components.base import Options, OptionsT
from invbench.components.inverter import FitContext, Inverter, TrainingData
from invbench.errors import IncompatibleComponentsError
from invbench.images import resize
from invbench.seeding import mix_seed
from invbench.training import Stage, Trainer, frozen

logger = logging.getLogger(__name__)

#: Templates per forward pass in :meth:`DecoderInverter.invert`.
INVERT_BATCH = 256


class DecoderOptions(Options):
    """Training options every decoder inverter has (subclasses may change the defaults).

    Attributes:
        batch_size: Training samples per optimizer step.
        val_fraction: Share of the training faces held out for the validation loss (none
            when it would hold out less than one face).
        checkpoint_every: Optimizer steps between resumable checkpoints (0: only at the
            ends of epochs).
    """

    batch_size: int = Field(64, ge=1, description="training samples per optimizer step")
    val_fraction: float = Field(
        0.05, ge=0, lt=1, description="share of the training faces held out for val_loss"
    )
    checkpoint_every: int = Field(1000, ge=0, description="optimizer steps between checkpoints")


class DecoderInverter(Inverter[OptionsT]):
    """An inverter whose reconstruction is the output of a network trained on templates.

    Subclasses must implement :meth:`build_network` and :meth:`stages`; they may override
    :meth:`prepare` (set-up before training: perceptual networks, calibration, a data
    subset), :meth:`training_tensors`, :meth:`frozen_components`, :meth:`reconstruct`,
    :meth:`fit_details` and :meth:`architecture`. Their options must include the fields of
    :class:`DecoderOptions`.

    Class attributes:
        paper: The method's paper (authors, title, venue, year), recorded as provenance.
        output_range: ``(low, high)`` of the network's output (``(-1, 1)`` for tanh); the
            base maps it linearly to ``[0, 1]`` and clamps.
        init_seed_salt: Mixed with the fit seed (:func:`~invbench.seeding.mix_seed`) to seed
            the network's initialisation; ``None`` seeds it with the fit seed itself.
    """

    paper: ClassVar[str] = ""
    output_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    init_seed_salt: ClassVar[int | None] = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._model: nn.Module | None = None
        self._ready = False  # fitted or loaded: invert() may run

    # ------------------------------------------------------------ what subclasses declare
    def build_network(self) -> nn.Module:
        """A freshly initialised network (the base seeds the RNG and moves it to the device)."""
        raise NotImplementedError(f"inverter {self.name!r} must implement build_network()")

    def stages(self, data: TrainingData) -> list[Stage]:
        """The training stages; their losses close over :attr:`model`."""
        raise NotImplementedError(f"inverter {self.name!r} must implement stages()")

    def prepare(self, data: TrainingData, ctx: FitContext) -> TrainingData:
        """Set up before the network is built; returns the data to train on (default: all)."""
        return data

    def training_tensors(self, data: TrainingData) -> tuple[Tensor, ...]:
        """The tensors each batch slices: default ``(templates (N, D), uint8 images)``."""
        return data.templates, data.images

    def frozen_components(self) -> tuple[Any, ...]:
        """Components whose weights stay fixed while training (the encoder is always)."""
        return ()

    def fit_details(self) -> dict[str, Any]:
        """Extra fields for the fit summary and the record (loss variants used)."""
        return {}

    # ------------------------------------------------------------------ the machinery
    @property
    def model(self) -> nn.Module:
        """The network (built with seed 0 on first use when not trained or loaded yet)."""
        if self._model is None:
            self._model = self._seeded_build(0)
        return self._model

    def _seeded_build(self, seed: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self.build_network()
        return net.to(self.device)

    def targets(self, images: Tensor) -> Tensor:
        """uint8 ``(B, 3, H, W)`` faces -> float ``[0, 1]`` at :attr:`output_size`."""
        return resize(images.float() / 255.0, self.output_size)

    def fit(self, data: TrainingData, ctx: FitContext) -> dict[str, Any]:
        """Build the network from the fit seed and train its stages.

        Returns:
            The trainer's summary (losses, steps, epochs, history) plus ``train_seconds``,
            ``n_train_images``, ``architecture`` and :meth:`fit_details`.
        """
        t0 = time.perf_counter()
        data = self.prepare(data, ctx)
        salt = self.init_seed_salt
        self._model = self._seeded_build(ctx.seed if salt is None else mix_seed(ctx.seed, salt))
        opts: Any = self.options
        vf = opts.val_fraction if len(data) * opts.val_fraction >= 1 else 0.0
        trainer = Trainer(
            self.model,
            self.stages(data),
            batch_size=opts.batch_size,
            seed=ctx.seed,
            val_fraction=vf,
            checkpoint_dir=ctx.checkpoint_dir,
            checkpoint_every=opts.checkpoint_every,
            progress=ctx.progress,
            device=self.device,
            desc=self.name,
        )
        with frozen(self.encoder, *self.frozen_components()):
            summary = trainer.fit(self.training_tensors(data))
        self.model.eval()
        self._ready = True
        summary.update(
            train_seconds=time.perf_counter() - t0,
            n_train_images=len(data),
            architecture=self.architecture(),
            **self.fit_details(),
        )
        return summary

    def reconstruct(self, templates: Tensor) -> Tensor:
        """``(B, D)`` on the device -> ``(B, 3, H, W)`` in ``[0, 1]`` (no gradient needed)."""
        y = self.model(templates)
        low, high = self.output_range
        if (low, high) != (0.0, 1.0):
            y = (y - low) / (high - low)
        return y.clamp(0.0, 1.0)

    def invert(self, templates: Tensor) -> Tensor:
        """``(B, D)`` templates -> ``(B, 3, H, W)`` float32 in ``[0, 1]`` on the CPU.

        Raises:
            RuntimeError: Before :meth:`fit` or :meth:`load_state_dict`.
        """
        if not self._ready:
            raise RuntimeError(f"{self.name}: call fit() or load_state_dict() before invert()")
        self.model.eval()
        out = []
        with torch.no_grad():
            for chunk in templates.float().split(INVERT_BATCH):
                out.append(self.reconstruct(chunk.to(self.device)).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, 3, *self.output_size)

    def state_dict(self) -> dict[str, Any]:
        """The network's weights and buffers (CPU tensors) and :meth:`fit_details`."""
        weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        return {"model": weights, "details": self.fit_details()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`.

        Raises:
            IncompatibleComponentsError: When the state does not fit this network (other
                options, encoder or generator).
        """
        try:
            self.model.load_state_dict(state["model"])
        except (KeyError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise IncompatibleComponentsError(
                f"inverter {self.name!r}: the saved state does not fit this network: {first}"
            ) from None
        self.model.eval()
        self._ready = True
        self.load_details(dict(state.get("details", {})))

    def load_details(self, details: dict[str, Any]) -> None:
        """Restore what :meth:`fit_details` reported (override with :meth:`fit_details`)."""

    def architecture(self) -> str:
        """One line: the network class, its input and output, and its parameter count."""
        model = self.model
        n = sum(p.numel() for p in model.parameters())
        parts = (
            ", ".join(f"{k}: {type(m).__name__}" for k, m in model.items())
            if isinstance(model, nn.ModuleDict)
            else type(model).__name__
        )
        return (
            f"{parts} {self.encoder.embedding_dim}-D -> {tuple(self.output_size)}, {n:,} parameters"
        )

    def provenance(self) -> dict[str, Any]:
        """Architecture and paper (what a record needs to say which network ran)."""
        info: dict[str, Any] = {"architecture": self.architecture()}
        if self.paper:
            info["paper"] = self.paper
        return info
