"""Does vaeaug-multiplied signal improve a signal-vs-background classifier?

For each N_sig, N_sig signal and 3 N_sig combinatorial-background candidates are drawn
from the training file; a gradient-boosted tree and a small MLP are trained on the 12
raw momentum components of

- ``real``: the real candidates only;
- ``vaeaug xK``: real + K N_sig candidates from vaeaug trained on the real signal;
- ``smeared x20``: real + 20 copies of the real signal with every daughter momentum
  scaled by (1 + 0.005 g), g ~ N(0, 1) (the tracker resolution again), as a control;
- ``plain-vae x20``: real + 20 N_sig candidates of the tutorial VAE, as a control;
- ``real signal x20 (oracle)``, with ``--methods``: real + 20 N_sig more *real* signal
  candidates, background unchanged: the perfect generator, an upper bound on what
  multiplying the signal alone can give;
- ``real sig+bkg x20 (oracle)``, with ``--methods``: 20 N_sig more real signal *and*
  60 N_sig more real background: what a 21 times larger real sample gives;

with per-candidate weights that give both classes the same total weight. Each is judged
on the whole reference file: ROC AUC and signal efficiency at 1% background efficiency.
Repeated over independent training subsets; means and standard errors are reported, and
the improvement over ``real`` is a paired difference (same subset, same seed).

Both classes have their pions ordered by pT first: the shared background tree does not
order them while the signal tree does, and a classifier would learn the ordering.

    OMP_NUM_THREADS=1 python bench/classifier.py --reps 5 --out bench/results/classifier.json
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
    data_dir,
    load_p4,
    machine,
    markdown_table,
    one_thread,
    pt_order_pions,
    write_json,
)

from vaeaug.datasets import KAON_MASS, PION_MASS  # PDG, via the particle package

__all__ = ["main", "run", "smear", "tables"]

BKG_EFF = 0.01  # the working point: 1% background efficiency (99% rejection)
#: Background-efficiency grid (log) on which ROC curves are stored and averaged.
ROC_GRID = np.geomspace(1e-4, 1.0, 81)

QUICK_VAEAUG = {
    "config": {"latent_dim": 4, "hidden": (32, 32), "prior_components": 4},
    "train": {"epochs": 4, "patience": 2, "kl_warmup_epochs": 1},
}


def smear(p4: np.ndarray, copies: int, rng: np.random.Generator, rel: float = 0.005) -> np.ndarray:
    """``copies`` smeared copies of ``p4`` (N, 3, 4): each daughter's 3-momentum scaled by
    (1 + rel g), E recomputed from the K, pi, pi masses (GeV). Returns (copies N, 3, 4)."""
    masses = np.array([KAON_MASS, PION_MASS, PION_MASS])
    rep = np.tile(p4, (copies, 1, 1))
    p = rep[..., :3] * (1.0 + rel * rng.standard_normal(rep.shape[:2]))[..., None]
    e = np.sqrt((p**2).sum(-1) + masses**2)
    return np.concatenate([p, e[..., None]], axis=-1)


ORACLE = "real signal x20 (oracle)"
ORACLE_BOTH = "real sig+bkg x20 (oracle)"


def default_methods(multipliers: list[int]) -> list[str]:
    """The training sets run by default (the oracle is opt-in: it needs 21 N_sig real signal)."""
    return ["real", *(f"vaeaug x{k}" for k in multipliers), "smeared x20", "plain-vae x20"]


def _classifiers(seed: int, quick: bool) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "gbdt": HistGradientBoostingClassifier(
            max_iter=20 if quick else 300,
            learning_rate=0.1,
            early_stopping=True,
            validation_fraction=0.15,
            n_iter_no_change=20,
            random_state=seed,
        ),
        "mlp": make_pipeline(
            StandardScaler(),
            MLPClassifier(
                hidden_layer_sizes=(64, 64),
                alpha=1e-4,
                batch_size=256,
                learning_rate_init=1e-3,
                max_iter=5 if quick else 200,
                early_stopping=True,
                validation_fraction=0.15,
                n_iter_no_change=10,
                random_state=seed,
            ),
        ),
    }


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


def _evaluate(score_sig: np.ndarray, score_bkg: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    y = np.concatenate([np.ones(len(score_sig)), np.zeros(len(score_bkg))])
    auc = float(roc_auc_score(y, np.concatenate([score_sig, score_bkg])))
    # Signal efficiency at each background efficiency of the grid (threshold = quantile).
    thresholds = np.quantile(score_bkg, 1.0 - ROC_GRID)
    tpr = (score_sig[None, :] > thresholds[:, None]).mean(axis=1)
    cut = np.quantile(score_bkg, 1.0 - BKG_EFF)
    return {"auc": auc, "eff": float((score_sig > cut).mean()), "roc_tpr": tpr}


def _flat(p4: np.ndarray) -> np.ndarray:
    return p4.reshape(len(p4), 12)


def run(
    sizes: list[int],
    *,
    reps: int,
    seed: int,
    multipliers: list[int],
    max_generated: int,
    quick: bool = False,
    data: str | None = None,
    progress: bool = True,
    partial: Path | None = None,
    methods: list[str] | None = None,
) -> dict[str, Any]:
    """Train and evaluate every (N_sig, repetition, training set, classifier); returns results."""
    from peers import make_peer
    from tqdm.auto import tqdm

    folder = data_dir(data)
    sig = pt_order_pions(load_p4(folder, "train", "signal"))
    bkg = pt_order_pions(load_p4(folder, "train", "background"))
    ref_sig = pt_order_pions(load_p4(folder, "reference", "signal"))
    ref_bkg = pt_order_pions(load_p4(folder, "reference", "background"))
    if quick:
        r = np.random.default_rng(seed)
        ref_sig = ref_sig[r.permutation(len(ref_sig))[:5000]]
        ref_bkg = ref_bkg[r.permutation(len(ref_bkg))[:20000]]
    x_ref_sig, x_ref_bkg = _flat(ref_sig), _flat(ref_bkg)

    wanted = set(methods or default_methods(multipliers)) | {"real"}
    records: list[dict[str, Any]] = []
    header = {"benchmark": "classifier", "seed": seed, "reps": reps, "sizes": sizes,
              "multipliers": multipliers, "max_generated": max_generated, "bkg_eff": BKG_EFF,
              "roc_grid": ROC_GRID}  # fmt: skip
    bar = tqdm(total=reps * len(sizes), desc="classifier", unit="subset", disable=not progress)
    for rep in range(reps):
        for n_sig in sizes:
            if 3 * n_sig > len(bkg) or n_sig > len(sig):
                raise SystemExit(f"N_sig={n_sig} needs more candidates than the training file has")
            rng = np.random.default_rng([seed, rep, n_sig])
            perm_sig = rng.permutation(len(sig))
            s = sig[perm_sig[:n_sig]]
            perm_bkg = rng.permutation(len(bkg))
            b = bkg[perm_bkg[: 3 * n_sig]]
            fit_seed = int(rng.integers(2**31))
            timing: dict[str, float] = {}
            extras: dict[str, np.ndarray] = {"real": s[:0]}
            vaeaug_sets = [f"vaeaug x{k}" for k in multipliers if k * n_sig <= max_generated]
            if any(m in wanted for m in vaeaug_sets):
                bar.set_postfix_str(f"rep {rep} N={n_sig}: vaeaug")
                t0 = time.perf_counter()
                vae = make_peer("vaeaug", **(QUICK_VAEAUG if quick else {})).fit(s, seed=fit_seed)
                timing["vaeaug_fit_s"] = time.perf_counter() - t0
                n_gen = min(max(multipliers) * n_sig, max_generated)
                gen = pt_order_pions(vae.sample(n_gen, seed=fit_seed + 1))
                for k in multipliers:
                    if k * n_sig <= max_generated:
                        extras[f"vaeaug x{k}"] = gen[: k * n_sig]
            if "smeared x20" in wanted:
                extras["smeared x20"] = smear(s, 20, rng)
            if "plain-vae x20" in wanted:
                bar.set_postfix_str(f"rep {rep} N={n_sig}: plain VAE")
                t0 = time.perf_counter()
                plain = make_peer("plain-vae", **({"epochs": 3} if quick else {}))
                plain.fit(s, seed=fit_seed)
                timing["plain_vae_fit_s"] = time.perf_counter() - t0
                extras["plain-vae x20"] = pt_order_pions(
                    plain.sample(20 * n_sig, seed=fit_seed + 2)
                )
            if ORACLE in wanted and 21 * n_sig <= len(sig):
                # The ideal generator: more real signal (disjoint from the subset), with the
                # background left as it is. Its gain bounds what signal multiplication can do.
                extras[ORACLE] = sig[perm_sig[n_sig : 21 * n_sig]]
            extra_bkg: dict[str, np.ndarray] = {}
            if ORACLE_BOTH in wanted and 21 * n_sig <= len(sig) and 63 * n_sig <= len(bkg):
                # More real signal *and* background: what a larger real sample gives.
                extras[ORACLE_BOTH] = sig[perm_sig[n_sig : 21 * n_sig]]
                extra_bkg[ORACLE_BOTH] = bkg[perm_bkg[3 * n_sig : 63 * n_sig]]
            extras = {m: x for m, x in extras.items() if m in wanted}

            for method, extra in extras.items():
                bar.set_postfix_str(f"rep {rep} N={n_sig}: {method}")
                bb = np.concatenate([b, extra_bkg[method]]) if method in extra_bkg else b
                x = np.concatenate([_flat(s), _flat(extra), _flat(bb)])
                n_s = n_sig + len(extra)
                y = np.concatenate([np.ones(n_s), np.zeros(len(bb))])
                # Balanced classes: each class sums to the number of background events.
                w = np.concatenate([np.full(n_s, len(bb) / n_s), np.ones(len(bb))])
                for cname, clf in _classifiers(fit_seed, quick).items():
                    t0 = time.perf_counter()
                    _fit(clf, x, y, w)
                    fit_s = time.perf_counter() - t0
                    res = _evaluate(
                        clf.predict_proba(x_ref_sig)[:, 1], clf.predict_proba(x_ref_bkg)[:, 1]
                    )
                    records.append(
                        {
                            "n_sig": n_sig,
                            "rep": rep,
                            "method": method,
                            "classifier": cname,
                            "fit_s": fit_s,
                            **res,
                            **timing,
                        }
                    )
            bar.update(1)
            if partial is not None:
                # After every subset, so that a long run can be stopped and still be used.
                write_json(partial, {**header, "records": records, "partial": True})
    bar.close()
    return {
        "benchmark": "classifier",
        "seed": seed,
        "reps": reps,
        "quick": quick,
        "sizes": sizes,
        "multipliers": multipliers,
        "max_generated": max_generated,
        "bkg_eff": BKG_EFF,
        "roc_grid": ROC_GRID,
        "n_reference": {"signal": len(ref_sig), "background": len(ref_bkg)},
        "machine": machine(),
        "records": records,
        "summary": summarise(records),
    }


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard error per (classifier, N_sig, method), and the paired gain over real."""
    keyed = {(r["classifier"], r["n_sig"], r["method"], r["rep"]): r for r in records}
    # first-appearance order of the methods, then stable by classifier and N_sig
    groups = sorted(
        dict.fromkeys((r["classifier"], r["n_sig"], r["method"]) for r in records),
        key=lambda g: (g[0], g[1]),
    )
    out = []
    for cname, n_sig, method in groups:
        reps = sorted(k[3] for k in keyed if k[:3] == (cname, n_sig, method))
        row: dict[str, Any] = {
            "classifier": cname,
            "n_sig": n_sig,
            "method": method,
            "n_reps": len(reps),
        }
        for metric in ("eff", "auc"):
            v = np.array([keyed[(cname, n_sig, method, r)][metric] for r in reps])
            base = np.array([keyed[(cname, n_sig, "real", r)][metric] for r in reps])
            sem = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
            d = v - base
            dsem = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
            row.update(
                {
                    metric: float(v.mean()),
                    f"{metric}_sem": sem,
                    f"{metric}_gain": float(d.mean()),
                    f"{metric}_gain_sem": dsem,
                }
            )
        tpr = np.array([keyed[(cname, n_sig, method, r)]["roc_tpr"] for r in reps])
        row["roc_tpr"] = tpr.mean(axis=0)
        out.append(row)
    return out


def _fmt(x: float, e: float, spec: str = ".3f") -> str:
    return f"{x:{spec}} ± {e:{spec.lstrip('+')}}" if np.isfinite(e) else f"{x:{spec}}"


def tables(results: dict[str, Any]) -> str:
    """One Markdown table per classifier: eff@1% bkg and AUC, with the paired gain."""
    parts = []
    summary = results["summary"]
    for cname in sorted({r["classifier"] for r in summary}):
        rows = []
        for r in (r for r in summary if r["classifier"] == cname):
            gain = "—" if r["method"] == "real" else _fmt(r["eff_gain"], r["eff_gain_sem"], "+.3f")
            sig = ""
            if r["method"] != "real" and np.isfinite(r["eff_gain_sem"]) and r["eff_gain_sem"] > 0:
                sig = f"{r['eff_gain'] / r['eff_gain_sem']:+.1f}"
            rows.append(
                [
                    f"{r['n_sig']:,}",
                    str(r["n_reps"]),
                    r["method"],
                    _fmt(r["eff"], r["eff_sem"]),
                    gain,
                    sig,
                    _fmt(r["auc"], r["auc_sem"], ".4f"),
                ]
            )
        parts.append(
            f"**{cname}** (mean ± standard error over the training subsets)\n\n"
            + markdown_table(
                [
                    "N_sig",
                    "subsets",
                    "training set",
                    "sig. eff. @ 1% bkg",
                    "gain vs real",
                    "gain / s.e.",
                    "ROC AUC",
                ],
                rows,
            )
        )
    return "\n\n".join(parts)


def plots(results: dict[str, Any], folder: Path) -> list[Path]:
    """ROC curves (smallest N_sig) and efficiency/gain vs N_sig, PNG, hist/mplhep style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.CMS)
    folder.mkdir(parents=True, exist_ok=True)
    summary = results["summary"]
    grid = np.asarray(results["roc_grid"])
    methods = list(dict.fromkeys(r["method"] for r in summary))
    # tab10 has a distinct colour for each of up to 10 training sets; oracles are dashed
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    styles = {m: "--" if "oracle" in m else "-" for m in methods}
    written = []
    n_min = min(results["sizes"])
    fig, axes = plt.subplots(1, 2, figsize=(16, 7), constrained_layout=True)
    for ax, cname in zip(axes, ("gbdt", "mlp")):
        for r in (r for r in summary if r["classifier"] == cname and r["n_sig"] == n_min):
            ax.plot(
                grid,
                r["roc_tpr"],
                label=f"{r['method']} (AUC {r['auc']:.4f})",
                color=colors[r["method"]],
                ls=styles[r["method"]],
                lw=2 if r["method"] == "real" else 1.5,
            )
        ax.axvline(BKG_EFF, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("background efficiency")
        ax.set_ylabel("signal efficiency")
        ax.set_title(f"{cname}, $N_{{sig}}$ = {n_min}, mean of the subsets", fontsize=18)
        ax.legend(fontsize=13, loc="lower right")
    path = folder / "classifier_roc.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    written.append(path)

    fig, axes = plt.subplots(2, 2, figsize=(16, 11), constrained_layout=True, sharex=True)
    for col, cname in enumerate(("gbdt", "mlp")):
        for method in methods:
            rs = sorted(
                (r for r in summary if r["classifier"] == cname and r["method"] == method),
                key=lambda r: r["n_sig"],
            )
            n = np.array([r["n_sig"] for r in rs], dtype=float)
            shift = 1.0 + 0.03 * (methods.index(method) - len(methods) / 2)
            axes[0, col].errorbar(
                n * shift,
                [r["eff"] for r in rs],
                [r["eff_sem"] for r in rs],
                marker="o",
                label=method,
                color=colors[method],
                ls=styles[method],
                capsize=3,
            )
            if method != "real":
                axes[1, col].errorbar(
                    n * shift,
                    [r["eff_gain"] for r in rs],
                    [r["eff_gain_sem"] for r in rs],
                    marker="o",
                    color=colors[method],
                    ls=styles[method],
                    capsize=3,
                )
        axes[0, col].set_title(cname, fontsize=18)
        axes[0, col].set_ylabel("signal eff. at 1% background")
        axes[1, col].axhline(0, color="grey", lw=1)
        axes[1, col].set_ylabel("gain over real only (paired)")
        axes[1, col].set_xlabel(r"$N_{sig}$ (real signal candidates)")
        axes[1, col].set_xscale("log")
        sizes = sorted(results["sizes"])
        axes[1, col].set_xticks(sizes, [f"{n:,}" for n in sizes])
        axes[1, col].minorticks_off()
    axes[0, 0].legend(fontsize=13)
    path = folder / "classifier_gain.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[250, 1000, 5000],
        help="real signal sizes N_sig (background is 3x)",
    )
    parser.add_argument("--reps", type=int, default=10, help="independent training subsets")
    parser.add_argument(
        "--multipliers",
        type=int,
        nargs="+",
        default=[5, 20, 100],
        help="vaeaug multiplication factors",
    )
    parser.add_argument(
        "--max-generated",
        type=int,
        default=100_000,
        help="skip a multiplier whose sample would exceed this many candidates",
    )
    parser.add_argument("--seed", type=int, default=1, help="seeds subsets, models, classifiers")
    parser.add_argument("--out", default="bench/results/classifier.json", help="JSON results path")
    parser.add_argument("--figures", default=None, help="folder for the PNG plots (none if unset)")
    parser.add_argument("--data", default=None, help="folder of the shared ROOT files")
    parser.add_argument("--quick", action="store_true", help="CI-sized run: tiny models, 2 reps")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help=f"training sets to run (default: all but the oracles '{ORACLE}', '{ORACLE_BOTH}')",
    )
    parser.add_argument(
        "--from-json",
        nargs="+",
        default=None,
        metavar="JSON",
        help="do not train: merge the results of earlier runs, write tables and plots",
    )
    parser.add_argument(
        "--append", action="store_true", help="merge into the records already in --out"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    one_thread()
    sizes = [100] if args.quick else args.sizes
    reps = 2 if args.quick else args.reps
    if args.from_json:
        # No training: merge the records of earlier runs (e.g. sizes run in parallel).
        runs = [json.loads(Path(f).read_text()) for f in args.from_json]
        results = {**runs[0], "records": [r for run_ in runs for r in run_["records"]]}
        results["sizes"] = sorted({r["n_sig"] for r in results["records"]})
        results["reps"] = max(run_["reps"] for run_ in runs)
        results["summary"] = summarise(results["records"])
    else:
        results = run(
            sizes,
            reps=reps,
            seed=args.seed,
            multipliers=args.multipliers,
            max_generated=args.max_generated,
            quick=args.quick,
            data=args.data,
            progress=not args.no_progress,
            partial=Path(args.out).with_suffix(".partial.json"),
            methods=args.methods,
        )
    out = Path(args.out)
    if args.append and out.exists():
        # Keep another run's records (other sizes) unless this run redid them.
        key = ("n_sig", "rep", "method", "classifier")
        done = {tuple(r[k] for k in key) for r in results["records"]}
        prev = json.loads(out.read_text())
        old = [r for r in prev["records"] if tuple(r[k] for k in key) not in done]
        results["records"] = old + results["records"]
        results["sizes"] = sorted({r["n_sig"] for r in results["records"]})
        results["reps"] = max(results["reps"], prev.get("reps", 0))
        results["summary"] = summarise(results["records"])
    md = tables(results)
    print(md)
    write_json(out, results)
    out.with_suffix(".md").write_text(md + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    if args.figures:
        for path in plots(results, Path(args.figures)):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
