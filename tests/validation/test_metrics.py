"""C2ST, W1/KS and correlation metrics on toy D+ -> K pi pi samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from vaeaug.validation.c2st import c2st, c2st_with_floor
from vaeaug.validation.features import feature_table, pair_masses, parent_mass
from vaeaug.validation.metrics import correlation_comparison, ks_test, one_d_metrics

N = 3000


@pytest.fixture
def samples(toy, rng, objects):
    names, a = feature_table(toy(N, rng), objects)
    _, b = feature_table(toy(N, rng), objects)
    return names, a, b


def test_feature_table_names_and_physics(toy, rng, objects):
    p4 = toy(500, rng)
    names, table = feature_table(p4, objects)
    assert table.shape == (500, len(names))
    assert names[:4] == ["K1_px", "K1_py", "K1_pz", "K1_E"]
    assert {"m", "m12", "m13", "m23", "parent_pt", "parent_eta", "pi2_eta"} <= set(names)
    m = parent_mass(p4)
    np.testing.assert_allclose(table[:, names.index("m")], m)
    assert abs(np.median(m) - 1.8697) < 0.002
    # Pair masses are bounded by the daughters' masses and the parent's.
    assert np.all(pair_masses(p4)["m23"] > 2 * 0.1395 - 1e-6)


def test_bad_shape_says_what_is_valid(objects):
    with pytest.raises(ValueError, match=r"\(N, k, 4\)"):
        feature_table(np.zeros((10, 3, 3)), objects)
    with pytest.raises(ValueError, match="objects names"):
        feature_table(np.zeros((10, 2, 4)), objects)


def test_same_distribution_is_within_floor(samples):
    names, a, b = samples
    res = c2st_with_floor(a, b, seed=1, n_bootstrap=30, n_threads=1)
    auc, err = res["test"]["auc"], res["test"]["auc_err"]
    assert abs(auc - 0.5) < 3 * err + 0.01
    assert res["within_floor"]
    one_d = one_d_metrics(a, b, names)
    # W1 / spread of 3000 vs 3000 candidates is a few percent; long tails push it up.
    assert max(v["w1_norm"] for v in one_d.values()) < 0.2
    assert sum(v["within_floor"] for v in one_d.values()) >= 0.8 * len(names)
    assert min(v["ks_pvalue"] for v in one_d.values()) > 1e-3
    corr = correlation_comparison(a, b)
    assert corr["pearson"]["within_floor"]
    assert corr["pearson"]["rms_diff"] < 0.05


def test_shifted_sample_is_flagged(toy, rng, objects):
    names, a = feature_table(toy(N, rng), objects)
    # A 3 MeV mass shift is a third of the resolution: small in 1D, obvious to C2ST.
    _, b = feature_table(toy(N, rng, mass_shift=0.003), objects)
    res = c2st_with_floor(a, b, seed=1, n_bootstrap=30, n_threads=1)
    assert not res["within_floor"]
    # and no classifier beats the best possible one: the parent mass alone, a Gaussian
    # shifted by delta = 3 MeV / 8 MeV of its width, AUC Phi(delta / sqrt 2)
    from conftest import SIGMA_D

    best = stats.norm.cdf(0.003 / SIGMA_D / np.sqrt(2))
    assert res["test"]["auc"] < best + 3 * res["test"]["auc_err"]
    m = one_d_metrics(a, b, names)["m"]
    assert m["ks_pvalue"] < 1e-4
    assert not m["within_floor"]


def test_c2st_auc_of_a_gaussian_mean_shift(rng):
    """Two unit Gaussians delta apart are told apart with AUC Phi(delta / sqrt 2); a
    classifier whose score is monotonic in x (the likelihood ratio is) reaches it within
    a few bootstrap errors of the held-out half."""
    delta = 0.5
    a, b = rng.normal(size=(5_000, 1)), rng.normal(delta, 1, size=(5_000, 1))
    res = c2st(a, b, seed=1, n_bootstrap=30, n_threads=1,
               classifier_kwargs={"monotonic_cst": [1]})  # fmt: skip
    assert res["n_test"] == 5_000
    assert abs(res["auc"] - stats.norm.cdf(delta / np.sqrt(2))) < 3 * res["auc_err"]
    assert 0.004 < res["auc_err"] < 0.012  # sqrt(AUC (1 - AUC) / 2,500)-ish: 0.007


def test_decorrelated_sample_is_flagged(samples, rng):
    names, a, b = samples
    b = b.copy()
    # Shuffling one column keeps its 1D distribution and destroys its correlations.
    col = names.index("K1_pz")
    b[:, col] = rng.permutation(b[:, col])
    one_d = one_d_metrics(a, b, names)
    assert one_d["K1_pz"]["w1_norm"] < 0.2
    corr = correlation_comparison(a, b)
    assert not corr["pearson"]["within_floor"]
    assert corr["pearson"]["max_abs_diff"] > 0.5
    res = c2st_with_floor(a, b, seed=2, n_bootstrap=30, n_threads=1)
    assert not res["within_floor"]


def test_weighted_ks_matches_unweighted_with_unit_weights(rng):
    a, b = rng.normal(size=400), rng.normal(0.2, 1, size=300)
    d0, _ = ks_test(a, b)
    d1, p1 = ks_test(a, b, np.ones(400), np.ones(300))
    assert d1 == pytest.approx(d0)
    # with unit weights the effective counts are the counts: scipy's asymptotic p-value
    assert p1 == pytest.approx(stats.ks_2samp(a, b, method="asymp").pvalue, rel=1e-12)


def test_weighted_ks_pvalue_uses_kish_effective_counts(rng):
    """The p-value's count is Kish's (sum w)^2 / sum w^2: events of weight zero do not count,
    and a common factor on the weights changes nothing."""
    a, b = rng.normal(size=400), rng.normal(0.15, 1, size=300)
    expected = stats.ks_2samp(a, b, method="asymp")
    # 600 events from elsewhere with weight zero: the same test as without them
    padded = np.concatenate([a, rng.normal(3.0, 1, size=600)])
    wa = np.concatenate([np.full(400, 2.5), np.zeros(600)])
    d, p = ks_test(padded, b, wa, np.full(300, 0.1))
    assert d == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-12)
    # unequal weights: fewer effective events, a larger p-value for the same distance
    w_uneven = np.where(np.arange(400) % 2, 0.2, 1.8)
    kish = w_uneven.sum() ** 2 / np.sum(w_uneven**2)  # 244 of the 400 events
    d2, p2 = ks_test(a, b, w_uneven, None)
    n_eff = round(kish * 300 / (kish + 300))  # the effective count of the pair
    assert p2 > stats.kstwo.sf(d2, round(400 * 300 / 700))  # than if every event counted
    assert p2 == pytest.approx(stats.kstwo.sf(d2, n_eff), rel=1e-12)
