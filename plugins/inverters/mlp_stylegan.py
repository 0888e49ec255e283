"""The ``mlp-stylegan`` inverter: a latent-space MLP into a frozen face generator.

Ren, Zhu, Wang, Huang, Sun, "Understanding Deep Face Representation via Attribute Recovery",
IEEE TIFS 2024 (``docs/methods.md``). A template ``e = F(x)`` goes through the latent space
transformer (8 fully connected layers, the last four split into one branch per generator
sub-code) to a residual ``l_res``; ``l = l_res + l_mean`` is decoded by the frozen generator.

Loss (Eq. 11): ``β1·L_rec + β2·L_per + β3·L_id + β4·L_guide + β5·L_reg``, β = (0.1, 0.8, 8,
0.1, 0.02):

- ``L_rec``: pixel loss between ``x`` and ``x_re`` (the generator output resized to the
  encoder's input size); the paper's ``‖x − x_re‖₂`` is implemented as the mean squared
  error (as in pSp, where these β come from), so β does not depend on the image size.
- ``L_per``: LPIPS (AlexNet) when its weights are cached; otherwise (offline) the named
  substitute ``encoder-feature-maps``: LPIPS's distance without learned weights on the
  attacked encoder's feature maps (channel-normalised, squared distance summed over
  channels, averaged over positions and maps). Which one was used is recorded in the fit
  summary and the state; it is never silently dropped (``beta_per=0`` drops it explicitly).
- ``L_id = 1 − cos(F(x), F(x_re))`` through the attacked encoder's differentiable path
  (``F(x)`` is the training template itself).
- ``L_guide``: mean squared error between ``l`` and the latent of the training image: the
  generator's own latent for generated training faces (``TrainingData.latents``, used when
  they reproduce the images), else ``E_au(x)`` from an auxiliary image->latent encoder. The
  paper's E_au is a pSp ResNet-50 + FPN pre-trained on FFHQ; here it is a small CNN
  (:class:`AuxEncoder`) trained first, in its own stage, to regress the latents of freshly
  generated faces and to reconstruct the training images through the generator, then
  frozen. ``guide=False`` leaves ``L_guide`` out (the paper's ablation, Fig. 15).
- ``L_reg``: mean squared ``l_res`` (the paper's ``‖l_res‖₂``).

Offline the generator is ``dcgan-faces`` (one latent code, n = 1); users with a StyleGAN2
FFHQ checkpoint select ``generator=stylegan2 generator_path=/path/to/ckpt.pt`` (W+, n
branches). The generator's and the encoder's weights stay frozen.

With the DCGAN the mean latent is ``z ≈ 0``, which (unlike StyleGAN's mean ``w``) decodes to
an atypical, hardly face-like image, from which ``L_id`` gives little direction early in
training; ``L_guide`` is what moves the latents away (measured in ``docs/methods.md``).

Profiles. ``paper`` (the defaults): batch 16, Adam lr 0.01, 20 epochs, hidden width 512 (a
GPU setting). ``quick`` (2 CPU cores): hidden 256, Adam lr 1e-3, a latent warm-up of 10
epochs on ``β4·L_guide + β5·L_reg`` alone (no generator or encoder pass: seconds), then 4
epochs (500 steps) of batch 16 on the full Eq. 11. The warm-up is not in the paper: the full
loss from the mean latent at lr 1e-3 stayed near it in short runs (the measurements are in
``docs/methods.md``). The DCGAN's 64×64 colour faces are far from ORL's grey ones, which
bounds what any latent can reach. ``smoke``: a tiny transformer for conformance checks.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal, cast

import torch
from pydantic import Field
from torch import Tensor, nn

from invbench.components import (
    DecoderInverter,
    DecoderOptions,
    FitContext,
    Generator,
    TrainingData,
)
from invbench.errors import IncompatibleComponentsError
from invbench.images import resize
from invbench.training import OptimizerSpec, Stage, crop_box
from invbench_plugins.inverters.mlp_stylegan_losses import (
    AuxLoss,
    PaperLoss,
    PerceptualFn,
    guide_targets,
    pick_perceptual,
)
from invbench_plugins.inverters.mlp_stylegan_model import AuxEncoder, LatentSpaceTransformer

logger = logging.getLogger(__name__)


class MLPStyleGANOptions(DecoderOptions):
    """Options of ``mlp-stylegan`` (defaults: the paper's settings).

    Attributes:
        generator: Generator component decoding the latents.
        generator_path: Checkpoint for the generator (passed as its ``path`` option).
        generator_options: Further generator options.
        generator_crop: ``(top, left, bottom, right)`` fractions of the generated image
            kept before resizing to the encoder's input size (``None``: all of it). A
            generator trained on differently aligned faces (FFHQ) needs a crop that
            matches the encoder's alignment; it is not calibrated here.
        hidden: Width of the MLP's hidden layers.
        layers: Fully connected layers in all.
        branch_layers: Last layers split into one branch per sub-code.
        epochs: Training epochs.
        steps: Cap on the optimizer steps of the main stage (``None``: ``epochs``).
        warmup_epochs: Epochs of a first stage with only the latent-space terms
            (``β4·L_guide + β5·L_reg``; no generator or encoder pass, so it costs next to
            nothing): a CPU shortcut of the quick profile, not in the paper (0 there).
            Skipped when ``guide=False``.
        lr: Adam learning rate.
        beta_rec: Weight of ``L_rec``.
        beta_per: Weight of ``L_per``.
        beta_id: Weight of ``L_id``.
        beta_guide: Weight of ``L_guide``.
        beta_reg: Weight of ``L_reg``.
        guide: Use ``L_guide`` (``False``: the paper's ablation).
        guide_source: ``auto`` (generator latents when they reproduce the training
            images, else the auxiliary encoder), ``latents`` or ``aux``.
        perceptual: ``auto`` (LPIPS if available, else ``encoder``), ``lpips`` or
            ``encoder`` (the attacked encoder's feature maps).
        aux_steps: Training steps of the auxiliary encoder (when it is needed).
        aux_lr: Its Adam learning rate.
        aux_width: Channels of its first conv block.
        mean_samples: Prior samples averaged for ``l_mean``.
        grad_clip: Clip the gradient norm (``None``: no clipping).
    """

    generator: str = "dcgan-faces"
    generator_path: str | None = None
    generator_options: dict[str, Any] = Field(default_factory=dict)
    generator_crop: tuple[float, float, float, float] | None = None
    hidden: int = Field(512, ge=1)
    layers: int = Field(8, ge=2)
    branch_layers: int = Field(4, ge=1)
    epochs: int = Field(20, ge=1)
    steps: int | None = Field(None, ge=1)
    warmup_epochs: int = Field(0, ge=0)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(0.01, gt=0.0)
    beta_rec: float = Field(0.1, ge=0.0)
    beta_per: float = Field(0.8, ge=0.0)
    beta_id: float = Field(8.0, ge=0.0)
    beta_guide: float = Field(0.1, ge=0.0)
    beta_reg: float = Field(0.02, ge=0.0)
    guide: bool = True
    guide_source: Literal["auto", "latents", "aux"] = "auto"
    perceptual: Literal["auto", "lpips", "encoder"] = "auto"
    aux_steps: int = Field(2000, ge=1)
    aux_lr: float = Field(1e-3, gt=0.0)
    aux_width: int = Field(32, ge=1)
    mean_samples: int = Field(4096, ge=1)
    grad_clip: float | None = None


class MLPStyleGAN(DecoderInverter[MLPStyleGANOptions]):
    """Latent-space MLP into a frozen StyleGAN2/DCGAN generator (Ren et al., TIFS 2024).

    Trained with the paper's rec/per/id/guide/reg losses (Eq. 11); see the module.
    """

    name: ClassVar[str] = "mlp-stylegan"
    paper: ClassVar[str] = (
        "Ren, Zhu, Wang, Huang, Sun: Understanding deep face representation via attribute "
        "recovery, IEEE TIFS 2024"
    )
    init_seed_salt: ClassVar[int | None] = None
    profiles: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {
            "epochs": 1,
            "steps": 2,
            "batch_size": 8,
            "hidden": 32,
            "aux_steps": 2,
            "aux_width": 4,
            "mean_samples": 64,
        },
        "quick": {
            "warmup_epochs": 10,
            "epochs": 4,
            "steps": 500,
            "batch_size": 16,
            "lr": 1e-3,
            "hidden": 256,
            "aux_steps": 300,
            "mean_samples": 2048,
            "val_fraction": 0.0,
        },
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        if o.beta_id > 0:
            self.require_gradients("identity loss L_id", "beta_id")
        if o.branch_layers >= o.layers:
            raise IncompatibleComponentsError(
                f"branch_layers ({o.branch_layers}) must be fewer than layers ({o.layers})"
            )
        self._generator: Generator | None = None
        self._l_mean: Tensor | None = None
        self._per_fn: PerceptualFn | None = None
        self._guide: tuple[Tensor, Tensor] | None = None
        self.perceptual_used = "none"
        self.guide_used = "off"

    # ------------------------------------------------------------------ components
    @property
    def generator(self) -> Generator:
        """The frozen generator (built by name through the factory on first use)."""
        if self._generator is None:
            if self.factory is None:
                raise IncompatibleComponentsError(
                    "mlp-stylegan needs a component factory to build its generator"
                )
            gen_opts = dict(self.options.generator_options)
            if self.options.generator_path is not None:
                gen_opts["path"] = self.options.generator_path
            self._generator = self.factory.build("generator", self.options.generator, gen_opts)
            for obj in vars(self._generator).values():
                if isinstance(obj, nn.Module):
                    obj.eval().requires_grad_(False)
        return self._generator

    def threat_model(self) -> str:
        """White-box: ``L_id`` (and ``L_per`` on its maps) go through the attacked encoder."""
        o = self.options
        per_on_encoder = o.beta_per > 0 and o.perceptual != "lpips"
        return "white-box" if o.beta_id > 0 or per_on_encoder else "black-box"

    def build_network(self) -> nn.Module:
        """The latent-space transformer and the auxiliary encoder E_au (used when needed)."""
        n, d = self.generator.latent_shape
        o = self.options
        l_mean = self._l_mean if self._l_mean is not None else torch.zeros(n, d)
        transformer = LatentSpaceTransformer(
            self.encoder.embedding_dim, n, d, o.hidden, o.layers, o.branch_layers, l_mean
        )
        aux = AuxEncoder(n, d, o.aux_width, l_mean=l_mean)
        return nn.ModuleDict({"transformer": transformer, "aux": aux})

    @property
    def parts(self) -> nn.ModuleDict:
        """The network :meth:`build_network` made: ``transformer`` and ``aux``."""
        return cast(nn.ModuleDict, self.model)

    def decode(self, latents: Tensor) -> Tensor:
        """``(B, n, d)`` latents -> ``(B, 3, H, W)`` at the output size (differentiable)."""
        images = self.generator.synthesize(latents)
        if self.options.generator_crop is not None:
            images = crop_box(images, self.options.generator_crop)
        return resize(images, self.output_size).clamp(0.0, 1.0)

    def reconstruct(self, templates: Tensor) -> Tensor:
        """Templates -> latents (the transformer) -> images (the generator)."""
        latent, _ = self.parts["transformer"](templates)
        return self.decode(latent)

    # --------------------------------------------------------------------- train
    def prepare(self, data: TrainingData, ctx: FitContext) -> TrainingData:
        """``l_mean``, the network behind ``L_per`` and the latent targets of ``L_guide``."""
        o, gen = self.options, self.generator
        self._l_mean = gen.mean_latent(n_samples=o.mean_samples, seed=ctx.seed).float()
        self._per_fn = None
        if o.beta_per > 0:
            probe = data.float_images(slice(0, 1)).to(self.device)
            self.perceptual_used, self._per_fn = pick_perceptual(self.encoder, o.perceptual, probe)
        else:
            self.perceptual_used = "off (beta_per=0)"
        if o.guide:
            targets, mask, self.guide_used = guide_targets(
                data, gen.latent_shape, self.decode, o.guide_source, self.device
            )
        else:
            targets = torch.zeros(len(data), *gen.latent_shape)
            mask = torch.zeros(len(data), dtype=torch.bool)
            self.guide_used = "off"
        self._guide = targets, mask
        logger.info(
            "mlp-stylegan: generator %s latents %s, L_per=%s, L_guide=%s",
            o.generator,
            gen.latent_shape,
            self.perceptual_used,
            self.guide_used,
        )
        return data

    def training_tensors(self, data: TrainingData) -> tuple[Tensor, ...]:
        """``(templates, uint8 images, L_guide latent targets, has-target mask)``."""
        assert self._guide is not None
        return (data.templates.float(), data.images, *self._guide)

    def frozen_components(self) -> tuple[Any, ...]:
        """The generator."""
        return (self.generator,)

    def stages(self, data: TrainingData) -> list[Stage]:
        """E_au first when some faces lack a latent, a latent warm-up, then Eq. 11."""
        o, model = self.options, self.parts
        assert self._guide is not None
        need_aux = o.guide and not bool(self._guide[1].all())
        stages: list[Stage] = []
        if need_aux:
            stages.append(
                Stage(
                    AuxLoss(model["aux"], self.generator, self.decode),
                    name="aux-encoder",
                    epochs=None,
                    steps=o.aux_steps,
                    optimizer=OptimizerSpec(lr=o.aux_lr),
                    params=lambda m: cast(nn.ModuleDict, m)["aux"].parameters(),
                )
            )
        betas: dict[str, float | None] = {"rec": o.beta_rec, "per": o.beta_per, "id": o.beta_id}
        betas |= {"guide": o.beta_guide if o.guide else None, "reg": o.beta_reg}
        aux = model["aux"] if need_aux else None

        def main(full: bool, name: str, epochs: int, steps: int | None) -> Stage:
            loss = PaperLoss(
                model["transformer"], self.decode, self.encoder, betas, self._per_fn, aux, full
            )
            return Stage(
                loss,
                name=name,
                epochs=epochs,
                steps=steps,
                optimizer=OptimizerSpec(lr=o.lr),
                params=lambda m: cast(nn.ModuleDict, m)["transformer"].parameters(),
                grad_clip=o.grad_clip,
            )

        if o.warmup_epochs and not o.guide:
            logger.warning("mlp-stylegan: no latent warm-up without L_guide (guide=False)")
        if o.warmup_epochs and o.guide:
            stages.append(main(False, "warmup", o.warmup_epochs, None))
        stages.append(main(True, "transformer", o.epochs, o.steps))
        return stages

    def fit_details(self) -> dict[str, Any]:
        """The ``L_per`` network and the ``L_guide`` targets used."""
        return {"perceptual": self.perceptual_used, "guide": self.guide_used}

    def load_details(self, details: dict[str, Any]) -> None:
        """Restore :meth:`fit_details`."""
        self.perceptual_used = str(details.get("perceptual", self.perceptual_used))
        self.guide_used = str(details.get("guide", self.guide_used))

    def provenance(self) -> dict[str, Any]:
        """Architecture, paper, and the generator with its provenance (assets)."""
        return {
            **super().provenance(),
            "generator": self.options.generator,
            "generator_provenance": self.generator.provenance(),
        }
