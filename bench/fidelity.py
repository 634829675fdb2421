"""Physics fidelity of vaeaug against its peers on D+ -> K- pi+ pi+ (Pythia 8).

For each training size N, every peer is trained on the same N signal candidates of
the training file, generates 4N candidates, and is judged against the whole signal
tree of the independent reference file::

    OMP_NUM_THREADS=1 python bench/fidelity.py --out bench/results/fidelity.json

writes the JSON results and a Markdown table beside them (``fidelity.md``).
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
    data_dir,
    fidelity_metrics,
    load_p4,
    machine,
    markdown_table,
    one_thread,
    pt_order_pions,
    write_json,
)

__all__ = ["main", "run", "table"]

DEFAULT_PEERS = ["gaussian", "plain-vae", "tvae", "nsf", "nsf-decay", "vaeaug"]

#: Tiny settings for --quick: seconds per peer, to check the plumbing only.
QUICK_KWARGS: dict[str, dict[str, Any]] = {
    "plain-vae": {"epochs": 3},
    "tvae": {"epochs": 2},
    "nsf": {"epochs": 2, "transforms": 2, "hidden": 16},
    "nsf-decay": {"epochs": 2, "transforms": 2, "hidden": 16},
    "vaeaug": {
        "config": {"latent_dim": 4, "hidden": (32, 32)},
        "train": {"epochs": 4, "patience": 2, "kl_warmup_epochs": 1},
    },
}


def run(
    sizes: list[int],
    peers: list[str],
    *,
    seed: int,
    quick: bool = False,
    data: str | None = None,
    factor: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, sample and judge every peer at every size; returns the results dictionary."""
    from peers import make_peer
    from tqdm.auto import tqdm

    folder = data_dir(data)
    train = load_p4(folder, "train", "signal")
    reference = load_p4(folder, "reference", "signal")
    if quick:
        reference = reference[np.random.default_rng(seed).permutation(len(reference))[:4000]]
    rows = []
    bar = tqdm(total=len(sizes) * len(peers), desc="fidelity", unit="fit", disable=not progress)
    for size in sizes:
        if size > len(train):
            raise SystemExit(f"--sizes {size} exceeds the {len(train)} training candidates")
        rng = np.random.default_rng([seed, size])
        training = train[rng.permutation(len(train))[:size]]
        # The C2ST floor: a real sample of the generated size (capped by the file).
        same = train[rng.permutation(len(train))[: min(factor * size, len(train))]]
        for name in peers:
            bar.set_postfix_str(f"N={size} {name}")
            peer = make_peer(name, **(QUICK_KWARGS.get(name, {}) if quick else {}))
            row: dict[str, Any] = {"peer": name, "n_train": size}
            t0 = time.perf_counter()
            peer.fit(training, seed=seed)
            t1 = time.perf_counter()
            generated = peer.sample(factor * size, seed=seed + 1)
            t2 = time.perf_counter()
            row["fit_s"], row["sample_s"] = t1 - t0, t2 - t1
            row["epochs"] = getattr(peer, "epochs_run", None)
            # Identical pions: the file's label convention (pi1 = higher pT) is applied to
            # every generator's output, so no peer is judged on the ordering.
            generated = pt_order_pions(generated)
            row.update(
                fidelity_metrics(
                    generated,
                    training,
                    reference,
                    same,
                    seed=seed,
                    n_bootstrap=10 if quick else 50,
                )
            )
            rows.append(row)
            bar.update(1)
    bar.close()
    return {
        "benchmark": "fidelity",
        "seed": seed,
        "quick": quick,
        "factor": factor,
        "n_reference": len(reference),
        "machine": machine(),
        "rows": rows,
    }


def _order(peer: str) -> int:
    return DEFAULT_PEERS.index(peer) if peer in DEFAULT_PEERS else len(DEFAULT_PEERS)


def _pm(x: float | None, e: float | None, spec: str) -> str:
    if x is None or not np.isfinite(x):
        return "inf" if x is not None and x > 0 else "n/a"
    return f"{x:{spec}} ± {e:{spec}}" if e is not None and np.isfinite(e) else f"{x:{spec}}"


def table(results: dict[str, Any]) -> str:
    """The results as a Markdown table, one row per (N, peer)."""
    header = [
        "N",
        "peer",
        "C2ST AUC (real floor)",
        "peak − ref [MeV]",
        "width / ref",
        "max Δρ_S (real)",
        "mean W1/σ (real)",
        "amplification",
        "fit [s]",
        "sample [s]",
    ]
    body = []
    for r in results["rows"]:
        body.append(
            [
                f"{r['n_train']:,}",
                r["peer"],
                f"{r['c2st_auc']:.3f} ({r['c2st_floor']:.3f})",
                f"{r['peak_shift_mev']:+.2f}",
                f"{r['width_ratio']:.3f}",
                f"{r['spearman_max_diff']:.3f} ({r['spearman_max_diff_real']:.3f})",
                f"{r['w1_norm_mean']:.3f} ({r['w1_norm_mean_real']:.3f})",
                _pm(r["amplification"], r["amplification_err"], ".2f"),
                f"{r['fit_s']:.1f}",
                f"{r['sample_s']:.2f}",
            ]
        )
    return markdown_table(header, body)


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
    parser.add_argument("--seed", type=int, default=1, help="seeds subsets, training and sampling")
    parser.add_argument("--out", default="bench/results/fidelity.json", help="JSON results path")
    parser.add_argument("--data", default=None, help="folder of the shared ROOT files")
    parser.add_argument("--quick", action="store_true", help="CI-sized run: N=500, tiny models")
    parser.add_argument(
        "--from-json",
        nargs="+",
        default=None,
        metavar="JSON",
        help="do not train: merge the results of earlier runs and write the table",
    )
    parser.add_argument(
        "--append", action="store_true", help="merge into the rows already in --out"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    one_thread()
    sizes = [500] if args.quick else args.sizes
    out = Path(args.out)
    if args.from_json:
        # No training: merge earlier runs (e.g. peers run in parallel); later files win.
        runs = [json.loads(Path(f).read_text()) for f in args.from_json]
        results, previous = runs[-1], [r for run_ in runs[:-1] for r in run_["rows"]]
    else:
        results = run(
            sizes,
            args.peers,
            seed=args.seed,
            quick=args.quick,
            data=args.data,
            progress=not args.no_progress,
        )
        previous = json.loads(out.read_text())["rows"] if args.append and out.exists() else []
    # Rows of another run (other peers or sizes) are kept unless this run redid them.
    done = {(r["peer"], r["n_train"]) for r in results["rows"]}
    kept = [r for r in previous if (r["peer"], r["n_train"]) not in done]
    results["rows"] = sorted(
        kept + results["rows"], key=lambda r: (r["n_train"], _order(r["peer"]))
    )
    md = table(results)
    print(md)
    write_json(out, results)
    out.with_suffix(".md").write_text(md + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
