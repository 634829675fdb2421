"""Do vaeaug-multiplied training sets improve a signal-vs-background classifier?

For each N_sig, N_sig signal and N_bkg = 3 N_sig combinatorial-background candidates are
drawn from the training file (one independent subset per repetition). Four classifiers,
a gradient-boosted tree (``gbdt``, scikit-learn's HistGradientBoostingClassifier) and an
MLP (``mlp``), each on the 12 raw momentum components (``raw``) and on physics features
(``physics``: the parent and pair masses, the parent's and daughters' pT and eta), are
trained on

- ``real``: the real candidates only;
- ``signal xK``: the signal multiplied by vaeaug (``augment_training_set(...,
  classes="signal")``), background real only, K = 5, 20;
- ``both xK``: both classes multiplied (one model per class);
- ``smeared xK``, a control: K copies of every real candidate of both classes with each
  daughter's momentum scaled by (1 + 0.005 g), g ~ N(0, 1) (the tracker resolution
  again), in place of the generated ones;
- ``oracle xK``: K N_sig more *real* signal and 3 K N_sig more real background, the
  totals of ``both xK`` but all real: what a perfect generator would give. Drawn from
  the rest of the training file where it is large enough (not x20 at N_sig = 5,000);
  the larger oracles reuse much of the file across repetitions, so their standard
  errors are underestimates.

Every set is a :class:`vaeaug.TrainingSet`: its weight rule keeps each class's total
(real and generated candidates weigh 1 / (1 + K) each); the classifier gets those
weights with both classes brought to the same total and rescaled to mean 1 (the MLP's L2
term and the tree's minimum hessian depend on the weight scale, which would otherwise
differ between sets). The models are fitted on the subset only, once per subset and
class, and reused for every factor; the generated pions are put in the files' order
(pi1 = higher pT, ``identical=[("pi1", "pi2")]``; ``--no-order`` switches it off).

Each classifier is judged on the whole reference file: ROC AUC and the signal efficiency
at 1% and 0.1% background efficiency. Means and standard errors over the subsets; the
gain over ``real`` is a paired difference (same subset and seed), and ``gap closed`` is
the gain of a set over the gain of the oracle with the same totals.

The whole study (hours on one CPU core; pieces can run in parallel and be merged)::

    OMP_NUM_THREADS=1 python bench/classifier.py --figures docs/figures   # -> bench/results/classifier/

In pieces: ``--sizes``, ``--reps``/``--first-rep``, ``--methods``, ``--classifiers`` and
``--features`` restrict a run; ``--from-json A.json B.json ...`` merges runs (``--append``
merges into the record's ``latest.json``). ``--quick`` is the CI smoke test (a minute; the numbers mean
nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # the bench folder is not a package: found via sys.path
    OBJECTS,
    canonical_order,
    data_dir,
    efficiency_at,
    load_p4,
    machine,
    markdown_table,
    one_thread,
    write_json,
)
from _record import add_results_arguments, record

from vaeaug.datasets import KAON_MASS, PION_MASS  # PDG, via the particle package

__all__ = ["main", "run", "smear", "summarise", "tables"]

#: Working points: background efficiency -> the metric's name.
WORKING_POINTS = {0.01: "eff_1pct", 0.001: "eff_0p1pct"}
METRICS = ["auc", *WORKING_POINTS.values()]
METRIC_LABELS = {"auc": "ROC AUC", "eff_1pct": "sig. eff. @ 1% bkg",
                 "eff_0p1pct": "sig. eff. @ 0.1% bkg"}  # fmt: skip
#: Background-efficiency grid (log) on which ROC curves are stored and averaged.
ROC_GRID = np.geomspace(1e-4, 1.0, 81)
CLASSIFIERS = ("gbdt", "mlp")
FEATURES = ("raw", "physics")
FAMILIES = ("signal", "both", "smeared", "oracle")
#: The D+ pions, which the shared files order by decreasing pT.
IDENTICAL = [("pi1", "pi2")]
KEY = ("n_sig", "rep", "method", "classifier", "features")

QUICK_VAEAUG = {
    "config": {"latent_dim": 4, "hidden": (32, 32), "prior_transforms": 1,
               "prior_hidden": (16, 16), "decoder": "gaussian"},
    "train": {"epochs": 4, "patience": 2, "kl_warmup_epochs": 1, "eval_events": 500},
}  # fmt: skip


def smear(p4: np.ndarray, copies: int, rng: np.random.Generator, rel: float = 0.005) -> np.ndarray:
    """``copies`` smeared copies of ``p4`` (N, 3, 4): each daughter's 3-momentum scaled by
    (1 + rel g), E recomputed from the K, pi, pi masses (GeV). Returns (copies N, 3, 4)."""
    masses = np.array([KAON_MASS, PION_MASS, PION_MASS])
    rep = np.tile(p4, (copies, 1, 1))
    p = rep[..., :3] * (1.0 + rel * rng.standard_normal(rep.shape[:2]))[..., None]
    e = np.sqrt((p**2).sum(-1) + masses**2)
    return np.concatenate([p, e[..., None]], axis=-1)


def default_methods(factors: list[int]) -> list[str]:
    """Every training set of the study, in table order."""
    return ["real", *(f"{fam} x{k}" for fam in FAMILIES for k in factors)]


def _parse_method(method: str) -> tuple[str, int]:
    """``"both x20"`` -> ("both", 20); ``"real"`` -> ("real", 1)."""
    if method == "real":
        return "real", 1
    family, _, factor = method.partition(" x")
    return family, int(factor)


def _classifier(name: str, seed: int, quick: bool):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "gbdt":
        return HistGradientBoostingClassifier(
            max_iter=20 if quick else 300, learning_rate=0.1, early_stopping=True,
            validation_fraction=0.15, n_iter_no_change=20, random_state=seed,
            # with sample weights, sklearn finds each bin edge by its own weighted percentile:
            # --quick's 31 bins cost an eighth of the default 255's
            max_bins=31 if quick else 255,
        )  # fmt: skip
    return make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(64, 64), alpha=1e-4, batch_size=256, learning_rate_init=1e-3,
            max_iter=5 if quick else 200, early_stopping=True, validation_fraction=0.15,
            n_iter_no_change=10, random_state=seed,
        ),
    )  # fmt: skip


def _fit(clf, x, y, w):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # --quick stops the MLP after a few epochs on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        if hasattr(clf, "steps"):
            clf.fit(x, y, mlpclassifier__sample_weight=w)
        else:
            clf.fit(x, y, sample_weight=w)
    return clf


def evaluate(score_sig: np.ndarray, score_bkg: np.ndarray) -> dict[str, Any]:
    """ROC AUC, signal efficiency at each working point and on :data:`ROC_GRID`."""
    from sklearn.metrics import roc_auc_score

    y = np.concatenate([np.ones(len(score_sig)), np.zeros(len(score_bkg))])
    out: dict[str, Any] = {"auc": float(roc_auc_score(y, np.concatenate([score_sig, score_bkg])))}
    # on the ROC curve interpolated across tied scores (_common.efficiency_at)
    w = np.ones(len(score_bkg))
    for eps, name in WORKING_POINTS.items():
        out[name] = efficiency_at(score_sig, score_bkg, w, eps)
    out["roc_tpr"] = np.array([efficiency_at(score_sig, score_bkg, w, e) for e in ROC_GRID])
    return out


def _features(p4: np.ndarray, kind: str) -> np.ndarray:
    from vaeaug.validation import feature_table

    return feature_table(p4, OBJECTS, raw=kind == "raw", physics=kind == "physics")[1]


def _training_sets(s, b, *, rest_sig, rest_bkg, wanted, factors, order, seed, quick, device,
                   timing) -> dict[str, Any]:  # fmt: skip
    """The wanted :class:`vaeaug.TrainingSet` s of one subset (signal s, background b)."""
    import vaeaug

    sets = {"real": vaeaug.TrainingSet.combine(s, b, objects=OBJECTS)}
    families = {_parse_method(m)[0] for m in wanted}
    identical = IDENTICAL if order else None
    models = {}
    settings = QUICK_VAEAUG if quick else {"config": {}, "train": {}}
    needed = {"signal": bool({"signal", "both"} & families), "background": "both" in families}
    for label, (name, real) in enumerate((("background", b), ("signal", s))):
        if needed[name]:
            t0 = time.perf_counter()
            models[name] = vaeaug.fit(
                real, objects=OBJECTS, config=vaeaug.VAEConfig(**settings["config"]),
                train=vaeaug.TrainConfig(**settings["train"]),
                seed=int(np.random.SeedSequence([seed, label]).generate_state(1)[0]),
                device=device, progress=False,
            )  # fmt: skip
            timing[f"{name}_model_fit_s"] = time.perf_counter() - t0
            timing[f"{name}_model_epochs"] = models[name].provenance["epochs_run"]
    rng = np.random.default_rng([seed, 7])
    for k in factors:
        for family, classes in (("signal", "signal"), ("both", "both")):
            if f"{family} x{k}" in wanted:
                t0 = time.perf_counter()
                sets[f"{family} x{k}"] = vaeaug.augment_training_set(
                    s, b, factor=k, classes=classes, seed=seed, objects=OBJECTS,
                    signal_model=models["signal"], background_model=models.get("background"),
                    identical=identical, progress=False,
                )  # fmt: skip
                timing[f"{family}_x{k}_generate_s"] = time.perf_counter() - t0
        if f"smeared x{k}" in wanted:
            copies = [smear(x, k, rng) for x in (s, b)]
            if order:
                copies = [canonical_order(x, [(1, 2)]) for x in copies]
            sets[f"smeared x{k}"] = vaeaug.TrainingSet.combine(
                s, b, signal_generated=copies[0], background_generated=copies[1], objects=OBJECTS
            )
        if f"oracle x{k}" in wanted and len(rest_sig) >= k * len(s) and len(rest_bkg) >= k * len(b):
            # the extra real candidates take the generated ones' place, with their weights
            sets[f"oracle x{k}"] = vaeaug.TrainingSet.combine(
                s, b, signal_generated=rest_sig[: k * len(s)],
                background_generated=rest_bkg[: k * len(b)], objects=OBJECTS,
            )  # fmt: skip
    return sets


def run(
    sizes: list[int],
    *,
    reps: int,
    first_rep: int = 0,
    seed: int,
    factors: list[int],
    methods: list[str] | None = None,
    classifiers: tuple[str, ...] = CLASSIFIERS,
    features: tuple[str, ...] = FEATURES,
    order: bool = True,
    quick: bool = False,
    data: str | None = None,
    device: str = "cpu",
    progress: bool = True,
    partial: Path | None = None,
) -> dict[str, Any]:
    """Train and judge every (N_sig, subset, training set, classifier, features); returns
    the results (records, summary). Subset ``rep`` of size N_sig depends only on
    (seed, rep, N_sig), so runs of different pieces can be merged."""
    from tqdm.auto import tqdm

    folder = data_dir(data)
    sig, bkg = load_p4(folder, "train", "signal"), load_p4(folder, "train", "background")
    ref_sig = load_p4(folder, "reference", "signal")
    ref_bkg = load_p4(folder, "reference", "background")
    if quick:
        r = np.random.default_rng(seed)
        ref_sig = ref_sig[r.permutation(len(ref_sig))[:5000]]
        ref_bkg = ref_bkg[r.permutation(len(ref_bkg))[:20000]]
    reference = {kind: (_features(ref_sig, kind), _features(ref_bkg, kind)) for kind in features}

    wanted = list(dict.fromkeys(["real", *(methods or default_methods(factors))]))
    unknown = [m for m in wanted if m not in default_methods(factors)]
    if unknown:
        raise SystemExit(f"--methods {', '.join(unknown)} unknown with --factors "
                         f"{' '.join(map(str, factors))}; valid: "
                         f"{', '.join(default_methods(factors))}")  # fmt: skip
    header = {"benchmark": "classifier", "seed": seed, "quick": quick, "sizes": sizes,
              "factors": factors, "order_pions": order, "working_points": WORKING_POINTS,
              "roc_grid": ROC_GRID,
              "n_reference": {"signal": len(ref_sig), "background": len(ref_bkg)}}  # fmt: skip
    records: list[dict[str, Any]] = []
    bar = tqdm(total=reps * len(sizes), desc="classifier", unit="subset", disable=not progress)
    for rep in range(first_rep, first_rep + reps):
        for n_sig in sizes:
            if 3 * n_sig > len(bkg) or n_sig > len(sig):
                raise SystemExit(f"N_sig={n_sig} needs more candidates than the training file has")
            rng = np.random.default_rng([seed, rep, n_sig])
            perm_sig, perm_bkg = rng.permutation(len(sig)), rng.permutation(len(bkg))
            s, b = sig[perm_sig[:n_sig]], bkg[perm_bkg[: 3 * n_sig]]
            fit_seed = int(rng.integers(2**31))
            timing: dict[str, float] = {}
            bar.set_postfix_str(f"subset {rep}, N_sig {n_sig}: models")
            sets = _training_sets(s, b, rest_sig=sig[perm_sig[n_sig:]],
                                  rest_bkg=bkg[perm_bkg[3 * n_sig :]], wanted=wanted,
                                  factors=factors, order=order, seed=fit_seed, quick=quick,
                                  device=device, timing=timing)  # fmt: skip
            for method, ts in sets.items():
                bar.set_postfix_str(f"subset {rep}, N_sig {n_sig}: {method}")
                counts = ts.counts()
                reordered = {c: ts.info["per_class"][c].get("reordered") for c in counts}
                for kind in features:
                    x, y, w = ts.features(kind, balance=True)
                    w *= len(w) / w.sum()
                    for cname in classifiers:
                        t0 = time.perf_counter()
                        clf = _fit(_classifier(cname, fit_seed, quick), x, y, w)
                        fit_s = time.perf_counter() - t0
                        x_sig, x_bkg = reference[kind]
                        res = evaluate(clf.predict_proba(x_sig)[:, 1],
                                       clf.predict_proba(x_bkg)[:, 1])  # fmt: skip
                        records.append({"n_sig": n_sig, "rep": rep, "method": method,
                                        "classifier": cname, "features": kind, "fit_s": fit_s,
                                        "n_train": counts, "reordered": reordered, **res,
                                        **timing})  # fmt: skip
            bar.update(1)
            if partial is not None:
                # after every subset, so that a long run can be stopped and still be used
                write_json(partial, {**header, "records": records, "partial": True})
    bar.close()
    return {**header, "reps": sorted({r["rep"] for r in records}), "machine": machine(),
            "records": records, "summary": summarise(records)}  # fmt: skip


def _mean_sem(v: np.ndarray) -> tuple[float, float]:
    sem = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), sem


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (classifier, features, N_sig, training set): mean and standard error of each
    metric over the subsets, the paired gain over ``real``, and for the generated and
    smeared sets the fraction of the oracle's gain that they reach (``gap_closed``)."""
    keyed = {tuple(r[k] for k in KEY): r for r in records}
    groups = list(dict.fromkeys((r["classifier"], r["features"], r["n_sig"], r["method"])
                                for r in records))  # fmt: skip
    order = {m: i for i, m in enumerate(dict.fromkeys(r["method"] for r in records))}
    groups.sort(key=lambda g: (g[0], g[1], g[2], order[g[3]]))
    out = []
    for cname, kind, n_sig, method in groups:

        def values(m, reps, metric, cname=cname, kind=kind, n_sig=n_sig):
            return np.array([keyed[(n_sig, r, m, cname, kind)][metric] for r in reps])

        def reps_of(m, cname=cname, kind=kind, n_sig=n_sig):
            return {k[1] for k in keyed if (k[0], k[2], k[3], k[4]) == (n_sig, m, cname, kind)}

        reps = sorted(reps_of(method) & reps_of("real"))
        row: dict[str, Any] = {"classifier": cname, "features": kind, "n_sig": n_sig,
                               "method": method, "n_reps": len(reps)}  # fmt: skip
        if not reps:
            continue
        family, factor = _parse_method(method)
        oracle = f"oracle x{factor}"
        oracle_reps = sorted(set(reps) & reps_of(oracle)) if family != "oracle" else []
        for metric in METRICS:
            v, base = values(method, reps, metric), values("real", reps, metric)
            row[metric], row[f"{metric}_sem"] = _mean_sem(v)
            row[f"{metric}_gain"], row[f"{metric}_gain_sem"] = _mean_sem(v - base)
            if family != "real" and len(oracle_reps) > 1:
                # ratio of mean paired gains; error by the delta method with their covariance
                base_o = values("real", oracle_reps, metric)
                a = values(method, oracle_reps, metric) - base_o
                o = values(oracle, oracle_reps, metric) - base_o
                cov = np.cov(a, o, ddof=1) / len(a)
                if o.mean() != 0:
                    ratio = a.mean() / o.mean()
                    var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / o.mean() ** 2
                    error = float(np.sqrt(max(var, 0.0)))
                else:
                    ratio = error = float("nan")
                row[f"{metric}_gap_closed"] = float(ratio)
                row[f"{metric}_gap_closed_err"] = error
        row["roc_tpr"] = np.mean([keyed[(n_sig, r, method, cname, kind)]["roc_tpr"]
                                  for r in reps], axis=0)  # fmt: skip
        out.append(row)
    return out


def _fmt(x: float, e: float, spec: str = ".3f") -> str:
    return f"{x:{spec}} ± {e:{spec.lstrip('+')}}" if np.isfinite(e) else f"{x:{spec}}"


def _gain(r: dict[str, Any], metric: str) -> str:
    if r["method"] == "real":
        return "—"
    g, e = r[f"{metric}_gain"], r[f"{metric}_gain_sem"]
    z = f" ({g / e:+.1f} s.e.)" if np.isfinite(e) and e > 0 else ""
    return _fmt(g, e, "+.3f") + z


def _gap(r: dict[str, Any], metric: str) -> str:
    key = f"{metric}_gap_closed"
    if not np.isfinite(r.get(key, np.nan)):
        return "—"
    return _fmt(100 * r[key], 100 * r[f"{key}_err"], ".0f") + "%"


def tables(results: dict[str, Any]) -> str:
    """One Markdown table per classifier and feature set: the working points and the AUC,
    with the paired gain over real and the fraction of the oracle's gain reached."""
    parts = []
    summary = results["summary"]
    for cname, kind in dict.fromkeys((r["classifier"], r["features"]) for r in summary):
        rows = [
            [f"{r['n_sig']:,}", str(r["n_reps"]), r["method"],
             _fmt(r["eff_1pct"], r["eff_1pct_sem"]), _gain(r, "eff_1pct"), _gap(r, "eff_1pct"),
             _fmt(r["eff_0p1pct"], r["eff_0p1pct_sem"]), _gain(r, "eff_0p1pct"),
             _gap(r, "eff_0p1pct"), _fmt(r["auc"], r["auc_sem"], ".4f"), _gain(r, "auc")]
            for r in summary if (r["classifier"], r["features"]) == (cname, kind)
        ]  # fmt: skip
        header = ["N_sig", "subsets", "training set", "eff @ 1% bkg", "gain vs real",
                  "gap closed", "eff @ 0.1% bkg", "gain vs real", "gap closed", "ROC AUC",
                  "gain vs real"]  # fmt: skip
        parts.append(f"**{cname} on {kind} features** (mean ± standard error over the "
                     "training subsets; gains paired; gap closed = gain / the oracle's gain "
                     "with the same totals)\n\n" + markdown_table(header, rows))  # fmt: skip
    return "\n\n".join(parts)


def _panels(results):
    combos = list(dict.fromkeys((r["classifier"], r["features"]) for r in results["summary"]))
    return combos, [f"{c}, {k}" for c, k in combos]


def plots(results: dict[str, Any], folder: Path) -> list[Path]:
    """PNG plots in hist/mplhep style: ROC curves at the smallest N_sig (log background
    axis), the gains against N_sig, and the gains against the factor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.CMS)
    folder.mkdir(parents=True, exist_ok=True)
    summary = results["summary"]
    grid = np.asarray(results["roc_grid"])
    combos, titles = _panels(results)
    methods = list(dict.fromkeys(r["method"] for r in summary))
    colors = {m: plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")(i)
              for i, m in enumerate(methods)}  # fmt: skip
    styles = {m: "--" if m.startswith("oracle") else ":" if m.startswith("smeared") else "-"
              for m in methods}  # fmt: skip
    families = {"signal": "tab:blue", "both": "tab:red", "smeared": "tab:grey",
                "oracle": "black"}  # fmt: skip
    n_min = min(r["n_sig"] for r in summary)
    written = []

    def save(fig, name):
        path = folder / name
        fig.savefig(path, dpi=70)
        plt.close(fig)
        written.append(path)

    fig, axes = plt.subplots(1, len(combos), figsize=(8 * len(combos), 7.5), squeeze=False,
                             constrained_layout=True)  # fmt: skip
    for ax, combo, title in zip(axes[0], combos, titles):
        for r in summary:
            if (r["classifier"], r["features"]) == combo and r["n_sig"] == n_min:
                m = r["method"]
                ax.plot(grid, r["roc_tpr"], color=colors[m], ls=styles[m],
                        lw=2.5 if m == "real" else 1.5, label=f"{m} ({r['auc']:.4f})")  # fmt: skip
        for eps in WORKING_POINTS:
            ax.axvline(eps, color="grey", ls=":", lw=1)
        ax.set(xscale="log", xlim=(1e-4 if not results.get("quick") else 1e-3, 1), ylim=(0, 1.02),
               xlabel="background efficiency", ylabel="signal efficiency")  # fmt: skip
        ax.set_title(f"{title}, $N_{{sig}}$ = {n_min}", fontsize=16)
        ax.legend(fontsize=10, loc="lower right", title="training set (AUC)", title_fontsize=10)
    save(fig, "classifier_roc.png")

    wp = [m for m in METRICS if m != "auc"]
    fig, axes = plt.subplots(len(wp), len(combos), figsize=(6.5 * len(combos), 5.5 * len(wp)),
                             squeeze=False, sharex=True, constrained_layout=True)  # fmt: skip
    sizes = sorted({r["n_sig"] for r in summary})
    for col, combo in enumerate(combos):
        for row, metric in enumerate(wp):
            ax = axes[row, col]
            for i, m in enumerate(x for x in methods if x != "real"):
                rs = sorted((r for r in summary if (r["classifier"], r["features"]) == combo
                             and r["method"] == m), key=lambda r: r["n_sig"])  # fmt: skip
                n = np.array([r["n_sig"] for r in rs], float) * (1 + 0.025 * (i - len(methods) / 2))
                ax.errorbar(n, [r[f"{metric}_gain"] for r in rs],
                            [r[f"{metric}_gain_sem"] for r in rs], marker="o", capsize=3,
                            color=colors[m], ls=styles[m], label=m)  # fmt: skip
            ax.axhline(0, color="grey", lw=1)
            ax.set_xscale("log")
            ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
            ax.minorticks_off()
            ax.set_ylabel(f"gain in {METRIC_LABELS[metric]}", fontsize=14)
            if row == 0:
                ax.set_title(titles[col], fontsize=16)
            if row == len(wp) - 1:
                ax.set_xlabel(r"$N_{sig}$ (real signal; background 3 $N_{sig}$)", fontsize=14)
    axes[0, 0].legend(fontsize=9, ncol=2)
    save(fig, "classifier_gain.png")

    fig, axes = plt.subplots(len(wp), len(combos), figsize=(6.5 * len(combos), 5.5 * len(wp)),
                             squeeze=False, sharex=True, constrained_layout=True)  # fmt: skip
    for col, combo in enumerate(combos):
        for row, metric in enumerate(wp):
            ax = axes[row, col]
            for i, (family, color) in enumerate(families.items()):
                rs = sorted((r for r in summary if (r["classifier"], r["features"]) == combo
                             and r["n_sig"] == n_min
                             and _parse_method(r["method"])[0] == family),
                            key=lambda r: _parse_method(r["method"])[1])  # fmt: skip
                if not rs:
                    continue
                k = np.array([1] + [_parse_method(r["method"])[1] for r in rs], float)
                ax.errorbar(k * (1 + 0.03 * (i - 1.5)), [0.0] + [r[f"{metric}_gain"] for r in rs],
                            [0.0] + [r[f"{metric}_gain_sem"] for r in rs], marker="o",
                            capsize=3, color=color, ls="--" if family == "oracle" else "-",
                            label=family)  # fmt: skip
            ax.axhline(0, color="grey", lw=1)
            ax.set_xscale("log")
            factors = sorted({1, *results["factors"]})
            ax.set_xticks(factors, [str(f) for f in factors])
            ax.minorticks_off()
            ax.set_ylabel(f"gain in {METRIC_LABELS[metric]}", fontsize=14)
            if row == 0:
                ax.set_title(f"{titles[col]}, $N_{{sig}}$ = {n_min}", fontsize=16)
            if row == len(wp) - 1:
                ax.set_xlabel("factor (1 = real only)", fontsize=14)
    axes[0, 0].legend(fontsize=11)
    save(fig, "classifier_factor.png")
    return written


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several runs' records; a later run's record replaces an earlier
    one with the same (N_sig, subset, training set, classifier, features)."""
    records = {tuple(r[k] for k in KEY): r for run_ in runs for r in run_["records"]}
    merged = {**runs[0], "records": list(records.values())}
    merged["sizes"] = sorted({r["n_sig"] for r in merged["records"]})
    merged["reps"] = sorted({r["rep"] for r in merged["records"]})
    merged["factors"] = sorted({f for run_ in runs for f in run_["factors"]})
    merged["quick"] = any(run_.get("quick") for run_ in runs)
    merged["summary"] = summarise(merged["records"])
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 1000, 5000],
                        help="real signal sizes N_sig; background is 3 N_sig (default 250 1000 5000)")  # fmt: skip
    parser.add_argument("--reps", type=int, default=10,
                        help="independent training subsets (default 10)")  # fmt: skip
    parser.add_argument("--first-rep", type=int, default=0,
                        help="index of the first subset, to run subsets in pieces (default 0)")  # fmt: skip
    parser.add_argument("--factors", type=int, nargs="+", default=None,
                        help="multiplication factors (default 5 20; 5 with --quick)")  # fmt: skip
    parser.add_argument("--methods", nargs="+", default=None,
                        help="training sets to run, e.g. 'both x20' (default all; real always)")  # fmt: skip
    parser.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS),
                        choices=CLASSIFIERS, help="default gbdt mlp")  # fmt: skip
    parser.add_argument("--features", nargs="+", default=list(FEATURES), choices=FEATURES,
                        help="default raw physics")  # fmt: skip
    parser.add_argument("--no-order", action="store_true",
                        help="leave the generated pions in the models' order (no pT ordering)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="seeds subsets, models, classifiers")
    parser.add_argument("--device", default="cpu", help="where to fit the models (default cpu)")
    add_results_arguments(parser, "classifier")
    parser.add_argument("--figures", default=None, help="folder for the PNG plots (none if unset)")
    parser.add_argument("--data", default=None, help="folder of the shared ROOT files")
    parser.add_argument("--quick", action="store_true",
                        help="CI-sized run: N_sig 100, 2 subsets, factor 5, tiny models, 20k reference")  # fmt: skip
    parser.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                        help="do not train: merge the results of earlier runs, write tables and plots")  # fmt: skip
    parser.add_argument("--append", action="store_true",
                        help="merge into the records of <results>/<benchmark>/latest.json")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    one_thread()
    folder = Path(args.results) / args.benchmark
    if args.from_json:
        results = merge([json.loads(Path(f).read_text()) for f in args.from_json])
    else:
        results = run(
            [100] if args.quick else args.sizes,
            reps=2 if args.quick else args.reps,
            first_rep=args.first_rep,
            seed=args.seed,
            factors=args.factors or ([5] if args.quick else [5, 20]),
            methods=args.methods,
            classifiers=args.classifiers,
            features=args.features,
            order=not args.no_order,
            quick=args.quick,
            data=args.data,
            device=args.device,
            progress=not args.no_progress,
            partial=folder / "partial.json",
        )
    out = folder / "latest.json"
    if args.append and out.exists():
        results = merge([json.loads(out.read_text()), results])
    for key in ("benchmark", "provenance"):  # this run's, written by record()
        results.pop(key, None)
    md = tables(results)
    print(md)
    record(
        args.benchmark,
        results,
        results=Path(args.results),
        argv=["bench/classifier.py", *(sys.argv[1:] if argv is None else argv)],
    )
    (folder / "partial.json").unlink(missing_ok=True)
    print(f"wrote {out}")
    if args.figures:
        for path in plots(results, Path(args.figures)):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
