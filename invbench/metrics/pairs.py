"""Index pairs of comparisons and their cosines, memory-bounded.

Helpers of :mod:`invbench.metrics.verification`: mated pairs, all non-mated pairs, a seeded
uniform sample of non-mated pairs, and chunked row-pair dot products of unit templates.
"""

from __future__ import annotations

import numpy as np


def pair_cosines(
    unit_a: np.ndarray, unit_b: np.ndarray, ia: np.ndarray, ib: np.ndarray, chunk: int = 4096
) -> np.ndarray:
    """``unit_a[ia[p]] . unit_b[ib[p]]`` for every pair ``p``, in memory-bounded chunks.

    Args:
        unit_a: ``(Na, D)`` unit rows.
        unit_b: ``(Nb, D)`` unit rows.
        ia: ``(P,)`` row indices into ``unit_a``.
        ib: ``(P,)`` row indices into ``unit_b``.
        chunk: Pairs per step.

    Returns:
        ``(P,)`` float64 cosines.
    """
    out = np.empty(ia.size, dtype=np.float64)
    for start in range(0, ia.size, chunk):
        sl = slice(start, start + chunk)
        out[sl] = np.einsum("nd,nd->n", unit_a[ia[sl]], unit_b[ib[sl]])
    return out


def pair_counts(codes: np.ndarray) -> tuple[int, int]:
    """``(mated, non-mated)`` numbers of unordered pairs ``i < j`` for identity ``codes``.

    >>> pair_counts(np.array([0, 0, 0, 1, 1]))  # 3 + 1 mated, 6 across identities
    (4, 6)
    """
    n = codes.size
    sizes = np.bincount(codes).astype(np.int64)
    n_mated = int((sizes * (sizes - 1) // 2).sum())
    return n_mated, n * (n - 1) // 2 - n_mated


def genuine_pairs(codes: np.ndarray) -> np.ndarray:
    """All mated pairs ``(i, j)``, ``i < j``, sorted row-major.

    Rows are grouped by one stable sort of ``codes`` (not one scan of ``codes`` per
    identity), so LFW-size label sets take milliseconds.

    Args:
        codes: ``(N,)`` identity codes.

    Returns:
        ``(G, 2)`` int64 row indices.
    """
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, codes.size])
    chunks = []
    upper: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # triu_indices per group size
    for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
        rows = order[start : start + size]  # ascending: the sort is stable
        if size not in upper:
            upper[size] = np.triu_indices(size, 1)
        a, b = upper[size]
        chunks.append(np.stack([rows[a], rows[b]], axis=1))
    if not chunks:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.concatenate(chunks).astype(np.int64, copy=False)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def nonmated_count(codes: np.ndarray) -> int:
    """Number of pairs ``i < j`` with ``codes[i] != codes[j]`` (any integer codes).

    >>> nonmated_count(np.array([7, 7, 3]))
    2
    """
    _, sizes = np.unique(codes, return_counts=True)
    sizes = sizes.astype(np.int64)
    n = int(codes.size)
    return n * (n - 1) // 2 - int((sizes * (sizes - 1) // 2).sum())


def all_nonmated_cosines(
    unit: np.ndarray, codes: np.ndarray, block: int = 1024, dtype: type = np.float64
) -> np.ndarray:
    """Cosines of every non-mated pair ``i < j`` (row-major order), block by block.

    Each block of rows is one matrix product ``unit[r0:r1] @ unit[r0:].T`` (these exact
    calls: BLAS picks its kernel by shape, so other blocks could round differently), whose
    kept entries are copied straight into one preallocated output: no list of per-block
    arrays and no final concatenation (peak memory is the output plus one block's work).

    Args:
        unit: ``(N, D)`` unit rows.
        codes: ``(N,)`` identity codes.
        block: Rows per matrix product.
        dtype: ``np.float64`` (products in ``unit``'s precision), or ``np.float32``: rows
            rounded to float32 once and float32 products and scores, half the memory and
            about twice as fast (``|error| < 1e-6`` for unit rows of a few hundred
            dimensions).

    Returns:
        ``(I,)`` scores of ``dtype``.
    """
    n = unit.shape[0]
    if dtype == np.float32:
        unit = np.ascontiguousarray(unit, dtype=np.float32)
    out: np.ndarray = np.empty(nonmated_count(codes), dtype=dtype)
    pos = 0
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        sims = unit[r0:r1] @ unit[r0:].T  # (b, n - r0)
        keep = codes[r0:r1, None] != codes[None, r0:]
        keep[:, : r1 - r0] = np.triu(keep[:, : r1 - r0], 1)  # columns j > i only
        count = int(np.count_nonzero(keep))
        out[pos : pos + count] = sims[keep]  # boolean subscript: no index array
        pos += count
    return out


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` (sorted distinct values) by one sort and a neighbour test.

    The same array as ``np.unique``, without its hash-table path, which is several times
    slower on millions of int64 keys.

    >>> sorted_unique(np.array([5, 1, 5, 3, 1])).tolist()
    [1, 3, 5]
    """
    s = np.sort(values.reshape(-1))
    if s.size == 0:
        return s
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def sample_pairs(
    codes_a: np.ndarray,
    codes_b: np.ndarray,
    n_pairs: int,
    seed: int,
    *,
    upper_triangle: bool,
) -> np.ndarray:
    """A seeded uniform sample without replacement of non-mated index pairs.

    Pairs ``(a, b)`` are drawn uniformly from the grid ``len(codes_a) x len(codes_b)``,
    kept when ``codes_a[a] != codes_b[b]`` (and ``a < b`` when ``upper_triangle``, for
    pairs within one set), deduplicated (:func:`sorted_unique`), and ``n_pairs`` of them
    chosen at random.

    Args:
        codes_a: ``(Na,)`` identity codes of the first side.
        codes_b: ``(Nb,)`` identity codes of the second side.
        n_pairs: Sample size; must not exceed the number of non-mated pairs.
        seed: Seed for ``numpy.random.default_rng``.
        upper_triangle: Pairs within one set (``codes_a is codes_b``): unordered, ``a < b``.

    Returns:
        ``(n_pairs, 2)`` int64 index pairs, sorted row-major.
    """
    na, nb = codes_a.size, codes_b.size
    rng = np.random.default_rng(seed)
    found = np.zeros(0, dtype=np.int64)
    while found.size < n_pairs:
        size = 2 * (n_pairs - found.size) + 1024
        a = rng.integers(0, na, size=size)
        b = rng.integers(0, nb, size=size)
        if upper_triangle:
            a, b = np.minimum(a, b), np.maximum(a, b)
            ok = (a != b) & (codes_a[a] != codes_b[b])
        else:
            ok = codes_a[a] != codes_b[b]
        found = sorted_unique(np.concatenate([found, a[ok] * nb + b[ok]]))
    found = np.sort(rng.choice(found, size=n_pairs, replace=False))
    return np.stack([found // nb, found % nb], axis=1)
