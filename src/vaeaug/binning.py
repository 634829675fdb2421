"""Normalised histograms of one feature, and the spread between samples beyond their noise.

Every histogram here is normalised to unit sum of its in-range bins: a fraction per bin.
Used at training time by an ensemble's out-of-bag check (:mod:`vaeaug.ensemble`) and by the
validation report's model-uncertainty band (:mod:`vaeaug.validation.bands`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fractions", "quantile_edges", "spread"]


def fractions(x: np.ndarray, edges: np.ndarray,
              weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(fractions p (B,), their statistical variances (B,)) of values ``x`` (N,) in ``edges``
    (B + 1,), normalised to unit sum of the in-range bins.

    The variance is that of a normalised fraction, ``p (1 − p) / N`` unweighted; with
    weights ``w`` (N,), ``(Σ_b w² (1 − 2 p) + p² Σ w²) / (Σ w)²`` over the in-range values.
    """
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    counts, _ = np.histogram(x, edges, weights=w)
    sq, _ = np.histogram(x, edges, weights=w * w)
    total = counts.sum()
    if total <= 0:
        return np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    p = counts / total
    return p, np.clip(sq * (1.0 - 2.0 * p) + p**2 * sq.sum(), 0.0, None) / total**2


def quantile_edges(x: np.ndarray, n_quantiles: int) -> np.ndarray | None:
    """Edges (B + 1,) at the ``n_quantiles`` quantiles of ``x`` (N,), the outer ones at ±inf
    so that no value falls outside; repeated quantiles merge (B <= n_quantiles). None when
    ``x`` has fewer than 2 distinct quantiles (a constant feature has no bins to compare)."""
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, n_quantiles + 1)))
    if len(edges) < 3:
        return None
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def spread(p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The variance (B,) between K samples' fractions ``p`` (K, B) beyond their own sampling
    noise: ``max(var_i(p_i) − mean_i(p_i (1 − p_i) / n_i), 0)`` (var with ddof = 1), for
    samples of ``n`` (K,) candidates each."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)[:, None]
    between = p.var(axis=0, ddof=1)
    sampling = (p * (1.0 - p) / n).mean(axis=0)
    return np.clip(between - sampling, 0.0, None)
