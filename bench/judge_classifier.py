"""The sealed classifier study: the best classifier each training set allows, judged once.

Plan (docs/dev/classifier-plan.md, written before the run). Tasks, on the shared D+ files
(the training file gives the subsets, the reference file judges):

- ``window``: D+ -> K- pi+ pi+ signal against random K pi pi combinations in the same
  1.79-1.95 GeV window (the files' ``background`` tree);
- ``matched``: the same, with the background reweighted to the signal's parent pT and eta
  (8 x 8 bins in the signal's quantiles), so that the parent kinematics alone cannot
  separate the classes and the classifier must learn the decay's structure.

Per subset (N_sig signal, 3 N_sig background, drawn with the subset's seed), five training
sets: ``real``; ``vaeaug x5`` (both classes multiplied, one model per class, the
:class:`vaeaug.TrainingSet` weight rule); ``nsf x5`` (the same with the tuned spline flow of
``bench/tune_flow.py`` behind :class:`vaeaug.SupportGuard`); ``smeared x5`` (five copies of
every real candidate with each daughter's momentum scaled by 1 + 0.005 g); ``oracle x5``
(five times more real candidates from the rest of the training file). For each set, the
classifier (family and settings of :data:`GRID`) is chosen by 3-fold cross-validation on
that set alone (folds over its real candidates; generated ones only ever train; ROC AUC on
the held-out real candidates), refitted on the whole set and judged on the reference file:
signal efficiency at 1% background (the primary metric), at 0.1%, and ROC AUC::

    OMP_NUM_THREADS=1 python bench/judge_classifier.py --jobs 2

writes ``bench/results/judged_classifier/latest.json`` with its provenance.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OBJECTS, canonical_order, data_dir, efficiency_at, load_p4, one_thread
from _record import provenance, record, run_tasks
from classifier import smear

__all__ = ["GRID", "main"]

#: The classifiers cross-validation chooses from, for every training set alike.
GRID: dict[str, dict[str, Any]] = {
    "hgb": {"family": "hgb", "max_depth": None, "learning_rate": 0.1},
    "hgb-shallow": {"family": "hgb", "max_depth": 3, "learning_rate": 0.05},
    "mlp": {"family": "mlp", "hidden_layer_sizes": (64, 64), "alpha": 1e-4},
}
MASSES = [0.493677, 0.13957039, 0.13957039]  # K, pi, pi (GeV)
FACTOR = 5
METHODS = ("real", f"vaeaug x{FACTOR}", f"nsf x{FACTOR}", f"smeared x{FACTOR}",
           f"oracle x{FACTOR}")  # fmt: skip


def _classifier(name: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    spec = dict(GRID[name])
    if spec.pop("family") == "hgb":
        return HistGradientBoostingClassifier(max_iter=300, early_stopping=True,
                                              validation_fraction=0.15, n_iter_no_change=20,
                                              random_state=seed, **spec)  # fmt: skip
    return make_pipeline(StandardScaler(), MLPClassifier(
        batch_size=256, learning_rate_init=1e-3, max_iter=200, early_stopping=True,
        validation_fraction=0.15, n_iter_no_change=10, random_state=seed, **spec))  # fmt: skip


def _fit(clf, x, y, w):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        key = "mlpclassifier__sample_weight" if hasattr(clf, "steps") else "sample_weight"
        return clf.fit(x, y, **{key: w})


def _features(p4: np.ndarray) -> np.ndarray:
    from vaeaug.validation import feature_table

    return feature_table(p4, OBJECTS, raw=False, physics=True)[1]


def cross_validated_choice(x, y, w, real, seed: int) -> tuple[str, dict[str, float]]:
    """The :data:`GRID` entry with the best mean held-out ROC AUC over 3 folds of the real
    rows (``real``: bool (N,)); generated rows are always in the training folds."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    fold = np.full(len(y), -1)
    idx = np.flatnonzero(real)
    fold[idx[rng.permutation(len(idx))]] = np.arange(len(idx)) % 3
    scores = {}
    for name in GRID:
        aucs = []
        for k in range(3):
            train, test = fold != k, fold == k
            clf = _fit(_classifier(name, seed), x[train], y[train], w[train])
            aucs.append(roc_auc_score(y[test], clf.predict_proba(x[test])[:, 1],
                                      sample_weight=w[test]))  # fmt: skip
        scores[name] = float(np.mean(aucs))
    return max(scores, key=scores.get), scores


def parent_weights(sig: np.ndarray, bkg: np.ndarray) -> np.ndarray:
    """Weights (len(bkg),) that give ``bkg`` the parent pT and eta of ``sig`` (8 x 8 bins
    in the signal's quantiles; the outer bins open)."""
    from vaeaug.model.support import observables

    def pt_eta(p4):
        names, obs = observables(p4, OBJECTS)
        return obs[:, names.index("parent_pt")], obs[:, names.index("parent_eta")]

    (sp, se), (bp, be) = pt_eta(sig), pt_eta(bkg)
    edges_p = np.quantile(sp, np.linspace(0, 1, 9))[1:-1]
    edges_e = np.quantile(se, np.linspace(0, 1, 9))[1:-1]
    cell = lambda p, e: np.digitize(p, edges_p) * 8 + np.digitize(e, edges_e)  # noqa: E731
    hs = np.bincount(cell(sp, se), minlength=64) / len(sig)
    hb = np.bincount(cell(bp, be), minlength=64) / len(bkg)
    ratio = np.divide(hs, hb, out=np.zeros(64), where=hb > 0)
    return ratio[cell(bp, be)]


def _generated(method: str, s, b, seed: int, timing: dict[str, float]):
    """(signal, background) generated for a multiplied set: (K N_sig, 3, 4), (3 K N_sig, 3, 4)."""
    from fair import FlowPeer, Guard, chosen_flow

    import vaeaug

    out = []
    for label, real in enumerate((s, b)):
        t0 = time.perf_counter()
        n = FACTOR * len(real)
        fit_seed = int(np.random.SeedSequence([seed, label]).generate_state(1)[0])
        if method.startswith("vaeaug"):
            model = vaeaug.fit(real, objects=OBJECTS, masses=MASSES, seed=fit_seed,
                               device="cpu", progress=False)  # fmt: skip
            p4 = model.sample(n, seed=fit_seed + 1).p4
        else:
            peer = FlowPeer(OBJECTS, MASSES, chosen_flow()).fit(real, seed=fit_seed)
            guard = Guard(real, OBJECTS, MASSES, seed=fit_seed)
            p4, _ = guard.sample(peer.sample, n, fit_seed + 1)
        out.append(canonical_order(p4, [(1, 2)]))
        timing[f"{method.split()[0]}_{'sb'[label]}_s"] = time.perf_counter() - t0
    return out


def one_subset(task: tuple) -> list[dict[str, Any]]:
    """Every training set and its cross-validated classifier on one subset of one task."""
    import vaeaug

    one_thread()
    task_name, rep, n_sig, seed, data = task
    folder = data_dir(data)
    sig, bkg = load_p4(folder, "train", "signal"), load_p4(folder, "train", "background")
    ref_sig, ref_bkg = (
        load_p4(folder, "reference", "signal"),
        load_p4(folder, "reference", "background"),
    )
    rng = np.random.default_rng([seed, rep, n_sig, task_name == "matched"])
    ps, pb = rng.permutation(len(sig)), None
    if task_name == "matched":
        wb = parent_weights(sig, bkg)
        pb = rng.choice(len(bkg), size=len(bkg) // 2, replace=False, p=wb / wb.sum())
        ref_w = parent_weights(ref_sig, ref_bkg)
    else:
        pb = rng.permutation(len(bkg))
        ref_w = np.ones(len(ref_bkg))
    s, b = sig[ps[:n_sig]], bkg[pb[: 3 * n_sig]]
    rest_s, rest_b = sig[ps[n_sig:]], bkg[pb[3 * n_sig :]]
    fr_s, fr_b = _features(ref_sig), _features(ref_bkg)
    timing: dict[str, float] = {}
    sets = {"real": vaeaug.TrainingSet.combine(s, b, objects=OBJECTS)}
    for method in METHODS[1:]:
        if method.startswith(("vaeaug", "nsf")):
            gs, gb = _generated(method, s, b, seed + rep, timing)
        elif method.startswith("smeared"):
            gs, gb = (canonical_order(smear(x, FACTOR, rng), [(1, 2)]) for x in (s, b))
        else:
            gs, gb = rest_s[: FACTOR * n_sig], rest_b[: 3 * FACTOR * n_sig]
        sets[method] = vaeaug.TrainingSet.combine(s, b, signal_generated=gs,
                                                  background_generated=gb, objects=OBJECTS)  # fmt: skip
    rows = []
    for method, ts in sets.items():
        x, y, w = ts.features("physics", balance=True)
        w = w * len(w) / w.sum()
        real = ~np.asarray(ts.is_generated, dtype=bool)
        t0 = time.perf_counter()
        chosen, cv = cross_validated_choice(x, y, w, real, seed + rep)
        clf = _fit(_classifier(chosen, seed + rep), x, y, w)
        res = _weighted_evaluate(
            clf.predict_proba(fr_s)[:, 1], clf.predict_proba(fr_b)[:, 1], ref_w
        )
        rows.append({"task": task_name, "rep": rep, "n_sig": n_sig, "method": method,
                     "classifier": chosen, "cv_auc": cv, "select_s": time.perf_counter() - t0,
                     **res, **timing})  # fmt: skip
        print(
            f"{task_name:>7} rep {rep} {method:>10}: {chosen:>11} eff@1% {res['eff_1pct']:.3f} "
            f"auc {res['auc']:.4f}",
            flush=True,
        )
    return rows


def _weighted_evaluate(score_sig, score_bkg, w_bkg) -> dict[str, float]:
    """ROC AUC and signal efficiency at 1% and 0.1% background, the background weighted."""
    from sklearn.metrics import roc_auc_score

    y = np.concatenate([np.ones(len(score_sig)), np.zeros(len(score_bkg))])
    w = np.concatenate([np.ones(len(score_sig)), w_bkg])
    out = {"auc": float(roc_auc_score(y, np.concatenate([score_sig, score_bkg]), sample_weight=w))}
    for eps, name in ((0.01, "eff_1pct"), (0.001, "eff_0p1pct")):
        out[name] = efficiency_at(score_sig, score_bkg, w_bkg, eps)
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task and method: mean and standard error of each metric, and the paired gain
    over ``real`` (same subset), and the share of the oracle's gain."""
    out: dict[str, Any] = {}
    for task in sorted({r["task"] for r in rows}):
        mine = [r for r in rows if r["task"] == task]
        base = {r["rep"]: r for r in mine if r["method"] == "real"}
        out[task] = {}
        for method in METHODS:
            rs = [r for r in mine if r["method"] == method and r["rep"] in base]
            entry: dict[str, Any] = {"subsets": len(rs)}
            for metric in ("eff_1pct", "eff_0p1pct", "auc"):
                v = np.array([r[metric] for r in rs])
                g = v - np.array([base[r["rep"]][metric] for r in rs])
                sem = lambda a: float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0  # noqa: E731
                entry[metric] = {"mean": float(v.mean()), "sem": sem(v),
                                 "gain": float(g.mean()), "gain_sem": sem(g)}  # fmt: skip
            out[task][method] = entry
        oracle = out[task][f"oracle x{FACTOR}"]["eff_1pct"]["gain"]
        for method in METHODS[1:]:
            gain = out[task][method]["eff_1pct"]["gain"]
            out[task][method]["eff_1pct"]["oracle_share"] = gain / oracle if oracle else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["window", "matched"],
                        choices=["window", "matched"])  # fmt: skip
    parser.add_argument("--n-sig", type=int, default=250)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", default=None, help="folder of the shared files")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=None,
                        help="time budget: subsets not finished by then are not run, and the "
                             "record says how many were")  # fmt: skip
    args = parser.parse_args(argv)
    started = provenance(sys.argv)
    # subsets alternate between the tasks, so that a time budget cuts both alike
    tasks = [(t, rep, args.n_sig, args.seed, args.data) for rep in range(args.reps)
             for t in args.tasks]  # fmt: skip
    rows = run_tasks(one_subset, tasks, args.jobs, args.minutes)
    done = sorted({(r["task"], r["rep"]) for r in rows})
    path = record("judged_classifier", {
        "n_sig": args.n_sig, "n_bkg": 3 * args.n_sig, "factor": FACTOR, "reps": args.reps,
        "subsets_done": [list(d) for d in done], "time_budget_minutes": args.minutes,
        "grid": GRID, "primary_metric": "eff_1pct", "summary": summarise(rows),
        "rows": rows}, argv=sys.argv, started=started)  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
