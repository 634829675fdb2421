"""Validation plots with hist + mplhep: original vs generated candidates.

Every function returns a matplotlib Figure (and the hist objects it drew where
they are worth saving); nothing is shown, so the code is safe under the Agg
backend. ``style`` is an mplhep style name: "CMS", "LHCb2", "ATLAS" or "ALICE".
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np

from .features import dalitz_variables

__all__ = [
    "STYLES",
    "common_edges",
    "comparison_histograms",
    "plot_amplification",
    "plot_correlations",
    "plot_dalitz",
    "plot_feature",
    "plot_loss",
    "plot_mass",
]

STYLES = ("CMS", "LHCb2", "ATLAS", "ALICE")
ORIGINAL = {"color": "black", "label": "Original"}
GENERATED = {"color": "tab:red", "label": "Generated"}


@contextlib.contextmanager
def _style(style: str):
    import matplotlib.pyplot as plt
    import mplhep as hep

    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}; got {style!r}")
    # the experiments' styles name fonts (e.g. "cursive") most machines lack;
    # matplotlib falls back to DejaVu Sans and need not log it for every figure
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    with plt.style.context(getattr(hep.style, style)):
        yield


def _figure(*args, **kwargs):
    # Figure() rather than plt.figure(): pyplot keeps figures alive until closed,
    # and a validation run makes dozens of them.
    from matplotlib.figure import Figure

    return Figure(*args, **kwargs)


def common_edges(
    a: np.ndarray, b: np.ndarray | None = None, *, bins: int = 50, quantiles=(0.005, 0.995)
) -> np.ndarray:
    """Bin edges (bins + 1,) covering the central quantiles of ``a`` (N,) (and ``b`` (M,)).

    The range follows the original's quantiles, widened by 5%; tails beyond it go
    to the overflow so a few outliers cannot squash the core.
    """
    lo, hi = np.quantile(a, quantiles)
    if b is not None and len(b):
        blo, bhi = np.quantile(b, quantiles)
        # Keep the generated core visible when it is shifted away from the original's.
        lo, hi = min(lo, blo), max(hi, bhi)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    return np.linspace(lo - pad, hi + pad, bins + 1)


def comparison_histograms(
    original: np.ndarray,
    generated: np.ndarray,
    edges: np.ndarray,
    *,
    name: str,
    label: str,
    original_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
):
    """Weighted ``hist.Hist`` pair (original, generated) of values (N,) and (M,) on ``edges``."""
    import hist

    out = []
    for x, w in ((original, original_weights), (generated, generated_weights)):
        h = hist.Hist(
            hist.axis.Variable(edges, name=name, label=label), storage=hist.storage.Weight()
        )
        h.fill(x, weight=1.0 if w is None else w)
        out.append(h)
    return tuple(out)


def _density(h) -> tuple[np.ndarray, np.ndarray]:
    widths = np.diff(h.axes[0].edges)
    total = h.values().sum()
    norm = total * widths if total > 0 else widths
    return h.values() / norm, np.sqrt(h.variances()) / norm


def _normalised(h):
    """``h`` scaled to unit sum of its in-range bins (variances scale with it)."""
    total = h.values().sum()
    return h * (1.0 / total) if total > 0 else h


def _unit(label: str) -> str:
    return label[label.rindex("[") + 1 : label.rindex("]")] if label.endswith("]") else ""


def plot_feature(h_original, h_generated, *, style: str = "CMS", label: str | None = None,
                 band: np.ndarray | None = None):  # fmt: skip
    """Normalised original vs generated histograms with statistical errors and a ratio panel;
    ``band``: an ensemble's model uncertainty per bin (B,), as a fraction of the generated
    histogram (:mod:`vaeaug.validation.bands`), shaded around the generated histogram."""
    import mplhep as hep
    from matplotlib.ticker import MaxNLocator
    from mplhep.comp import get_comparison

    edges = h_original.axes[0].edges
    label = label or h_original.axes[0].label
    with _style(style):
        fig = _figure(figsize=(8, 8), layout="constrained")
        fig.get_layout_engine().set(h_pad=0.02, hspace=0.0)
        ax, rax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        vo, eo = _density(h_original)
        vg, eg = _density(h_generated)
        hep.histplot(
            vo, edges, yerr=eo, histtype="fill", alpha=0.25, color="grey", ax=ax, flow=None
        )
        hep.histplot(vo, edges, yerr=eo, histtype="step", ax=ax, flow=None, **ORIGINAL)
        hep.histplot(
            vg, edges, yerr=eg, histtype="errorbar", markersize=4, ax=ax, flow=None, **GENERATED
        )
        if band is not None:
            b = np.asarray(band) / np.diff(edges)  # a fraction per bin -> a density
            ax.stairs(vg + b, edges, baseline=vg - b, fill=True, alpha=0.3, lw=0,
                      color=GENERATED["color"], label="Model unc. (ensemble)")  # fmt: skip
        unit = _unit(label)
        ax.set_ylabel(r"$1/N\;dN/dx$" + (f" [1/{unit}]" if unit else ""))
        top = max(np.max(vo + eo), np.max(vg + eg), 1e-300)
        positive = vo[vo > 0]
        if positive.size and top / np.median(positive) > 20:
            # Steeply falling spectra (momenta) hide their tails on a linear scale.
            ax.set_yscale("log")
            ax.set_ylim(0.5 * np.min(positive), top * 50)
        else:
            # Headroom for the legend above flat distributions.
            ax.set_ylim(0, 1.55 * top)
        ax.legend(loc="upper right")
        ax.tick_params(labelbottom=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            # the ratio of the normalised histograms, errors of both propagated
            ratio, r_lo, r_hi = get_comparison(
                _normalised(h_generated), _normalised(h_original), "ratio"
            )
        centres = 0.5 * (edges[1:] + edges[:-1])
        rax.axhline(1.0, color="black", lw=1)
        if band is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                rb = np.where(vo > 0, b / vo, 0.0)
                rc = np.where(vo > 0, vg / vo, 1.0)
            rax.stairs(rc + rb, edges, baseline=rc - rb, fill=True, alpha=0.3, lw=0,
                       color=GENERATED["color"])  # fmt: skip
        rax.errorbar(centres, ratio, yerr=[r_lo, r_hi], fmt="o", ms=3, color=GENERATED["color"])
        rax.set_ylim(0.5, 1.5)
        rax.set_ylabel("Gen./Orig.", fontsize=18)
        rax.set_xlabel(label)
        rax.set_xlim(edges[0], edges[-1])
        # Large-font styles (ALICE, LHCb2) otherwise crowd the tick labels into each other.
        rax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        fig.align_ylabels([ax, rax])
    return fig


def plot_correlations(
    original: np.ndarray,
    generated: np.ndarray,
    names: list[str],
    *,
    style: str = "CMS",
    method: str = "Pearson",
):
    """Correlation matrices (F, F) of original and generated side by side, and their difference."""
    f = len(names)
    tick_size = float(np.clip(240 / max(f, 1), 7, 14))
    with _style(style):
        fig = _figure(figsize=(3 * 7.5 + 1.5, 8.5), layout="constrained")
        axes = fig.subplots(1, 3)
        panels = (
            (np.asarray(original), f"Original ({method})", "RdBu_r", 1.0),
            (np.asarray(generated), f"Generated ({method})", "RdBu_r", 1.0),
            (np.asarray(generated) - np.asarray(original), "Generated − Original", "PuOr_r", None),
        )
        for ax, (mat, title, cmap, vmax) in zip(axes, panels, strict=True):
            if vmax is None:
                # Differences are small; a symmetric scale set by the data keeps them visible.
                vmax = max(float(np.max(np.abs(mat))), 0.01)
            im = ax.imshow(mat, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
            ax.set_xticks(range(f), names, rotation=90, fontsize=tick_size)
            ax.set_yticks(range(f), names if ax is axes[0] else [], fontsize=tick_size)
            # Minor ticks mean nothing on a matrix and cost most of the drawing time.
            ax.minorticks_off()
            ax.set_title(title, fontsize=18)
            cbar = fig.colorbar(im, ax=ax, shrink=0.8)
            cbar.ax.tick_params(labelsize=12)
    return fig


def _fit_density(x: np.ndarray, fit: dict[str, Any], n_window: float) -> np.ndarray:
    from scipy import special

    lo, hi, bins = fit["window_lo"], fit["window_hi"], fit["bins"]
    width = (hi - lo) / bins
    mu, sigma = fit["mean"], fit["sigma"]
    frac = special.ndtr((hi - mu) / sigma) - special.ndtr((lo - mu) / sigma)
    sig = (
        fit["n_signal"]
        * np.exp(-0.5 * ((x - mu) / sigma) ** 2)
        / (np.sqrt(2 * np.pi) * sigma * frac)
    )
    t = (x - lo) / (hi - lo)
    bkg = (fit["background_left"] + (fit["background_right"] - fit["background_left"]) * t) / width
    return (sig + bkg) / n_window


def plot_mass(
    h_original,
    h_generated,
    fit_original: dict[str, Any] | None = None,
    fit_generated: dict[str, Any] | None = None,
    *,
    style: str = "CMS",
    log: bool = False,
):
    """Parent invariant mass (GeV), original vs generated, with the fitted peaks in the legend.

    The histograms set the range drawn (the report's cover the whole original range);
    each fit's curve is drawn over its own window. ``log`` draws the y axis on a log
    scale, which shows the tails a linear axis flattens into the baseline.
    """
    import mplhep as hep

    edges = h_original.axes[0].edges
    with _style(style):
        fig = _figure(figsize=(9, 8), layout="constrained")
        ax = fig.subplots()
        for h, fit, kw, ls in (
            (h_original, fit_original, ORIGINAL, "-"),
            (h_generated, fit_generated, GENERATED, "--"),
        ):
            v, e = _density(h)
            hep.histplot(
                v, edges, yerr=e, histtype="errorbar", markersize=4, ax=ax, flow=None, **kw
            )
            if fit is not None and fit.get("converged") and np.isfinite(fit.get("mean", np.nan)):
                text = (
                    rf"fit: $\mu$ = {1e3 * fit['mean']:.2f} ± {1e3 * fit['mean_err']:.2f} MeV, "
                    rf"$\sigma$ = {1e3 * fit['sigma']:.2f} ± {1e3 * fit['sigma_err']:.2f} MeV"
                )
                x = np.linspace(fit["window_lo"], fit["window_hi"], 400)
                # normalised like the histogram: by all its candidates, not the window's
                ax.plot(
                    x,
                    _fit_density(x, fit, h.values().sum()),
                    ls=ls,
                    color=kw["color"],
                    lw=1.5,
                    label=text,
                )
        ax.set_xlabel(h_original.axes[0].label)
        ax.set_ylabel(r"$1/N\;dN/dm$ [1/GeV]")
        dens = np.concatenate([_density(h_original)[0], _density(h_generated)[0]])
        ymax = max(float(np.max(dens)), 1e-300)
        positive = dens[dens > 0]
        if log and positive.size:
            ax.set_yscale("log")
            # two decades of headroom keep the four-line legend above the peak
            ax.set_ylim(0.5 * float(np.min(positive)), 100 * ymax)
        else:
            # Headroom so that the four-line legend never covers the peak.
            ax.set_ylim(0, 1.5 * ymax)
        ax.set_xlim(edges[0], edges[-1])
        ax.legend(loc="upper left", fontsize=14, frameon=False)
    return fig


def plot_dalitz(
    original_p4: np.ndarray,
    generated_p4: np.ndarray,
    objects: list[str],
    *,
    original_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
    bins: int = 60,
    style: str = "CMS",
):
    """Dalitz plots m12^2 vs m23^2 (GeV^2) of original and generated three-body samples.

    Returns (figure, (h_original, h_generated)) with the 2D hist objects, both
    normalised to unit integral and drawn on a common colour scale.
    """
    import hist
    import mplhep as hep

    xo, yo = dalitz_variables(original_p4)
    xg, yg = dalitz_variables(generated_p4)
    ex = common_edges(xo, bins=bins, quantiles=(0.0, 1.0))
    ey = common_edges(yo, bins=bins, quantiles=(0.0, 1.0))
    xl = rf"$m^2$({objects[0]} {objects[1]}) [GeV$^2$]"
    yl = rf"$m^2$({objects[1]} {objects[2]}) [GeV$^2$]"
    hists = []
    for x, y, w in ((xo, yo, original_weights), (xg, yg, generated_weights)):
        h = hist.Hist(
            hist.axis.Variable(ex, name="m12sq", label=xl),
            hist.axis.Variable(ey, name="m23sq", label=yl),
            storage=hist.storage.Weight(),
        )
        h.fill(x, y, weight=1.0 if w is None else w)
        hists.append(h)
    dens = [h.values() / max(h.values().sum(), 1e-300) for h in hists]
    vmax = max(float(np.max(d)) for d in dens)
    with _style(style):
        fig = _figure(figsize=(17, 7.5), layout="constrained")
        axes = fig.subplots(1, 2)
        for ax, d, title in zip(axes, dens, ("Original", "Generated"), strict=True):
            masked = np.where(d > 0, d, np.nan)
            hep.hist2dplot(masked, ex, ey, ax=ax, cmin=0, cmax=vmax, flow=None, cbar=False)
            ax.set_xlabel(xl)
            ax.set_ylabel(yl)
            ax.set_title(title, fontsize=20)
        mappable = axes[1].collections[0]
        fig.colorbar(mappable, ax=axes, label="Fraction of candidates / bin", shrink=0.9)
    return fig, tuple(hists)


def plot_loss(history: dict[str, list[float]], *, style: str = "CMS"):
    """Loss per epoch from ``history`` {"train": [...], "val": [...]} (any keys are drawn)."""
    with _style(style):
        fig = _figure(figsize=(9, 7), layout="constrained")
        ax = fig.subplots()
        positive = True
        for key, values in history.items():
            v = np.asarray(values, dtype=float)
            if v.size == 0:
                continue
            positive &= bool(np.all(v > 0))
            ax.plot(
                np.arange(1, v.size + 1),
                v,
                marker="o",
                ms=3,
                label={"train": "Training", "val": "Validation"}.get(key, key),
            )
        if positive:
            # Losses fall over orders of magnitude early on; a log scale keeps the end readable.
            ax.set_yscale("log")
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Loss")
        ax.legend(loc="upper right")
    return fig


def plot_amplification(result: dict[str, Any], *, style: str = "CMS"):
    """Quantile MSE vs real-sample size, the 1/n fit, and the generated sample's MSE."""
    with _style(style):
        fig = _figure(figsize=(9, 7.5), layout="constrained")
        ax = fig.subplots()
        sizes = np.asarray(result["sizes"], dtype=float)
        ax.errorbar(
            sizes,
            result["mse_real"],
            yerr=result["mse_real_err"],
            fmt="o",
            color="black",
            label="Real subsamples",
        )
        n_eq = result["n_equivalent"]
        hi = max(sizes[-1], n_eq if np.isfinite(n_eq) else sizes[-1]) * 1.5
        grid = np.geomspace(sizes[0], hi, 200)
        ax.plot(
            grid,
            result["fit_a"] / grid + result["fit_c"],
            color="black",
            ls="--",
            label=r"Fit $a/n + c$",
        )
        m, me = result["mse_generated"], result["mse_generated_err"]
        ax.axhspan(m - me, m + me, color="tab:red", alpha=0.25)
        ax.axhline(m, color="tab:red", label=f"Generated ({result['n_generated']} cand.)")
        if np.isfinite(n_eq):
            ax.axvline(
                n_eq,
                color="tab:red",
                ls=":",
                label=rf"$n_\mathrm{{equiv}}$ = {n_eq:.0f} ± {result['n_equivalent_err']:.0f}",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Real sample size $n$ [candidates]")
        ax.set_ylabel("Quantile-bin MSE")
        ax.legend(loc="lower left", fontsize=14)
    return fig
