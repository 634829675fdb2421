"""bench/judge_classifier.py: the working-point efficiency and the cross-validated choice."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from judge_classifier import cross_validated_choice, efficiency_at


def test_efficiency_of_two_gaussians_matches_the_analytic_roc():
    rng = np.random.default_rng(0)
    bkg, sig = rng.normal(size=200_000), rng.normal(2.0, 1.0, size=50_000)
    expected = 1 - norm.cdf(norm.ppf(0.99) - 2.0)
    err = (
        np.sqrt(expected * (1 - expected) / len(sig))
        + 2.0 * norm.pdf(norm.ppf(0.99) - 2.0) * 0.01 / 200
    )
    assert efficiency_at(sig, bkg, np.ones_like(bkg), 0.01) == pytest.approx(expected, abs=4 * err)


def test_tied_top_scores_give_the_matching_share_of_the_tie():
    # the top 5% of the background and half the signal share one score: at 1% background
    # the ROC passes through a fifth of the tie, so a fifth of the tied signal
    bkg = np.where(np.arange(1000) < 50, 1.0, np.linspace(-1, 0, 1000))
    sig = np.where(np.arange(400) < 200, 1.0, -2.0)
    assert efficiency_at(sig, bkg, np.ones(1000), 0.01) == pytest.approx(200 * 0.2 / 400)


def test_weights_move_the_working_point():
    # a background candidate of weight 9 above the rest is 90% of a 10-unit background
    bkg, w = np.array([2.0, 0.0]), np.array([9.0, 1.0])
    sig = np.array([3.0, 1.0, 1.0, -1.0])
    assert efficiency_at(sig, bkg, w, 0.5) == pytest.approx(0.25)  # only the score above 2


def test_cross_validation_scores_held_out_real_rows_only():
    rng = np.random.default_rng(1)
    n = 600
    y = (np.arange(n) % 2).astype(float)
    x = rng.normal(size=(n, 3)) + y[:, None]
    real = np.arange(n) < 300
    # the generated rows carry a label-revealing feature the real ones do not: a choice
    # scored on them would reach AUC 1
    x[~real, 2] = 10 * y[~real]
    _, scores = cross_validated_choice(x, y, np.ones(n), real, seed=1)
    assert max(scores.values()) < 0.95
