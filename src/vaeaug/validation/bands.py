"""The ensemble's model-uncertainty band and the χ² with statistical and model errors.

Every histogram here is normalised to unit sum of its in-range bins (a fraction per bin,
:mod:`vaeaug.binning`). For members ``i = 1..K`` with fractions ``p_i`` (B,) of ``n_i``
candidates each, the band has two parts: the members' spread with their own sampling
noise taken out, ``V = max(var_i(p_i) − mean_i(p_i (1 − p_i) / n_i), 0)`` (var with
ddof = 1), which is how much the model varies with its training sample; and the error
they all share, which the spread cannot see, measured at training time on each member's
out-of-bag candidates as ``shared_variance`` ``s`` in units of a bin's ``p (1 − p)``
(:func:`vaeaug.ensemble.out_of_bag_check`)::

    σ_model² = V + s · p (1 − p)        (p: the members' pooled fractions)

(``s = 0`` reproduces the spread alone, for an ensemble file without the check). Beside
the generated fractions ``p_g`` and the original's ``p_o`` with their statistical errors
``σ_g``, ``σ_o``::

    χ²_stat       = Σ (p_g − p_o)² / (σ_o² + σ_g²)
    χ²_stat+model = Σ (p_g − p_o)² / (σ_o² + σ_g² + σ_model²)

over the bins where the statistical error is > 0 (``ndf`` of them), and ``coverage`` is
the fraction of those bins where ``|p_g − p_o| <= sqrt(σ_o² + σ_g² + σ_model²)`` (about
68% when the band and the errors are right). ``band_over_stat`` is the median over those
bins of ``σ_model / σ_o``: the band in units of the real sample's statistical error.

**The amplification forecast** (:func:`amplification_forecast`; the averaging amplification
of Bahl et al. 2025, arXiv:2509.08048, in the GANplifying form of
:mod:`vaeaug.validation.amplification`) needs no holdout: in ``n_quantiles`` quantile bins
of each feature of the generated sample, the ensemble's sample deviates from the truth
by ``σ_model² + σ_g²`` per bin (in mean square), a real sample of n candidates by
``p (1 − p) / n``; the forecast is the n where both are equal, averaged over every bin::

    n_forecast = mean(p (1 − p)) / mean(σ_model² + σ_g²)

so it never exceeds ``1 / s``, the real-sample size whose error equals the shared one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..binning import fractions, quantile_edges, spread

__all__ = ["BINS", "amplification_forecast", "band_metrics", "fractions", "model_band"]

#: Bins per feature histogram of the band metrics (the report's plots use their own).
BINS = 30


def model_band(members: Sequence[np.ndarray], edges: np.ndarray,
               shared_variance: float = 0.0) -> np.ndarray:  # fmt: skip
    """σ_model (B,) of the members' values (each (N_i,)) in ``edges``: their spread beyond
    sampling noise, plus ``shared_variance`` times ``p (1 − p)`` of their pooled fractions
    (module docstring)."""
    p = np.array([fractions(x, edges)[0] for x in members])  # (K, B)
    pooled = fractions(np.concatenate(members), edges)[0]
    v = spread(p, np.array([len(x) for x in members]))
    return np.sqrt(v + shared_variance * pooled * (1.0 - pooled))


def band_metrics(original: np.ndarray, generated: np.ndarray, members: Sequence[np.ndarray],
                 edges: np.ndarray, *, original_weights: np.ndarray | None = None,
                 generated_weights: np.ndarray | None = None,
                 shared_variance: float = 0.0) -> dict:  # fmt: skip
    """χ² with and without the band, coverage and the band's width, of one feature.

    Args:
        original, generated: the feature's values (N,) and (M,).
        members: the feature's values of each member's sample, K arrays.
        edges: bin edges (B + 1,).
        shared_variance: the members' shared error (:func:`vaeaug.ensemble.out_of_bag_check`).

    Returns ``chi2_stat``, ``chi2_stat_model``, ``ndf``, ``coverage``, ``band_over_stat``
    (module docstring) and ``band`` (σ_model per bin, (B,), as a fraction).
    """
    po, vo = fractions(original, edges, original_weights)
    pg, vg = fractions(generated, edges, generated_weights)
    band = model_band(members, edges, shared_variance)
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


def amplification_forecast(generated: np.ndarray, members: Sequence[np.ndarray], n_real: int,
                           n_quantiles: int = 20, shared_variance: float = 0.0) -> dict:  # fmt: skip
    """The real-sample size an ensemble's sample is worth, from the members' spread alone.

    Args:
        generated: the ensemble's sample, features (M, F).
        members: each member's share of it (or its own sample), K arrays (M_i, F).
        n_real: the real sample's size, for ``amplification = n_equivalent / n_real``.
        n_quantiles: bins per feature, at the quantiles of ``generated``.
        shared_variance: the members' shared error (:func:`vaeaug.ensemble.out_of_bag_check`).

    Returns ``n_equivalent``, ``amplification``, ``mse_model`` (mean σ_model²) and
    ``mse_generated`` (mean σ_g²), as in the module docstring.
    """
    p_all, model, stat = [], [], []
    for f in range(generated.shape[1]):
        edges = quantile_edges(generated[:, f], n_quantiles)
        if edges is None:
            continue
        p, v = fractions(generated[:, f], edges)
        p_all.append(p)
        stat.append(v)
        model.append(model_band([m[:, f] for m in members], edges, shared_variance) ** 2)
    p, model, stat = (np.concatenate(a) for a in (p_all, model, stat))
    mse_model, mse_gen = float(model.mean()), float(stat.mean())
    n_eq = float(np.mean(p * (1 - p)) / (mse_model + mse_gen))
    return {"n_equivalent": n_eq, "amplification": n_eq / n_real, "mse_model": mse_model,
            "mse_generated": mse_gen, "n_quantiles": n_quantiles,
            "shared_variance": shared_variance}  # fmt: skip
