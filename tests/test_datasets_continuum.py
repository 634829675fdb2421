"""The built-in dimuon continuum: shapes, exact masses, acceptance, seeds, the peak."""

import numpy as np
import pytest

from vaeaug.datasets import JPSI_MASS, MUON_MASS, dimuon_continuum

N = 20_000
PEAK = (2.9, 3.3)  # GeV: the continuum starts at 4 GeV, so this window holds the peak only


@pytest.fixture(scope="module")
def pairs() -> np.ndarray:
    return dimuon_continuum(N, seed=5)


def _mass(p4: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(p4[..., 3] ** 2 - (p4[..., :3] ** 2).sum(-1), 0.0))


def test_shape_and_finite(pairs):
    assert pairs.shape == (N, 2, 4)
    assert pairs.dtype == np.float64
    assert np.isfinite(pairs).all()


def test_muon_masses_are_exact(pairs):
    np.testing.assert_allclose(_mass(pairs), MUON_MASS, rtol=0, atol=1e-7)


def test_acceptance_and_pt_order(pairs):
    pt = np.hypot(pairs[..., 0], pairs[..., 1])
    eta = np.arcsinh(pairs[..., 2] / pt)
    assert pt.min() > 3.0
    assert np.abs(eta).max() < 2.4
    assert np.all(pt[:, 0] >= pt[:, 1])


def test_seed_reproducibility():
    a, b = dimuon_continuum(500, seed=3), dimuon_continuum(500, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, dimuon_continuum(500, seed=4))


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.6])
def test_peak_fraction(fraction):
    m = _mass(dimuon_continuum(N, seed=11, peak_fraction=fraction).sum(axis=1))
    in_peak = np.mean((m > PEAK[0]) & (m < PEAK[1]))
    # binomial: four standard errors
    assert abs(in_peak - fraction) <= 4 * np.sqrt(fraction * (1 - fraction) / N) + 1e-12


def test_peak_position_and_width(pairs):
    m = _mass(pairs.sum(axis=1))
    peak = m[(m > PEAK[0]) & (m < PEAK[1])]
    # the pair-mass resolution of two muons smeared by 1% each is m * 1% / sqrt(2)
    sigma = JPSI_MASS * 0.01 / np.sqrt(2)
    assert abs(np.median(peak) - JPSI_MASS) < 4 * 1.25 * sigma / np.sqrt(len(peak))
    assert abs(peak.std() / sigma - 1) < 4 / np.sqrt(2 * len(peak))


def test_continuum_falls_and_stays_off_threshold(pairs):
    m = _mass(pairs.sum(axis=1))
    cont = m[m > PEAK[1]]
    counts, _ = np.histogram(cont, bins=[8, 16, 32, 64, 120])
    assert np.all(np.diff(counts) < 0), counts
    assert cont.max() < 120 * 1.05
    # nothing near the 2 m_mu threshold: the lightest pair is the peak's
    assert m.min() > PEAK[0]


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"n": 0}, "positive"), ({"peak_fraction": 1.5}, r"\[0, 1\]")]
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dimuon_continuum(**{"n": 10, **kwargs})
