"""Which observables put a model's first draws outside the training support?

The support guard (:mod:`vaeaug.model.support`) redraws generated candidates that fall
outside the training sample's intervals. The model-selection rows show 6-31% of first
draws outside, against 0.1-1% of a second real sample. This script trains the default
model on the same training subsets as ``bench/model_selection.py`` (validation splits of
the training files only; no reference file is read), draws candidates with the guard
off, and counts, per observable, the fraction below and above its interval, next to the
validation sample's::

    OMP_NUM_THREADS=1 python bench/support_tails.py --datasets dplus --sizes 1000 --seeds 1 \\
        --val 10000 --benchmark support_tails_dplus   # -> bench/results/support_tails_dplus/

Dataset specs as in ``bench/model_selection.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, markdown_table, one_thread
from _record import add_results_arguments, record
from model_selection import load_dataset, parse_variant, split, training_subset

__all__ = ["main", "tails"]


def tails(model, p4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractions (O,) of candidates ``p4`` (N, k, 4) GeV below and above each support interval."""
    values = model.support_values(p4, model.representation.to_features(p4))
    return (values < model.support.lo).mean(axis=0), (values > model.support.hi).mean(axis=0)


def run(datasets: list[str], sizes: list[int], seeds: list[int], n_val: int, n_gen: int,
        variant: str, data: str | None) -> list[dict[str, Any]]:  # fmt: skip
    import dataclasses

    import vaeaug

    vae_keys = {f.name for f in dataclasses.fields(vaeaug.VAEConfig)}
    over = parse_variant(variant)
    rows = []
    for spec in datasets:
        name, p4, objects, masses = load_dataset(spec, data)
        pool, validation = split(p4, n_val)
        for size in sizes:
            for seed in seeds:
                training = training_subset(pool, size, seed)
                t0 = time.perf_counter()
                model = vaeaug.fit(
                    training, objects=objects, masses=masses, seed=seed, device="cpu",
                    config=vaeaug.VAEConfig(**{k: v for k, v in over.items() if k in vae_keys}),
                    train=vaeaug.TrainConfig(**{k: v for k, v in over.items() if k not in vae_keys}),
                    progress=False,
                )  # fmt: skip
                fit_s = time.perf_counter() - t0
                eps = np.random.default_rng([seed, 101]).standard_normal((n_gen, model.noise_width))
                gen, full = model.p4_from_noise(eps)
                inside = model.support.inside(model.support_values(gen, full))
                gen_lo, gen_hi = tails(model, gen)
                val_lo, val_hi = tails(model, validation)
                row = {"dataset": name, "n_train": size, "seed": seed, "variant": variant,
                       "fit_s": fit_s, "epochs": model.provenance["epochs_run"],
                       "best_epoch": model.provenance["best_epoch"], "n_gen": n_gen,
                       "outside_gen": float(1.0 - inside.mean()),
                       "expected_rate": model.support.expected_rate,
                       "observables": [{"name": n, "gen_below": float(a), "gen_above": float(b),
                                        "val_below": float(c), "val_above": float(d),
                                        "lo": float(lo), "hi": float(hi)}
                                       for n, a, b, c, d, lo, hi in zip(
                                           model.support.names, gen_lo, gen_hi, val_lo, val_hi,
                                           model.support.lo, model.support.hi)]}  # fmt: skip
                print({k: v for k, v in row.items() if k != "observables"}, flush=True)
                rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], top: int = 6) -> str:
    lines = []
    for r in rows:
        lines += [f"### {r['dataset']}, N = {r['n_train']}, seed {r['seed']} ({r['variant']})", "",
                  f"{r['outside_gen']:.1%} of {r['n_gen']} first draws outside the support "
                  f"(a second real sample: {r['expected_rate']:.1%}); {r['epochs']} epochs, "
                  f"best {r['best_epoch']}. The {top} observables with most generated "
                  "candidates outside (% below / above; validation in brackets):", ""]  # fmt: skip
        obs = sorted(r["observables"], key=lambda o: -(o["gen_below"] + o["gen_above"]))[:top]
        lines.append(markdown_table(
            ["observable", "interval", "generated below", "generated above", "validation below",
             "validation above"],
            [[o["name"], f"[{o['lo']:.4g}, {o['hi']:.4g}]", f"{100 * o['gen_below']:.2f}",
              f"{100 * o['gen_above']:.2f}", f"({100 * o['val_below']:.2f})",
              f"({100 * o['val_above']:.2f})"] for o in obs]))  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["dplus"])
    p.add_argument("--sizes", nargs="+", type=int, default=[1000])
    p.add_argument("--seeds", nargs="+", type=int, default=[1])
    p.add_argument("--val", type=int, default=10_000, help="validation candidates (default 10000)")
    p.add_argument(
        "--n-gen", type=int, default=20_000, help="first draws per model (default 20000)"
    )
    p.add_argument("--variant", default="default", help="key=value[;key=value] config overrides")
    p.add_argument("--data", help="folder of the shared files (default: $VAEAUG_TESTDATA)")
    add_results_arguments(p, "support_tails")
    args = p.parse_args(argv)
    one_thread()
    rows = run(args.datasets, args.sizes, args.seeds, args.val, args.n_gen, args.variant, args.data)
    path = record(
        args.benchmark,
        {"machine": machine(), "rows": rows},
        results=args.results,
        argv=["bench/support_tails.py", *(sys.argv[1:] if argv is None else argv)],
    )
    print(markdown(rows))
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
