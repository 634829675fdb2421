"""Coverage of the ensemble's model-uncertainty band (issue #32), and what an ensemble costs.

On the shared D+ files (:func:`_common.load_dataset`): N training candidates drawn from the
training file, one model and an ensemble of K members (``vaeaug.fit(..., ensemble=K)``)
trained in the same run (the training-time ratio), M candidates generated from each (the
generation time per candidate). Then, once, on the reference file (nothing is chosen on
it): for every feature of :func:`vaeaug.validation.feature_table`, a histogram of
``--bins`` bins over the reference's central 99% and, per bin (normalised fractions,
:mod:`vaeaug.validation.bands`):

* ``coverage``: the fraction of bins where |generated − reference| <= the band (the
  members' spread plus their out-of-bag shared error, ``Ensemble.shared_variance``)
  combined in quadrature with the reference's and the generated sample's statistical
  errors; ``coverage_spread_only`` with the spread alone (the first band);
  ``coverage_stat`` without any band. Target: >= 68%;
* ``band_over_real_stat``: the band over the statistical error of the N real training
  candidates (the sample an analyst has), median over the bins, and over the bins where
  the model is good (|generated − reference| within twice the statistical errors).
  Target: <= 3.

And the amplification forecast from the same band
(:func:`vaeaug.validation.bands.amplification_forecast`) against the holdout amplification
of the same sample (:func:`vaeaug.validation.amplification.amplification`: the N training
candidates' subsamples, judged on the reference). Target: within a factor of 2.

::

    OMP_NUM_THREADS=1 python bench/ensemble.py            # N 1,000, K 5: about 4 min on one core
    OMP_NUM_THREADS=1 python bench/ensemble.py --compare train-rest   # a check on training data

``--compare train-rest`` compares with the training file's rows not among the N instead
of the reference file: training data, for checks before judging
(``docs/dev/ensemble-oob-plan.md``). The training cost counts the out-of-bag check, which
is also timed on its own (``out_of_bag_cpu_seconds``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_dataset, one_thread
from _record import add_results_arguments, provenance, record

__all__ = ["coverage", "main"]


def coverage(reference: np.ndarray, real: np.ndarray, generated: np.ndarray,
             members: list[np.ndarray], bins: int, shared_variance: float) -> dict[str, Any]:  # fmt: skip
    """The band's coverage and width of one feature's values: reference (R,), the real
    training sample (N,), generated (M,) and each member's share (M_i,); the band with the
    members' out-of-bag ``shared_variance`` and, for comparison, their spread alone."""
    from vaeaug.validation.bands import band_metrics, fractions
    from vaeaug.validation.plots import common_edges

    edges = common_edges(reference, bins=bins)
    m = band_metrics(reference, generated, members, edges, shared_variance=shared_variance)
    spread_only = band_metrics(reference, generated, members, edges)
    pr, vr = fractions(reference, edges)
    pg, vg = fractions(generated, edges)
    _, v_real = fractions(real, edges)
    band = m.pop("band")
    used = (vr + vg) > 0
    diff = np.abs(pg - pr)[used]
    good = diff <= 2 * np.sqrt((vr + vg)[used])
    with np.errstate(divide="ignore", invalid="ignore"):
        width = band[used] / np.sqrt(v_real[used])
    finite = np.isfinite(width)
    return {
        "bins": int(used.sum()),
        "coverage": m["coverage"],
        "coverage_spread_only": spread_only["coverage"],
        "chi2_stat_model_spread_only": spread_only["chi2_stat_model"],
        "coverage_stat": float(np.mean(diff**2 <= (vr + vg)[used])),
        "chi2_stat": m["chi2_stat"],
        "chi2_stat_model": m["chi2_stat_model"],
        "band_over_real_stat": float(np.median(width[finite])),
        "band_over_real_stat_good": float(np.median(width[finite & good]))
        if (finite & good).any()
        else None,
        "bins_good": int(good.sum()),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="training candidates (default 1000)")
    p.add_argument("--members", type=int, default=5, help="ensemble members K (default 5)")
    p.add_argument("--epochs", type=int, default=80, help="TrainConfig.epochs (default 80)")
    p.add_argument("--generated", type=int, default=50_000,
                   help="candidates generated from each (default 50,000)")  # fmt: skip
    p.add_argument("--bins", type=int, default=30, help="bins per feature (default 30)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dataset", default="dplus", choices=("dplus", "dimuon"),
                   help="the shared D+ files (default) or the Pythia dimuon pairs of --samples")  # fmt: skip
    p.add_argument("--samples", default="/work/samples", help="folder of the Pythia pairs")
    p.add_argument("--compare", default="reference", choices=("reference", "train-rest"),
                   help="judge on the reference file (default), or check on the training "
                   "file's rows not among the N (training data: for checks before judging)")  # fmt: skip
    add_results_arguments(p, "ensemble_coverage")
    args = p.parse_args(argv)
    started = provenance(sys.argv if argv is None else ["bench/ensemble.py", *argv])
    one_thread()
    warnings.simplefilter("ignore")  # support warnings of small models: counted in the result
    from fair import dataset_args

    import vaeaug
    from vaeaug.validation import feature_table

    # with --compare train-rest the training file stands in for the reference: never read
    ds = load_dataset(**dataset_args(args.dataset, args.samples, None,
                                     reference=args.compare == "reference"))  # fmt: skip
    rng = np.random.default_rng(args.seed)
    chosen = np.sort(rng.choice(len(ds.train), args.n, replace=False))
    train = ds.train[chosen]
    if args.compare == "train-rest":  # the training file's other rows: nothing judged on them
        compare = ds.order(np.delete(ds.train, chosen, axis=0))
    else:
        compare = ds.reference
    options = dict(objects=ds.objects, masses=ds.masses, device="cpu", progress=False,
                   train=vaeaug.TrainConfig(epochs=args.epochs))  # fmt: skip
    # a warm-up fit first: the first one pays for the lazy imports, which is not training
    vaeaug.fit(train[:200], seed=args.seed, **{**options, "train": vaeaug.TrainConfig(epochs=1)})
    # CPU time of this process (one thread) beside the wall time: the machine is shared,
    # and another user's load slows the wall clock of one fit and not the other's
    t0, c0 = time.perf_counter(), time.process_time()
    single = vaeaug.fit(train, seed=args.seed, **options)
    t_single, c_single = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    ens = vaeaug.fit(train, seed=args.seed, ensemble=args.members, **options)
    t_ens, c_ens = time.perf_counter() - t0, time.process_time() - c0
    # the out-of-bag check's share of the ensemble's training, timed again on its own
    from vaeaug.ensemble import bootstrap_counts, out_of_bag_check

    table = vaeaug.api.as_candidates(train, ds.objects)
    in_bag = [bootstrap_counts(len(train), args.seed, i) > 0 for i in range(args.members)]
    c0 = time.process_time()
    again = out_of_bag_check(ens.members, table, in_bag, seed=args.seed)
    c_oob = time.process_time() - c0
    assert again == ens.out_of_bag, "the bench's replicas are not fit's"
    t0 = time.perf_counter()
    single.sample(args.generated, seed=args.seed + 1)
    g_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    gen = ens.sample(args.generated, seed=args.seed + 1)
    g_ens = time.perf_counter() - t0
    p4 = ds.order(gen.p4)

    names, f_ref = feature_table(compare, ds.objects)
    shared = ens.shared_variance
    _, f_real = feature_table(train, ds.objects)
    _, f_gen = feature_table(p4, ds.objects)
    features = {}
    for j, name in enumerate(names):
        members = [f_gen[gen.member == i, j] for i in range(args.members)]
        features[name] = coverage(f_ref[:, j], f_real[:, j], f_gen[:, j], members, args.bins,
                                  shared)  # fmt: skip
    from vaeaug.validation.amplification import amplification
    from vaeaug.validation.bands import amplification_forecast

    shares = [f_gen[gen.member == i] for i in range(args.members)]
    forecast = amplification_forecast(f_gen, shares, args.n, shared_variance=shared)
    forecast_spread_only = amplification_forecast(f_gen, shares, args.n)
    holdout = amplification(f_gen, f_real, f_ref, seed=args.seed)
    bins = sum(f["bins"] for f in features.values())
    good = [f["band_over_real_stat_good"] for f in features.values()
            if f["band_over_real_stat_good"] is not None]  # fmt: skip
    result = {
        "dataset": ds.describe(),
        "settings": {
            "n_train": args.n,
            "members": args.members,
            "epochs": args.epochs,
            "n_generated": args.generated,
            "bins": args.bins,
            "seed": args.seed,
            "compare": args.compare,
        },
        "out_of_bag": ens.out_of_bag,
        "summary": {
            "coverage": sum(f["coverage"] * f["bins"] for f in features.values()) / bins,
            "coverage_spread_only": sum(
                f["coverage_spread_only"] * f["bins"] for f in features.values()
            )
            / bins,
            "shared_variance": shared,
            "coverage_stat": sum(f["coverage_stat"] * f["bins"] for f in features.values()) / bins,
            "features_coverage_ge_68": sum(f["coverage"] >= 0.68 for f in features.values()),
            "features": len(features),
            "band_over_real_stat_median": float(
                np.median([f["band_over_real_stat"] for f in features.values()])
            ),
            "band_over_real_stat_good_median": float(np.median(good)) if good else None,
            "train_seconds_single": round(t_single, 2),
            "train_seconds_ensemble": round(t_ens, 2),
            "train_ratio": round(t_ens / t_single, 3),
            "train_cpu_seconds_single": round(c_single, 2),
            "train_cpu_seconds_ensemble": round(c_ens, 2),
            "train_cpu_ratio": round(c_ens / c_single, 3),
            "out_of_bag_cpu_seconds": round(c_oob, 2),
            "train_cpu_ratio_without_out_of_bag": round((c_ens - c_oob) / c_single, 3),
            "epochs_single": single.provenance["epochs_run"],
            "epochs_members": [m.provenance["epochs_run"] for m in ens.members],
            "generate_us_per_candidate_single": round(1e6 * g_single / args.generated, 3),
            "generate_us_per_candidate_ensemble": round(1e6 * g_ens / args.generated, 3),
            "outside_support_fraction": gen.support_report.outside_fraction,
            "forecast_amplification": forecast["amplification"],
            "holdout_amplification": holdout["amplification"],
            "holdout_amplification_err": holdout["amplification_err"],
            "forecast_over_holdout": forecast["amplification"] / holdout["amplification"],
            "forecast_spread_only_over_holdout": forecast_spread_only["amplification"]
            / holdout["amplification"],
        },
        "forecast": forecast,
        "holdout": {
            k: holdout[k]
            for k in (
                "n_equivalent",
                "n_equivalent_err",
                "amplification",
                "amplification_err",
                "extrapolated",
            )
        },
        "features": features,
    }
    path = record(args.benchmark, result, results=args.results, started=started)
    s = result["summary"]
    print(f"coverage {s['coverage']:.3f} (stat only {s['coverage_stat']:.3f}); band / real stat "
          f"{s['band_over_real_stat_median']:.2f} (good bins {s['band_over_real_stat_good_median']}); "
          f"train x{s['train_ratio']} (CPU x{s['train_cpu_ratio']}); amplification forecast {s['forecast_amplification']:.2f} "
          f"vs holdout {s['holdout_amplification']:.2f} -> {path}")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
