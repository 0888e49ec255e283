"""Score sets for verification-style attack metrics, from templates and identity labels.

Every score is the cosine similarity of L2-normalised templates, computed in float64. A
template row holding NaN (a failed re-encoding) yields NaN scores, which never accept
(``NaN >= tau`` is false): failed attacks stay in the denominator.

- :func:`real_score_sets`: real-vs-real genuine pairs and all non-mated pairs ``i < j``
  (the impostor set thresholds are chosen on), optionally a seeded uniform sample of the
  non-mated pairs when there are too many to keep.
- :func:`type1_scores`: ``cos(F'(x̂_i), F'(x_i))``.
- :func:`type2_scores`: ``cos(F'(x̂_i), F'(x_j))`` for every ordered pair ``j != i`` of one
  identity (per pair).
- :func:`enrol`: one reference per identity (first image, or the mean of the first ``k``).
- :func:`rank1_correct`: closed-set rank-1 identification against a gallery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from invbench.metrics.pairs import (
    all_nonmated_cosines,
    genuine_pairs,
    pair_cosines,
    pair_counts,
    sample_pairs,
)

logger = logging.getLogger(__name__)

#: Above this many non-mated pairs, all-pairs impostor scores are computed and kept as
#: float32 (2^24: 128 MiB of float32; an LFW-size set, 87.5 M pairs, needs 350 MB instead
#: of 700 MB). Thresholds on float32 scores are exact for those scores; the rate details
#: say ``impostor_dtype``.
FLOAT32_SCORES_ABOVE = 2**24


def as_unit_rows(templates: ArrayLike) -> np.ndarray:
    """L2-normalise rows in float64 (rows with NaN stay NaN; zero rows become NaN).

    Args:
        templates: ``(N, D)`` templates (numpy array or torch tensor).

    Returns:
        ``(N, D)`` float64 unit rows.
    """
    t = templates
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()  # type: ignore[union-attr]
    arr = np.asarray(t, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"templates must be (N, D), got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, arr / norms, np.nan)


def identity_codes(identities: ArrayLike) -> np.ndarray:
    """Integer codes ``0..K-1`` for identity labels, in sorted label order.

    Args:
        identities: ``(N,)`` labels of any sortable type.

    Returns:
        ``(N,)`` int64 codes.

    >>> identity_codes(["b", "a", "b"]).tolist()
    [1, 0, 1]
    """
    _, codes = np.unique(np.asarray(identities), return_inverse=True)
    return codes.reshape(-1).astype(np.int64)


def cosine_rows(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Row-wise cosine similarity.

    Args:
        a: ``(N, D)`` templates.
        b: ``(N, D)`` templates.

    Returns:
        ``(N,)`` ``cos(a_i, b_i)`` (NaN where a row is NaN).
    """
    ua, ub = as_unit_rows(a), as_unit_rows(b)
    if ua.shape != ub.shape:
        raise ValueError(f"shape mismatch {ua.shape} vs {ub.shape}")
    return np.einsum("nd,nd->n", ua, ub)


@dataclass
class RealScores:
    """Real-vs-real score sets of one dataset under one encoder.

    Attributes:
        genuine: ``(G,)`` mated scores, pairs ``i < j`` of one identity (row-major order).
        genuine_identity: ``(G,)`` identity code of each genuine pair.
        impostor: ``(I,)`` non-mated scores (all pairs ``i < j``, or a uniform sample).
        n_nonmated_pairs: Number of non-mated pairs before any sampling.
        sampled: Whether ``impostor`` is a sample of the non-mated pairs.
    """

    genuine: np.ndarray
    genuine_identity: np.ndarray
    impostor: np.ndarray
    n_nonmated_pairs: int
    sampled: bool


def real_score_sets(
    templates: ArrayLike,
    identities: ArrayLike,
    *,
    max_impostor_pairs: int | None = None,
    seed: int = 0,
) -> RealScores:
    """Genuine and impostor scores of real images (the threshold's source).

    Args:
        templates: ``(N, D)`` evaluation-encoder templates ``F'(x_i)`` of the originals;
            must be finite (failures to acquire are removed and counted upstream).
        identities: ``(N,)`` identity labels.
        max_impostor_pairs: Keep at most this many non-mated pairs: when there are more,
            a seeded uniform sample without replacement of that size is used (recorded as
            ``sampled``). ``None`` keeps all.
        seed: Seed of the sample.

    Returns:
        The score sets; all-pairs impostor scores are float32 above
        :data:`FLOAT32_SCORES_ABOVE` pairs, float64 otherwise.

    Raises:
        ValueError: On non-finite templates or mismatched lengths.
    """
    unit = as_unit_rows(templates)
    codes = identity_codes(identities)
    if unit.shape[0] != codes.size:
        raise ValueError(f"{unit.shape[0]} templates but {codes.size} identity labels")
    if not np.all(np.isfinite(unit)):
        raise ValueError("real templates contain NaN/zero rows; count them as FTA upstream")
    pairs = genuine_pairs(codes)
    genuine = pair_cosines(unit, unit, pairs[:, 0], pairs[:, 1])
    _, n_nonmated = pair_counts(codes)
    if max_impostor_pairs is not None and n_nonmated > max_impostor_pairs:
        ij = sample_pairs(codes, codes, max_impostor_pairs, seed, upper_triangle=True)
        impostor = pair_cosines(unit, unit, ij[:, 0], ij[:, 1])
        sampled = True
        logger.info("sampled %d of %d non-mated pairs", max_impostor_pairs, n_nonmated)
    else:
        large = n_nonmated > FLOAT32_SCORES_ABOVE
        impostor = all_nonmated_cosines(unit, codes, dtype=np.float32 if large else np.float64)
        sampled = False
    return RealScores(genuine, codes[pairs[:, 0]], impostor, int(n_nonmated), sampled)


def type1_scores(recon_templates: ArrayLike, real_templates: ArrayLike) -> np.ndarray:
    """Type-I scores ``cos(F'(x̂_i), F'(x_i))``.

    Args:
        recon_templates: ``(N, D)`` templates of the reconstructions.
        real_templates: ``(N, D)`` templates of the originals the leaked templates came from.

    Returns:
        ``(N,)`` scores (NaN for a failed re-encoding).
    """
    return cosine_rows(recon_templates, real_templates)


@dataclass
class Type2Scores:
    """Type-II pair scores.

    Attributes:
        scores: ``(P,)`` ``cos(F'(x̂_i), F'(x_j))``.
        recon_index: ``(P,)`` ``i``, the reconstruction's row.
        real_index: ``(P,)`` ``j``, the other real image's row (``j != i``).
        identity: ``(P,)`` identity code of the pair.
    """

    scores: np.ndarray
    recon_index: np.ndarray
    real_index: np.ndarray
    identity: np.ndarray


def type2_scores(
    recon_templates: ArrayLike, real_templates: ArrayLike, identities: ArrayLike
) -> Type2Scores:
    """Type-II scores for every ordered pair ``(i, j)``, ``j != i``, of one identity.

    Args:
        recon_templates: ``(N, D)`` templates of the reconstructions ``F'(x̂_i)``.
        real_templates: ``(N, D)`` templates of the originals ``F'(x_j)``.
        identities: ``(N,)`` identity labels.

    Returns:
        The pair scores (empty when no identity has two images).
    """
    codes = identity_codes(identities)
    pairs = genuine_pairs(codes)
    both = np.concatenate([pairs, pairs[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    ur, ux = as_unit_rows(recon_templates), as_unit_rows(real_templates)
    scores = pair_cosines(ur, ux, both[:, 0], both[:, 1])
    return Type2Scores(scores, both[:, 0], both[:, 1], codes[both[:, 0]])


@dataclass
class Enrolment:
    """One reference per identity.

    Attributes:
        references: ``(K, D)`` unit reference templates.
        reference_identity: ``(K,)`` identity code of each reference (``0..K-1``).
        enrolled: ``(N,)`` bool, rows whose images were used for enrolment.
    """

    references: np.ndarray
    reference_identity: np.ndarray
    enrolled: np.ndarray


def enrol(templates: ArrayLike, identities: ArrayLike, n_enrol: int = 1) -> Enrolment:
    """Enrol each identity from its first ``n_enrol`` rows (row order).

    ``n_enrol = 1`` uses the first image's template; ``n_enrol > 1`` the L2-normalised mean
    of the first ``n_enrol`` unit templates (an identity with fewer images uses all).

    Args:
        templates: ``(N, D)`` templates.
        identities: ``(N,)`` labels.
        n_enrol: Enrolment images per identity, ``>= 1``.

    Returns:
        The references and the enrolment mask.
    """
    if n_enrol < 1:
        raise ValueError(f"n_enrol must be >= 1, got {n_enrol}")
    unit = as_unit_rows(templates)
    codes = identity_codes(identities)
    k = int(codes.max()) + 1 if codes.size else 0
    enrolled = np.zeros(codes.size, dtype=bool)
    refs = np.empty((k, unit.shape[1]), dtype=np.float64)
    for c in range(k):
        rows = np.flatnonzero(codes == c)[:n_enrol]
        enrolled[rows] = True
        refs[c] = unit[rows].mean(axis=0)
    return Enrolment(as_unit_rows(refs), np.arange(k, dtype=np.int64), enrolled)


@dataclass
class ReferenceScores:
    """Scores of probes against enrolled references (a verification system's own scores).

    Attributes:
        mated: ``(M,)`` ``cos(r_{id(p)}, probe_p)`` for every probe ``p``.
        mated_identity: ``(M,)`` identity code of each mated comparison.
        nonmated: ``(I,)`` ``cos(r_k, probe_p)`` for ``k != id(p)`` (all, or a sample).
        n_nonmated: Number of non-mated comparisons before any sampling.
        sampled: Whether ``nonmated`` is a sample.
    """

    mated: np.ndarray
    mated_identity: np.ndarray
    nonmated: np.ndarray
    n_nonmated: int
    sampled: bool


def reference_scores(
    references: ArrayLike,
    reference_identity: np.ndarray,
    probes: ArrayLike,
    probe_identity: np.ndarray,
    *,
    max_nonmated: int | None = None,
    seed: int = 0,
    block: int = 256,
) -> ReferenceScores:
    """Compare probes with the references: the mated score and all non-mated scores.

    Args:
        references: ``(K, D)`` reference templates, one per identity.
        reference_identity: ``(K,)`` distinct identity codes.
        probes: ``(P, D)`` probe templates; every probe's identity must be enrolled.
        probe_identity: ``(P,)`` identity codes.
        max_nonmated: Keep at most this many non-mated comparisons (seeded uniform sample
            without replacement); ``None`` keeps all.
        seed: Seed of the sample.
        block: References per matrix product.

    Returns:
        The mated and non-mated scores.
    """
    ur, up = as_unit_rows(references), as_unit_rows(probes)
    ref_of = {int(c): i for i, c in enumerate(reference_identity)}
    try:
        rows = np.array([ref_of[int(c)] for c in probe_identity], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"probe identity {exc} has no reference") from None
    mated = pair_cosines(ur, up, rows, np.arange(up.shape[0]))
    n_nonmated = int(ur.shape[0] * up.shape[0] - up.shape[0])
    if max_nonmated is not None and n_nonmated > max_nonmated:
        ij = sample_pairs(
            reference_identity, probe_identity, max_nonmated, seed, upper_triangle=False
        )
        nonmated = pair_cosines(ur, up, ij[:, 0], ij[:, 1])
        sampled = True
    else:
        nonmated = _blocked_nonmated(ur, reference_identity, up, probe_identity, block)
        sampled = False
    return ReferenceScores(
        mated, np.asarray(probe_identity, np.int64), nonmated, n_nonmated, sampled
    )


def _blocked_nonmated(
    ur: np.ndarray,
    reference_identity: np.ndarray,
    up: np.ndarray,
    probe_identity: np.ndarray,
    block: int,
) -> np.ndarray:
    """All ``cos(r_k, probe_p)``, ``k != id(p)``, reference-major, into one preallocated array.

    One matrix product ``ur[r0:r0 + block] @ up.T`` per block (the same calls as before the
    output was preallocated, so the same bits), copied straight into the output.

    Args:
        ur: ``(K, D)`` unit references.
        reference_identity: ``(K,)`` identity codes.
        up: ``(P, D)`` unit probes.
        probe_identity: ``(P,)`` identity codes.
        block: References per matrix product.

    Returns:
        ``(I,)`` float64 scores.
    """
    ref_ids, ref_counts = np.unique(reference_identity, return_counts=True)
    total = ur.shape[0] * up.shape[0]
    if ref_ids.size and up.shape[0]:
        where = np.clip(np.searchsorted(ref_ids, probe_identity), 0, ref_ids.size - 1)
        total -= int(np.where(ref_ids[where] == probe_identity, ref_counts[where], 0).sum())
    out = np.empty(total, dtype=np.float64)
    pos = 0
    for r0 in range(0, ur.shape[0], block):
        sims = ur[r0 : r0 + block] @ up.T
        keep = reference_identity[r0 : r0 + block, None] != probe_identity[None, :]
        count = int(np.count_nonzero(keep))
        out[pos : pos + count] = sims[keep]
        pos += count
    return out


def first_rows(codes: np.ndarray) -> np.ndarray:
    """Row index of each identity's first image, ``(K,)`` ordered by code."""
    _, first = np.unique(codes, return_index=True)
    return first.astype(np.int64)


def rank1_correct(
    probes: ArrayLike,
    probe_identity: np.ndarray,
    gallery: ArrayLike,
    gallery_identity: np.ndarray,
) -> np.ndarray:
    """Closed-set rank-1 identification: is the most similar gallery entry the right one?

    Ties go to the first gallery row; a NaN probe is never correct.

    Args:
        probes: ``(P, D)`` probe templates.
        probe_identity: ``(P,)`` identity codes.
        gallery: ``(K, D)`` gallery templates (one per identity).
        gallery_identity: ``(K,)`` identity codes.

    Returns:
        ``(P,)`` bool.
    """
    up, ug = as_unit_rows(probes), as_unit_rows(gallery)
    if up.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    sims = up @ ug.T
    valid = np.all(np.isfinite(sims), axis=1)
    best = np.argmax(np.where(np.isfinite(sims), sims, -np.inf), axis=1)
    return valid & (gallery_identity[best] == probe_identity)
