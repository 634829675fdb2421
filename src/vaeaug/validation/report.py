"""One call that validates a generated sample against the original and writes the report.

:func:`validate` computes every metric of :mod:`vaeaug.validation`, draws every
plot and writes into ``out_dir``: the plots (PNG, PDF), ``histograms.root``,
``summary.json`` and ``report.md``. Every file is written to a temporary name
in ``out_dir`` and renamed into place, so a reader never sees a half-written file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.atomic import atomic_output as _atomic
from .amplification import amplification
from .bands import amplification_forecast, band_metrics
from .c2st import c2st_with_floor
from .features import check_sample, feature_label, feature_table, parent_mass
from .massfit import default_window, fit_mass_peak
from .memorisation import heldout_rows, memorisation
from .metrics import correlation_comparison, one_d_metrics
from .regions import check_resonances, mass_regions

__all__ = ["validate"]


def jsonable(obj: Any) -> Any:
    # JSON has no NaN or infinity; None marks "not a number / unbounded" explicitly.
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _save(fig, path_stem: Path, formats: Sequence[str], written: list[str],
          overwrite: bool = True) -> None:  # fmt: skip
    for fmt in formats:
        path = path_stem.with_suffix(f".{fmt}")
        with _atomic(path, overwrite=overwrite) as tmp:
            fig.savefig(tmp, format=fmt, dpi=110 if fmt == "png" else None)
        written.append(str(path))


def _mass_compatibility(fo: dict, fg: dict, n_sigma: float = 2.0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("mean", "sigma"):
        diff = fg.get(key, np.nan) - fo.get(key, np.nan)
        err = math.hypot(fo.get(f"{key}_err", np.nan), fg.get(f"{key}_err", np.nan))
        out[f"{key}_diff"] = diff
        out[f"{key}_pull"] = diff / err if err > 0 else np.nan
        out[f"{key}_within"] = bool(abs(diff) <= n_sigma * err)
    return out


def validate(
    original_p4: np.ndarray,
    generated_p4: np.ndarray,
    objects: list[str],
    out_dir: str | os.PathLike,
    *,
    reference_p4: np.ndarray | None = None,
    training_p4: np.ndarray | None = None,
    history: dict[str, list[float]] | None = None,
    original_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
    resonances: Mapping[str, tuple[float, float]] | None = None,
    style: str = "CMS",
    seed: int = 0,
    formats: Sequence[str] = ("png", "pdf"),
    n_bootstrap: int = 200,
    c2st_max_events: int | None = 200_000,
    n_threads: int | None = None,
    feature_plots: bool | Sequence[str] = True,
    progress: bool = True,
    overwrite: bool = True,
    member_p4: Sequence[np.ndarray] | None = None,
    shared_variance: float | None = None,
) -> dict[str, Any]:
    """Validate ``generated_p4`` (M, k, 4) against ``original_p4`` (N, k, 4) and write a report.

    Momenta are (px, py, pz, E) in GeV; ``objects`` names the k daughters.
    ``reference_p4`` (R, k, 4) is a large independent sample from the true
    distribution for the amplification estimate (skipped without it);
    ``training_p4`` (T, k, 4) is the model's training sample for the memorisation
    check (held-out candidates are the rows of ``original_p4`` not in it);
    ``history`` is the loss per epoch {"train": [...], "val": [...]}. Weights
    are per candidate, (N,) and (M,); the amplification ignores weights.
    ``resonances`` names mass windows ``{name: (lo_gev, hi_gev)}`` in GeV counted
    beside the peak and the tails (:func:`~vaeaug.validation.regions.mass_regions`).
    ``n_bootstrap`` sets the C2ST bootstrap replicas, ``c2st_max_events`` caps its
    candidates per class and ``n_threads`` its OpenMP threads. ``feature_plots``
    picks the per-feature comparison plots: True for all, False for none, or a
    list of feature names (each plot costs about a second to render); the ROOT
    file always holds every feature's histograms. Files already in ``out_dir`` are replaced
    only with ``overwrite`` (a file that appears there while this runs is never replaced
    without it: :func:`~vaeaug.io.atomic_output`). ``member_p4``: the samples of an
    ensemble's members (K arrays (M_i, k, 4) GeV, :class:`vaeaug.Ensemble`): each feature
    plot then shows the model-uncertainty band around the generated histogram (the
    members' spread, plus ``shared_variance``: the error they share, measured out of bag
    at training time, :attr:`vaeaug.Ensemble.shared_variance`; None when the model file
    has no such check, the band is then the spread alone and the report says so), and the
    summary's ``ensemble`` holds, per feature and in total, χ² with statistical errors and
    with statistical and model errors combined (``chi2_stat``, ``chi2_stat_model``,
    ``ndf``), the band's ``coverage`` and ``band_over_stat`` (:mod:`vaeaug.validation.bands`).

    Returns the summary written to ``summary.json``: ``n_original``,
    ``n_generated``, ``objects``, ``seed``, ``features`` (names), ``one_d``
    (per feature, see :func:`~vaeaug.validation.metrics.one_d_metrics`),
    ``correlations`` (:func:`~vaeaug.validation.metrics.correlation_comparison`),
    ``c2st`` (:func:`~vaeaug.validation.c2st.c2st_with_floor`), ``mass``
    (``original``/``generated`` fits of :func:`~vaeaug.validation.massfit.fit_mass_peak`
    and their ``compatibility``), ``mass_regions``
    (:func:`~vaeaug.validation.regions.mass_regions`), ``amplification``, ``memorisation``,
    ``floor_table`` (one row per headline metric with ``within_floor``), ``ensemble``
    (with ``member_p4``) and
    ``files`` (every path written). Non-finite numbers are written as null.
    """
    import matplotlib

    matplotlib.use("Agg")
    from tqdm.auto import tqdm

    original = check_sample(original_p4, objects, name="original_p4")
    generated = check_sample(generated_p4, objects, name="generated_p4")
    wo = _checked_weights("original_weights", original_weights, len(original))
    wg = _checked_weights("generated_weights", generated_weights, len(generated))
    resonances = check_resonances(resonances)
    _check_feature_plots(feature_plots, original, objects)
    members = None
    if member_p4 is not None:
        if len(member_p4) < 2:
            raise ValueError(
                f"member_p4 needs the samples of 2 or more members, got {len(member_p4)}"
            )
        members = [
            check_sample(m, objects, name=f"member_p4[{i}]") for i, m in enumerate(member_p4)
        ]
    out = Path(out_dir)
    (out / "features").mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    bar = tqdm(total=len(_STAGES), desc="validate", disable=not progress, leave=False)

    def stage(i: int) -> None:
        bar.set_postfix_str(_STAGES[i])
        if i:
            bar.update(1)

    stage(0)
    names, fo = feature_table(original, objects)
    _, fg = feature_table(generated, objects)
    summary: dict[str, Any] = {"n_original": len(original), "n_generated": len(generated),
                               "objects": list(objects), "seed": seed, "features": names,
                               "spread_definition": "IQR/1.349 of the original"}  # fmt: skip
    mass = _metrics(summary, original, generated, fo, fg, wo, wg, stage,
                    reference_p4=reference_p4, training_p4=training_p4, n_bootstrap=n_bootstrap,
                    c2st_max_events=c2st_max_events, n_threads=n_threads,
                    resonances=resonances)  # fmt: skip

    stage(7)
    figures = _Figures(out, formats, style, written, overwrite)
    fm = None if members is None else [feature_table(m, objects)[1] for m in members]
    shared = 0.0 if shared_variance is None else float(shared_variance)
    hists = figures.features(fo, fg, names, objects, wo, wg, feature_plots, fm, shared)
    if fm is not None:
        summary["ensemble"] = _ensemble_summary(figures.bands, [len(m) for m in fm],
                                                shared_variance)  # fmt: skip
        forecast = amplification_forecast(fg, fm, len(original), shared_variance=shared)
        holdout = summary["amplification"]
        if holdout.get("available"):
            forecast["holdout_amplification"] = holdout["amplification"]
            forecast["forecast_over_holdout"] = (
                forecast["amplification"] / holdout["amplification"]
                if holdout["amplification"] > 0
                else float("nan")
            )
        summary["ensemble"]["forecast"] = forecast
    hists |= figures.summary_plots(summary, names, objects, mass, original, generated, wo, wg,
                                   history)  # fmt: skip

    stage(8)
    _write_root(out / "histograms.root", hists, written, overwrite)

    stage(9)
    summary["floor_table"] = _floor_table(summary)
    summary["files"] = [*written, str(out / "summary.json"), str(out / "report.md")]
    summary = jsonable(summary)
    with _atomic(out / "summary.json", overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    with _atomic(out / "report.md", overwrite=overwrite) as tmp:
        tmp.write_text(_markdown(summary, out, formats))
    bar.update(1)
    bar.close()
    return summary


def _metrics(summary: dict[str, Any], original: np.ndarray, generated: np.ndarray,
             fo: np.ndarray, fg: np.ndarray, wo: np.ndarray | None, wg: np.ndarray | None,
             stage: Callable[[int], None], *, reference_p4: np.ndarray | None,
             training_p4: np.ndarray | None, n_bootstrap: int, c2st_max_events: int | None,
             n_threads: int | None,
             resonances: dict[str, tuple[float, float]]) -> _MassWindow:  # fmt: skip
    """Stages 1-6 of :func:`validate`, into ``summary``: the metrics of the feature tables
    ``fo`` (N, F) and ``fg`` (M, F) of the samples ``original`` and ``generated``."""
    names, objects, seed = summary["features"], summary["objects"], summary["seed"]
    stage(1)
    summary["one_d"] = one_d_metrics(
        fo, fg, names, original_weights=wo, generated_weights=wg, seed=seed
    )
    stage(2)
    summary["correlations"] = correlation_comparison(
        fo, fg, original_weights=wo, generated_weights=wg, seed=seed
    )
    stage(3)
    summary["c2st"] = c2st_with_floor(
        fo,
        fg,
        original_weights=wo,
        generated_weights=wg,
        seed=seed,
        n_bootstrap=n_bootstrap,
        max_events=c2st_max_events,
        n_threads=n_threads,
    )
    stage(4)
    mass = _MassWindow.fit(original, generated, wo, wg)
    summary["mass"] = {
        "original": mass.fit_o,
        "generated": mass.fit_g,
        "compatibility": _mass_compatibility(mass.fit_o, mass.fit_g),
    }
    summary["mass_regions"] = mass_regions(mass.mo, mass.mg, real_weights=wo,
                                           generated_weights=wg, resonances=resonances)  # fmt: skip
    stage(5)
    ref = (
        None
        if reference_p4 is None
        else feature_table(check_sample(reference_p4, objects, name="reference_p4"), objects)[1]
    )
    summary["amplification"] = amplification(fg, fo, ref, seed=seed)
    stage(6)
    summary["memorisation"] = _memorisation(original, fo, fg, training_p4, objects, seed)
    return mass


#: The stages of :func:`validate`, as its progress bar names them.
_STAGES = ("features", "1D metrics", "correlations", "C2ST", "mass fit", "amplification",
           "memorisation", "plots", "ROOT file", "report")  # fmt: skip


def _check_feature_plots(
    feature_plots: bool | Sequence[str], original: np.ndarray, objects: list[str]
) -> None:
    """Refuses a list of ``feature_plots`` that names a feature the report does not have."""
    if isinstance(feature_plots, bool):
        return
    valid = feature_table(original[:1], objects)[0]
    unknown = sorted(set(feature_plots) - set(valid))
    if unknown:
        raise ValueError(f"feature_plots names unknown features {unknown}; valid: {valid}")


def _plots():
    """:mod:`vaeaug.validation.plots`, imported on first use (matplotlib is heavy)."""
    from . import plots

    return plots


def _checked_weights(name: str, w: np.ndarray | None, n: int) -> np.ndarray | None:
    """Per-candidate weights as float64 (n,), or None; refuses another shape."""
    if w is None:
        return None
    if np.shape(w) != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {np.shape(w)}")
    return np.asarray(w, dtype=np.float64)


def _memorisation(
    original: np.ndarray,
    fo: np.ndarray,
    fg: np.ndarray,
    training_p4: np.ndarray | None,
    objects: list[str],
    seed: int,
) -> dict:
    """The memorisation check of generated features ``fg`` against the training sample;
    the held-out candidates are the rows of ``original`` (features ``fo``) not in it."""
    if training_p4 is None:
        return {"available": False, "reason": "no training sample given"}
    training = check_sample(training_p4, objects, name="training_p4")
    _, ft = feature_table(training, objects)
    mask = heldout_rows(original.reshape(len(original), -1), training.reshape(len(training), -1))
    return memorisation(fg, ft, fo[mask], seed=seed)


@dataclasses.dataclass
class _MassWindow:
    """The parent masses (GeV) of both samples, the fit window (GeV) and both peak fits."""

    mo: np.ndarray
    mg: np.ndarray
    window: tuple[float, float]
    fit_o: dict
    fit_g: dict

    @classmethod
    def fit(cls, original: np.ndarray, generated: np.ndarray, wo: np.ndarray | None,
            wg: np.ndarray | None) -> _MassWindow:  # fmt: skip
        mo, mg = parent_mass(original), parent_mass(generated)
        window = default_window(mo, wo)
        fit_o = fit_mass_peak(mo, wo, window=window)
        fit_g = fit_mass_peak(mg, wg, window=window)
        return cls(mo, mg, window, fit_o, fit_g)

    def edges(self, max_bins: int = 400) -> np.ndarray:
        """Bin edges (B + 1,) in GeV over the whole real mass range (padded 5% each side),
        as narrow as the fit's bins unless that takes more than ``max_bins`` bins."""
        fit_width = (self.window[1] - self.window[0]) / self.fit_o["bins"]
        span = 1.1 * float(np.ptp(self.mo))
        bins = int(np.clip(np.ceil(span / fit_width), 20, max_bins))
        return _plots().common_edges(self.mo, bins=bins, quantiles=(0.0, 1.0))


@dataclasses.dataclass
class _Figures:
    """Draws the report's figures into ``out`` in every format, listing the files written."""

    out: Path
    formats: Sequence[str]
    style: str
    written: list[str]
    overwrite: bool = True

    def save(self, fig, stem: str) -> None:
        _save(fig, self.out / stem, self.formats, self.written, self.overwrite)

    bands: dict[str, dict] = dataclasses.field(default_factory=dict)

    def features(self, fo: np.ndarray, fg: np.ndarray, names: list[str], objects: list[str],
                 wo: np.ndarray | None, wg: np.ndarray | None,
                 feature_plots: bool | Sequence[str], fm: Sequence[np.ndarray] | None = None,
                 shared_variance: float = 0.0) -> dict[str, Any]:  # fmt: skip
        """Each feature's histograms (all of them, for the ROOT file) and plots (those
        ``feature_plots`` picks); with the members' feature tables ``fm`` (K of (M_i, F)),
        each feature's band metrics (with the members' ``shared_variance``) into
        ``self.bands`` and its band into the plot and the ROOT file (``model_band/<name>``:
        σ_model in the generated histogram's counts)."""
        plots = _plots()
        hists: dict[str, Any] = {}
        for f, name in enumerate(names):
            edges = plots.common_edges(fo[:, f], fg[:, f])
            label = feature_label(name, objects)
            band = None
            if fm is not None:
                self.bands[name] = band_metrics(fo[:, f], fg[:, f], [m[:, f] for m in fm], edges,
                                                original_weights=wo, generated_weights=wg,
                                                shared_variance=shared_variance)  # fmt: skip
                band = self.bands[name]["band"]
            ho, hg = plots.comparison_histograms(
                fo[:, f],
                fg[:, f],
                edges,
                name=name,
                label=label,
                original_weights=wo,
                generated_weights=wg,
            )
            hists[f"original/{name}"], hists[f"generated/{name}"] = ho, hg
            if band is not None:
                hb = hg.copy().reset()
                hb.view().value = band * hg.values().sum()
                hists[f"model_band/{name}"] = hb
            if feature_plots is True or (feature_plots and name in feature_plots):
                self.save(plots.plot_feature(ho, hg, style=self.style, label=label, band=band),
                          f"features/{name}")  # fmt: skip
        return hists

    def summary_plots(self, summary: dict[str, Any], names: list[str], objects: list[str],
                      mass: _MassWindow, original: np.ndarray, generated: np.ndarray,
                      wo: np.ndarray | None, wg: np.ndarray | None,
                      history: dict[str, list[float]] | None) -> dict[str, Any]:  # fmt: skip
        """The correlation, mass, Dalitz (three bodies), loss (with a ``history``) and
        amplification plots; returns the mass window's and the Dalitz plot's histograms."""
        plots, style, hists = _plots(), self.style, {}
        for method in ("pearson", "spearman"):
            c = summary["correlations"][method]
            fig = plots.plot_correlations(
                c["original"], c["generated"], names, style=style, method=method.capitalize()
            )
            self.save(fig, f"correlations_{method}")
        hmo, hmg = plots.comparison_histograms(
            mass.mo,
            mass.mg,
            mass.edges(),
            name="m",
            label=feature_label("m", objects),
            original_weights=wo,
            generated_weights=wg,
        )
        hists["original/mass"], hists["generated/mass"] = hmo, hmg
        for log, stem in ((False, "mass"), (True, "mass_log")):
            fig = plots.plot_mass(hmo, hmg, mass.fit_o, mass.fit_g, style=style, log=log)
            self.save(fig, stem)
        if len(objects) == 3:
            fig, (hdo, hdg) = plots.plot_dalitz(
                original, generated, objects, original_weights=wo, generated_weights=wg,
                style=style,
            )  # fmt: skip
            hists["original/dalitz"], hists["generated/dalitz"] = hdo, hdg
            self.save(fig, "dalitz")
        if history:
            self.save(plots.plot_loss(history, style=style), "loss")
        if summary["amplification"].get("available"):
            self.save(plots.plot_amplification(summary["amplification"], style=style),
                      "amplification")  # fmt: skip
        return hists


def _ensemble_summary(bands: dict[str, dict], n_each: list[int],
                      shared_variance: float | None) -> dict[str, Any]:  # fmt: skip
    """The summary's ``ensemble``: per feature and summed over features."""
    per = {name: {k: v for k, v in b.items() if k != "band"} for name, b in bands.items()}
    ndf = sum(b["ndf"] for b in per.values())
    covered = sum(b["coverage"] * b["ndf"] for b in per.values() if b["ndf"])
    return {
        "members": len(n_each),
        "n_each": n_each,
        "chi2_stat": sum(b["chi2_stat"] for b in per.values()),
        "chi2_stat_model": sum(b["chi2_stat_model"] for b in per.values()),
        "ndf": ndf,
        "coverage": covered / ndf if ndf else float("nan"),
        "shared_variance": shared_variance,
        "band_definition": "members' spread of bin fractions less their sampling variance"
        + (
            " (no out-of-bag check in the model file: the shared error is not in the band)"
            if shared_variance is None
            else " plus their shared error, shared_variance x p(1 - p), measured out of bag"
        )
        + " (vaeaug.validation.bands)",
        "features": per,
    }


def _write_root(path: Path, hists: dict[str, Any], written: list[str],
                overwrite: bool = True) -> None:  # fmt: skip
    """Every histogram into the ROOT file ``path``, keyed ``original/<name>`` and
    ``generated/<name>``."""
    import uproot

    with _atomic(path, overwrite=overwrite) as tmp:
        with uproot.recreate(tmp) as rf:
            for key, h in hists.items():
                rf[key] = h
    written.append(str(path))


def _floor_table(s: dict[str, Any]) -> list[dict[str, Any]]:
    """Headline metrics beside their real-vs-real floor, one row each."""
    rows = []
    c = s["c2st"]
    rows.append(
        {
            "metric": "C2ST AUC",
            "value": f"{c['test']['auc']:.3f} ± {c['test']['auc_err']:.3f}",
            "floor": f"{c['floor']['auc']:.3f} ± {c['floor']['auc_err']:.3f}",
            "within_floor": c["within_floor"],
        }
    )
    one_d = s["one_d"]
    n_in = sum(v["within_floor"] for v in one_d.values())
    worst = max(one_d, key=lambda k: one_d[k]["w1_norm"] / max(one_d[k]["w1_norm_floor"], 1e-300))
    rows.append(
        {
            "metric": "W1/spread, features within 2x floor",
            "value": f"{n_in}/{len(one_d)} (worst: {worst} {one_d[worst]['w1_norm']:.3g})",
            "floor": f"{one_d[worst]['w1_norm_floor']:.3g}",
            "within_floor": n_in == len(one_d),
        }
    )
    for method in ("pearson", "spearman"):
        m = s["correlations"][method]
        rows.append(
            {
                "metric": f"{method.capitalize()} correlation RMS diff (max)",
                "value": f"{m['rms_diff']:.3f} ({m['max_abs_diff']:.3f})",
                "floor": f"{m['rms_diff_floor']:.3f} ({m['max_abs_diff_floor']:.3f})",
                "within_floor": m["within_floor"],
            }
        )
    comp = s["mass"]["compatibility"]
    for key, label in (("mean", "Mass peak position"), ("sigma", "Mass peak width")):
        rows.append(
            {
                "metric": f"{label} (generated − original)",
                "value": f"{1e3 * comp[f'{key}_diff']:.2f} MeV ({comp[f'{key}_pull']:.1f} σ)",
                "floor": "|pull| ≤ 2",
                "within_floor": comp[f"{key}_within"],
            }
        )
    return rows


def _fmt(x: Any, spec: str = ".3g") -> str:
    return "n/a" if x is None else format(x, spec)


def _bounds(lo: float | None, hi: float | None) -> str:
    """A region [lo, hi) in GeV as the report prints it; None is unbounded (JSON's null)."""
    if lo is None:
        return f"< {hi:.4f}"
    if hi is None:
        return f"≥ {lo:.4f}"
    return f"{lo:.4f} – {hi:.4f}"


def _regions_markdown(r: dict[str, Any]) -> list[str]:
    """The table of :func:`~vaeaug.validation.regions.mass_regions` (JSON form) and the
    regions it dropped."""
    lines = [
        "",
        "## Mass regions",
        "",
        f"Share of candidates per parent-mass region [lo, hi): the peak is the original's "
        f"median ± {r['n_widths']:g} robust half-widths, the tails lie below and above it; "
        "binomial errors (Kish effective counts with weights).",
        "",
        "| Region | Mass [GeV] | Original fraction | Generated fraction | Generated / original |",
        "|---|---|---|---|---|",
    ]
    for g in r["regions"]:
        lines.append(
            f"| {g['name']} | {_bounds(g['lo_gev'], g['hi_gev'])} "
            f"| {_fmt(g['real_fraction'], '.4f')} ± {_fmt(g['real_err'], '.4f')} "
            f"| {_fmt(g['generated_fraction'], '.4f')} ± {_fmt(g['generated_err'], '.4f')} "
            f"| {_fmt(g['ratio'], '.3f')} ± {_fmt(g['ratio_err'], '.3f')} |"
        )
    dropped = ", ".join(
        f"{g['name']} ({_bounds(g['lo_gev'], g['hi_gev'])} GeV: original "
        f"{_fmt(g['real_fraction'], '.4f')}, generated {_fmt(g['generated_fraction'], '.4f')})"
        for g in r["dropped"]
    )
    lines += ["", f"Not compared, under {r['min_fraction']:.0%} of the original: "
              f"{dropped or 'none'}."]  # fmt: skip
    return lines


def _band_sentence(shared_variance: float | None) -> str:
    """What the report's band is made of."""
    spread = "The band is the members' spread per bin (their own sampling noise taken out)"
    if shared_variance is None:
        return (f"{spread} only: the model file has no out-of-bag measurement, so an error every "
                "member shares is not in it, and the forecast below is an upper bound.")  # fmt: skip
    return (f"{spread} plus the error they share, measured at training time on their "
            f"out-of-bag candidates: {_fmt(shared_variance)} × p(1 − p) per bin.")  # fmt: skip


def _ensemble_markdown(e: dict[str, Any]) -> list[str]:
    """The report's section on an ensemble's model-uncertainty band."""
    lines = [
        "",
        f"## Model uncertainty: ensemble of {e['members']} members",
        "",
        _band_sentence(e["shared_variance"]),
        "The χ² of the normalised feature histograms uses statistical errors only, then",
        "statistical and model errors combined in quadrature. Coverage: the fraction of bins",
        "where |generated − original| is within the combined error (≈ 68% expected).",
        "",
        f"Total over features: χ²_stat = {_fmt(e['chi2_stat'])}, "
        f"χ²_stat+model = {_fmt(e['chi2_stat_model'])} for {e['ndf']} bins; coverage "
        f"{_fmt(e['coverage'])}.",
        "",
        "| Feature | χ²_stat / ndf | χ²_stat+model / ndf | coverage | band / real stat. error |",
        "|---|---|---|---|---|",
    ]
    f = e["forecast"]
    compare = (
        f" (the reference's holdout amplification: {_fmt(f['holdout_amplification'])})"
        if "holdout_amplification" in f
        else ""
    )
    lines[8:8] = [
        f"Amplification forecast from the band (no holdout needed): worth "
        f"{_fmt(f['n_equivalent'])} real candidates, "
        f"{_fmt(f['amplification'])} × the original sample{compare}.",
        "",
    ]
    for name, b in e["features"].items():
        ndf = b["ndf"] or float("nan")
        lines.append(
            f"| {name} | {_fmt(b['chi2_stat'] / ndf)} | {_fmt(b['chi2_stat_model'] / ndf)} "
            f"| {_fmt(b['coverage'])} | {_fmt(b['band_over_stat'])} |"
        )
    return lines


def _markdown(s: dict[str, Any], out: Path, formats: Sequence[str]) -> str:
    ext = "png" if "png" in formats else formats[0]
    lines = [
        "# vaeaug validation report",
        "",
        f"Original: {s['n_original']} candidates; generated: {s['n_generated']} candidates; "
        f"daughters: {', '.join(s['objects'])}; seed {s['seed']}.",
        "",
        "## Metrics against the real-vs-real floor",
        "",
        "The floor is the same metric between two random halves of the original,",
        "rescaled to the sample sizes compared (C2ST: bootstrap errors, within 2σ).",
        "",
        "| Metric | Generated vs original | Floor (original vs original) | Within floor |",
        "|---|---|---|---|",
    ]
    for row in s["floor_table"]:
        mark = "yes" if row["within_floor"] else "**no**"
        lines.append(f"| {row['metric']} | {row['value']} | {row['floor']} | {mark} |")
    m = s["mass"]
    lines += [
        "",
        "## Parent mass peak",
        "",
        "| | fit mean [GeV] | fit σ [GeV] | median [GeV] | 16–84% half-width [GeV] |",
        "|---|---|---|---|---|",
    ]
    for key in ("original", "generated"):
        f = m[key]
        lines.append(
            f"| {key} | {_fmt(f.get('mean'), '.5f')} ± {_fmt(f.get('mean_err'), '.5f')} "
            f"| {_fmt(f.get('sigma'), '.5f')} ± {_fmt(f.get('sigma_err'), '.5f')} "
            f"| {_fmt(f['robust_median'], '.5f')} ± {_fmt(f['robust_median_err'], '.5f')} "
            f"| {_fmt(f['robust_half_width'], '.5f')} ± {_fmt(f['robust_half_width_err'], '.5f')} |"
        )
    lines += _regions_markdown(s["mass_regions"])
    if "ensemble" in s:
        lines += _ensemble_markdown(s["ensemble"])

    def amplification_line(a: dict) -> str:
        extra = " (extrapolated beyond the largest real subsample)" if a["extrapolated"] else ""
        return (
            f"The generated sample is worth {_fmt(a['n_equivalent'])} ± {_fmt(a['n_equivalent_err'])} "
            f"real candidates, {_fmt(a['amplification'])} × the original sample{extra}."
        )

    def memorisation_line(mem: dict) -> str:
        verdict = "**flagged**" if mem["flagged"] else "not flagged"
        return (
            f"Median distance to the nearest training candidate, generated / held-out: "
            f"{_fmt(mem['ratio_of_medians'])}; fraction of generated closer than the held-out "
            f"1st percentile: {_fmt(mem['fraction_below_p1'])} (≈ 0.01 expected): {verdict}."
        )

    for key, title, line in (
        ("amplification", "Amplification (GANplifying)", amplification_line),
        ("memorisation", "Memorisation", memorisation_line),
    ):
        part = s[key]
        available = part.get("available")
        lines += [
            "",
            f"## {title}",
            "",
            line(part) if available else f"Not available: {part.get('reason', '')}.",
        ]
    lines += ["", "## Plots", ""]
    for stem, title in (
        ("mass", "Parent invariant mass"),
        ("mass_log", "Parent invariant mass, log scale"),
        ("dalitz", "Dalitz plot"),
        ("correlations_pearson", "Pearson correlations"),
        ("amplification", "Amplification"),
        ("loss", "Loss curves"),
    ):
        if (out / f"{stem}.{ext}").exists():
            lines.append(f"![{title}]({stem}.{ext})")
    plotted = [n for n in s["features"] if (out / "features" / f"{n}.{ext}").exists()]
    if plotted:
        links = ", ".join(f"[{n}](features/{n}.{ext})" for n in plotted)
        lines += ["", f"Per-feature comparisons: {links}."]
    lines.append("")
    return "\n".join(lines)
