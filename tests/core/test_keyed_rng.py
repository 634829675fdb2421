"""The counter-based random numbers of vaeaug.noise: normal, and independent
across rounds, keys, seeds and candidates (no coffea needed).

The inputs are fixed, so each test is deterministic; the bounds are those a correct
generator meets at the stated significance for the sample size (N rows), so that a
broken transform (a wrong Box-Muller radius, a round that reuses counters, a key that
ignores the seed or a coordinate) fails them by many standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from vaeaug.noise import (
    candidate_keys,
    index_keys,
    keyed_normals,
    keyed_uniforms,
)

N = 20_000  # rows (keys)
WIDTH = 7  # odd: the last Box-Muller pair is cut in half
P_MIN = 1e-4  # significance of the distribution tests
# largest |correlation| of two independent columns of N rows: 5 standard errors
# (1/sqrt(N)); with a few hundred pairs tested, a correct generator exceeds it with
# probability ~1e-4
MAX_CORR = 5 / np.sqrt(N)


@pytest.fixture(scope="module")
def keys() -> np.ndarray:
    """Keys of a generated sample's events 0 ... N-1 (how the support's redraws are keyed)."""
    return index_keys(11, np.arange(N))


def _max_offdiagonal_corr(columns: np.ndarray) -> float:
    c = np.corrcoef(columns, rowvar=False)
    return float(np.abs(c[~np.eye(len(c), dtype=bool)]).max())


def test_normals_are_standard_normal_in_every_column(keys):
    eps = keyed_normals(keys, WIDTH)
    assert eps.shape == (N, WIDTH) and eps.dtype == np.float64
    for j in range(WIDTH):
        col = eps[:, j]
        assert stats.kstest(col, "norm").pvalue > P_MIN, j
        assert abs(col.mean()) < 5 / np.sqrt(N), j
        # the variance of the sample variance of N normals is 2 / N
        assert abs(col.var() - 1) < 5 * np.sqrt(2 / N), j
    # the tails too: |x| > 3 has probability 0.0027
    expected = 2 * stats.norm.sf(3) * eps.size
    assert abs((np.abs(eps) > 3).sum() - expected) < 5 * np.sqrt(expected)


def test_columns_of_a_row_are_independent(keys):
    """The cosine and sine of one Box-Muller pair (columns j and j + 4) included."""
    eps = keyed_normals(keys, WIDTH)
    assert _max_offdiagonal_corr(eps) < MAX_CORR
    # uncorrelated is not independent: the pair's radius is shared, so also the squares
    assert _max_offdiagonal_corr(eps**2) < MAX_CORR


def test_rounds_are_independent_of_each_other(keys):
    rounds = [keyed_normals(keys, WIDTH, r) for r in range(3)]
    assert _max_offdiagonal_corr(np.concatenate(rounds, axis=1)) < MAX_CORR
    assert _max_offdiagonal_corr(np.concatenate(rounds, axis=1) ** 2) < MAX_CORR


def test_rounds_use_disjoint_counters(keys):
    """Round r of width w takes the uniforms r*w ... (r+1)*w - 1 of a key's one stream."""
    stream = keyed_uniforms(keys[:500], 3 * WIDTH)
    for r in range(3):
        np.testing.assert_array_equal(
            keyed_uniforms(keys[:500], WIDTH, r), stream[:, r * WIDTH : (r + 1) * WIDTH]
        )


def test_neighbouring_events_and_seeds_are_independent(keys):
    eps = keyed_normals(keys, WIDTH)
    # event i against event i + 1: the keys of consecutive indices
    lagged = np.concatenate([eps[:-1], eps[1:]], axis=1)
    assert _max_offdiagonal_corr(lagged) < MAX_CORR
    # the same events of a sample drawn with another seed
    other = keyed_normals(index_keys(12, np.arange(N)), WIDTH)
    assert _max_offdiagonal_corr(np.concatenate([eps, other], axis=1)) < MAX_CORR
    # and the other stream of the same seed
    stream2 = keyed_normals(index_keys(11, np.arange(N), stream=2), WIDTH)
    assert _max_offdiagonal_corr(np.concatenate([eps, stream2], axis=1)) < MAX_CORR


def test_a_row_depends_on_its_key_only(keys):
    """Any subset, order or chunking of the keys gives each key the same numbers."""
    eps = keyed_normals(keys[:1000], WIDTH, 2)
    order = np.random.default_rng(0).permutation(1000)
    np.testing.assert_array_equal(keyed_normals(keys[:1000][order], WIDTH, 2), eps[order])
    chunks = [keyed_normals(keys[i : min(i + 300, 1000)], WIDTH, 2) for i in range(0, 1000, 300)]
    np.testing.assert_array_equal(np.concatenate(chunks), eps)
    np.testing.assert_array_equal(index_keys(11, np.arange(500, 800)), keys[500:800])


def test_uniforms_are_uniform_and_open(keys):
    u = keyed_uniforms(keys, WIDTH)
    # strictly inside (0, 1): Box-Muller takes log(u)
    assert u.min() > 0 and u.max() < 1
    for j in range(WIDTH):
        assert stats.kstest(u[:, j], "uniform").pvalue > P_MIN, j


def test_candidate_keys_see_every_coordinate_and_the_seed(toy_p4):
    """Candidates one ulp apart in any single coordinate get unrelated keys."""
    p4 = np.repeat(toy_p4[:1], toy_p4[0].size + 1, axis=0)
    for i in range(toy_p4[0].size):
        row = p4[i + 1].reshape(-1)
        row[i] = np.nextafter(row[i], np.inf)
    assert len(np.unique(candidate_keys(p4, seed=1))) == len(p4)
    assert not np.isin(candidate_keys(p4, seed=2), candidate_keys(p4, seed=1)).any()
    # the same candidate, however it is batched, gets the same key
    keys = candidate_keys(toy_p4, seed=1)
    np.testing.assert_array_equal(candidate_keys(toy_p4[::-1], seed=1), keys[::-1])
    assert len(np.unique(keys)) == len(keys)


def test_candidate_keyed_normals_are_standard_normal(toy_p4):
    """Keyed by nearly equal 4-momenta (one decay's candidates), the normals stay normal."""
    eps = keyed_normals(candidate_keys(toy_p4, seed=1), WIDTH)
    n = len(toy_p4)
    assert stats.kstest(eps.ravel(), "norm").pvalue > P_MIN
    assert np.abs(eps.mean(axis=0)).max() < 5 / np.sqrt(n)
    assert _max_offdiagonal_corr(eps) < 5 / np.sqrt(n)
