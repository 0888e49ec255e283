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

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from invbench.components import Metric, Protocol
from invbench.metrics.verification import (
    as_unit_rows,
    first_rows,
    identity_codes,
    rank1_correct,
    type1_scores,
)
from invbench_plugins.protocols._common import (
    VerificationOptions,
    acquisition_arrays,
    add_baseline,
    cached_real_score_sets,
    fta_metric,
    impostor_arrays,
    proportion_metric,
    rate_metric,
    rate_name,
    similarity_metric,
    system_rate_details,
    thresholds,
    unavailable_rates,
)

if TYPE_CHECKING:
    from invbench.runner.context import EvalContext


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


class TypeIProtocol(Protocol):
    """Type-I TAR at FAR: reconstruction vs its own source image (NbNet)."""

    version: ClassVar[str] = "1"
    default: ClassVar[bool] = True
    main_metric: ClassVar[str] = "tar_type1@far=1e-3"
    Options = VerificationOptions

    def scores(self, ctx: EvalContext) -> dict[str, np.ndarray]:
        """Compute type-I, real genuine/impostor and baseline score arrays."""
        opts: VerificationOptions = self.options  # type: ignore[assignment]
        real = as_unit_rows(ctx.real_templates)
        recon = as_unit_rows(ctx.recon_templates)
        codes = identity_codes(ctx.identities)
        sets = cached_real_score_sets(real, codes, opts)
        gallery_rows = first_rows(codes)
        out: dict[str, np.ndarray] = {
            **impostor_arrays(opts, sets.impostor, sets.n_nonmated_pairs, sets.sampled),
            "genuine": sets.genuine,
            "genuine_identity": sets.genuine_identity,
            "type1": type1_scores(recon, real),
            "identity": codes,
            "rank1_type1": rank1_against_first_images(recon, real, codes, gallery_rows),
            **acquisition_arrays(ctx.n_total, ctx.n_failed_to_acquire),
        }
        if ctx.baseline_templates is not None:
            base = as_unit_rows(ctx.baseline_templates)
            out["baseline_type1"] = type1_scores(base, real)
            out["baseline_rank1_type1"] = rank1_against_first_images(
                base, real, codes, gallery_rows
            )
        return out

    def metrics(self, scores: dict[str, np.ndarray]) -> dict[str, Metric]:
        """Type-I rates per FAR, the real "Original" rates, similarity, rank-1, FTA."""
        opts: VerificationOptions = self.options  # type: ignore[assignment]
        out: dict[str, Metric] = {}
        has_base = "baseline_type1" in scores
        out.update(
            unavailable_rates(
                scores,
                opts,
                ["tar_type1", "tar_original"] + (["baseline_tar_type1"] if has_base else []),
                "far",
            )
        )
        for thr in thresholds(scores, opts):
            name = rate_name("tar_type1", thr.alpha)
            out[name] = rate_metric(
                scores["type1"],
                thr,
                what="type-I: cos(F'(x_hat_i), F'(x_i)) >= tau, per reconstruction",
                scores=scores,
                options=opts,
            )
            if has_base:
                add_baseline(
                    out,
                    name,
                    rate_metric(
                        scores["baseline_type1"],
                        thr,
                        what="type-I baseline: cos(F'(mean training face), F'(x_i)) >= tau",
                        scores=scores,
                        options=opts,
                    ),
                )
            out[rate_name("tar_original", thr.alpha)] = rate_metric(
                scores["genuine"],
                thr,
                what="real genuine pairs i<j of one identity: cos(F'(x_i), F'(x_j)) >= tau",
                scores=scores,
                options=opts,
                groups=scores["genuine_identity"],
                extra=system_rate_details(scores["genuine"], thr, scores),
            )
        out["identity_similarity_type1"] = similarity_metric(
            scores["type1"], what="type-I cos(F'(x_hat_i), F'(x_i))"
        )
        if has_base:
            add_baseline(
                out,
                "identity_similarity_type1",
                similarity_metric(scores["baseline_type1"], what="baseline type-I cosine"),
            )
        out["rank1_type1"] = proportion_metric(
            scores["rank1_type1"],
            what="rank-1 of F'(x_hat_g) against a gallery of each identity's first real image "
            "(the source images), ties to the first gallery row",
        )
        if has_base:
            add_baseline(
                out,
                "rank1_type1",
                proportion_metric(scores["baseline_rank1_type1"], what="baseline rank-1"),
            )
        out["fta"] = fta_metric(scores)
        return out
