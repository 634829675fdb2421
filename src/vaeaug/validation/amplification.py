"""How many real candidates is a generated sample worth? (GANplifying)

Following Butter et al., "GANplifying event samples", SciPost Phys. 10, 139 (2021):
each feature is binned in quantiles of a large reference sample, and a sample's
quality is the mean squared error of its bin fractions against the reference
ones. For real samples of size n this MSE falls like a / n + c (c comes from the
reference's own finite size), so fitting that line in 1/n to subsamples of a
real sample of growing size and solving a / n + c = MSE(generated) gives the
real-sample size the generated sample is equivalent to.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..noise import Stream, child_seed

__all__ = ["amplification", "quantile_mse"]


def _quantile_edges(reference: np.ndarray, n_quantiles: int) -> list[np.ndarray]:
    q = np.linspace(0, 1, n_quantiles + 1)[1:-1]
    return [np.quantile(reference[:, f], q) for f in range(reference.shape[1])]


def _fractions(x: np.ndarray, edges: list[np.ndarray], w: np.ndarray | None) -> np.ndarray:
    # Inner edges only: the outer bins reach to +-infinity so no candidate is lost.
    out = np.empty((len(edges), len(edges[0]) + 1))
    wsum = len(x) if w is None else np.sum(w)
    for f, e in enumerate(edges):
        idx = np.searchsorted(e, x[:, f], side="right")
        out[f] = np.bincount(idx, weights=w, minlength=len(e) + 1) / wsum
    return out


def quantile_mse(
    sample: np.ndarray,
    reference: np.ndarray,
    *,
    n_quantiles: int = 20,
    weights: np.ndarray | None = None,
    reference_weights: np.ndarray | None = None,
) -> float:
    """MSE of the quantile-bin fractions of ``sample`` (N, F) against ``reference`` (R, F).

    Bins are ``n_quantiles`` quantiles of each reference feature; the MSE is
    averaged over bins and features (dimensionless).
    """
    edges = _quantile_edges(reference, n_quantiles)
    ref = _fractions(reference, edges, reference_weights)
    return float(np.mean((_fractions(sample, edges, weights) - ref) ** 2))


def amplification(
    generated: np.ndarray,
    real: np.ndarray,
    reference: np.ndarray | None,
    *,
    generated_weights: np.ndarray | None = None,
    n_quantiles: int = 20,
    n_sizes: int = 8,
    n_repetitions: int = 10,
    n_bootstrap: int = 20,
    min_size: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Real-sample size that ``generated`` (M, F) is worth, using subsamples of ``real`` (N, F).

    ``reference`` (R, F) is a large sample from the true distribution, independent
    of ``real`` and ``generated``; with ``reference=None`` the result is
    ``{"available": False, "reason": ...}``.

    Returns ``available``, ``n_equivalent`` (real candidates), ``n_equivalent_err``,
    ``amplification`` (= n_equivalent / N) and its ``amplification_err``,
    ``extrapolated`` (n_equivalent beyond the largest real subsample N, where the
    1/n law is trusted without a measured point), ``mse_generated`` and its
    bootstrap ``mse_generated_err``, the curve ``sizes``/``mse_real``/``mse_real_err``
    (mean and standard deviation over ``n_repetitions`` subsamples), the fit
    ``fit_a``, ``fit_c``, and ``n_generated``, ``n_real``, ``n_reference``.
    ``n_equivalent`` is infinite when the generated MSE is below the fitted c.
    Uncertainties combine the bootstrap spread of the generated MSE and the fit
    covariance, propagated linearly.
    """
    if reference is None:
        return {
            "available": False,
            "reason": "no reference sample given: amplification needs a large sample "
            "from the true distribution, independent of the training data",
        }
    rng = np.random.default_rng(child_seed(seed, Stream.AMPLIFICATION))
    n_real = len(real)
    lo = min_size if min_size is not None else max(50, n_real // 100)
    if n_real < 2 * lo:
        return {"available": False, "reason": f"real sample too small ({n_real} candidates)"}
    sizes = np.unique(np.geomspace(lo, n_real, n_sizes).astype(int))
    edges = _quantile_edges(reference, n_quantiles)
    ref = _fractions(reference, edges, None)

    def mse(x, w=None):
        return float(np.mean((_fractions(x, edges, w) - ref) ** 2))

    curve = np.empty((len(sizes), n_repetitions))
    for i, n in enumerate(sizes):
        for r in range(n_repetitions):
            # Without replacement: a real sample of size n has no duplicates. The largest
            # size is the whole sample, so its repetitions coincide and carry no spread.
            curve[i, r] = mse(real[rng.choice(n_real, n, replace=False)])
    mean = curve.mean(axis=1)
    err = curve.std(axis=1, ddof=1) if n_repetitions > 1 else np.abs(mean) * 0.1
    # The spread at size n is ~ mean / sqrt(#bins), so use that where repetitions coincide.
    err = np.maximum(
        err, mean * np.sqrt(2.0 / (n_quantiles * real.shape[1])) / np.sqrt(n_repetitions)
    )
    x = 1.0 / sizes
    (a, c), cov = np.polyfit(x, mean, 1, w=1.0 / err, cov="unscaled")

    m_gen = mse(generated, generated_weights)
    boot = [
        mse(generated[idx], None if generated_weights is None else generated_weights[idx])
        for idx in (rng.integers(0, len(generated), len(generated)) for _ in range(n_bootstrap))
    ]
    m_err = float(np.std(boot, ddof=1)) if n_bootstrap > 1 else 0.0
    excess = m_gen - c
    if excess > 0 and a > 0:
        n_eq = a / excess
        # d n / d a = 1 / excess, d n / d c = a / excess^2, d n / d m_gen = -a / excess^2
        grad = np.array([1.0 / excess, a / excess**2])
        var = grad @ cov @ grad + (a / excess**2 * m_err) ** 2
        n_err = float(np.sqrt(var))
    else:
        n_eq, n_err = float("inf"), float("nan")
    return {
        "available": True,
        "n_equivalent": float(n_eq),
        "n_equivalent_err": n_err,
        "amplification": float(n_eq / n_real),
        "amplification_err": float(n_err / n_real),
        "extrapolated": bool(n_eq > sizes[-1]),
        "mse_generated": m_gen,
        "mse_generated_err": m_err,
        "sizes": sizes.tolist(),
        "mse_real": mean.tolist(),
        "mse_real_err": err.tolist(),
        "fit_a": float(a),
        "fit_c": float(c),
        "n_generated": len(generated),
        "n_real": n_real,
        "n_reference": len(reference),
        "n_quantiles": n_quantiles,
    }
