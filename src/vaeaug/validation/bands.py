"""The ensemble's model-uncertainty band and the χ² with statistical and model errors.

Every histogram here is normalised to unit sum of its in-range bins (a fraction per bin).
For members ``i = 1..K`` with fractions ``p_i`` (B,) of ``n_i`` candidates each, the band
is the spread between the members with their own sampling noise taken out::

    σ_model² = max(var_i(p_i) − mean_i(p_i (1 − p_i) / n_i), 0)      (var with ddof = 1)

so a finite sample per member does not widen the band. Beside the generated fractions
``p_g`` and the original's ``p_o`` with their statistical errors ``σ_g``, ``σ_o``::

    χ²_stat       = Σ (p_g − p_o)² / (σ_o² + σ_g²)
    χ²_stat+model = Σ (p_g − p_o)² / (σ_o² + σ_g² + σ_model²)

over the bins where the statistical error is > 0 (``ndf`` of them), and ``coverage`` is
the fraction of those bins where ``|p_g − p_o| <= sqrt(σ_o² + σ_g² + σ_model²)`` (about
68% when the band and the errors are right). ``band_over_stat`` is the median over those
bins of ``σ_model / σ_o``: the band in units of the real sample's statistical error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BINS", "band_metrics", "fractions", "model_band"]

#: Bins per feature histogram of the band metrics (the report's plots use their own).
BINS = 30


def fractions(x: np.ndarray, edges: np.ndarray,
              weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(fractions (B,), their statistical variances (B,)) of values ``x`` (N,) in ``edges``
    (B + 1,), normalised to unit sum of the in-range bins (weights: sum of w², over sum²)."""
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=np.float64)
    counts, _ = np.histogram(x, edges, weights=w)
    sq, _ = np.histogram(x, edges, weights=w * w)
    total = counts.sum()
    if total <= 0:
        return np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    return counts / total, sq / total**2


def model_band(members: Sequence[np.ndarray], edges: np.ndarray) -> np.ndarray:
    """σ_model (B,) of the members' values (each (N_i,)) in ``edges``: the spread of their
    fractions between members less each member's own sampling variance (module docstring)."""
    p = np.array([fractions(x, edges)[0] for x in members])  # (K, B)
    n = np.array([max(len(x), 1) for x in members], dtype=np.float64)[:, None]
    between = p.var(axis=0, ddof=1)
    sampling = (p * (1.0 - p) / n).mean(axis=0)
    return np.sqrt(np.clip(between - sampling, 0.0, None))


def band_metrics(original: np.ndarray, generated: np.ndarray, members: Sequence[np.ndarray],
                 edges: np.ndarray, *, original_weights: np.ndarray | None = None,
                 generated_weights: np.ndarray | None = None) -> dict:  # fmt: skip
    """χ² with and without the band, coverage and the band's width, of one feature.

    Args:
        original, generated: the feature's values (N,) and (M,).
        members: the feature's values of each member's sample, K arrays.
        edges: bin edges (B + 1,).

    Returns ``chi2_stat``, ``chi2_stat_model``, ``ndf``, ``coverage``, ``band_over_stat``
    (module docstring) and ``band`` (σ_model per bin, (B,), as a fraction).
    """
    po, vo = fractions(original, edges, original_weights)
    pg, vg = fractions(generated, edges, generated_weights)
    band = model_band(members, edges)
    stat = vo + vg
    used = stat > 0
    diff2 = (pg - po)[used] ** 2
    total = stat[used] + band[used] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = band[used] / np.sqrt(vo[used])
    ratio = ratio[np.isfinite(ratio)]
    return {
        "chi2_stat": float(np.sum(diff2 / stat[used])),
        "chi2_stat_model": float(np.sum(diff2 / total)),
        "ndf": int(used.sum()),
        "coverage": float(np.mean(diff2 <= total)) if used.any() else float("nan"),
        "band_over_stat": float(np.median(ratio)) if ratio.size else float("nan"),
        "band": band,
    }
