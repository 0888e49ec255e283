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

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from invbench.components import Metric, Protocol
from invbench.metrics.verification import (
    as_unit_rows,
    first_rows,
    identity_codes,
    type2_scores,
)
from invbench_plugins.protocols._common import (
    VerificationOptions,
    acquisition_arrays,
    add_baseline,
    cached_real_score_sets,
    impostor_arrays,
    proportion_metric,
    rate_metric,
    rate_name,
    similarity_metric,
    thresholds,
    unavailable_rates,
)
from invbench_plugins.protocols.type1 import rank1_against_first_images

if TYPE_CHECKING:
    from invbench.runner.context import EvalContext


class TypeIIProtocol(Protocol):
    """Type-II TAR at FAR: reconstruction vs other images of the same identity, per pair."""

    version: ClassVar[str] = "1"
    default: ClassVar[bool] = True
    main_metric: ClassVar[str] = "tar_type2@far=1e-3"
    Options = VerificationOptions

    def scores(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """Compute type-II pair scores, real impostor scores and the baseline's."""
        opts: VerificationOptions = self.options  # type: ignore[assignment]
        real = as_unit_rows(ctx.real_templates)
        recon = as_unit_rows(ctx.recon_templates)
        codes = identity_codes(ctx.identities)
        sets = cached_real_score_sets(real, codes, opts)
        pairs = type2_scores(recon, real, codes)
        gallery = np.zeros(codes.size, dtype=bool)
        gallery[first_rows(codes)] = True
        probe_rows = np.flatnonzero(~gallery)
        out: dict[str, np.ndarray] = {
            **impostor_arrays(opts, sets.impostor, sets.n_nonmated_pairs, sets.sampled),
            "type2": pairs.scores,
            "type2_identity": pairs.identity,
            "type2_recon_index": pairs.recon_index,
            "type2_real_index": pairs.real_index,
            "rank1_type2": rank1_against_first_images(recon, real, codes, probe_rows),
            **acquisition_arrays(ctx.n_total, ctx.n_failed_to_acquire),
        }
        if ctx.baseline_templates is not None:
            base = as_unit_rows(ctx.baseline_templates)
            out["baseline_type2"] = type2_scores(base, real, codes).scores
            out["baseline_rank1_type2"] = rank1_against_first_images(base, real, codes, probe_rows)
        return out

    def metrics(self, scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """Type-II rates per FAR, mean pair similarity, rank-1, and the baseline's."""
        opts: VerificationOptions = self.options  # type: ignore[assignment]
        out: dict[str, Metric] = {}
        has_base = "baseline_type2" in scores
        groups = scores["type2_identity"]
        out.update(
            unavailable_rates(
                scores, opts, ["tar_type2"] + (["baseline_tar_type2"] if has_base else []), "far"
            )
        )
        for thr in thresholds(scores, opts):
            name = rate_name("tar_type2", thr.alpha)
            out[name] = rate_metric(
                scores["type2"],
                thr,
                what="type-II: cos(F'(x_hat_i), F'(x_j)) >= tau, per ordered pair j != i "
                "of one identity",
                scores=scores,
                options=opts,
                groups=groups,
            )
            if has_base:
                add_baseline(
                    out,
                    name,
                    rate_metric(
                        scores["baseline_type2"],
                        thr,
                        what="type-II baseline: cos(F'(mean training face), F'(x_j)) >= tau",
                        scores=scores,
                        options=opts,
                        groups=groups,
                    ),
                )
        out["identity_similarity_type2"] = similarity_metric(
            scores["type2"], what="type-II pair cos(F'(x_hat_i), F'(x_j))"
        )
        if has_base:
            add_baseline(
                out,
                "identity_similarity_type2",
                similarity_metric(scores["baseline_type2"], what="baseline type-II cosine"),
            )
        out["rank1_type2"] = proportion_metric(
            scores["rank1_type2"],
            what="rank-1 of F'(x_hat_i) for non-gallery images i against a gallery of each "
            "identity's first real image, ties to the first gallery row",
        )
        if has_base:
            add_baseline(
                out,
                "rank1_type2",
                proportion_metric(scores["baseline_rank1_type2"], what="baseline rank-1"),
            )
        return out
