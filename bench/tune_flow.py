"""Tune the spline-flow peer on validation splits of the training files (no reference file).

Every configuration of :data:`fair.FLOW_GRID` is trained on N candidates of a training
file (seed s) and its guarded sample (4N candidates, :class:`fair.Guard`) is judged by
the C2ST of both judge families against the validation part of the same file, the way
``bench/model_selection.py`` chooses vaeaug's defaults. The rule, written before the run
(docs/dev/nsf-tuning.md): the configuration with the lowest mean histogram-boosting C2ST
over the rows wins::

    OMP_NUM_THREADS=1 python bench/tune_flow.py --samples /work/samples --jobs 2
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
from _record import record

__all__ = ["ROWS", "main", "validation_rows"]

#: (dataset, training size, validation candidates): one row per dataset and seed.
ROWS = [("dplus", 1000, 10_000), ("d0_k3pi", 1000, 5000), ("dimuon", 1000, 5000),
        ("hzz_mumu", 500, 241)]  # fmt: skip


def validation_rows(name: str, size: int, n_val: int, seed: int, samples: str, data: str | None):
    """(training subset (size, k, 4), validation part (n_val, k, 4), dataset) of a training file."""
    from _common import load_dataset
    from model_selection import split, training_subset

    ds = _dataset(name, samples, data, load_dataset)
    pool, validation = split(ds.train, n_val)
    return training_subset(pool, size, seed), validation, ds


def _dataset(name: str, samples: str, data: str | None, load_dataset):
    """A benchmark dataset, its *training* file only (it stands in for the reference)."""
    from fair import dataset_args

    return load_dataset(**dataset_args(name, samples, data, reference=False))


def one_row(task: tuple) -> dict[str, Any]:
    """Train one configuration on one row and judge it on the validation part."""
    from fair import FlowPeer, Guard

    from vaeaug.validation import feature_table
    from vaeaug.validation.c2st import c2st

    one_thread()
    config, name, size, n_val, seed, samples, data = task
    train, validation, ds = validation_rows(name, size, n_val, seed, samples, data)
    row: dict[str, Any] = {"config": config.label(), "dataset": name, "n_train": size,
                           "seed": seed}  # fmt: skip
    t0 = time.perf_counter()
    peer = FlowPeer(ds.objects, ds.masses, config).fit(train, seed=seed)
    row["fit_s"], row["epochs"] = time.perf_counter() - t0, peer.epochs_run
    guard = Guard(train, ds.objects, ds.masses, seed=seed)
    generated, report = guard.sample(lambda n, s: ds.order(peer.sample(n, s)), 4 * size, seed + 1)
    row.update(report)
    _, fv = feature_table(validation, ds.objects)
    _, fg = feature_table(generated, ds.objects)
    for family in ("hgb", "mlp"):
        test = c2st(fv, fg, seed=seed, n_bootstrap=20, max_events=20_000, n_threads=1,
                    family=family)  # fmt: skip
        row[f"c2st_{family}"], row[f"c2st_{family}_err"] = test["auc"], test["auc_err"]
    print(
        f"{row['config']:>24} {name:>9} N={size} s={seed}: hgb {row['c2st_hgb']:.3f} "
        f"mlp {row['c2st_mlp']:.3f} ({row['fit_s']:.0f} s, {row['epochs']} epochs)",
        flush=True,
    )
    return row


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration: mean C2ST of each family over the rows, best first."""
    out = []
    for label in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == label]
        out.append({"config": label, "rows": len(mine),
                    "c2st_hgb_mean": float(np.mean([r["c2st_hgb"] for r in mine])),
                    "c2st_mlp_mean": float(np.mean([r["c2st_mlp"] for r in mine])),
                    "fit_s_mean": float(np.mean([r["fit_s"] for r in mine]))})  # fmt: skip
    return sorted(out, key=lambda s: s["c2st_hgb_mean"])


def main(argv: list[str] | None = None) -> int:
    from fair import FLOW_GRID, add_data_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    tasks = [(c, name, size, n_val, s, args.samples, args.data)
             for s in args.seeds for name, size, n_val in ROWS for c in FLOW_GRID]  # fmt: skip
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            rows = pool.map(one_row, tasks, chunksize=1)
    else:
        rows = [one_row(t) for t in tasks]
    summary = summarize(rows)
    path = record("flow_tuning", {"rule": "lowest mean c2st_hgb over the rows",
                                  "chosen": summary[0]["config"], "summary": summary,
                                  "rows": rows}, argv=sys.argv)  # fmt: skip
    for s in summary:
        print(
            f"{s['config']:>24}: hgb {s['c2st_hgb_mean']:.4f} mlp {s['c2st_mlp_mean']:.4f} "
            f"fit {s['fit_s_mean']:.0f} s"
        )
    print(f"chosen: {summary[0]['config']} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
