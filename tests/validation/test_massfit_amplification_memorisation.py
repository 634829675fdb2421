"""Mass-peak fit, GANplifying amplification and memorisation on known inputs."""

from __future__ import annotations

import numpy as np
import pytest

from vaeaug.validation.amplification import amplification
from vaeaug.validation.features import feature_table
from vaeaug.validation.massfit import fit_mass_peak, robust_peak
from vaeaug.validation.memorisation import heldout_rows, memorisation


@pytest.mark.parametrize("background", [False, True])
def test_mass_fit_recovers_gaussian(rng, background):
    mu, sigma = 1.86966, 0.008
    m = rng.normal(mu, sigma, 4000)
    if background:
        m = np.concatenate([m, rng.uniform(1.80, 1.94, 1000)])
    fit = fit_mass_peak(m, background=background)
    assert fit["converged"]
    assert abs(fit["mean"] - mu) < 3 * fit["mean_err"]
    assert abs(fit["sigma"] - sigma) < 3 * fit["sigma_err"]
    assert fit["mean_err"] == pytest.approx(sigma / np.sqrt(4000), rel=0.3)
    assert fit["n_signal"] == pytest.approx(4000, rel=0.1)


def test_weighted_mass_fit_and_robust_peak(rng):
    m = rng.normal(1.87, 0.01, 4000)
    w = rng.uniform(0.5, 1.5, 4000)
    fit = fit_mass_peak(m, w, background=False)
    assert abs(fit["mean"] - 1.87) < 3 * fit["mean_err"]
    # weighted counts are scaled-Poisson: the precision is that of the effective size
    n_eff = w.sum() ** 2 / (w**2).sum()
    assert fit["mean_err"] == pytest.approx(0.01 / np.sqrt(n_eff), rel=0.1)
    assert fit["n_signal"] == pytest.approx(w.sum(), rel=0.01)
    r = robust_peak(m)
    assert abs(r["median"] - 1.87) < 3 * r["median_err"]
    assert abs(r["half_width"] - 0.01) < 3 * r["half_width_err"]


def test_amplification_not_available_without_reference(rng):
    x = rng.normal(size=(500, 3))
    res = amplification(x, x, None)
    assert res["available"] is False
    assert "reference" in res["reason"]


def test_true_sample_is_worth_its_size(toy, rng, objects):
    m = 2000

    def table(n):
        return feature_table(toy(n, rng), objects)[1]

    reference, real, generated = table(60_000), table(8000), table(m)
    res = amplification(generated, real, reference, n_repetitions=6, n_bootstrap=10, seed=3)
    assert res["available"]
    assert not res["extrapolated"]
    n_eq, err = res["n_equivalent"], res["n_equivalent_err"]
    assert abs(n_eq - m) < 3 * err + 0.1 * m
    assert 0.6 * m < n_eq < 1.6 * m
    assert res["amplification"] == pytest.approx(n_eq / 8000)


def test_memorisation_flags_copies(toy, rng, objects):
    _, training = feature_table(toy(2000, rng), objects)
    _, heldout = feature_table(toy(1000, rng), objects)
    _, fresh = feature_table(toy(1000, rng), objects)
    copied = training[rng.choice(len(training), 1000)]
    bad = memorisation(copied, training, heldout)
    good = memorisation(fresh, training, heldout)
    assert bad["flagged"] and bad["fraction_exact_copies"] == 1.0
    assert bad["ratio_of_medians"] < 0.1
    assert not good["flagged"]
    assert good["ratio_of_medians"] == pytest.approx(1.0, abs=0.2)


def test_heldout_rows_finds_training_rows(rng):
    training = rng.normal(size=(50, 4))
    real = np.concatenate([training[:10], rng.normal(size=(20, 4))])
    mask = heldout_rows(real, training)
    assert mask.sum() == 20 and not mask[:10].any()
