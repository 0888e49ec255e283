"""Type-I attack (NbNet): the reconstruction against the very image its template came from.

For every evaluation sample ``i`` the score is ``cos(F'(x̂_i), F'(x_i))`` and the attack
succeeds when it reaches ``tau_alpha``, the threshold at target FMR ``alpha`` chosen
(bob.measure ``far_threshold`` semantics) on the **real-vs-real** impostor scores of the
evaluation set with the evaluation encoder ``F'``: all non-mated pairs ``i < j`` (a seeded
uniform sample above ``max_impostor_pairs``), or a given file (``threshold_source=file``).

Also reported:

- ``tar_original@far=*``: real genuine pairs (``i < j``, same identity) at the same
  thresholds, the papers' "Original" row; CI by bootstrap over identities, and the
  system-level FAR/FRR with failures to acquire in the details;
- ``identity_similarity_type1``: mean type-I cosine with its distribution;
- ``rank1_type1``: closed-set identification with a gallery of each identity's first
  image, probed with the reconstructions of those same images;
- ``fta``: the share of evaluation images where alignment found no face. Those images
  leaked no template, so they are not attacks; re-encodings that failed (NaN templates)
  are attacks that failed and stay in every denominator;
- ``baseline_*``: the same metrics for the template-ignoring baseline (``F'`` of the mean
  training face presented for every ``i``), so the attack's margin over it is explicit.

Score files: ``impostor``, ``genuine``, ``genuine_identity``, ``type1``, ``identity``,
``rank1_type1``, ``baseline_type1``, ``baseline_rank1_type1`` (when a baseline exists),
``n_total``, ``n_failed_to_acquire``, ``n_nonmated_pairs``, ``impostor_sampled``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from invbench.components import Metric
from invbench.metrics.thresholds import ThresholdResult
from invbench.metrics.verification import first_rows, rank1_correct, type1_scores
from invbench_plugins.protocols.metric_builders import (
    cached_real_score_sets,
    fta_metric,
    system_rate_details,
)
from invbench_plugins.protocols.verification import IdentityAttackProtocol, VerificationOptions


def rank1_against_first_images(
    probes: np.ndarray, real: np.ndarray, codes: np.ndarray, probe_rows: np.ndarray
) -> np.ndarray:
    """Rank-1 of ``probes`` (rows ``probe_rows``) against a gallery of first images.

    Args:
        probes: ``(N, D)`` probe templates for every row (reconstructions or baseline).
        real: ``(N, D)`` real templates.
        codes: ``(N,)`` identity codes.
        probe_rows: ``(P,)`` rows used as probes.

    Returns:
        ``(P,)`` bool, correct identification.
    """
    gallery_rows = first_rows(codes)
    return rank1_correct(
        probes[probe_rows], codes[probe_rows], real[gallery_rows], codes[gallery_rows]
    )


class TypeIProtocol(IdentityAttackProtocol[VerificationOptions]):
    """Type-I TAR at FAR: reconstruction vs its own source image (NbNet)."""

    name: ClassVar[str] = "type1"
    version: ClassVar[str] = "2"  # 2: identity-bootstrap intervals, unreachable FMRs unavailable
    main_metric: ClassVar[str] = "tar_type1@far=1e-3"
    headline_metrics: ClassVar[tuple[str, ...]] = (
        "tar_type1@far=1e-3",
        "identity_similarity_type1",
    )
    metric_labels: ClassVar[dict[str, str]] = {
        "tar_type1": "type-I TAR",
        "rank1_type1": "type-I rank-1",
        "identity_similarity_type1": "identity similarity",
        "tar_original": "real-pair TAR",
        "fta": "FTA",
    }
    system_metric_names: ClassVar[tuple[str, ...]] = (
        "tar_original@far=1e-2",
        "tar_original@far=1e-3",
        "fta",
    )
    rank_priority: ClassVar[int] = 0
    attack_rates: ClassVar[tuple[str, ...]] = ("tar_type1",)
    system_rates: ClassVar[tuple[str, ...]] = ("tar_original",)
    attack: ClassVar[str] = "type1"
    trial_text: ClassVar[str] = "type-I cos({probe}_i, F'(x_i)), per reconstruction"
    rank1_text: ClassVar[str] = (
        "rank-1 of {probe}_g against a gallery of each identity's first real image (the "
        "source images), ties to the first gallery row"
    )

    def system_scores(self, real: np.ndarray, codes: np.ndarray) -> dict[str, np.ndarray]:
        """All real non-mated pairs (impostors) and mated pairs (genuine), and the codes."""
        sets = cached_real_score_sets(real, codes, self.options)
        return {
            **super().system_scores(real, codes),
            "genuine": sets.genuine,
            "genuine_identity": sets.genuine_identity,
            "identity": codes,
        }

    def attack_scores(
        self, probes: np.ndarray, real: np.ndarray, codes: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Type-I cosine per sample and rank-1 against each identity's first image."""
        gallery = first_rows(codes)
        return {
            "type1": type1_scores(probes, real),
            "rank1_type1": rank1_against_first_images(probes, real, codes, gallery),
            "rank1_identity": codes[gallery],
        }

    def system_metrics(
        self, scores: dict[str, np.ndarray], thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """The real "Original" TAR per FAR (genuine pairs i < j) and FTA."""
        genuine = scores["genuine"]
        out = self.rates(
            "tar_original",
            genuine,
            thrs,
            scores,
            what="real genuine pairs i<j of one identity: cos(F'(x_i), F'(x_j)) >= tau",
            groups=scores["genuine_identity"],
            extra=lambda thr: system_rate_details(genuine, thr, scores),
        )
        out["fta"] = fta_metric(scores)
        return out
