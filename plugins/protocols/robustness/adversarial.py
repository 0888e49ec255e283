"""``adversarial``: adversarial faces against the attacked system, and decoding as a defence.

FGSM and PGD (L∞, ε in 1/255 steps), white-box through the attacked encoder ``F``'s
differentiable path, on one face per identity, with two goals:

- *impersonation*: towards the template of the next identity's first face;
- *dodging*: away from the identity's reference (the template of its second face, as if
  enrolled), so the attacked face is not recognised.

For each ``<method>-<goal>=<ε·255>`` condition the system ``F`` judges, at its own threshold
(DFD Fig. 13's question: does decoding an adversarial face undo the attack?):

- ``adversarial_self@far=α@<c>``: adversarial faces still accepted as their true identity
  (against its reference);
- ``reconstruction_self@far=α@<c>``: reconstructions of the adversarial faces'
  templates (``G(F(x_adv))``, re-encoded by ``F``) accepted as the true identity;
- ``adversarial_target@…`` / ``reconstruction_target@…`` (impersonation): accepted as the
  target identity.

A ROC picture draws DFD's four curves for the strongest PGD dodging attack:
original/original, original/reconstruction, original/reconstruction-of-attacked and
original/attacked. An encoder without a differentiable path makes every measure
unavailable, with the reason.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor

from invbench.components import Encoder, EvalContext, Metric
from invbench.metrics.thresholds import ThresholdResult
from invbench.metrics.verification import as_unit_rows, identity_codes
from invbench.training import frozen
from invbench_plugins.protocols.robustness.base import (
    CLEAN,
    RobustnessOptions,
    RobustnessProtocol,
    condition_name,
)
from invbench_plugins.protocols.robustness.figures import roc_png

Goal = Literal["impersonation", "dodging"]
Method = Literal["fgsm", "pgd"]
_GOALS: tuple[Goal, ...] = ("impersonation", "dodging")
_METHODS: tuple[Method, ...] = ("fgsm", "pgd")


class AdversarialOptions(RobustnessOptions):
    """Attacks, budgets and goals.

    Attributes:
        methods: ``fgsm`` (one step of ε) and/or ``pgd`` (``pgd_steps`` steps of
            ``2.5·ε/steps``, projected to the ε-ball, no random start).
        epsilons: L∞ budgets in 1/255 units (0 leaves the face unchanged).
        goals: ``impersonation`` and/or ``dodging``.
        pgd_steps: PGD iterations.
        max_identities: Attack the first face of at most this many identities (those with
            a second face, the reference).
        batch_size: Faces per gradient step.
    """

    methods: list[Method] = Field(default_factory=lambda: list(_METHODS))
    epsilons: list[float] = Field(default_factory=lambda: [2.0, 8.0, 16.0])
    goals: list[Goal] = Field(default_factory=lambda: list(_GOALS))
    pgd_steps: int = Field(10, ge=1)
    max_identities: int = Field(40, ge=2)
    batch_size: int = Field(20, ge=1)

    @field_validator("epsilons")
    @classmethod
    def _budgets(cls, value: list[float]) -> list[float]:
        if not value or any(not 0 <= e <= 255 for e in value):
            raise ValueError("epsilons must be a non-empty list of budgets in [0, 255] (1/255)")
        return value


def perturb_adversarially(
    encoder: Encoder,
    images: Tensor,
    target: Tensor,
    *,
    goal: Goal,
    eps: float,
    steps: int,
    step_size: float,
) -> Tensor:
    """L∞ sign-gradient attack (FGSM: ``steps=1, step_size=eps``; PGD otherwise).

    Args:
        encoder: White-box encoder (``forward_torch``); its weights are not changed.
        images: ``(B, 3, H, W)`` faces in ``[0, 1]`` at the encoder's input size.
        target: ``(B, D)`` unit templates: the identity to reach (impersonation) or to leave
            (dodging).
        goal: ``impersonation`` raises ``cos(F(x_adv), target)``, ``dodging`` lowers it.
        eps: L∞ budget in ``[0, 1]`` units.
        steps: Iterations.
        step_size: Size of each sign step.

    Returns:
        ``(B, 3, H, W)`` adversarial faces in ``[0, 1]`` with ``|x_adv - x| <= eps``.
    """
    x = images.detach().to(encoder.device)
    t = target.detach().to(encoder.device).float()
    adv = x.clone()
    sign = -1.0 if goal == "impersonation" else 1.0  # the loss is minimised
    with frozen(encoder):
        for _ in range(steps if eps > 0 else 0):
            adv.requires_grad_(True)
            loss = sign * (F.normalize(encoder.forward_torch(adv), dim=1) * t).sum()
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach() - step_size * grad.sign()
            adv = (x + (adv - x).clamp(-eps, eps)).clamp(0.0, 1.0)
    return adv.detach().cpu()


def attacked_and_reference_rows(codes: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first and the second face of the first ``limit`` identities that have two."""
    own: list[int] = []
    ref: list[int] = []
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        if rows.size >= 2 and len(own) < limit:
            own.append(int(rows[0]))
            ref.append(int(rows[1]))
    return np.asarray(own, dtype=np.int64), np.asarray(ref, dtype=np.int64)


class AdversarialProtocol(RobustnessProtocol[AdversarialOptions]):
    """FGSM/PGD impersonation and dodging, and reconstruction as a defence (DFD Fig. 13)."""

    name: ClassVar[str] = "adversarial"
    main_metric: ClassVar[str] = "reconstruction_self@far=1e-3@mean"
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "adversarial_self@far=1e-3@mean",
        "reconstruction_self@far=1e-3@mean",
        "adversarial_target@far=1e-3@mean",
        "reconstruction_target@far=1e-3@mean",
    )
    table_columns: ClassVar[tuple[str, ...]] = (
        "adversarial_self",
        "reconstruction_self",
        "adversarial_target",
        "reconstruction_target",
    )

    def condition_names(self) -> list[str]:
        """``<method>-<goal>=<ε·255>`` for every configured attack."""
        o = self.options
        return [
            condition_name(f"{m}-{g}", f"{e:g}")
            for m in o.methods
            for g in o.goals
            for e in o.epsilons
        ]

    def condition_scores(self, ctx: EvalContext, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Adversarial faces, their reconstructions, and what ``F`` says of both."""
        o = self.options
        encoder = ctx.encoder
        if encoder is None or ctx.invert is None:
            raise ValueError("adversarial needs the context's encoder and invert")
        if not encoder.differentiable:
            reason = f"encoder {encoder.name!r} has no differentiable path: no white-box attack"
            return {"unavailable": np.asarray([reason])}
        own, ref = attacked_and_reference_rows(identity_codes(ctx.identities), o.max_identities)
        all_templates = torch.from_numpy(as_unit_rows(ctx.templates)).float()
        clean, reference = all_templates[own], all_templates[ref]
        target = torch.roll(clean, shifts=-1, dims=0)  # the next identity's first face
        images = ctx.images[own]
        out: dict[str, np.ndarray] = {"adv_rows": own, "reference_rows": ref}
        out.update(self.system_arrays(ctx))
        recon_clean = ctx.invert(clean)
        out["clean__adv_self"] = _cos(clean, reference)
        out["clean__rec_self"] = _cos(encoder.templates(recon_clean), reference)
        for method in o.methods:
            for goal in o.goals:
                for e in o.epsilons:
                    eps = e / 255.0
                    steps = 1 if method == "fgsm" else o.pgd_steps
                    step = eps if method == "fgsm" else 2.5 * eps / o.pgd_steps
                    towards = target if goal == "impersonation" else reference
                    batches = []
                    for i in range(0, len(images), o.batch_size):
                        part = slice(i, i + o.batch_size)
                        batches.append(
                            perturb_adversarially(
                                encoder,
                                images[part],
                                towards[part],
                                goal=goal,
                                eps=eps,
                                steps=steps,
                                step_size=step,
                            )
                        )
                    adv = torch.cat(batches)
                    adv_t = encoder.templates(adv)
                    rec_t = encoder.templates(ctx.invert(adv_t))
                    cond = condition_name(f"{method}-{goal}", f"{e:g}")
                    out[f"{cond}__adv_self"] = _cos(adv_t, reference)
                    out[f"{cond}__rec_self"] = _cos(rec_t, reference)
                    if goal == "impersonation":
                        out[f"{cond}__adv_target"] = _cos(adv_t, target)
                        out[f"{cond}__rec_target"] = _cos(rec_t, target)
        return out

    def extra_metrics(
        self, scores: dict[str, np.ndarray], thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """Acceptance of adversarial faces and of their reconstructions, as self and target."""
        measures: tuple[str, ...] = ("adversarial_self", "reconstruction_self")
        measures += ("adversarial_target", "reconstruction_target")
        if "unavailable" in scores:
            reason = str(scores["unavailable"][0])
            return {
                self.rate_name(m, a, c): Metric(
                    value=None, higher_is_better=True, unavailable=reason
                )
                for c in self.condition_names()
                for m in measures
                for a in self.options.fars
            }
        sys_scores, sys_thrs = self.system_view(scores)
        arrays = {
            "adversarial_self": "adv_self",
            "reconstruction_self": "rec_self",
            "adversarial_target": "adv_target",
            "reconstruction_target": "rec_target",
        }
        out: dict[str, Metric] = {}
        for cond in [CLEAN, *self.condition_names()]:
            for measure, array in arrays.items():
                key = f"{cond}__{array}"
                if key in scores:
                    what = f"{measure.replace('_', ' ')} under {cond}, judged by the system F"
                    out.update(
                        self.rates(sys_scores, measure, key, cond, sys_thrs, what=what, groups=None)
                    )
        return out

    def figures(
        self, scores: dict[str, np.ndarray], metrics: dict[str, Metric]
    ) -> dict[str, bytes]:
        """DFD Fig. 13's four ROC curves for the strongest PGD dodging attack, and curves vs ε."""
        if "unavailable" in scores:
            return {}
        o = self.options
        eps = "ε (1/255)"
        out = {
            "defence": self.curve_figure(
                metrics, "reconstruction_self", title="reconstructions accepted as self", xlabel=eps
            ),
            "attack": self.curve_figure(
                metrics, "adversarial_self", title="adversarial faces accepted as self", xlabel=eps
            ),
        }
        strongest = condition_name("pgd-dodging", f"{max(o.epsilons):g}")
        if f"{strongest}__adv_self" in scores:
            impostor = scores.get("system_impostor", scores["impostor"])
            genuine = scores.get("system_genuine", scores.get("genuine"))
            curves = {
                "original / attacked": scores[f"{strongest}__adv_self"],
                "original / reconstruction of attacked": scores[f"{strongest}__rec_self"],
                "original / reconstruction": scores["clean__rec_self"],
            }
            if genuine is not None:
                curves = {"original / original": genuine, **curves}
            out["roc"] = roc_png(
                curves, impostor, title=f"decoding as a defence: {strongest}", fars=o.fars
            )
        return out


def _cos(a: Tensor, b: Tensor) -> np.ndarray:
    return F.cosine_similarity(a.double(), b.double(), dim=1).numpy()
