"""Type-II attack (NbNet): the reconstruction against *other* images of the same person.

For every ordered pair ``(i, j)``, ``j != i``, of one identity the score is
``cos(F'(x̂_i), F'(x_j))``; ``tar_type2@far=*`` is the share of such **pairs** reaching
``tau_alpha`` (per pair, as NbNet's BLUFR numbers; a per-subject variant would carry another
name). Thresholds are chosen exactly as in ``type1``: bob.measure semantics on real-vs-real
impostor scores of the evaluation set with ``F'``. Pairs of one identity share images, so
the interval is a seeded bootstrap over identities (threshold held fixed).

Also reported: ``identity_similarity_type2`` (mean pair cosine and its distribution);
``rank1_type2``: closed-set identification of the reconstructions of every image that is
*not* its identity's gallery image (gallery: each identity's first real image); and
``baseline_*`` for the template-ignoring baseline (the mean training face).

Score files: ``impostor``, ``type2``, ``type2_identity``, ``type2_recon_index``,
``type2_real_index``, ``rank1_type2``, ``baseline_type2``, ``baseline_rank1_type2`` (with a
baseline), ``n_total``, ``n_failed_to_acquire``, ``n_nonmated_pairs``, ``impostor_sampled``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from invbench.components import Metric
from invbench.metrics.thresholds import ThresholdResult
from invbench.metrics.verification import first_rows, type2_scores
from invbench_plugins.protocols.metric_builders import (
    proportion_metric,
    rate_metric,
    rate_name,
    similarity_metric,
)
from invbench_plugins.protocols.type1 import rank1_against_first_images
from invbench_plugins.protocols.verification import VerificationOptions, VerificationProtocol


class TypeIIProtocol(VerificationProtocol[VerificationOptions]):
    """Type-II TAR at FAR: reconstruction vs other images of the same identity, per pair."""

    name: ClassVar[str] = "type2"
    version: ClassVar[str] = "1"
    default: ClassVar[bool] = True
    main_metric: ClassVar[str] = "tar_type2@far=1e-3"
    rank_priority: ClassVar[int] = 2
    attack_rates: ClassVar[tuple[str, ...]] = ("tar_type2",)

    def attack_scores(
        self, probes: np.ndarray, real: np.ndarray, codes: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Type-II pair cosines (with their identities and rows) and rank-1."""
        pairs = type2_scores(probes, real, codes)
        gallery = np.zeros(codes.size, dtype=bool)
        gallery[first_rows(codes)] = True
        return {
            "type2": pairs.scores,
            "type2_identity": pairs.identity,
            "type2_recon_index": pairs.recon_index,
            "type2_real_index": pairs.real_index,
            "rank1_type2": rank1_against_first_images(
                probes, real, codes, np.flatnonzero(~gallery)
            ),
        }

    def attack_metrics(
        self, scores: dict[str, np.ndarray], prefix: str, thrs: list[ThresholdResult]
    ) -> dict[str, Metric]:
        """Type-II TAR per FAR (bootstrap over identities), mean pair similarity, rank-1."""
        probe, trials = self.probe_text(prefix), scores[prefix + "type2"]
        out = {
            rate_name("tar_type2", thr.alpha): rate_metric(
                trials,
                thr,
                what=f"type-II: cos({probe}_i, F'(x_j)) >= tau, per ordered pair j != i "
                "of one identity",
                scores=scores,
                options=self.options,
                groups=scores[prefix + "type2_identity"],
            )
            for thr in thrs
        }
        out["identity_similarity_type2"] = similarity_metric(
            trials, what=f"type-II pair cos({probe}_i, F'(x_j))"
        )
        out["rank1_type2"] = proportion_metric(
            scores[prefix + "rank1_type2"],
            what=f"rank-1 of {probe}_i for non-gallery images i against a gallery of each "
            "identity's first real image, ties to the first gallery row",
        )
        return out
