"""mass_regions: the real and generated shares of the peak, the tails and named resonances."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from vaeaug.errors import InputError
from vaeaug.validation import mass_regions
from vaeaug.validation.regions import parse_resonances

M0, SIGMA = 3.1, 0.03  # GeV: a J/psi-like peak


def spectrum(rng: np.random.Generator, n: int, *, low: int, high: int) -> np.ndarray:
    """``n`` masses (GeV): ``low`` uniform in [2.5, 2.9), ``high`` uniform in [3.4, 4.0) and
    the rest a Gaussian peak cut at 2 sigma, so that no peak candidate reaches a tail."""
    peak = rng.normal(M0, SIGMA, 4 * n)
    peak = peak[np.abs(peak - M0) < 2 * SIGMA][: n - low - high]
    return np.concatenate([rng.uniform(2.5, 2.9, low), peak, rng.uniform(3.4, 4.0, high)])


def by_name(result: dict) -> dict[str, dict]:
    return {r["name"]: r for r in result["regions"] + result["dropped"]}


def test_fractions_and_errors_equal_a_direct_count(rng):
    real = spectrum(rng, 4000, low=240, high=160)
    generated = spectrum(rng, 3000, low=60, high=300)
    result = mass_regions(real, generated, resonances={"bump": (3.4, 3.7)})
    regions = by_name(result)
    assert [r["name"] for r in result["regions"]] == ["low tail", "peak", "high tail", "bump"]
    q16, q50, q84 = np.quantile(real, [0.16, 0.5, 0.84])
    lo, hi = q50 - 1.5 * (q84 - q16), q50 + 1.5 * (q84 - q16)  # median -+ 3 half-widths
    assert regions["peak"]["lo_gev"] == pytest.approx(lo, abs=1e-12)
    assert regions["peak"]["hi_gev"] == pytest.approx(hi, abs=1e-12)
    assert regions["low tail"]["lo_gev"] == -math.inf and regions["high tail"]["hi_gev"] == math.inf
    expected = {"low tail": (240 / 4000, 60 / 3000), "high tail": (160 / 4000, 300 / 3000),
                "peak": (3600 / 4000, 2640 / 3000),
                "bump": (np.mean((real >= 3.4) & (real < 3.7)),
                         np.mean((generated >= 3.4) & (generated < 3.7)))}  # fmt: skip
    for name, (fo, fg) in expected.items():
        r = regions[name]
        assert r["real_fraction"] == pytest.approx(fo, abs=1e-12), name
        assert r["generated_fraction"] == pytest.approx(fg, abs=1e-12), name
        assert r["real_err"] == pytest.approx(math.sqrt(fo * (1 - fo) / 4000), rel=1e-12)
        assert r["generated_err"] == pytest.approx(math.sqrt(fg * (1 - fg) / 3000), rel=1e-12)
        assert r["ratio"] == pytest.approx(fg / fo, rel=1e-12)
        assert r["ratio_err"] == pytest.approx(
            fg / fo * math.hypot(r["generated_err"] / fg, r["real_err"] / fo), rel=1e-12
        )


def test_a_lost_low_tail_shows_as_zero_generated(rng):
    real = spectrum(rng, 4000, low=200, high=100)
    generated = spectrum(rng, 4000, low=0, high=100)
    tail = by_name(mass_regions(real, generated))["low tail"]
    assert tail["real_fraction"] == pytest.approx(0.05, abs=1e-12)
    assert tail["real_err"] > 0
    assert tail["generated_fraction"] == 0.0 and tail["ratio"] == 0.0
    # nothing generated has no spread: the real fraction's error says the loss is significant
    assert tail["real_fraction"] > 10 * tail["real_err"]


def test_weights_change_the_fractions_as_a_recomputation_says(rng):
    real = spectrum(rng, 2000, low=100, high=100)
    generated = spectrum(rng, 2000, low=100, high=100)
    wo, wg = rng.uniform(0.2, 1.8, 2000), rng.uniform(0.2, 1.8, 2000)
    wo[:100] *= 3.0  # the real low tail weighs more
    weighted = by_name(mass_regions(real, generated, real_weights=wo, generated_weights=wg))
    unweighted = by_name(mass_regions(real, generated))
    for name, rows in (("low tail", slice(0, 100)), ("high tail", slice(1900, 2000))):
        fo, fg = wo[rows].sum() / wo.sum(), wg[rows].sum() / wg.sum()
        n_o, n_g = wo.sum() ** 2 / (wo**2).sum(), wg.sum() ** 2 / (wg**2).sum()  # Kish
        r = weighted[name]
        assert r["real_fraction"] == pytest.approx(fo, rel=1e-12)
        assert r["generated_fraction"] == pytest.approx(fg, rel=1e-12)
        assert r["real_err"] == pytest.approx(math.sqrt(fo * (1 - fo) / n_o), rel=1e-12)
        assert r["generated_err"] == pytest.approx(math.sqrt(fg * (1 - fg) / n_g), rel=1e-12)
    # the weights triple the low tail's share: far beyond the unweighted errors
    change = weighted["low tail"]["real_fraction"] - unweighted["low tail"]["real_fraction"]
    assert change > 10 * unweighted["low tail"]["real_err"]


def test_regions_under_one_percent_of_the_real_sample_are_dropped(rng):
    real = spectrum(rng, 4000, low=20, high=160)  # a 0.5% low tail
    generated = spectrum(rng, 4000, low=200, high=160)
    result = mass_regions(real, generated, resonances={"far": (7.0, 8.0)})
    assert [r["name"] for r in result["regions"]] == ["peak", "high tail"]
    dropped = {r["name"]: r for r in result["dropped"]}
    assert set(dropped) == {"low tail", "far"}
    assert dropped["low tail"]["real_fraction"] == pytest.approx(0.005, abs=1e-12)
    assert dropped["far"]["real_fraction"] == 0.0 and math.isnan(dropped["far"]["ratio"])
    kept = mass_regions(real, generated, min_fraction=0.004)["regions"]
    assert "low tail" in [r["name"] for r in kept]


@pytest.mark.parametrize(
    "spec", ["Jpsi=3.3", "Jpsi=3.3:2.9", "Jpsi=a:b", "Jpsi", "=2.9:3.3", "Jpsi=2.9:inf"]
)
def test_a_malformed_resonance_is_refused_naming_it(spec):
    with pytest.raises(InputError, match=re.escape(f"'{spec}' is not NAME=LO:HI")):
        parse_resonances([spec])


def test_resonance_names_are_unique_and_not_built_in(rng):
    assert parse_resonances(["J/psi=2.9:3.3", "Upsilon=9.2:9.7"]) == {
        "J/psi": (2.9, 3.3),
        "Upsilon": (9.2, 9.7),
    }
    with pytest.raises(InputError, match="given twice"):
        parse_resonances(["J/psi=2.9:3.3", "J/psi=3.0:3.2"])
    with pytest.raises(InputError, match="built-in region"):
        parse_resonances(["peak=2.9:3.3"])
    real = spectrum(rng, 500, low=0, high=0)
    with pytest.raises(InputError, match="lo < hi"):
        mass_regions(real, real, resonances={"J/psi": (3.3, 2.9)})
