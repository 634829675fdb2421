"""The sealed judging: every generator against the reference files, once per release.

This is the one script that reads the reference files. Model selection
(``bench/model_selection.py``, ``bench/tune_flow.py``) never imports it. For each dataset
of :data:`fair.DATASETS`, training size and seed, the same N candidates of the training
file train vaeaug (its defaults) and the spline-flow peer (the configuration
``bench/tune_flow.py`` chose on validation splits); each generates 4N candidates with
and without the support guard (vaeaug's own; :class:`fair.Guard` for the flow: the same
support on the same observables) and, refined by rejection, 4N candidates of the guarded
generator (:class:`vaeaug.sampling.refine.Refiner` with the setting ``bench/tune_refine.py``
chose on validation splits, fitted on the same N training candidates; the C2ST of its
weight mode is recorded beside them), and every sample is judged against the whole reference
file by the C2ST of two classifier families (histogram boosting and a neural network),
each beside its real-vs-real floor, and by the mass peak, the correlations, the 1-D
distances and the amplification of ``_common.fidelity_metrics``::

    OMP_NUM_THREADS=1 python bench/judge.py --sizes 1000 --jobs 2 --tag 1k

writes ``bench/results/judged_fidelity_<tag>/latest.json`` (and a line of its
``history.jsonl``) with the commit, the hash of ``src/``, the command, the date and the
machine. ``--datasets`` and ``--seeds`` narrow a run; the HZZ pairs are trained at
N = 500 whatever ``--sizes`` says (the file holds 741).
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

from _common import fidelity_metrics, load_dataset, one_thread
from _record import RESULTS, provenance, record, run_tasks
from fair import (
    DATASETS,
    FlowConfig,
    FlowPeer,
    Guard,
    add_data_arguments,
    chosen_flow,
    dataset_args,
)

__all__ = ["GENERATORS", "main"]

#: Generators: (family, guarded). Each family is trained once per row.
GENERATORS = ("vaeaug", "nsf")
FACTOR = 4  # generated candidates per training candidate
HZZ_SIZE = 500


def chosen_refinement() -> dict[str, Any]:
    """The refinement setting of the last tuning run (``refine_tuning/latest.json``):
    Refiner.fit keyword arguments and the mode."""
    from tune_refine import CLASSIFIERS, GRID, label

    chosen = json.loads((RESULTS / "refine_tuning" / "latest.json").read_text())["chosen"]
    for q, c, mode in GRID:
        if label((q, c, mode)) == chosen:
            return {"label": chosen, "clip_quantile": q, "classifier_kwargs": CLASSIFIERS[c],
                    "mode": mode}  # fmt: skip
    raise SystemExit(f"refine_tuning chose {chosen!r}, which is not in tune_refine.GRID")


def _fit_and_sample(family: str, ds, training: np.ndarray, size: int, seed: int,
                    flow: FlowConfig,
                    refine: dict[str, Any]) -> list[tuple[str, np.ndarray, dict[str, Any], Any]]:  # fmt: skip
    """[(generator label, generated (4N, k, 4) GeV, row fields, weighted)]: guarded, refined
    (the guarded generator refined by rejection) and unguarded; ``weighted`` is, for the
    refined row, the weight mode's (candidates, weights) to judge beside it, else None."""
    import vaeaug
    from vaeaug.sampling.refine import Refiner

    n = FACTOR * size
    t0 = time.perf_counter()
    if family == "vaeaug":
        model = vaeaug.fit(training, objects=ds.objects, masses=ds.masses, seed=seed,
                           device="cpu", progress=False)  # fmt: skip
        fit_s, epochs = time.perf_counter() - t0, model.provenance["epochs_run"]
        out = []
        for label, mode in (("vaeaug", "reject"), ("vaeaug, no guard", "off")):
            t1 = time.perf_counter()
            gen = model.sample(n, seed=seed + 1, support=mode)
            extra = {"sample_s": time.perf_counter() - t1}
            report = getattr(gen, "support_report", None)
            if report is not None and mode == "reject":
                extra["outside_first"] = report.to_dict()["outside_fraction"]
            out.append((label, ds.order(gen.p4), extra, None))
        draw = lambda m, s: ds.order(model.sample(m, seed=s).p4)  # noqa: E731
    else:
        peer = FlowPeer(ds.objects, ds.masses, flow).fit(training, seed=seed)
        fit_s, epochs = time.perf_counter() - t0, peer.epochs_run
        guard = Guard(training, ds.objects, ds.masses, seed=seed)
        t1 = time.perf_counter()
        raw = ds.order(peer.sample(n, seed + 1))
        raw_s = time.perf_counter() - t1
        t1 = time.perf_counter()
        guarded, report = guard.sample(lambda m, s: ds.order(peer.sample(m, s)), n, seed + 1)
        out = [("nsf", guarded, {"sample_s": time.perf_counter() - t1, **report}, None),
               ("nsf, no guard", raw, {"sample_s": raw_s}, None)]  # fmt: skip
        draw = lambda m, s: guard.sample(lambda k, t: ds.order(peer.sample(k, t)), m, s)[0]  # noqa: E731
    t1 = time.perf_counter()
    refiner = Refiner.fit(draw, training, ds.objects, ds.masses, seed=seed + 2,
                          clip_quantile=refine["clip_quantile"],
                          classifier_kwargs=refine["classifier_kwargs"])  # fmt: skip
    refit_s = time.perf_counter() - t1
    t1 = time.perf_counter()
    refined, _, report = refiner.sample(n, seed=seed + 1, mode="reject")
    extra = {"sample_s": time.perf_counter() - t1, "refine_fit_s": refit_s,
             **{f"refine_{k}": v for k, v in report.to_dict().items() if k != "mode"}}  # fmt: skip
    weighted, weights, _ = refiner.sample(n, seed=seed + 1, mode="weight")
    out.insert(1, (f"{family}, refined", refined, extra, (weighted, weights)))
    return [(label, p4, {"fit_s": fit_s, "epochs": epochs, **extra}, weighted)
            for label, p4, extra, weighted in out]  # fmt: skip


def one_task(task: tuple) -> list[dict[str, Any]]:
    """Train one generator family on one (dataset, size, seed) and judge its samples."""
    from vaeaug.validation import feature_table
    from vaeaug.validation.c2st import c2st

    one_thread()
    name, size, seed, family, samples, data, flow, refine = task
    ds = load_dataset(**dataset_args(name, samples, data, reference=True))
    rng = np.random.default_rng([seed, size])
    perm = rng.permutation(len(ds.train))
    training = ds.train[perm[:size]]
    same = ds.train[perm[: min(FACTOR * size, len(ds.train))]]  # the floor's real sample
    _, fr = feature_table(ds.reference, ds.objects)
    _, fs = feature_table(same, ds.objects)
    mlp_floor = c2st(fr, fs, seed=seed, n_bootstrap=50, max_events=40_000, n_threads=1,
                     family="mlp")  # fmt: skip
    rows = []
    for label, generated, extra, weighted in _fit_and_sample(family, ds, training, size, seed,
                                                             flow, refine):  # fmt: skip
        row = {"dataset": name, "n_train": size, "seed": seed, "generator": label, **extra}
        row["sample_rate"] = FACTOR * size / row["sample_s"]
        row.update(fidelity_metrics(generated, training, ds.reference, same, seed=seed,
                                    objects=ds.objects, masses=ds.masses,
                                    resonances=DATASETS[name].get("resonances", ())))  # fmt: skip
        finite = generated[np.isfinite(generated).all(axis=(1, 2))]
        _, fg = feature_table(finite, ds.objects)
        test = c2st(fr, fg, seed=seed, n_bootstrap=50, max_events=40_000, n_threads=1,
                    family="mlp")  # fmt: skip
        row["c2st_mlp"], row["c2st_mlp_err"] = test["auc"], test["auc_err"]
        row["c2st_mlp_floor"], row["c2st_mlp_floor_err"] = mlp_floor["auc"], mlp_floor["auc_err"]
        if weighted is not None:  # the refiner's weight mode on the same draws' seed
            _, fw = feature_table(weighted[0], ds.objects)
            for family_, key in (("hgb", "c2st_auc_weighted"), ("mlp", "c2st_mlp_weighted")):
                test = c2st(fr, fw, generated_weights=weighted[1], seed=seed, n_bootstrap=50,
                            max_events=40_000, n_threads=1, family=family_)  # fmt: skip
                row[key], row[f"{key}_err"] = test["auc"], test["auc_err"]
        print(
            f"{name:>11} N={size:>5} s={seed} {label:>16}: hgb {row['c2st_auc']:.3f} "
            f"mlp {row['c2st_mlp']:.3f} fit {row['fit_s']:.0f} s",
            flush=True,
        )
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    add_data_arguments(parser, seeds=(1, 2, 3))
    parser.add_argument("--tag", required=True, help="results go to judged_fidelity_<tag>/")
    parser.add_argument("--minutes", type=float, default=None,
                        help="time budget: tasks not finished by then are not run (the record "
                             "holds the rows done)")  # fmt: skip
    args = parser.parse_args(argv)
    started = provenance(sys.argv)
    flow, refine = chosen_flow(), chosen_refinement()
    sizes = {name: ([HZZ_SIZE] if name == "hzz_mumu" else args.sizes) for name in args.datasets}
    tasks = [(name, size, seed, family, args.samples, args.data, flow, refine)
             for name in args.datasets for size in sizes[name] for seed in args.seeds
             for family in GENERATORS]  # fmt: skip
    # seed by seed, each dataset's two generators side by side: a time budget cuts whole rows
    tasks.sort(key=lambda t: (t[2], args.datasets.index(t[0]), -t[1], t[3] != "vaeaug"))
    rows = run_tasks(one_task, tasks, args.jobs, args.minutes)
    path = record(f"judged_fidelity_{args.tag}", {
        "factor": FACTOR, "flow_config": flow.label(), "refinement": refine["label"],
        "datasets": args.datasets,
        "sizes": sizes, "seeds": args.seeds, "rows": rows}, argv=sys.argv, started=started)  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
