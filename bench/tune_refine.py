"""Tune the refinement step on validation splits of the training files (no reference file).

For each row of :data:`ROWS` and seed, the base generator (vaeaug's defaults, or the tuned
and guarded spline flow of ``bench/fair.py``) is trained once on N candidates of a
training file; every setting of :data:`GRID` refines 4N candidates of it
(:class:`vaeaug.sampling.refine.Refiner`, fitted on the same N candidates) and both judge
families measure the C2ST against the validation part of the same file. The rule, written
before the run (docs/dev/refine-plan.md): among settings with a mean effective sample size
≥ 50%, the lowest mean (C2ST boosting + C2ST network) / 2 over the rows wins::

    OMP_NUM_THREADS=1 python bench/tune_refine.py --jobs 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import one_thread
from _record import add_results_arguments, provenance, record, run_tasks
from fair import add_data_arguments

__all__ = ["GRID", "ROWS", "main"]

#: (dataset, training size, validation candidates)
ROWS = [("dplus", 1000, 10_000), ("lambdac", 1000, 5000), ("d0_k3pi", 1000, 5000),
        ("dplus_5body", 1000, 5000), ("dimuon", 1000, 5000), ("hzz_mumu", 500, 241)]  # fmt: skip
CLASSIFIERS = {
    "A": {},  # vaeaug.sampling.refine.CLASSIFIER_DEFAULTS
    "B": {"max_leaf_nodes": 7, "min_samples_leaf": 80},
}
#: (clip quantile, classifier label, mode)
GRID = [(q, c, mode) for c in CLASSIFIERS for q in (0.90, 0.95, 0.99)
        for mode in ("reject", "weight")]  # fmt: skip
BASES = ("vaeaug", "nsf")
MIN_ESS = 0.5


def label(setting: tuple) -> str:
    q, c, mode = setting
    return f"q{q:.2f}-{c}-{mode}"


def _base_draw(base: str, train: np.ndarray, ds, seed: int):
    """(draw(m, seed) -> (m, k, 4) GeV, fit seconds) of a base generator trained on ``train``."""
    import vaeaug

    t0 = time.perf_counter()
    if base == "vaeaug":
        model = vaeaug.fit(train, objects=ds.objects, masses=ds.masses, seed=seed,
                           device="cpu", progress=False)  # fmt: skip
        return (lambda m, s: ds.order(model.sample(m, seed=s).p4)), time.perf_counter() - t0
    from fair import FlowPeer, Guard, chosen_flow

    peer = FlowPeer(ds.objects, ds.masses, chosen_flow()).fit(train, seed=seed)
    guard = Guard(train, ds.objects, ds.masses, seed=seed)
    draw = lambda m, s: guard.sample(lambda n, t: ds.order(peer.sample(n, t)), m, s)[0]  # noqa: E731
    return draw, time.perf_counter() - t0


def one_row(task: tuple) -> list[dict[str, Any]]:
    """Train one base generator on one row; refine and judge every setting of the grid."""
    import warnings

    from tune_flow import validation_rows

    from vaeaug.sampling.refine import Refiner
    from vaeaug.validation import feature_table
    from vaeaug.validation.c2st import c2st

    one_thread()
    warnings.simplefilter("ignore")  # support warnings of small models: reported per row
    base, name, size, n_val, seed, samples, data = task
    train, validation, ds = validation_rows(name, size, n_val, seed, samples, data)
    draw, fit_s = _base_draw(base, train, ds, seed)
    _, fv = feature_table(validation, ds.objects)

    def judged(p4: np.ndarray, w: np.ndarray | None) -> dict[str, float]:
        _, fg = feature_table(p4, ds.objects)
        out = {}
        for family in ("hgb", "mlp"):
            t = c2st(fv, fg, generated_weights=w, seed=seed, n_bootstrap=20, max_events=20_000,
                     n_threads=1, family=family)  # fmt: skip
            out[f"c2st_{family}"], out[f"c2st_{family}_err"] = t["auc"], t["auc_err"]
        return out

    head = {"base": base, "dataset": name, "n_train": size, "seed": seed, "fit_s": fit_s}
    rows = [{**head, "setting": "none", **judged(draw(4 * size, seed + 1), None)}]
    fitted: dict[tuple, Any] = {}
    for setting in GRID:
        q, c, mode = setting
        t0 = time.perf_counter()
        if (q, c) not in fitted:
            fitted[q, c] = Refiner.fit(draw, train, ds.objects, ds.masses, seed=seed + 2,
                                       clip_quantile=q, classifier_kwargs=CLASSIFIERS[c])  # fmt: skip
        p4, w, report = fitted[q, c].sample(4 * size, seed=seed + 3, mode=mode)
        rows.append({**head, "setting": label(setting), "refine_s": time.perf_counter() - t0,
                     **report.to_dict(), **judged(p4, w)})  # fmt: skip
    for r in rows:
        print(f"{base:>6} {name:>11} {r['setting']:>16}: hgb {r['c2st_hgb']:.3f} "
              f"mlp {r['c2st_mlp']:.3f} ess {r.get('ess_fraction', 1):.2f}", flush=True)  # fmt: skip
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per setting: means over the rows, the rule's score, best first."""
    out = []
    for setting in dict.fromkeys(r["setting"] for r in rows):
        mine = [r for r in rows if r["setting"] == setting]
        hgb = float(np.mean([r["c2st_hgb"] for r in mine]))
        mlp = float(np.mean([r["c2st_mlp"] for r in mine]))
        ess = float(np.mean([r.get("ess_fraction", 1.0) for r in mine]))
        out.append({"setting": setting, "rows": len(mine), "c2st_hgb_mean": hgb,
                    "c2st_mlp_mean": mlp, "score": (hgb + mlp) / 2, "ess_fraction_mean": ess,
                    "acceptance_mean": float(np.mean([r.get("acceptance", 1.0) for r in mine]))})  # fmt: skip
    return sorted(out, key=lambda s: s["score"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    parser.add_argument("--minutes", type=float, default=None, help="time budget")
    add_results_arguments(parser, "refine_tuning")
    args = parser.parse_args(argv)
    started = provenance(sys.argv)
    tasks = [(base, name, size, n_val, s, args.samples, args.data)
             for s in args.seeds for name, size, n_val in ROWS for base in BASES]  # fmt: skip
    rows = run_tasks(one_row, tasks, args.jobs, args.minutes)
    summary = summarize(rows)
    eligible = [s for s in summary if s["setting"] != "none" and s["ess_fraction_mean"] >= MIN_ESS]
    chosen = eligible[0]["setting"] if eligible else None
    path = record(args.benchmark, {
        "rule": f"lowest mean (c2st_hgb + c2st_mlp) / 2 among settings with mean ESS >= {MIN_ESS}",
        "chosen": chosen, "summary": summary, "rows": rows}, argv=sys.argv, started=started,
        results=args.results)  # fmt: skip
    for s in summary:
        print(f"{s['setting']:>16}: hgb {s['c2st_hgb_mean']:.4f} mlp {s['c2st_mlp_mean']:.4f} "
              f"ess {s['ess_fraction_mean']:.2f} acc {s['acceptance_mean']:.2f}")  # fmt: skip
    print(f"chosen: {chosen} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
