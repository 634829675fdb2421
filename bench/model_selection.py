"""Choose vaeaug's defaults on validation splits of the *training* files only.

Every candidate setting is trained on N candidates drawn from a training file
and its samples are judged against *other* candidates of the same training file
(the validation part); no reference file is read. Several datasets take part,
so that a default is not tuned to one decay::

    OMP_NUM_THREADS=1 python bench/model_selection.py --benchmark model_selection \\
        --variants default prior=standard beta=0.03 --datasets dplus dimuon

A variant is ``default`` or ``key=value[;key=value]`` overrides of
:class:`vaeaug.VAEConfig` or :class:`vaeaug.TrainConfig` fields, or of the ``phi`` and
``exchange`` options of :func:`vaeaug.fit`. Datasets:
``dplus`` (the shared D+ train file), ``dimuon-builtin`` (vaeaug.datasets'
continuum), or ``NAME=FILE:TREE:obj1,obj2,...[:m1,m2,...]`` for any file (e.g. the
Pythia table of ``examples/decays_pythia.py``), with the daughters' masses in GeV where
they cannot be inferred (real detector data). The validation part is the last
``--val`` candidates of a fixed permutation; training subsets come from the rest.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import data_dir, machine, markdown_table, one_thread, write_json
from _record import add_results_arguments, record

__all__ = [
    "judge",
    "load_dataset",
    "main",
    "parse_variant",
    "row_score",
    "split",
    "summarize",
    "training_subset",
]


#: Variant keys that are options of :func:`vaeaug.fit`, not of a config.
FIT_KEYS = {"phi", "exchange"}


def parse_variant(text: str) -> dict[str, Any]:
    """``"beta=0.03;hidden=(64,64)"`` -> ``{"beta": 0.03, "hidden": (64, 64)}``."""
    if text == "default":
        return {}
    out: dict[str, Any] = {}
    for item in text.split(";"):
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)  # numbers and tuples
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def load_dataset(
    spec: str, data: str | None
) -> tuple[str, np.ndarray, list[str], list[float] | None]:
    """(name, 4-momenta (N, k, 4) GeV, object names, daughter masses in GeV or None to
    infer them) of a dataset spec."""
    import vaeaug

    if spec == "dplus":
        folder = data_dir(data)
        objects = ["K1", "pi1", "pi2"]
        table = vaeaug.read_candidates(
            folder / "dplus_kpipi_train.root", tree="signal", objects=objects
        )
        return spec, table.p4, objects, None
    if spec == "dimuon-builtin":
        from vaeaug.datasets import dimuon_continuum

        p4 = dimuon_continuum(60_000, seed=5)
        p4 = getattr(p4, "p4", p4)
        return spec, np.asarray(p4), ["mu1", "mu2"], None
    name, _, rest = spec.partition("=")
    path, tree, objects, *masses = rest.split(":")
    table = vaeaug.read_candidates(path, tree=tree, objects=objects.split(","))
    masses = [float(m) for m in masses[0].split(",")] if masses else None
    return name, table.p4, objects.split(","), masses


def split(p4: np.ndarray, n_val: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, validation part (n_val, k, 4)) of a training file's candidates ``p4``: the
    validation part is the last ``n_val`` of a fixed permutation, the pool the rest."""
    order = np.random.default_rng(12345).permutation(len(p4))
    return p4[order[:-n_val]], p4[order[-n_val:]]


def training_subset(pool: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` candidates of ``pool`` drawn with ``seed`` (a row's training sample)."""
    return pool[np.random.default_rng([seed, size]).permutation(len(pool))[:size]]


def judge(generated: np.ndarray, validation: np.ndarray, training: np.ndarray,
          objects: list[str], seed: int, groups: list[list[int]] | None = None,
          sorted_c2st: bool = False) -> dict[str, float]:  # fmt: skip
    """C2ST (physics + raw features) and support fractions of ``generated`` vs ``validation``.

    ``groups``: identical daughters that the training file labels by decreasing pT
    (:func:`vaeaug.model.symmetry.pt_ordered_groups`); ``misordered`` is the fraction of
    generated candidates that break that order, and with ``sorted_c2st`` the C2ST is also
    taken with both samples sorted (``c2st_auc_sorted``: the shape alone, as the judged
    benchmark compares it)."""
    from vaeaug.model.support import Support, observables
    from vaeaug.model.symmetry import order_by_pt
    from vaeaug.validation import c2st, feature_table

    _, fv = feature_table(validation, objects)
    _, fg = feature_table(generated, objects)
    test = c2st(fv, fg, seed=seed, n_bootstrap=20, max_events=20_000, n_threads=1)
    extra: dict[str, float] = {}
    if groups:
        ordered = order_by_pt(np.array(generated, dtype=np.float64, copy=True), groups)
        extra["misordered"] = float(np.mean((ordered != generated).any(axis=(1, 2))))
        if sorted_c2st:
            _, fs = feature_table(ordered, objects)
            _, fvs = feature_table(order_by_pt(np.array(validation, copy=True), groups), objects)
            extra["c2st_auc_sorted"] = c2st(fvs, fs, seed=seed, n_bootstrap=20,
                                            max_events=20_000, n_threads=1)["auc"]  # fmt: skip
    names, obs_t = observables(training, objects)
    support = Support.fit(obs_t, names)
    outside = lambda p4: float(np.mean(~support.inside(observables(p4, objects)[1])))  # noqa: E731
    return {
        "c2st_auc": test["auc"],
        "c2st_err": test["auc_err"],
        "outside_gen": outside(generated),
        "outside_real": outside(validation),
        **extra,
    }


def run(variants: list[str], datasets: list[str], sizes: list[int], seeds: list[int],
        n_val: int, data: str | None, support: str, on_row=None,
        sorted_c2st: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    import dataclasses

    import vaeaug
    from vaeaug.model.symmetry import pt_ordered_groups
    from vaeaug.representations.choice import infer_masses

    vae_keys = {f.name for f in dataclasses.fields(vaeaug.VAEConfig)}
    rows = []
    for spec in datasets:
        name, p4, objects, masses = load_dataset(spec, data)
        pool, validation = split(p4, n_val)
        try:
            groups = pt_ordered_groups(pool, masses or infer_masses(pool, objects))
        except vaeaug.InputError:  # masses not fixed: no identical daughters to speak of
            groups = []
        for size in sizes:
            for seed in seeds:
                training = training_subset(pool, size, seed)
                for variant in variants:
                    over = parse_variant(variant)
                    cfg = vaeaug.VAEConfig(**{k: v for k, v in over.items() if k in vae_keys})
                    train = vaeaug.TrainConfig(**{k: v for k, v in over.items()
                                                  if k not in vae_keys | FIT_KEYS})  # fmt: skip
                    options = {k: v for k, v in over.items() if k in FIT_KEYS}
                    t0 = time.perf_counter()
                    model = vaeaug.fit(training, objects=objects, masses=masses, config=cfg,
                                       train=train, seed=seed, device="cpu",
                                       progress=False, **options)  # fmt: skip
                    t1 = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        gen = model.sample(min(4 * size, 40_000), seed=seed + 100, support=support)
                    t2 = time.perf_counter()
                    row = {"dataset": name, "n_train": size, "seed": seed, "variant": variant,
                           "config": {**dataclasses.asdict(cfg), **dataclasses.asdict(train),
                                      **options},
                           "exchange": model.exchange,
                           "decoder": cfg.decoder,
                           "fit_s": t1 - t0, "sample_s": t2 - t1,
                           "epochs": model.provenance["epochs_run"],
                           "best_epoch": model.provenance["best_epoch"],
                           "phi_uniform": model.phi_uniform,
                           "gen_outside_support": gen.support_report.outside_fraction}  # fmt: skip
                    row.update(judge(gen.p4, validation, training, objects, seed, groups,
                                     sorted_c2st))  # fmt: skip
                    print(row, flush=True)
                    rows.append(row)
                    if on_row is not None:
                        on_row(rows)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = ["dataset", "N", "seed", "decoder", "variant", "C2ST AUC (val)",
              "outside acc. gen/real", "support rejects", "epochs (best)", "fit [s]"]  # fmt: skip
    body = [[r["dataset"], f"{r['n_train']:,}", str(r["seed"]), r.get("decoder", "flow"),
             r["variant"],
             f"{r['c2st_auc']:.3f} ± {r['c2st_err']:.3f}",
             f"{r['outside_gen']:.4f} / {r['outside_real']:.4f}",
             f"{r['gen_outside_support']:.3f}", f"{r['epochs']} ({r['best_epoch']})",
             f"{r['fit_s']:.0f}"] for r in rows]  # fmt: skip
    if any("misordered" in r for r in rows):
        header += ["misordered", "C2ST AUC, sorted"]
        for line, r in zip(body, rows, strict=True):
            line += [f"{r['misordered']:.3f}" if "misordered" in r else "",
                     f"{r['c2st_auc_sorted']:.3f}" if "c2st_auc_sorted" in r else ""]  # fmt: skip
    return markdown_table(header, body)


def row_score(r: dict[str, Any], score: str) -> float:
    """A row's ``score``: ``c2st_auc``, or ``c2st_auc_sorted`` (identical daughters sorted
    by pT in both samples). A row without the sorted figure has it when its model had
    ``exchange`` groups: it generated every candidate sorted, so sorting changes nothing
    and the two figures are the same number (round 12b's rows show it to the last digit)."""
    if score == "c2st_auc_sorted" and score not in r:
        if not r.get("exchange"):
            raise ValueError(f"row {r['dataset']} N={r['n_train']} seed={r['seed']} "
                             f"{r['variant']} has no {score}; rerun it with --sorted-c2st")  # fmt: skip
        return r["c2st_auc"]
    return r[score]


def summarize(rows: list[dict[str, Any]], score: str = "c2st_auc") -> dict[str, Any]:
    """The selection rule's figures: per variant, the mean validation ``score``
    (:func:`row_score`) over all its (dataset, N, seed) rows and per dataset; against
    ``default``, the difference of the means and the worst dataset's difference
    (positive = worse than the default)."""
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], []).append(r)
    sizes: dict[str, set[int]] = {}
    for r in rows:
        sizes.setdefault(r["dataset"], set()).add(r["n_train"])

    def name(r: dict[str, Any]) -> str:  # a dataset judged at several N: one entry per N
        return r["dataset"] if len(sizes[r["dataset"]]) == 1 else f"{r['dataset']} {r['n_train']}"

    out: dict[str, Any] = {}
    for variant, rs in by_variant.items():
        datasets: dict[str, list[float]] = {}
        for r in rs:
            datasets.setdefault(name(r), []).append(row_score(r, score))
        out[variant] = {"rows": len(rs), "score": score,
                        "mean": float(np.mean([row_score(r, score) for r in rs])),
                        "datasets": {d: float(np.mean(v)) for d, v in datasets.items()}}  # fmt: skip
    if "default" in out:
        base = out["default"]
        for summary in out.values():
            common = [d for d in summary["datasets"] if d in base["datasets"]]
            summary["vs_default"] = {
                "mean_difference": summary["mean"] - base["mean"],
                "worst_dataset_difference": max(
                    summary["datasets"][d] - base["datasets"][d] for d in common
                ),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=None,
                        help="variants to train (default: default); with --from-json, "
                             "the variants to keep")  # fmt: skip
    parser.add_argument("--datasets", nargs="+", default=["dplus"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--val", type=int, default=10_000, help="validation candidates")
    parser.add_argument("--support", default="reject", help="support mode when sampling")
    parser.add_argument("--sorted-c2st", action="store_true",
                        help="also the C2ST with identical daughters sorted by pT in both "
                             "samples (c2st_auc_sorted), as the judged benchmark compares them")  # fmt: skip
    parser.add_argument("--data", default=None, help="folder of the shared ROOT files")
    add_results_arguments(parser, "model_selection")
    parser.add_argument(
        "--append", action="store_true", help="add to the rows of <results>/<benchmark>/latest.json"
    )
    parser.add_argument("--from-json", nargs="+", metavar="JSON",
                        help="do not train: print the table of earlier runs' rows")  # fmt: skip
    parser.add_argument("--summary", metavar="NAME",
                        help="with --from-json: record the rule's means (summarize) as "
                             "<results>/NAME/latest.json")  # fmt: skip
    parser.add_argument("--score", default="c2st_auc", choices=("c2st_auc", "c2st_auc_sorted"),
                        help="with --summary: the rule's score (row_score)")  # fmt: skip
    parser.add_argument("--rename", nargs="+", default=[], metavar="OLD:NEW",
                        help="with --from-json: call the rows of variant OLD variant NEW (e.g. "
                             "the earlier rounds' rows of what is now the previous default)")  # fmt: skip
    args = parser.parse_args(argv)
    command = ["bench/model_selection.py", *(sys.argv[1:] if argv is None else argv)]
    if args.from_json:
        import json

        rows = [r for f in args.from_json for r in json.loads(Path(f).read_text())["rows"]]
        if args.variants:
            rows = [r for r in rows if r["variant"] in args.variants]
        renames = dict(item.rsplit(":", 1) for item in args.rename)
        rows = [{**r, "variant": renames.get(r["variant"], r["variant"])} for r in rows]
        print(table(rows))
        if args.summary:
            summary = summarize(rows, args.score)
            record(
                args.summary,
                {"from": list(args.from_json), "variants": summary},
                results=Path(args.results),
                argv=command,
            )
            print(json.dumps(summary, indent=1))
        return 0
    one_thread()
    folder = Path(args.results) / args.benchmark
    out = folder / "latest.json"
    previous = []
    if args.append and out.exists():
        import json

        previous = json.loads(out.read_text())["rows"]

    def save(rows: list[dict[str, Any]]) -> None:  # after every row: a long run keeps its rows
        write_json(folder / "partial.json", {"machine": machine(), "rows": previous + rows})

    rows = previous + run(args.variants or ["default"], args.datasets, args.sizes, args.seeds, args.val,
                          args.data, args.support, on_row=save,
                          sorted_c2st=args.sorted_c2st)  # fmt: skip
    record(
        args.benchmark,
        {"machine": machine(), "rows": rows},
        results=Path(args.results),
        argv=command,
    )
    (folder / "partial.json").unlink(missing_ok=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
