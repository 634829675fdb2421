"""Refinement (vaeaug.sampling.refine, vaeaug.refine): a classifier's density ratio pulls a
generator's candidates to the real ones, reproducibly, with honest weights."""

from __future__ import annotations

import numpy as np
import pytest
from distortions import boosted_mixture

from vaeaug.datasets import dplus_kpipi
from vaeaug.kinematics import summed
from vaeaug.sampling.refine import Refiner

OBJECTS = ["K1", "pi1", "pi2"]
MASSES = [0.493677, 0.13957039, 0.13957039]
BOOST = 0.8  # rapidity of the generator's mis-modelled part


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    return dplus_kpipi(3000, seed=1)


@pytest.fixture(scope="module")
def pool() -> np.ndarray:
    return dplus_kpipi(20_000, seed=2)


def _generator(pool: np.ndarray, wrong: float):
    """Draws real-like candidates, a fraction ``wrong`` of them boosted forward."""
    return boosted_mixture(pool, wrong, BOOST)


def _eta(p4: np.ndarray) -> np.ndarray:
    return np.asarray(summed(p4).eta)


def _weighted_mean_and_error(x: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    w = np.ones(len(x)) if w is None else w
    mean = float(np.average(x, weights=w))
    n_eff = w.sum() ** 2 / np.square(w).sum()
    return mean, float(np.sqrt(np.average((x - mean) ** 2, weights=w) / n_eff))


@pytest.mark.parametrize("mode", ["reject", "weight"])
def test_refinement_moves_a_mismodelled_generator_to_the_real_distribution(real, pool, mode):
    draw = _generator(pool, wrong=0.5)
    refiner = Refiner.fit(draw, real, OBJECTS, MASSES, seed=3)
    p4, w, report = refiner.sample(8000, seed=4, mode=mode)
    truth, truth_err = _weighted_mean_and_error(_eta(pool))  # the unboosted distribution
    base, base_err = _weighted_mean_and_error(_eta(draw(8000, 5)))
    refined, _ = _weighted_mean_and_error(_eta(p4), w)
    # the base generator is far off (the boost shifts half the candidates' eta by 0.8) ...
    assert abs(base - truth) > 10 * np.hypot(base_err, truth_err)
    # ... and refinement removes at least 80% of the shift
    assert abs(refined - truth) < 0.2 * abs(base - truth)
    assert report.n == 8000 and len(p4) == 8000
    if mode == "weight":
        assert w is not None and w.shape == (8000,)
        np.testing.assert_allclose(w.sum(), 8000)
        # the weights are the clipped ratios, scaled to sum to n
        ratio = refiner.ratio(p4)
        assert ratio.max() <= refiner.clip
        np.testing.assert_allclose(w, ratio * 8000 / ratio.sum())
    else:
        assert w is None
        # rejection keeps about the calibrated acceptance of the draws
        assert report.drawn > 8000


def test_a_perfect_generator_is_left_nearly_alone_and_a_wrong_one_is_not(real, pool):
    good = Refiner.fit(_generator(pool, wrong=0.0), real, OBJECTS, MASSES, seed=3)
    bad = Refiner.fit(_generator(pool, wrong=0.5), real, OBJECTS, MASSES, seed=3)
    # a generator drawn from the real distribution: nearly flat ratio, nearly every draw kept
    assert good.calibration["ess_fraction"] > 0.9
    assert good.calibration["ess_fraction"] > bad.calibration["ess_fraction"] + 0.1
    assert good.calibration["acceptance"] > bad.calibration["acceptance"]


def test_the_same_seed_gives_the_same_candidates(real, pool):
    draw = _generator(pool, wrong=0.3)
    a = Refiner.fit(draw, real, OBJECTS, MASSES, seed=3).sample(2000, seed=4, mode="reject")[0]
    b = Refiner.fit(draw, real, OBJECTS, MASSES, seed=3).sample(2000, seed=4, mode="reject")[0]
    c = Refiner.fit(draw, real, OBJECTS, MASSES, seed=3).sample(2000, seed=5, mode="reject")[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the weight mode's weights come from the seeded classifier: the same seed, the same
    wa = Refiner.fit(draw, real, OBJECTS, MASSES, seed=3).sample(2000, seed=4)[1]
    wb = Refiner.fit(draw, real, OBJECTS, MASSES, seed=3).sample(2000, seed=4)[1]
    wc = Refiner.fit(draw, real, OBJECTS, MASSES, seed=6).sample(2000, seed=4)[1]
    np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(wa, wc)


def test_real_weights_are_the_target(real, pool):
    """Real candidates weighted towards forward eta pull the refined sample forward too."""
    draw = _generator(pool, wrong=0.5)
    eta = _eta(real)
    forward = np.where(eta > np.median(eta), 3.0, 1.0)
    plain = Refiner.fit(draw, real, OBJECTS, MASSES, seed=3).sample(6000, seed=4, mode="reject")[0]
    weighted = Refiner.fit(draw, real, OBJECTS, MASSES, seed=3, real_weights=forward)
    target, _ = _weighted_mean_and_error(eta, forward)
    got, err = _weighted_mean_and_error(_eta(weighted.sample(6000, seed=4, mode="reject")[0]))
    assert got > _eta(plain).mean() + 5 * err
    assert abs(got - target) < 0.25 * abs(target - eta.mean())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clip_quantile": 0.0}, "clip_quantile"),
        ({"real_weights": -np.ones(3000)}, "real_weights"),
        ({"real_weights": np.ones(5)}, "real_weights"),
    ],
)
def test_bad_settings_are_refused_by_name(real, pool, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Refiner.fit(_generator(pool, 0.0), real, OBJECTS, MASSES, seed=3, **kwargs)


def test_bad_inputs_are_refused_by_name(real, pool):
    with pytest.raises(ValueError, match="at least 50"):
        Refiner.fit(_generator(pool, 0.0), real[:10], OBJECTS, MASSES)
    with pytest.raises(ValueError, match=r"shape \(N, 3, 4\)"):
        Refiner.fit(_generator(pool, 0.0), real[:, :2], OBJECTS, MASSES)
    refiner = Refiner.fit(_generator(pool, 0.0), real, OBJECTS, MASSES, seed=3)
    with pytest.raises(ValueError, match="mode must be one of"):
        refiner.sample(10, mode="accept")
