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

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from invbench.components import Metric
from invbench.metrics.thresholds import ThresholdResult
from invbench.metrics.verification import enrol, reference_scores
from invbench_plugins.protocols.metric_builders import (
    cached_real_score_sets,
    impostor_arrays,
    similarity_metric,
    system_rate_details,
)
from invbench_plugins.protocols.verification import VerificationOptions, VerificationProtocol


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


class SARProtocol(VerificationProtocol[SAROptions]):
    """ICIP'22 success attack rate at the system's FMR thresholds, with counts and CI."""

    name: ClassVar[str] = "sar"
    version: ClassVar[str] = "2"  # 2: identity-bootstrap intervals, unreachable FMRs unavailable
    main_metric: ClassVar[str] = "sar@fmr=1e-3"
    system_metric_names: ClassVar[tuple[str, ...]] = ("tmr@fmr=1e-2", "tmr@fmr=1e-3")
    metric_labels: ClassVar[dict[str, str]] = {
        "sar": "SAR",
        "tmr": "TMR",
        "identity_similarity_sar": "SAR identity similarity",
    }
    rank_priority: ClassVar[int] = 1
    attack_rates: ClassVar[tuple[str, ...]] = ("sar",)
    system_rates: ClassVar[tuple[str, ...]] = ("tmr",)
    rate_kind: ClassVar[str] = "fmr"

    def system_scores(self, real: np.ndarray, codes: np.ndarray) -> dict[str, np.ndarray]:
        """Enrol; the system's mated (TMR) and non-mated (threshold) comparisons."""
        o = self.options
        enr = enrol(real, codes, o.n_enrol)
        probe_rows = np.flatnonzero(~enr.enrolled)
        system = reference_scores(
            enr.references,
            enr.reference_identity,
            real[probe_rows],
            codes[probe_rows],
            max_nonmated=o.max_impostor_pairs,
            seed=o.seed,
        )
        if o.impostors == "reference-probe":
            impostor, n_nonmated, sampled = system.nonmated, system.n_nonmated, system.sampled
        else:
            sets = cached_real_score_sets(real, codes, o)
            impostor, n_nonmated, sampled = sets.impostor, sets.n_nonmated_pairs, sets.sampled
        return {
            **impostor_arrays(o, impostor, n_nonmated, sampled),
            "genuine": system.mated,
            "genuine_identity": system.mated_identity,
        }

    def attack_scores(
        self, probes: np.ndarray, real: np.ndarray, codes: np.ndarray
    ) -> dict[str, np.ndarray]:
        """``cos(r_k, probe)`` for every attacked sample, and its identity."""
        enr = enrol(real, codes, self.options.n_enrol)
        enrolled = enr.enrolled if self.options.attack == "enrolled" else ~enr.enrolled
        rows = np.flatnonzero(enrolled)
        refs = enr.references[codes[rows]]  # reference_identity is 0..K-1
        return {"attack": np.einsum("nd,nd->n", refs, probes[rows]), "attack_identity": codes[rows]}

    def attack_metrics(
        self, scores: dict[str, np.ndarray], prefix: str, thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """SAR per FMR and the mean attack similarity."""
        o, probe = self.options, self.probe_text(prefix)
        attack, groups = scores[prefix + "attack"], scores[prefix + "attack_identity"]
        out = self.rates(
            "sar",
            attack,
            thrs,
            scores,
            what=f"SAR: cos(r_k, {probe}) >= tau per attack ({o.attack} templates "
            f"inverted, references from {o.n_enrol} enrolment image(s))",
            groups=groups,
            extra=lambda thr: self._setup(scores),
        )
        out["identity_similarity_sar"] = similarity_metric(attack, what=f"attack cos(r_k, {probe})")
        return out

    def system_metrics(
        self, scores: dict[str, np.ndarray], thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """The system's own TMR per FMR (real non-enrolled probes vs their reference)."""
        genuine = scores["genuine"]
        return self.rates(
            "tmr",
            genuine,
            thrs,
            scores,
            what="system TMR: cos(r_k, F'(x_p)) >= tau for real non-enrolled probes p",
            groups=scores["genuine_identity"],
            extra=lambda thr: {**self._setup(scores), **system_rate_details(genuine, thr, scores)},
        )

    def _setup(self, scores: dict[str, np.ndarray]) -> dict[str, Any]:
        o = self.options
        return {
            "n_enrol": o.n_enrol,
            "attack": o.attack,
            "impostors": o.impostors,
            "n_attacks": int(scores["attack"].size),
        }
