"""Score sets: real genuine/impostor pairs, type-I/II scores, enrolment, rank-1."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from invbench.metrics.pairs import genuine_pairs, sample_pairs
from invbench.metrics.verification import (
    as_unit_rows,
    enrol,
    identity_codes,
    rank1_correct,
    real_score_sets,
    reference_scores,
    type1_scores,
    type2_scores,
)

IDS = np.array(["a", "a", "a", "b", "b", "c", "d"])


@pytest.fixture
def templates():
    return np.random.default_rng(0).normal(size=(IDS.size, 5))


def _cos(u, v):
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


def test_real_score_sets_all_pairs(templates):
    sets = real_score_sets(templates, IDS)
    pairs = list(itertools.combinations(range(IDS.size), 2))
    gen = [_cos(templates[i], templates[j]) for i, j in pairs if IDS[i] == IDS[j]]
    imp = [_cos(templates[i], templates[j]) for i, j in pairs if IDS[i] != IDS[j]]
    assert sets.genuine.tolist() == pytest.approx(gen)  # row-major i<j order
    assert sets.impostor.tolist() == pytest.approx(imp)
    assert sets.n_nonmated_pairs == 21 - 4 == sets.impostor.size
    assert not sets.sampled
    assert sets.genuine_identity.tolist() == [0, 0, 0, 1]


def test_real_score_sets_accepts_tensors(templates):
    a = real_score_sets(torch.from_numpy(templates).float(), IDS)
    b = real_score_sets(templates.astype(np.float32), IDS)
    np.testing.assert_array_equal(a.impostor, b.impostor)


def test_impostor_sampling_is_seeded_uniform_subset(templates):
    full = set(np.round(real_score_sets(templates, IDS).impostor, 12).tolist())
    s1 = real_score_sets(templates, IDS, max_impostor_pairs=6, seed=1)
    s2 = real_score_sets(templates, IDS, max_impostor_pairs=6, seed=1)
    assert s1.sampled and s1.impostor.size == 6 and s1.n_nonmated_pairs == 17
    np.testing.assert_array_equal(s1.impostor, s2.impostor)
    assert set(np.round(s1.impostor, 12).tolist()) <= full


def test_sample_pairs_covers_pairs_uniformly():
    codes = np.arange(6)  # all pairs non-mated: 15
    counts = np.zeros((6, 6))
    for seed in range(3000):
        for i, j in sample_pairs(codes, codes, 3, seed, upper_triangle=True):
            assert i < j
            counts[i, j] += 1
    hits = counts[np.triu_indices(6, 1)]
    assert hits.sum() == 9000 and hits.min() > 500 and hits.max() < 700  # expected 600


def test_nan_real_templates_are_refused(templates):
    bad = templates.copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match="FTA"):
        real_score_sets(bad, IDS)


def test_type1_and_type2_scores(templates):
    rng = np.random.default_rng(1)
    recon = rng.normal(size=templates.shape)
    recon[4] = np.nan  # a failed re-encoding stays as NaN
    t1 = type1_scores(recon, templates)
    assert t1[0] == pytest.approx(_cos(recon[0], templates[0]))
    assert np.isnan(t1[4])
    t2 = type2_scores(recon, templates, IDS)
    expected = [
        (i, j) for i in range(IDS.size) for j in range(IDS.size) if i != j and IDS[i] == IDS[j]
    ]
    assert list(zip(t2.recon_index.tolist(), t2.real_index.tolist(), strict=True)) == expected
    assert t2.scores.size == 3 * 2 + 2 * 1
    k = expected.index((1, 2))
    assert t2.scores[k] == pytest.approx(_cos(recon[1], templates[2]))
    assert np.isnan(t2.scores[expected.index((4, 3))])


def test_genuine_pairs_empty_when_singletons():
    assert genuine_pairs(np.arange(4)).shape == (0, 2)


def test_enrol_first_and_mean(templates):
    e1 = enrol(templates, IDS, 1)
    unit = as_unit_rows(templates)
    np.testing.assert_allclose(e1.references[0], unit[0])
    assert e1.enrolled.tolist() == [True, False, False, True, False, True, True]
    e2 = enrol(templates, IDS, 2)
    mean = unit[:2].mean(axis=0)
    np.testing.assert_allclose(e2.references[0], mean / np.linalg.norm(mean))
    assert e2.enrolled.tolist() == [True, True, False, True, True, True, True]


def test_reference_scores_counts_and_sampling(templates):
    codes = identity_codes(IDS)
    enr = enrol(templates, IDS, 1)
    probes = np.flatnonzero(~enr.enrolled)  # rows 1, 2, 4
    r = reference_scores(enr.references, enr.reference_identity, templates[probes], codes[probes])
    assert r.mated.tolist() == pytest.approx(
        [_cos(templates[0], templates[1]), _cos(templates[0], templates[2]),
         _cos(templates[3], templates[4])]
    )  # fmt: skip
    assert r.n_nonmated == 4 * 3 - 3 == r.nonmated.size and not r.sampled
    s = reference_scores(
        enr.references, enr.reference_identity, templates[probes], codes[probes],
        max_nonmated=4, seed=0,
    )  # fmt: skip
    assert s.sampled and s.nonmated.size == 4
    assert set(np.round(s.nonmated, 12)) <= set(np.round(r.nonmated, 12))


def test_rank1_correct():
    gallery = np.eye(3)
    probes = np.array([[1.0, 0.1, 0], [0.1, 0.2, 1.0], [np.nan, 0, 0], [0, 1, 0]])
    got = rank1_correct(probes, np.array([0, 1, 0, 1]), gallery, np.array([0, 1, 2]))
    assert got.tolist() == [True, False, False, True]
