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

from invbench.metrics.verification import first_rows, type2_scores
from invbench_plugins.protocols.type1 import rank1_against_first_images
from invbench_plugins.protocols.verification import IdentityAttackProtocol, VerificationOptions


class TypeIIProtocol(IdentityAttackProtocol[VerificationOptions]):
    """Type-II TAR at FAR: reconstruction vs other images of the same identity, per pair."""

    name: ClassVar[str] = "type2"
    version: ClassVar[str] = "2"  # 2: identity-bootstrap intervals, unreachable FMRs unavailable
    attack_rates: ClassVar[tuple[str, ...]] = ("tar_type2",)
    main_metric: ClassVar[str] = "tar_type2@far=1e-3"
    metric_labels: ClassVar[dict[str, str]] = {
        "tar_type2": "type-II TAR",
        "rank1_type2": "type-II rank-1",
        "identity_similarity_type2": "type-II identity similarity",
    }
    rank_priority: ClassVar[int] = 2
    attack: ClassVar[str] = "type2"
    trial_text: ClassVar[str] = (
        "type-II cos({probe}_i, F'(x_j)), per ordered pair j != i of one identity"
    )
    rank1_text: ClassVar[str] = (
        "rank-1 of {probe}_i for non-gallery images i against a gallery of each identity's "
        "first real image, ties to the first gallery row"
    )
    trial_identity: ClassVar[str] = "type2_identity"

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
            "rank1_identity": codes[~gallery],
        }
