"""The ``latent-opt`` inverter: per-template optimisation of a face generator's latent.

No network is trained. For each leaked template ``t`` the attack searches the latent ``z``
of a frozen generator ``G`` so that the attacked encoder ``F`` maps ``G(z)`` to ``t``
(the family of ALSUV, Jung et al., ECCV 2024):

- **starts**: the latents of the ``starts`` generated faces whose templates are closest to
  ``t`` (a bank of generated faces encoded by ``F``: the training faces when they come
  from the same generator, else ``bank_size`` fresh samples);
- **loss**: ``−(cos(F(G(z)), t) + w · cos(F(flip(G(z))), t))``, Adam on ``z`` (``lr``);
  ``flip="both"`` runs both passes every step, ``"alternate"`` one pass per step, the
  flipped image on odd steps (the same expected loss for half the encoder passes),
  ``"none"`` only the first term;
- **input augmentation** (``augment > 0``): each step the image is shifted and scaled by a
  random amount up to ``augment`` (a fraction of its size) before ``F`` sees it, so the
  face that comes out matches ``t`` under small misalignments too (transfer);
- **ensemble**: further encoders ``E`` the attacker owns add ``λ · cos(E(G(z)), A_E(t))``,
  where ``A_E`` is a ridge map from ``F``'s templates to ``E``'s fitted on the bank;
- **latent averaging**: the result is ``G`` of the mean of the last ``average_last``
  iterates (1: the last iterate);
- **selection**: of the ``starts`` results the one with the highest ``cos(F(x), t)`` (plus
  the flip term) is kept; with ``select_with`` the ``select_top`` best by that score are
  embedded by a second encoder and the one closest to their mean is kept (ALSUV's choice of
  the final image by a validation encoder).

Templates are optimised in batches; the loss is a sum over templates and Adam acts per
element, so each template's result does not depend on the others in its batch.
``gradient_calls(steps)`` counts encoder forward+backward passes per template (every start,
flip pass and ensemble member). ``budget()`` lists the step counts at which the result is
also reported (the ``budget`` protocol draws TAR and SAR against them).

Generators: ``dcgan-faces`` (offline; one 100-D code, so ``w`` and ``w+`` are the same);
``stylegan2`` with a checkpoint (``generator_path``): ``latent_space="w"`` optimises one
512-D code shared by all layers, ``"w+"`` one per layer.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from invbench.components import Encoder, FitContext, Generator, Inverter, Options, TrainingData
from invbench.errors import IncompatibleComponentsError
from invbench.images import resize
from invbench.seeding import mix_seed
from invbench.training.linear import fit_ridge
from invbench.training.losses import crop_box

logger = logging.getLogger(__name__)


class LatentOptOptions(Options):
    """Options of ``latent-opt`` (see the module docstring for what each part does).

    Attributes:
        generator: Generator component whose latent is optimised.
        generator_path: Checkpoint for the generator (its ``path`` option).
        generator_options: Further generator options.
        generator_crop: ``(top, left, bottom, right)`` fractions of the generated image
            that hold the aligned face (for generators trained on other crops), or ``None``.
        latent_space: ``w`` (one code shared by the generator's layers) or ``w+``.
        steps: Adam steps per start.
        starts: Starting latents per template (the nearest generated faces).
        lr: Adam learning rate.
        flip: How the horizontal-flip term enters the loss.
        flip_weight: ``w`` of the flip term.
        augment: Largest random shift/scale (fraction of the image) per step; 0: off.
        ensemble: Further encoders optimised against through ridge maps.
        ensemble_weight: ``λ`` of each ensemble term.
        select_with: Encoder that picks the final image among the best starts, or ``None``.
        select_top: Starts considered by ``select_with``.
        average_last: Latent iterates averaged for the result (at most ``steps``).
        budget: Step counts at which the result is also reported (``steps`` is always
            one); ``None``: 0 and about 1/20, 1/10, 1/4 and 1/2 of ``steps``.
        bank_size: Generated faces in the start bank when the training faces have no
            latents of this generator.
        batch_size: Templates optimised together.
    """

    generator: str = "dcgan-faces"
    generator_path: str | None = None
    generator_options: dict[str, Any] = Field(default_factory=dict)
    generator_crop: tuple[float, float, float, float] | None = None
    latent_space: Literal["w", "w+"] = "w"
    steps: int = Field(100, ge=1)
    starts: int = Field(8, ge=1)
    lr: float = Field(0.05, gt=0)
    flip: Literal["both", "alternate", "none"] = "both"
    flip_weight: float = Field(0.5, ge=0)
    augment: float = Field(0.0, ge=0, le=0.25)
    ensemble: list[str] = Field(default_factory=list)
    ensemble_weight: float = Field(1.0, ge=0)
    select_with: str | None = None
    select_top: int = Field(4, ge=1)
    average_last: int = Field(10, ge=1)
    budget: list[int] | None = None
    bank_size: int = Field(2000, ge=1)
    batch_size: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _check(self) -> LatentOptOptions:
        if self.budget is not None and any(b < 0 or b > self.steps for b in self.budget):
            raise ValueError(f"budget step counts must lie in [0, steps={self.steps}]")
        return self


class LatentOptInverter(Inverter[LatentOptOptions]):
    """Per-template latent optimisation against the attacked encoder (white-box)."""

    name: ClassVar[str] = "latent-opt"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = (
        "Per-template optimisation of a generator latent against the attacked encoder "
        "(nearest-face starts, flip term, latent averaging; ALSUV family)"
    )
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {
            "steps": 50,
            "starts": 1,
            "lr": 0.1,
            "flip": "alternate",
            "average_last": 1,
            "budget": [0, 1, 2, 5, 10, 20, 30, 40, 50],
            "batch_size": 50,
        },
        "smoke": {
            "steps": 2,
            "starts": 2,
            "average_last": 1,
            "budget": [0, 1],
            "bank_size": 16,
            "batch_size": 8,
        },
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.require_gradients("cosine loss", "steps (it has no other loss)")
        self._generator: Generator | None = None
        self._helpers: dict[str, Encoder] = {}
        self.bank_latents = torch.zeros(0)
        self.bank_templates = torch.zeros(0)
        self.maps: dict[str, dict[str, Tensor]] = {}
        self.seed = 0

    # ------------------------------------------------------------------ components
    @property
    def generator(self) -> Generator:
        """The frozen generator, built through the factory on first use."""
        if self._generator is None:
            options = dict(self.options.generator_options)
            if self.options.generator_path is not None:
                options["path"] = self.options.generator_path
            self._generator = self._build("generator", self.options.generator, options)
            for obj in vars(self._generator).values():
                if isinstance(obj, nn.Module):
                    obj.eval().requires_grad_(False)
        return self._generator

    def helper(self, name: str) -> Encoder:
        """An ensemble or selection encoder, built once."""
        if name not in self._helpers:
            self._helpers[name] = self._build("encoder", name, {})
        return self._helpers[name]

    def _build(self, family: str, name: str, options: dict[str, Any]) -> Any:
        if self.factory is None:
            raise IncompatibleComponentsError(f"latent-opt needs a factory to build {name!r}")
        return self.factory.build(family, name, options)

    def threat_model(self) -> str:
        """White-box: the loss backpropagates through the attacked encoder."""
        return "white-box"

    def budget(self) -> tuple[int, ...]:
        """The reported step counts, ending with ``steps``."""
        o = self.options
        counts = o.budget if o.budget is not None else [0] + [o.steps // k for k in (20, 10, 4, 2)]
        return tuple(sorted({*counts, o.steps}))

    def passes_per_step(self) -> float:
        """Encoder forward+backward passes per start and step (flip and ensemble counted)."""
        o = self.options
        flip = {"both": 2.0, "alternate": 1.0, "none": 1.0}[o.flip]
        return flip + len(o.ensemble) * (2.0 if o.flip == "both" else 1.0)

    def gradient_calls(self, steps: int) -> int:
        """Passes per template after ``steps`` steps, over all starts."""
        return int(math.ceil(steps * self.passes_per_step() * self.options.starts))

    # --------------------------------------------------------------------- fit
    def fit(self, data: TrainingData, ctx: FitContext) -> dict[str, Any]:
        """Build the start bank (latents and ``F`` templates) and the ensemble maps.

        Returns:
            ``bank`` (where the starts come from), ``bank_size``, ``gradient_calls_per_
            template`` and ``passes_per_step``; no network is trained.
        """
        o, gen = self.options, self.generator
        self.seed = ctx.seed
        shape = self.code_shape()
        own = data.latents is not None and tuple(data.latents.shape[1:]) == gen.latent_shape
        if own and data.latents is not None:
            latents = data.latents.float()
            self.bank_templates = F.normalize(data.templates.float(), dim=1)
            bank = f"the {len(data)} generated training faces (their latents and templates)"
        else:
            g = torch.Generator().manual_seed(mix_seed(ctx.seed, 0xBA4C))
            latents = gen.sample_latents(o.bank_size, g).float()
            self.bank_templates = self.encoder.templates(
                self.render(self.from_codes(self.to_codes(latents)), batch=64)
            )
            bank = f"{o.bank_size} faces sampled from {o.generator} (seed {ctx.seed})"
        self.bank_latents = self.to_codes(latents)
        assert tuple(self.bank_latents.shape[1:]) == shape
        self.maps = {}
        if o.ensemble:
            images = self.render(self.from_codes(self.bank_latents), batch=64)
            for name in o.ensemble:
                target = self.helper(name).templates(images)
                fitted = fit_ridge(
                    self.bank_templates.double(), target.double(), [1e-3, 1e-2, 0.1, 1.0]
                )
                self.maps[name] = {
                    "weight": fitted.weight.float(),
                    "x_mean": fitted.x_mean.float(),
                    "y_mean": fitted.y_mean.float(),
                }
        logger.info("latent-opt: starts from %s", bank)
        return {
            "bank": bank,
            "bank_size": int(self.bank_latents.shape[0]),
            "passes_per_step": self.passes_per_step(),
            "gradient_calls_per_template": self.gradient_calls(o.steps),
            "trained": "nothing (per-template optimisation at inversion)",
        }

    # ---------------------------------------------------------------- latents
    def code_shape(self) -> tuple[int, int]:
        """``(n, d)`` of the optimised code: ``(1, d)`` for ``w``, the generator's for ``w+``."""
        n, d = self.generator.latent_shape
        return (1, d) if self.options.latent_space == "w" else (n, d)

    def to_codes(self, latents: Tensor) -> Tensor:
        """Generator latents ``(B, n, d)`` -> optimised codes (the first sub-code for ``w``)."""
        return latents[:, :1].clone() if self.options.latent_space == "w" else latents.clone()

    def from_codes(self, codes: Tensor) -> Tensor:
        """Optimised codes -> generator latents ``(B, n, d)``."""
        n = self.generator.latent_shape[0]
        return codes.expand(-1, n, -1) if codes.shape[1] != n else codes

    def render(self, latents: Tensor, batch: int | None = None) -> Tensor:
        """``(B, n, d)`` latents -> ``(B, 3, H, W)`` faces at the output size, in ``[0, 1]``."""
        if batch is not None:
            with torch.no_grad():
                parts = [self.render(latents[i : i + batch]) for i in range(0, len(latents), batch)]
            return torch.cat(parts) if parts else torch.zeros(0, 3, *self.output_size)
        images = self.generator.synthesize(latents.to(self.device))
        if self.options.generator_crop is not None:
            images = crop_box(images, self.options.generator_crop)
        return resize(images, self.output_size).clamp(0.0, 1.0)

    # --------------------------------------------------------------------- invert
    def invert(self, templates: Tensor) -> Tensor:
        """``(B, D)`` -> ``(B, 3, H, W)``: the result after ``steps`` steps."""
        return self.invert_over_budget(templates)[self.options.steps]

    def invert_over_budget(self, templates: Tensor) -> dict[int, Tensor]:
        """``(B, D)`` templates -> ``{steps: (B, 3, H, W)}`` for every count in ``budget()``."""
        o = self.options
        if len(templates) > o.batch_size:
            parts = [
                self.invert_over_budget(templates[i : i + o.batch_size])
                for i in range(0, len(templates), o.batch_size)
            ]
            return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        t = F.normalize(templates.float().to(self.device), dim=1)
        b, s = t.shape[0], o.starts
        nearest = (t @ self.bank_templates.to(self.device).T).topk(s, dim=1).indices  # (B, s)
        codes = self.bank_latents.to(self.device)[nearest.reshape(-1)].clone()  # (B*s, n, d)
        target = t.repeat_interleave(s, dim=0)  # (B*s, D)
        ensemble = {name: self._mapped(name, target) for name in o.ensemble}
        codes.requires_grad_(True)
        adam = torch.optim.Adam([codes], lr=o.lr)
        history: list[Tensor] = []
        out: dict[int, Tensor] = {}
        counts = set(self.budget())
        for step in range(o.steps + 1):
            history = (history + [codes.detach().clone()])[-min(o.average_last, o.steps) :]
            if step in counts:
                out[step] = self._result(history, t, b, s)
            if step == o.steps:
                break
            adam.zero_grad(set_to_none=True)
            loss = self._loss(self.render(self.from_codes(codes)), target, ensemble, step)
            loss.backward()
            adam.step()
        return out

    def _mapped(self, name: str, target: Tensor) -> Tensor:
        m = self.maps[name]
        return F.normalize((target - m["x_mean"]) @ m["weight"] + m["y_mean"], dim=1)

    def _views(self, images: Tensor, step: int) -> list[tuple[Tensor, float]]:
        """The (image, weight) pairs the loss compares at ``step``."""
        o = self.options
        if o.augment > 0:
            images = self._augment(images, step)
        if o.flip == "both":
            return [(images, 1.0), (images.flip(-1), o.flip_weight)]
        if o.flip == "alternate" and step % 2 == 1:
            return [(images.flip(-1), 1.0)]
        return [(images, 1.0)]

    def _augment(self, images: Tensor, step: int) -> Tensor:
        """A random shift and scale (the same for the whole batch at this step)."""
        g = torch.Generator().manual_seed(mix_seed(self.seed, 0xA06, step))
        a = self.options.augment
        dx, dy, ds = ((torch.rand(3, generator=g) * 2 - 1) * a).tolist()
        theta = torch.tensor([[1 + ds, 0, dx], [0, 1 + ds, dy]], dtype=images.dtype)
        grid = F.affine_grid(
            theta.expand(len(images), 2, 3), list(images.shape), align_corners=False
        )
        return F.grid_sample(images, grid, padding_mode="border", align_corners=False)

    def _loss(
        self, images: Tensor, target: Tensor, ensemble: dict[str, Tensor], step: int
    ) -> Tensor:
        """``−Σ`` of the weighted cosines of every view under ``F`` and the ensemble.

        The encoders get the images channels_last: their convolutions and PReLUs run about
        1.3x faster that way on a CPU (forward and backward; last bits differ from the
        default layout, hence version 2).
        """
        o = self.options
        images = images.contiguous(memory_format=torch.channels_last)
        total = images.new_zeros(())
        for view, weight in self._views(images, step):
            total = total - weight * (self.encoder.forward_torch(view) * target).sum()
            for name, mapped in ensemble.items():
                e = self.helper(name).forward_torch(view)
                total = total - o.ensemble_weight * weight * (e * mapped).sum()
        return total

    def _result(self, history: list[Tensor], t: Tensor, b: int, s: int) -> Tensor:
        """The images of the averaged latents, the best start of each template kept."""
        codes = torch.stack(history).mean(dim=0)
        with torch.no_grad():
            images = self.render(self.from_codes(codes)).detach()
        if s == 1:
            return images.cpu()
        score = self._score(images, t.repeat_interleave(s, dim=0)).view(b, s)
        pick = score.argmax(dim=1)
        if self.options.select_with is not None:
            pick = self._select(images.view(b, s, *images.shape[1:]), score)
        return images.view(b, s, *images.shape[1:])[torch.arange(b), pick].cpu()

    def _score(self, images: Tensor, target: Tensor) -> Tensor:
        """``cos(F(x), t) + w · cos(F(flip x), t)`` per image (no gradient, fast path)."""
        o = self.options
        with torch.no_grad():
            score = (self.encoder.templates(images).to(target) * target).sum(1)
            if o.flip != "none" and o.flip_weight > 0:
                flipped = self.encoder.templates(images.flip(-1)).to(target)
                score = score + o.flip_weight * (flipped * target).sum(1)
        return score

    def _select(self, images: Tensor, score: Tensor) -> Tensor:
        """Per template, the start picked by ``select_with`` among the ``select_top`` best.

        The pick is the start whose ``select_with`` template is closest to the mean of
        those starts' templates. ``images``: ``(B, s, 3, H, W)``; returns ``(B,)`` indices.
        """
        o = self.options
        assert o.select_with is not None
        k = min(o.select_top, images.shape[1])
        top = score.topk(k, dim=1).indices  # (B, k)
        b = images.shape[0]
        chosen = images[torch.arange(b)[:, None], top]  # (B, k, 3, H, W)
        with torch.no_grad():
            e = self.helper(o.select_with).templates(chosen.flatten(0, 1)).view(b, k, -1)
        centre = F.normalize(e.mean(dim=1, keepdim=True), dim=2)
        best = (e * centre).sum(2).argmax(dim=1)
        return top[torch.arange(b), best]

    # ------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The start bank, the ensemble maps and the seed."""
        return {
            "bank_latents": self.bank_latents.clone(),
            "bank_templates": self.bank_templates.clone(),
            "maps": {k: {n: v.clone() for n, v in m.items()} for k, m in self.maps.items()},
            "seed": self.seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.bank_latents = state["bank_latents"].clone()
        self.bank_templates = state["bank_templates"].clone()
        self.maps = {k: dict(m) for k, m in state["maps"].items()}
        self.seed = int(state["seed"])
