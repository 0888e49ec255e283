"""Success attack rate (ICIP'22 SAR; ISO/IEC 30107-3 IAPMR) against an enrolled system.

The system (evaluation encoder ``F'``) enrols one reference ``r_k`` per identity: the
template of the identity's first image (``n_enrol=1``, default) or the L2-normalised mean of
the templates of its first ``n_enrol`` images. Its own decision threshold at FMR ``alpha``
comes from its own real impostor scores: every reference against every non-enrolled real
image (probe) of another identity (``impostors=reference-probe``, default, as the system
would score them), or all real non-mated pairs ``i < j`` (``impostors=all-pairs``); both
use bob.measure ``far_threshold`` semantics.

Attacks, ``attack`` option:

- ``enrolled`` (default, ICIP'22 and its Bob pipeline): the adversary leaks the enrolled
  templates and inverts them; each enrolment image's reconstruction ``x̂_e`` is presented
  and scored ``cos(r_k, F'(x̂_e))``. With ``n_enrol=1`` this is type-I-like. With
  ``n_enrol > 1`` each enrolment sample's own template is inverted (as the Bob pipeline
  does; the context holds no reconstruction of the mean template), one attack each.
- ``probes``: reconstructions of the identity's other (non-enrolled) images' templates,
  scored against ``r_k`` (type-II-like: templates leaked from later captures).

``sar@fmr=*`` is the share of attacks accepted, with counts ("949/1000") and a
Clopper–Pearson interval (plus a bootstrap over identities in the details when an identity
is attacked more than once). ``tmr@fmr=*`` is the system's own true-match rate (real probes
vs their reference), ICIP's TMR column. ``baseline_*``: the mean training face presented as
every attack.

Score files: ``impostor``, ``genuine``, ``genuine_identity``, ``attack``,
``attack_identity``, ``baseline_attack`` (with a baseline), ``n_total``,
``n_failed_to_acquire``, ``n_nonmated_pairs``, ``impostor_sampled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from invbench.components import Metric, Protocol
from invbench.metrics.stats import bootstrap_rate_by_group
from invbench.metrics.thresholds import ThresholdResult
from invbench.metrics.verification import (
    as_unit_rows,
    enrol,
    identity_codes,
    reference_scores,
)
from invbench_plugins.protocols._common import (
    VerificationOptions,
    acquisition_arrays,
    add_baseline,
    cached_real_score_sets,
    impostor_arrays,
    rate_metric,
    rate_name,
    similarity_metric,
    system_rate_details,
    thresholds,
    unavailable_rates,
)

if TYPE_CHECKING:
    from invbench.runner.context import EvalContext


class SAROptions(VerificationOptions):
    """Options of :class:`SARProtocol`.

    Attributes:
        n_enrol: Enrolment images per identity (first rows; ``> 1``: mean template).
        attack: ``enrolled`` (invert the enrolled samples' templates) or ``probes``.
        impostors: ``reference-probe`` (the system's own comparisons) or ``all-pairs``.
    """

    n_enrol: int = Field(default=1, ge=1)
    attack: Literal["enrolled", "probes"] = "enrolled"
    impostors: Literal["reference-probe", "all-pairs"] = "reference-probe"


class SARProtocol(Protocol):
    """ICIP'22 success attack rate at the system's FMR thresholds, with counts and CI."""

    version: ClassVar[str] = "1"
    default: ClassVar[bool] = True
    main_metric: ClassVar[str] = "sar@fmr=1e-3"
    Options = SAROptions

    def scores(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """Enrol, score the system's real comparisons, the attacks and the baseline."""
        opts: SAROptions = self.options  # type: ignore[assignment]
        real = as_unit_rows(ctx.real_templates)
        codes = identity_codes(ctx.identities)
        enr = enrol(real, codes, opts.n_enrol)
        probe_rows = np.flatnonzero(~enr.enrolled)
        system = reference_scores(
            enr.references,
            enr.reference_identity,
            real[probe_rows],
            codes[probe_rows],
            max_nonmated=opts.max_impostor_pairs,
            seed=opts.seed,
        )
        if opts.impostors == "reference-probe":
            impostor, n_nonmated, sampled = system.nonmated, system.n_nonmated, system.sampled
        else:
            sets = cached_real_score_sets(real, codes, opts)
            impostor, n_nonmated, sampled = sets.impostor, sets.n_nonmated_pairs, sets.sampled
        attack_rows = np.flatnonzero(enr.enrolled if opts.attack == "enrolled" else ~enr.enrolled)
        refs = enr.references[codes[attack_rows]]  # reference_identity is 0..K-1
        out: dict[str, np.ndarray] = {
            **impostor_arrays(opts, impostor, n_nonmated, sampled),
            "genuine": system.mated,
            "genuine_identity": system.mated_identity,
            "attack": _cos(refs, as_unit_rows(ctx.recon_templates)[attack_rows]),
            "attack_identity": codes[attack_rows],
            **acquisition_arrays(ctx.n_total, ctx.n_failed_to_acquire),
        }
        if ctx.baseline_templates is not None:
            out["baseline_attack"] = _cos(refs, as_unit_rows(ctx.baseline_templates)[attack_rows])
        return out

    def metrics(self, scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """SAR and the system's TMR per FMR, mean attack similarity, and the baseline's."""
        opts: SAROptions = self.options  # type: ignore[assignment]
        out: dict[str, Metric] = {}
        has_base = "baseline_attack" in scores
        setup: dict[str, Any] = {
            "n_enrol": opts.n_enrol,
            "attack": opts.attack,
            "impostors": opts.impostors,
            "n_attacks": int(scores["attack"].size),
        }
        out.update(
            unavailable_rates(
                scores, opts, ["sar", "tmr"] + (["baseline_sar"] if has_base else []), "fmr"
            )
        )
        for thr in thresholds(scores, opts):
            name = rate_name("sar", thr.alpha, "fmr")
            out[name] = self._sar(scores["attack"], thr, scores, opts, setup)
            if has_base:
                add_baseline(
                    out, name, self._sar(scores["baseline_attack"], thr, scores, opts, setup)
                )
            out[rate_name("tmr", thr.alpha, "fmr")] = rate_metric(
                scores["genuine"],
                thr,
                what="system TMR: cos(r_k, F'(x_p)) >= tau for real non-enrolled probes p",
                scores=scores,
                options=opts,
                groups=scores["genuine_identity"],
                extra={**setup, **system_rate_details(scores["genuine"], thr, scores)},
            )
        out["identity_similarity_sar"] = similarity_metric(
            scores["attack"], what="attack cos(r_k, F'(x_hat))"
        )
        if has_base:
            add_baseline(
                out,
                "identity_similarity_sar",
                similarity_metric(scores["baseline_attack"], what="baseline attack cosine"),
            )
        return out

    @staticmethod
    def _sar(
        attack: np.ndarray,
        thr: ThresholdResult,
        scores: dict[str, np.ndarray],
        opts: SAROptions,
        setup: dict[str, Any],
    ) -> Metric:
        extra: dict[str, Any] = dict(setup)
        groups = scores["attack_identity"]
        if attack.size and np.unique(groups).size < groups.size:
            boot = bootstrap_rate_by_group(
                attack >= thr.tau,
                groups,
                n_boot=opts.n_bootstrap,
                seed=opts.seed,
            )
            extra["bootstrap_over_identities"] = boot.as_details()
        return rate_metric(
            attack,
            thr,
            what=f"SAR: cos(r_k, F'(x_hat)) >= tau per attack ({opts.attack} templates "
            f"inverted, references from {opts.n_enrol} enrolment image(s))",
            scores=scores,
            options=opts,
            extra=extra,
        )


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot of unit rows (NaN rows give NaN)."""
    return np.einsum("nd,nd->n", a, b)
