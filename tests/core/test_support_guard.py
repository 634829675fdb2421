"""vaeaug.SupportGuard: the training support and its redraws around any generator."""

from __future__ import annotations

import numpy as np
import pytest
from distortions import boosted_mixture

import vaeaug
from vaeaug.datasets import dplus_kpipi

OBJECTS = ["K1", "pi1", "pi2"]
MASSES = [0.493677, 0.13957039, 0.13957039]


@pytest.fixture(scope="module")
def train() -> np.ndarray:
    return dplus_kpipi(3000, seed=1)


def _mixture(pool: np.ndarray, bad_fraction: float):
    """A generator drawing real candidates, a ``bad_fraction`` of them boosted out of range."""
    return boosted_mixture(pool, bad_fraction, 6.0)


def test_guarded_sample_is_inside_counts_the_first_draw_and_is_seeded(train):
    guard = vaeaug.SupportGuard(train, OBJECTS, MASSES, seed=3)
    pool = dplus_kpipi(20_000, seed=2)
    draw = _mixture(pool, 0.3)
    p4, report = guard.sample(draw, 4000, seed=5)
    assert p4.shape == (4000, 3, 4) and guard.inside(p4).all() and report["unresolved"] == 0
    # the first draw: exactly the generator's own first sample, counted independently
    first = draw(4000, 5)
    assert report["outside_first"] == pytest.approx(np.mean(~guard.inside(first)))
    # the boosted 30% all leave the support; real candidates rarely do (its real-vs-real rate)
    expected = 0.3 + 0.7 * guard.support.expected_rate
    assert abs(report["outside_first"] - expected) < 4 * np.sqrt(expected * (1 - expected) / 4000)
    # rows inside the first draw are kept in place, and the result depends only on (seed, n)
    keep = guard.inside(first)
    np.testing.assert_array_equal(p4[keep], first[keep])
    again, _ = guard.sample(draw, 4000, seed=5)
    np.testing.assert_array_equal(again, p4)
    other, _ = guard.sample(draw, 4000, seed=6)
    assert not np.array_equal(other, p4)


def test_a_generator_that_never_lands_inside_is_reported_unresolved(train):
    guard = vaeaug.SupportGuard(train, OBJECTS, MASSES)
    pool = dplus_kpipi(500, seed=2)
    _, report = guard.sample(_mixture(pool, 1.0), 100, seed=1, max_rounds=3)
    assert report["outside_first"] == 1.0 and report["unresolved"] == 100
    assert report["drawn"] == 100 + 3 * 200  # three rounds of twice the missing count


def test_the_decay_features_join_the_support_only_with_masses(train):
    with_masses = vaeaug.SupportGuard(train, OBJECTS, MASSES)
    lab_only = vaeaug.SupportGuard(train, OBJECTS, None)
    assert any(n.startswith("feature:") for n in with_masses.support.names)
    assert not any(n.startswith("feature:") for n in lab_only.support.names)
    # a non-finite candidate is never inside
    bad = train[:2].copy()
    bad[0, 0, 0] = np.nan
    assert with_masses.inside(bad).tolist() == [False, True]
