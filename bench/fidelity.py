"""Physics fidelity of vaeaug against its peers on any decay (default: D+ -> K- pi+ pi+).

For each seed and training size N, every peer is trained on the same N candidates of
the training file, generates 4N candidates, and is judged against the whole tree of
the independent reference file::

    OMP_NUM_THREADS=1 python bench/fidelity.py   # -> bench/results/fidelity/latest.json

runs on the shared Pythia D+ files (``$VAEAUG_TESTDATA``, tree ``signal``; ``--data DIR``
for another folder holding them); any other decay is a training/reference pair of
ROOT files with flat ``<object>_px/_py/_pz/_E`` branches::

    OMP_NUM_THREADS=1 python bench/fidelity.py --data lc_train.root \
        --reference lc_reference.root --tree signal --objects p K pi --name lambdac \
        --seeds 1 2 3 --benchmark fidelity_lambdac

The daughters' masses are inferred from the training file unless ``--masses`` gives
them (GeV); ``--identical pi1,pi2`` names identical particles that the files order by
decreasing pT (the D+ default), and every generated sample is put in that order.
Records the results (``bench/results/<benchmark>/latest.json`` and a line of
``history.jsonl``, through ``_record.record``) and prints them as a Markdown table.
``--quick`` is a CI-sized run (seconds, tiny models; the numbers mean nothing).
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
    RESONANCE_WINDOW,
    Dataset,
    fidelity_metrics,
    load_dataset,
    machine,
    markdown_table,
    one_thread,
)
from _record import add_results_arguments, record

__all__ = ["main", "run", "seed_summary", "table"]

DEFAULT_PEERS = ["gaussian", "plain-vae", "tvae", "nsf", "nsf-decay", "vaeaug"]

#: Tiny settings for --quick: seconds per peer, to check the plumbing only.
QUICK_KWARGS: dict[str, dict[str, Any]] = {
    "plain-vae": {"epochs": 3},
    "tvae": {"epochs": 2},
    "nsf": {"epochs": 2, "transforms": 2, "hidden": 16},
    "nsf-decay": {"epochs": 2, "transforms": 2, "hidden": 16},
    "vaeaug": {
        # the default architecture (flow prior, flow decoder), each as small as it goes
        "config": {
            "latent_dim": 4,
            "hidden": (32, 32),
            "prior_transforms": 1,
            "prior_hidden": (16, 16),
            "decoder_transforms": 1,
        },
        "train": {"epochs": 4, "patience": 2, "kl_warmup_epochs": 1, "eval_events": 500},
    },
}


def run(
    sizes: list[int],
    peers: list[str],
    *,
    seed: int | None = None,
    seeds: list[int] | None = None,
    quick: bool = False,
    data: str | None = None,
    dataset: Dataset | None = None,
    factor: int = 4,
    progress: bool = True,
    resonances: list[str] | None = None,
) -> dict[str, Any]:
    """Train, sample and judge every peer at every seed and size; returns the results.

    seeds: the seeds to run (``seed`` alone is ``seeds=[seed]``; default [1]). Seed s
        draws the training subset, trains (seed s) and samples (seed s + 1).
    dataset: the samples (:func:`load_dataset`); default the shared D+ files in ``data``.
    resonances: ``particle`` names of narrow resonances whose share of candidates in
        their mass window is compared (a spectrum such as the dimuon one).
    """
    from peers import make_peer
    from tqdm.auto import tqdm

    seeds = list(seeds) if seeds else [1 if seed is None else seed]
    ds = dataset if dataset is not None else load_dataset(data)
    train, reference = ds.train, ds.reference
    if quick:
        rng = np.random.default_rng(seeds[0])
        reference = reference[rng.permutation(len(reference))[:4000]]
    rows = []
    bar = tqdm(total=len(seeds) * len(sizes) * len(peers), desc=f"fidelity {ds.name}",
               unit="fit", disable=not progress)  # fmt: skip
    for size in sizes:
        if size > len(train):
            raise SystemExit(f"--sizes {size} exceeds the {len(train)} training candidates")
    for seed_ in seeds:
        for size in sizes:
            rng = np.random.default_rng([seed_, size])
            training = train[rng.permutation(len(train))[:size]]
            # The C2ST floor: a real sample of the generated size (capped by the file).
            same = train[rng.permutation(len(train))[: min(factor * size, len(train))]]
            for name in peers:
                bar.set_postfix_str(f"seed={seed_} N={size} {name}")
                kwargs = QUICK_KWARGS.get(name, {}) if quick else {}
                peer = make_peer(name, objects=ds.objects, masses=ds.masses, **kwargs)
                row: dict[str, Any] = {"dataset": ds.name, "seed": seed_, "peer": name,
                                       "n_train": size}  # fmt: skip
                t0 = time.perf_counter()
                peer.fit(training, seed=seed_)
                t1 = time.perf_counter()
                generated = peer.sample(factor * size, seed=seed_ + 1)
                t2 = time.perf_counter()
                row["fit_s"], row["sample_s"] = t1 - t0, t2 - t1
                row["epochs"] = getattr(peer, "epochs_run", None)
                report = getattr(peer, "support_report", None)
                if report is not None:  # vaeaug: the fraction its support guard redrew
                    row["support_redrawn"] = report["outside_fraction"]
                    row["support_unresolved"] = report["unresolved"]
                # Identical particles: the files' label convention (decreasing pT) is applied
                # to every generator's output, so no peer is judged on the ordering.
                generated = ds.order(generated)
                row.update(
                    fidelity_metrics(
                        generated,
                        training,
                        reference,
                        same,
                        seed=seed_,
                        objects=ds.objects,
                        masses=ds.masses,
                        n_bootstrap=10 if quick else 50,
                        resonances=resonances or (),
                    )
                )
                rows.append(row)
                bar.update(1)
    bar.close()
    return {
        "benchmark": "fidelity",
        "seed": seeds[0],
        "seeds": seeds,
        "quick": quick,
        "factor": factor,
        "dataset": ds.describe(),
        "n_reference": len(reference),
        "machine": machine(),
        "rows": rows,
    }


def _order(peer: str) -> int:
    return DEFAULT_PEERS.index(peer) if peer in DEFAULT_PEERS else len(DEFAULT_PEERS)


def _key(r: dict[str, Any]) -> tuple:
    """What identifies a row: a later run that redid it replaces it."""
    return (r["dataset"], r["n_train"], r["seed"], r["peer"])


def _sort_key(r: dict[str, Any]) -> tuple:
    return (r["dataset"], r["n_train"], r["seed"], _order(r["peer"]), r["peer"])


def _complete(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a run, with the dataset and seed filled in for files of earlier
    versions (which ran the shared D+ files, one seed per file)."""
    name = (results.get("dataset") or {}).get("name", "dplus_kpipi")
    return [{"dataset": name, "seed": results.get("seed"), **r} for r in results["rows"]]


def seed_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The C2ST AUC over seeds for every (dataset, N, peer) run with two or more seeds:
    mean, sample standard deviation (the seed-to-seed spread) and the range."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["n_train"], r["peer"]), []).append(r["c2st_auc"])
    out = []
    for (dataset, n, peer), aucs in groups.items():
        a = np.asarray([x for x in aucs if x is not None], dtype=np.float64)
        if len(a) < 2:
            continue
        out.append({"dataset": dataset, "n_train": n, "peer": peer, "n_seeds": len(a),
                    "c2st_mean": float(a.mean()), "c2st_std": float(a.std(ddof=1)),
                    "c2st_min": float(a.min()), "c2st_max": float(a.max())})  # fmt: skip
    return sorted(out, key=lambda r: (r["dataset"], r["n_train"], _order(r["peer"]), r["peer"]))


def _frac(r: dict[str, Any], key: str) -> str:
    """``gen (real)`` fractions of ``{key}_gen`` and ``{key}_real`` in percent."""
    g, x = r.get(f"{key}_gen"), r.get(f"{key}_real")
    if g is None or x is None or not (np.isfinite(g) and np.isfinite(x)):
        return "n/a"
    return f"{100 * g:.2f} ({100 * x:.2f})"


def _pm(x: float | None, e: float | None, spec: str) -> str:
    if x is None or not np.isfinite(x):
        return "inf" if x is not None and x > 0 else "n/a"
    return f"{x:{spec}} ± {e:{spec}}" if e is not None and np.isfinite(e) else f"{x:{spec}}"


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table, one row per (dataset, N, seed, peer); below it,
    when some runs have several seeds, the C2ST's seed-to-seed spread."""
    header = [
        "dataset",
        "N",
        "seed",
        "peer",
        "C2ST AUC (real floor)",
        "peak − ref [MeV]",
        "width / ref",
        "max Δρ_S (real)",
        "mean W1/σ (real)",
        "amplification",
        "outside acc. % (real)",
        "at threshold % (real)",
        "fit [s]",
        "sample [s]",
    ]
    body = []
    for r in results["rows"]:
        body.append(
            [
                r["dataset"],
                f"{r['n_train']:,}",
                str(r["seed"]),
                r["peer"],
                f"{r['c2st_auc']:.3f} ({r['c2st_floor']:.3f})",
                f"{r['peak_shift_mev']:+.2f}",
                f"{r['width_ratio']:.3f}",
                f"{r['spearman_max_diff']:.3f} ({r['spearman_max_diff_real']:.3f})",
                f"{r['w1_norm_mean']:.3f} ({r['w1_norm_mean_real']:.3f})",
                _pm(r["amplification"], r["amplification_err"], ".2f"),
                _frac(r, "outside_acceptance"),
                _frac(r, "at_threshold"),
                f"{r['fit_s']:.1f}",
                f"{r['sample_s']:.2f}",
            ]
        )
    md = markdown_table(header, body)
    with_res = [r for r in results["rows"] if r.get("resonances")]
    if with_res:
        names = list(with_res[0]["resonances"])
        md += ("\n\nNarrow resonances: % of candidates in each mass window (a particle's: "
               f"{100 * RESONANCE_WINDOW:.0f}% of its PDG mass either side), "
               "generated (reference); in brackets after it, generated/reference and, for "
               "scale, training/reference:\n\n") + markdown_table(
            ["dataset", "N", "seed", "peer", *names],
            [[r["dataset"], f"{r['n_train']:,}", str(r["seed"]), r["peer"],
              *[f"{100 * v['frac_gen']:.1f} ({100 * v['frac_ref']:.1f}) "
                f"[{v['ratio_gen']:.2f}; {v['ratio_train']:.2f}]"
                for v in (r["resonances"][n] for n in names)]] for r in with_res],
        )  # fmt: skip
    spread = seed_summary(results["rows"])
    if spread:
        md += "\n\nC2ST AUC over seeds (std: the seed-to-seed spread):\n\n" + markdown_table(
            ["dataset", "N", "peer", "seeds", "mean", "std", "min", "max"],
            [[s["dataset"], f"{s['n_train']:,}", s["peer"], str(s["n_seeds"]),
              f"{s['c2st_mean']:.3f}", f"{s['c2st_std']:.3f}", f"{s['c2st_min']:.3f}",
              f"{s['c2st_max']:.3f}"] for s in spread],
        )  # fmt: skip
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1000, 10000],
        help="training sizes N (default: 1000 10000)",
    )
    parser.add_argument(
        "--peers",
        nargs="+",
        default=DEFAULT_PEERS,
        help=f"peers to run (default: {' '.join(DEFAULT_PEERS)})",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seeds subsets, training and sampling (default 1)"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None,
        help="several seeds in one run (rows keyed by seed; overrides --seed)",
    )  # fmt: skip
    add_results_arguments(parser, "fidelity")
    data = parser.add_argument_group(
        "dataset", "default: the shared D+ -> K- pi+ pi+ files of $VAEAUG_TESTDATA"
    )
    data.add_argument(
        "--data", "--data-dir", dest="data", default=None, metavar="PATH",
        help="the training ROOT file, or a folder holding dplus_kpipi_train.root and "
        "dplus_kpipi_reference.root",
    )  # fmt: skip
    data.add_argument(
        "--reference", default=None, metavar="FILE",
        help="the judging ROOT file (required with --data FILE)",
    )  # fmt: skip
    data.add_argument(
        "--tree", default=None,
        help="tree of both files (default 'signal' for the D+ files; may be omitted when a "
        "file holds one tree)",
    )  # fmt: skip
    data.add_argument(
        "--objects", nargs="+", default=None, metavar="NAME",
        help="daughters, the branch prefixes <name>_px/_py/_pz/_E (default: K1 pi1 pi2 for "
        "the D+ files, else every object of the file)",
    )  # fmt: skip
    data.add_argument(
        "--masses", type=float, nargs="+", default=None, metavar="GEV",
        help="the daughters' masses in GeV (default: inferred from the training file)",
    )  # fmt: skip
    data.add_argument(
        "--identical", nargs="*", default=None, metavar="GROUP",
        help="groups of identical particles that the files order by decreasing pT, "
        "comma-separated (default: pi1,pi2 for the D+ files, none otherwise; give the "
        "option with no group to switch the ordering off)",
    )  # fmt: skip
    data.add_argument(
        "--name", default=None,
        help="dataset label in the results (default: dplus_kpipi, or the training file's "
        "name without _train.root)",
    )  # fmt: skip
    data.add_argument(
        "--resonances", nargs="+", default=None, metavar="NAME",
        help="narrow resonances of a spectrum, as the 'particle' package names them (e.g. "
        f"'J/psi(1S)' 'Upsilon(1S)' Z0): the share of candidates within "
        f"{100 * RESONANCE_WINDOW:.0f}%% of each PDG mass, generated against reference",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="CI-sized run: N=500, tiny models")
    parser.add_argument(
        "--from-json",
        nargs="+",
        default=None,
        metavar="JSON",
        help="do not train: merge the results of earlier runs and write the table",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="merge into the rows of <results>/<benchmark>/latest.json",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    one_thread()
    sizes = [500] if args.quick else args.sizes
    out = Path(args.results) / args.benchmark / "latest.json"
    if args.from_json:
        # No training: merge earlier runs (e.g. peers run in parallel); later files win.
        runs = [json.loads(Path(f).read_text()) for f in args.from_json]
        for run_ in runs:
            run_["rows"] = _complete(run_)
        results, previous = runs[-1], [r for run_ in runs[:-1] for r in run_["rows"]]
    else:
        dataset = load_dataset(
            args.data,
            reference=args.reference,
            tree=args.tree,
            objects=args.objects,
            masses=args.masses,
            identical=args.identical,
            name=args.name,
        )
        results = run(
            sizes,
            args.peers,
            seeds=args.seeds or [args.seed],
            quick=args.quick,
            dataset=dataset,
            progress=not args.no_progress,
            resonances=args.resonances,
        )
        previous = _complete(json.loads(out.read_text())) if args.append and out.exists() else []
    # Rows of another run (other peers, sizes, seeds or datasets) are kept unless this
    # run redid them.
    done = {_key(r) for r in results["rows"]}
    kept = [r for r in previous if _key(r) not in done]
    results["rows"] = sorted(kept + results["rows"], key=_sort_key)
    results["seed_summary"] = seed_summary(results["rows"])
    for key in ("benchmark", "provenance"):  # this run's, written by record()
        results.pop(key, None)
    print(table(results))
    record(
        args.benchmark,
        results,
        results=Path(args.results),
        argv=["bench/fidelity.py", *(sys.argv[1:] if argv is None else argv)],
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
