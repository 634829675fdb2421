"""Posterior (local) sampling against prior sampling after a selection (issue #32, item 1).

An analyst augments *after* a selection: the candidates in a mass window, or above a
pT cut. Prior sampling then has to draw from the whole model and select; posterior
sampling gives each selected candidate ``--factor`` partners near it
(:mod:`vaeaug.sampling.posterior`). Both are judged at equal generated counts against
real candidates passing the same selection, with the boosted-tree C2ST on
:func:`vaeaug.validation.feature_table` features.

Two stages, the rule written before either ran (docs/dev/posterior-plan.md):

* ``tune``: one vaeaug model (defaults) per dataset and seed on N training candidates; the
  width is judged on *other rows of the training file* (never the reference file). The
  width with the smallest mean C2ST over datasets and seeds is chosen, among widths whose
  partners are not near-copies (:func:`choose`).
* ``judge``: the same models (same seeds, same N rows), the chosen width, read once
  against the reference files: the selected partners, prior-then-selected, the whole
  sample (posterior partners of every training candidate against prior sampling), and
  the memorisation check per source.

Selections keep 10-30% of the candidates: D+ -> K- pi+ pi+ with parent pT above the
training sample's 80th percentile; the dimuon spectrum's J/psi window, 3.0-3.2 GeV.

    OMP_NUM_THREADS=1 python bench/posterior.py tune --seeds 1 2 --jobs 2
    OMP_NUM_THREADS=1 python bench/posterior.py judge --seeds 1 2 --jobs 2

``--generator nsf`` runs both stages for the tuned spline flow of ``bench/fair.py`` (its own
width tuning, the same rule), with the same support guard and the same posterior step
on the flow's exact base point of each source (``fair.FlowPeer.partners``); results in
``posterior_tuning_nsf`` and ``posterior_judged_nsf``.
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

from _common import load_dataset, markdown_table, one_thread
from _record import RESULTS, add_results_arguments, record, run_tasks
from fair import add_data_arguments, dataset_args

__all__ = ["SELECTIONS", "WIDTHS", "main"]

#: Widths tried by the tuning stage (1 is prior sampling through the same path).
WIDTHS = (0.2, 0.35, 0.5, 0.7, 1.0)
#: Dataset -> (what the selection keeps, in words; the selection given the training sample).
SELECTIONS = {
    "dplus": "parent pT above the training sample's 80th percentile",
    "dimuon": "3.0 < m(mu mu) < 3.2 GeV (J/psi)",
}
FACTOR = 5
N_TRAIN = 2000
MODELS = Path("/tmp/vaeaug-posterior-models")


def _selector(name: str, training: np.ndarray):
    """The selection of dataset ``name``: p4 (N, k, 4) -> bool (N,)."""
    from vaeaug.kinematics import invariant_mass

    def parent_pt(p4):
        total = p4.sum(axis=1)
        return np.hypot(total[:, 0], total[:, 1])

    if name == "dplus":
        cut = float(np.quantile(parent_pt(training), 0.8))
        return lambda p4: parent_pt(p4) > cut
    return lambda p4: (invariant_mass(p4) > 3.0) & (invariant_mass(p4) < 3.2)


def _model(ds, training: np.ndarray, name: str, seed: int):
    """The vaeaug model (defaults) of one dataset and seed, trained once and cached."""
    import vaeaug

    path = MODELS / f"{name}-n{len(training)}-s{seed}.safetensors"
    if path.is_file():
        return vaeaug.load(path, device="cpu")
    model = vaeaug.fit(training, objects=ds.objects, masses=ds.masses, seed=seed, device="cpu",
                       progress=False)  # fmt: skip
    MODELS.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def _partners(model, sources: np.ndarray, seed: int, width: float) -> np.ndarray:
    from vaeaug.integrations.coffea import iter_partners

    blocks = iter_partners(model, sources, factor=FACTOR, seed=seed, sampling="posterior",
                           width=width)  # fmt: skip
    return np.concatenate([p4 for _, p4, _ in blocks])


def _generator(generator: str, ds, training: np.ndarray, name: str, seed: int):
    """(prior(n, seed) -> p4, partners(sources, seed, width) -> p4) of one generator, both
    in the files' canonical order: vaeaug (defaults, cached), or the tuned spline flow of
    ``bench/fair.py`` with the same support guard and the same posterior step."""
    if generator == "vaeaug":
        model = _model(ds, training, name, seed)
        return (lambda n, s: ds.order(model.sample(n, seed=s).p4),
                lambda src, s, w: ds.order(_partners(model, src, s, w)))  # fmt: skip
    from fair import FlowPeer, Guard, chosen_flow

    peer = FlowPeer(ds.objects, ds.masses, chosen_flow()).fit(training, seed=seed)
    guard = Guard(training, ds.objects, ds.masses, seed=seed)
    inside = lambda p4: guard.inside(ds.order(p4))  # noqa: E731
    return (lambda n, s: guard.sample(lambda m, t: ds.order(peer.sample(m, t)), n, s)[0],
            lambda src, s, w: ds.order(peer.partners(src, FACTOR, s, w, inside)))  # fmt: skip


def _prior_selected(prior, select, n: int, seed: int) -> tuple[np.ndarray, int]:
    """``n`` prior draws passing the selection, and how many were drawn for them."""
    out, drawn, round_ = [], 0, 0
    while sum(len(o) for o in out) < n:
        batch = prior(max(4 * n, 10_000), seed + 1000 * round_)
        drawn += len(batch)
        out.append(batch[select(batch)])
        round_ += 1
    return np.concatenate(out)[:n], drawn


def _judge(real: np.ndarray, generated: np.ndarray, objects, seed: int) -> dict[str, float]:
    from vaeaug.validation import feature_table
    from vaeaug.validation.c2st import c2st

    _, fr = feature_table(real, list(objects))
    _, fg = feature_table(generated, list(objects))
    result = c2st(fr, fg, seed=seed, n_bootstrap=50, max_events=40_000, n_threads=1)
    return {"auc": result["auc"], "auc_err": result["auc_err"], "n_test": result["n_test"]}


def _memorisation(generated, training, heldout, objects, seed) -> dict[str, Any]:
    from vaeaug.validation import feature_table
    from vaeaug.validation.memorisation import memorisation

    tables = [feature_table(p4, list(objects))[1] for p4 in (generated, training, heldout)]
    out = memorisation(*tables, seed=seed)
    return {k: out.get(k) for k in ("ratio_of_medians", "fraction_below_p1",
                                    "fraction_exact_copies")}  # fmt: skip


def one_task(task: tuple) -> list[dict[str, Any]]:
    """One dataset and seed: the tuning grid (stage ``tune``) or the judged rows (``judge``)."""
    stage, name, seed, samples, data, width, generator = task
    one_thread()
    ds = load_dataset(**dataset_args(name, samples, data, reference=stage == "judge"))
    perm = np.random.default_rng([seed, N_TRAIN]).permutation(len(ds.train))
    training = ds.train[perm[:N_TRAIN]]
    # the judging sample: other rows of the training file (tune), the reference file (judge)
    real = ds.train[perm[N_TRAIN:]] if stage == "tune" else ds.reference
    select = _selector(name, training)
    sources, real_selected = training[select(training)], real[select(real)]
    t0 = time.perf_counter()
    prior_fn, partners_fn = _generator(generator, ds, training, name, seed)
    row: dict[str, Any] = {"generator": generator, "dataset": name, "seed": seed, "n_train": len(training),
                           "n_selected": len(sources), "kept": len(sources) / len(training),
                           "n_real_selected": len(real_selected), "fit_s": time.perf_counter() - t0}  # fmt: skip
    prior, drawn = _prior_selected(prior_fn, select, FACTOR * len(sources), seed + 1)
    row["prior_selected"] = {**_judge(real_selected, prior, ds.objects, seed),
                             "drawn_per_kept": drawn / len(prior)}  # fmt: skip
    for w in WIDTHS if stage == "tune" else (width,):
        partners = partners_fn(sources, seed + 1, w)
        kept = select(partners)
        row[f"posterior_w{w}"] = {
            **_judge(real_selected, partners, ds.objects, seed),
            "partners_passing": float(kept.mean()),
            **_memorisation(partners, training, real_selected, ds.objects, seed),
        }
    if stage == "judge":
        # the partners an analyst keeps after applying the selection again
        partners = partners_fn(sources, seed + 1, width)
        row["posterior_reselected"] = _judge(real_selected, partners[select(partners)],
                                             ds.objects, seed)  # fmt: skip
        # the whole sample: partners of every training candidate against prior sampling
        whole = partners_fn(training, seed + 1, width)
        fresh = prior_fn(FACTOR * len(training), seed + 1)
        row["whole_posterior"] = {**_judge(real, whole, ds.objects, seed),
                                  **_memorisation(whole, training, real, ds.objects, seed)}  # fmt: skip
        row["whole_prior"] = {**_judge(real, fresh, ds.objects, seed),
                              **_memorisation(fresh, training, real, ds.objects, seed)}  # fmt: skip
    return [row]


def choose(rows: list[dict[str, Any]]) -> tuple[float, dict[str, float]]:
    """The rule (amended after the first tuning run, docs/dev/posterior-plan.md): the width
    of smallest mean C2ST over datasets and seeds, among widths whose partners are not
    near-copies: every ratio of medians >= 0.5 and, on average over the cells, at most 5%
    of partners closer to a training candidate than 99% of held-out real ones (the flag
    level of :func:`vaeaug.validation.memorisation.memorisation`)."""
    means = {}
    for w in WIDTHS:
        cells = [r[f"posterior_w{w}"] for r in rows]
        copies = float(np.mean([c["fraction_below_p1"] for c in cells]))
        if all((c["ratio_of_medians"] or 0) >= 0.5 for c in cells) and copies <= 0.05:
            means[w] = float(np.mean([c["auc"] for c in cells]))
    return min(means, key=means.get), means


def _table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    body = []
    for r in rows:
        cells = [f"{r[k]['auc']:.3f}" if k in r else "-" for k in keys]
        body.append([r["dataset"], str(r["seed"]), f"{r['kept']:.0%}", *cells])
    return markdown_table(["dataset", "seed", "kept", *keys], body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("tune", "judge"))
    parser.add_argument("--generator", default="vaeaug", choices=("vaeaug", "nsf"),
                        help="vaeaug (default) or the tuned spline flow of bench/fair.py, "
                        "given the same guard and posterior step")  # fmt: skip
    add_data_arguments(parser, seeds=(1, 2))
    add_results_arguments(parser)
    args = parser.parse_args(argv)
    suffix = "" if args.generator == "vaeaug" else f"_{args.generator}"
    width = None
    if args.stage == "judge":
        tuning = RESULTS / f"posterior_tuning{suffix}" / "latest.json"
        width = json.loads(tuning.read_text())["chosen"]
    tasks = [(args.stage, name, seed, args.samples, args.data, width, args.generator)
             for name in SELECTIONS for seed in args.seeds]  # fmt: skip
    rows = run_tasks(one_task, tasks, args.jobs)
    result: dict[str, Any] = {"stage": args.stage, "generator": args.generator,
                              "factor": FACTOR, "n_train": N_TRAIN,
                              "selections": SELECTIONS, "rows": rows}  # fmt: skip
    if args.stage == "tune":
        result["chosen"], result["mean_auc"] = choose(rows)
        keys = ["prior_selected", *(f"posterior_w{w}" for w in WIDTHS)]
    else:
        result["width"] = width
        keys = [
            "prior_selected",
            f"posterior_w{width}",
            "posterior_reselected",
            "whole_prior",
            "whole_posterior",
        ]
    result["table"] = _table(rows, keys)
    print(result["table"])
    name = ("posterior_tuning" if args.stage == "tune" else "posterior_judged") + suffix
    record(name, result, results=args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
