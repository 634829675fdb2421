"""One-dimensional and correlation metrics of a generated sample against the original.

Every function takes feature tables (N, F) from :func:`vaeaug.validation.features.feature_table`
and optional per-candidate weights (N,). Distances are in the units of the feature
(GeV for momenta and masses) unless they are normalised, as stated per function.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..noise import Stream, child_seed

__all__ = [
    "correlation_comparison",
    "correlation_matrix",
    "ks_test",
    "one_d_metrics",
    "robust_spread",
    "split_halves",
    "wasserstein_1",
    "weighted_quantile",
]


def _weights(x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    if w is None:
        return np.ones(len(x))
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (len(x),):
        raise ValueError(f"weights must have shape ({len(x)},) to match the sample; got {w.shape}")
    return w


def robust_spread(x: np.ndarray, w: np.ndarray | None = None) -> float:
    """Gaussian-equivalent spread IQR / 1.349 of ``x`` (N,), in the units of ``x``.

    The IQR is used rather than the standard deviation because momentum spectra
    have long tails that would let a few extreme candidates set the scale.
    Falls back to the standard deviation when the IQR is zero (discrete features).
    """
    q25, q75 = weighted_quantile(x, [0.25, 0.75], w)
    spread = (q75 - q25) / 1.349
    if spread <= 0:
        spread = float(np.sqrt(np.cov(x, aweights=w))) if len(x) > 1 else 0.0
    return float(spread)


def weighted_quantile(x: np.ndarray, q, w: np.ndarray | None) -> np.ndarray:
    """Quantiles ``q`` of ``x`` (N,) with weights ``w`` (N,) or None (numpy's then)."""
    if w is None:
        return np.quantile(x, q)
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    cw = (cw - 0.5 * w[order]) / cw[-1]
    return np.interp(q, cw, x[order])


def wasserstein_1(
    a: np.ndarray, b: np.ndarray, wa: np.ndarray | None = None, wb: np.ndarray | None = None
) -> float:
    """Wasserstein-1 (earth mover's) distance between samples ``a`` (N,) and ``b`` (M,), units of x."""
    return float(stats.wasserstein_distance(a, b, wa, wb))


def ks_test(
    a: np.ndarray, b: np.ndarray, wa: np.ndarray | None = None, wb: np.ndarray | None = None
) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value of ``a`` (N,) and ``b`` (M,).

    With weights, the statistic is the largest difference of the weighted ECDFs and
    the p-value uses Kish effective sample sizes, an approximation.
    """
    if wa is None and wb is None:
        res = stats.ks_2samp(a, b)
        return float(res.statistic), float(res.pvalue)
    wa, wb = _weights(a, wa), _weights(b, wb)
    grid = np.concatenate([a, b])
    grid.sort()

    def ecdf(x, w):
        order = np.argsort(x)
        cw = np.concatenate([[0.0], np.cumsum(w[order])]) / np.sum(w)
        return cw[np.searchsorted(x[order], grid, side="right")]

    d = float(np.max(np.abs(ecdf(a, wa) - ecdf(b, wb))))
    na = np.sum(wa) ** 2 / np.sum(wa**2)
    nb = np.sum(wb) ** 2 / np.sum(wb**2)
    n_eff = max(1, round(na * nb / (na + nb)))
    return d, float(stats.kstwo.sf(d, n_eff))


def split_halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random disjoint index halves of range(n), used to measure real-vs-real floors."""
    perm = rng.permutation(n)
    return perm[: n // 2], perm[n // 2 : 2 * (n // 2)]


def _noise_scale(n_a: float, n_b: float, n_half: float) -> float:
    # Statistical metrics of two samples scale like sqrt(1/n_a + 1/n_b); the floor
    # is measured on two halves of the original, so rescale it to the sizes compared.
    return float(np.sqrt((1 / n_a + 1 / n_b) / (2 / n_half)))


def _n_eff(n: int, w: np.ndarray | None) -> float:
    if w is None:
        return float(n)
    return float(np.sum(w) ** 2 / np.sum(w**2))


def one_d_metrics(
    original: np.ndarray,
    generated: np.ndarray,
    names: list[str],
    *,
    original_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per-feature W1, normalised W1 and KS of tables ``original`` (N, F) and ``generated`` (M, F).

    Returns ``{feature: {...}}`` with keys ``w1`` (feature units), ``spread``
    (IQR/1.349 of the original), ``w1_norm`` (= w1 / spread), ``ks_stat``,
    ``ks_pvalue``, and the real-vs-real floors ``w1_norm_floor`` and
    ``ks_stat_floor`` measured on two random halves of the original and rescaled
    by sqrt(1/N + 1/M) / sqrt(4/N) to the sample sizes compared; ``within_floor``
    is true when w1_norm <= 2 * w1_norm_floor (a 1D distance has a positive
    expectation, so "twice the pure-noise value" is the tolerance).
    """
    wo = original_weights
    wg = generated_weights
    rng = np.random.default_rng(child_seed(seed, Stream.ONE_D_SPLIT))
    ia, ib = split_halves(len(original), rng)
    scale = _noise_scale(_n_eff(len(original), wo), _n_eff(len(generated), wg), len(ia))
    out: dict[str, dict[str, float]] = {}
    for f, name in enumerate(names):
        a, b = original[:, f], generated[:, f]
        spread = robust_spread(a, wo)
        w1 = wasserstein_1(a, b, wo, wg)
        ks, p = ks_test(a, b, wo, wg)
        wa = None if wo is None else wo[ia]
        wb = None if wo is None else wo[ib]
        w1_floor = wasserstein_1(a[ia], a[ib], wa, wb) * scale
        ks_floor = ks_test(a[ia], a[ib], wa, wb)[0] * scale
        w1_norm = w1 / spread if spread > 0 else float("inf")
        w1_norm_floor = w1_floor / spread if spread > 0 else float("inf")
        out[name] = {
            "w1": w1,
            "spread": spread,
            "w1_norm": w1_norm,
            "ks_stat": ks,
            "ks_pvalue": p,
            "w1_norm_floor": w1_norm_floor,
            "ks_stat_floor": ks_floor,
            "within_floor": bool(w1_norm <= 2 * w1_norm_floor),
        }
    return out


def correlation_matrix(
    x: np.ndarray, w: np.ndarray | None = None, *, method: str = "pearson"
) -> np.ndarray:
    """Correlation matrix (F, F) of table ``x`` (N, F); ``method`` is "pearson" or "spearman".

    Weighted Spearman ranks the values without weights and then takes the
    weighted Pearson correlation of the ranks, an approximation.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman'; got {method!r}")
    if method == "spearman":
        x = stats.rankdata(x, axis=0)
    # np.corrcoef divides by zero for constant columns; give them zero correlation instead.
    cov = np.cov(x, rowvar=False, aweights=w)
    cov = np.atleast_2d(cov)
    sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    corr[~np.isfinite(corr)] = 0.0
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def _offdiag(m: np.ndarray) -> np.ndarray:
    return m[~np.eye(len(m), dtype=bool)]


def correlation_comparison(
    original: np.ndarray,
    generated: np.ndarray,
    *,
    original_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, dict]:
    """Pearson and Spearman matrices of ``original`` (N, F) and ``generated`` (M, F) compared.

    Returns ``{"pearson": {...}, "spearman": {...}}``, each with ``original`` and
    ``generated`` (F x F nested lists), ``max_abs_diff`` and ``rms_diff`` over the
    off-diagonal elements, the same two measured between halves of the original
    (``max_abs_diff_floor``, ``rms_diff_floor``, rescaled to the sample sizes as in
    :func:`one_d_metrics`) and ``within_floor`` (rms_diff <= 2 * rms_diff_floor).
    """
    wo, wg = original_weights, generated_weights
    rng = np.random.default_rng(child_seed(seed, Stream.CORRELATION_SPLIT))
    ia, ib = split_halves(len(original), rng)
    scale = _noise_scale(_n_eff(len(original), wo), _n_eff(len(generated), wg), len(ia))
    out: dict[str, dict] = {}
    for method in ("pearson", "spearman"):
        co = correlation_matrix(original, wo, method=method)
        cg = correlation_matrix(generated, wg, method=method)
        ca = correlation_matrix(original[ia], None if wo is None else wo[ia], method=method)
        cb = correlation_matrix(original[ib], None if wo is None else wo[ib], method=method)
        d = _offdiag(cg - co)
        dfl = _offdiag(ca - cb)
        rms = float(np.sqrt(np.mean(d**2))) if d.size else 0.0
        rms_floor = float(np.sqrt(np.mean(dfl**2))) * scale if dfl.size else 0.0
        out[method] = {
            "original": co.tolist(),
            "generated": cg.tolist(),
            "max_abs_diff": float(np.max(np.abs(d))) if d.size else 0.0,
            "rms_diff": rms,
            "max_abs_diff_floor": float(np.max(np.abs(dfl))) * scale if dfl.size else 0.0,
            "rms_diff_floor": rms_floor,
            "within_floor": bool(rms <= 2 * rms_floor),
        }
    return out
