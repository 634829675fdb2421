"""Sampling cost of model v2 against the previous release (v1), side by side in one run.

``Model.sample`` rate (candidates/s, one thread) of:

- ``v1``: the previous release's defaults (Gaussian decoder 16 -> 256^3 -> 24, GMM prior),
  run from a checkout of that release in a subprocess (``--v1-src``, e.g. a
  ``git worktree add /tmp/v1 2a12acd``);
- ``v2``: this release's defaults (flow prior, flow decoder), with ``support="off"``
  and with the default ``support="reject"``;
- ``v2-gaussian``: this release with ``decoder="gaussian"``;
- ``v2-autoregressive``: this release with ``decoder_passes=None`` (one network
  pass per feature and decoder layer to sample, instead of two);
- ``v2, zuko spline``: the ``v2`` model, same weights, with zuko's own
  ``MonotonicRQSTransform`` in place of vaeaug's faster copy of it
  (``vaeaug.model.flows``), to measure what that copy buys;
- ``v2, zuko inverse``: the ``v2`` model, sampled through zuko's own inverse of each layer
  (every pass runs the spline over every feature) in place of
  ``vaeaug.model.flows.flow_inverse`` (each pass's spline over the features it settles):
  the same numbers, bit for bit; this measures what the pass-by-pass inverse buys.

Training cost, side by side in the same run: seconds for two epochs of ``fit``
on the same 10,000 candidates with each spline (``train_seconds``).

Each model is trained for two epochs on the D+ training file: the cost of a
candidate depends on the architecture, not on how well it is trained, except
for the redraws of ``support="reject"``, which a two-epoch model overstates
(its rejected fraction is reported beside the rate). Repeats alternate between
the versions, so that a busy machine slows them alike::

    git worktree add /tmp/vaeaug-v1 2a12acd
    OMP_NUM_THREADS=1 python bench/sampling_cost.py --v1-src /tmp/vaeaug-v1/src \\
        --results bench/results   # -> bench/results/sampling_cost/latest.json
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import data_dir, machine, one_thread
from _record import add_results_arguments, record

_V1_SCRIPT = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import torch
torch.set_num_threads(1)
import vaeaug
table = vaeaug.read_candidates(sys.argv[1], tree="signal", objects=["K1", "pi1", "pi2"])
n, repeats, n_train = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
model = vaeaug.fit(table.p4[:n_train], objects=["K1", "pi1", "pi2"],
                   train=vaeaug.TrainConfig(epochs=2), seed=1, device="cpu", progress=False)
model.sample(n, seed=0)
for r in range(repeats):
    sys.stdin.readline()  # wait for the parent's turn signal
    t = time.perf_counter(); model.sample(n, seed=r); dt = time.perf_counter() - t
    print(json.dumps({"rate": n / dt}), flush=True)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v1-src", required=True, help="src/ folder of the previous release")
    parser.add_argument("--n", type=int, default=200_000, help="candidates per timing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-n", type=int, default=10_000,
                        help="training candidates of each model (the tests use fewer)")  # fmt: skip
    parser.add_argument("--data", default=None, help="folder of the shared ROOT files")
    add_results_arguments(parser)
    args = parser.parse_args(argv)
    one_thread()
    import warnings

    import vaeaug
    from vaeaug.model.flows import spline_classes, use_zuko_spline

    warnings.simplefilter("ignore")
    train_file = data_dir(args.data) / "dplus_kpipi_train.root"
    table = vaeaug.read_candidates(train_file, tree="signal", objects=["K1", "pi1", "pi2"])
    fit = dict(objects=["K1", "pi1", "pi2"], train=vaeaug.TrainConfig(epochs=2), seed=1,
               device="cpu", progress=False)  # fmt: skip
    models = {
        "v2": vaeaug.fit(table.p4[: args.train_n], **fit),
        "v2-gaussian": vaeaug.fit(
            table.p4[: args.train_n], config=vaeaug.VAEConfig(decoder="gaussian"), **fit
        ),
        "v2-autoregressive": vaeaug.fit(
            table.p4[: args.train_n], config=vaeaug.VAEConfig(decoder_passes=None), **fit
        ),
    }
    models["v2, zuko spline"] = copy.deepcopy(models["v2"])
    use_zuko_spline(models["v2, zuko spline"].vae)
    env = {**os.environ, "PYTHONPATH": args.v1_src, "OMP_NUM_THREADS": "1"}
    v1 = subprocess.Popen([sys.executable, "-c", _V1_SCRIPT, str(train_file), str(args.n),
                           str(args.repeats), str(args.train_n)], env=env, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)  # fmt: skip
    jobs = [("v2 (support off)", "v2", "off"), ("v2 (support reject)", "v2", "reject"),
            ("v2, zuko inverse (support off)", "v2", "off"),
            ("v2, zuko spline (support off)", "v2, zuko spline", "off"),
            ("v2-gaussian (support off)", "v2-gaussian", "off"),
            ("v2-autoregressive (support off)", "v2-autoregressive", "off")]  # fmt: skip
    rates: dict[str, list[float]] = {"v1": [], **{name: [] for name, _, _ in jobs}}
    rejected = {}

    def sample(name: str, key: str, support: str, seed: int):
        inverse = _zukos_inverse() if "zuko inverse" in name else contextlib.nullcontext()
        with inverse:
            return models[key].sample(args.n, seed=seed, support=support)

    for job in jobs:
        sample(*job, seed=0)  # warm-up
    for r in range(args.repeats):
        v1.stdin.write("\n")
        v1.stdin.flush()
        rates["v1"].append(json.loads(v1.stdout.readline())["rate"])
        for name, key, support in jobs:
            t = time.perf_counter()
            gen = sample(name, key, support, seed=r)
            rates[name].append(args.n / (time.perf_counter() - t))
            if support == "reject":
                rejected[name] = gen.support_report.outside_fraction
    v1.wait()
    train_seconds = _training_seconds(table.p4[: args.train_n], fit, args.repeats)
    best = {k: max(v) for k, v in rates.items()}
    result = {
        "benchmark": "sampling_cost",
        "machine": machine(),
        "n": args.n,
        "repeats": args.repeats,
        "rates": rates,
        "best_rate": best,
        "ratio_to_v1": {k: v / best["v1"] for k, v in best.items()},
        "rejected_fraction_two_epoch_model": rejected,
        "parameters": {k: sum(p.numel() for p in m.vae.parameters()) for k, m in models.items()},
        "splines": {k: [c.__name__ for c in spline_classes(m.vae)] for k, m in models.items()},
        "train_seconds": train_seconds,
        "train_speedup_of_vaeaug_spline": min(train_seconds["v2, zuko spline"])
        / min(train_seconds["v2"]),
        "sampling_speedup_of_vaeaug_spline": best["v2 (support off)"]
        / best["v2, zuko spline (support off)"],
        "sampling_speedup_of_pass_by_pass_inverse": best["v2 (support off)"]
        / best["v2, zuko inverse (support off)"],
    }
    path = record(
        "sampling_cost",
        result,
        results=Path(args.results),
        argv=["bench/sampling_cost.py", *(sys.argv[1:] if argv is None else argv)],
    )
    print(json.dumps({k: result[k] for k in ("best_rate", "ratio_to_v1", "train_seconds",
                                             "train_speedup_of_vaeaug_spline",
                                             "sampling_speedup_of_vaeaug_spline",
                                             "sampling_speedup_of_pass_by_pass_inverse")},
                     indent=1))  # fmt: skip
    print(f"-> {path}")
    return 0


@contextlib.contextmanager
def _zukos_inverse():
    """Within: ``VAE.generate`` inverts each flow through zuko's own ``transform.inv``."""
    from vaeaug.model import vae

    ours = vae.flow_inverse
    vae.flow_inverse = lambda flow, y, context=None: flow(context).transform.inv(y)
    try:
        yield
    finally:
        vae.flow_inverse = ours


def _training_seconds(p4, fit: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of ``fit`` (same data, seed, epochs) with vaeaug's spline and with zuko's,
    alternating."""
    from zuko.transforms import MonotonicRQSTransform

    import vaeaug
    from vaeaug.model import flows

    seconds: dict[str, list[float]] = {"v2": [], "v2, zuko spline": []}
    ours = flows.RationalQuadraticSpline
    for _ in range(repeats):
        for name, spline in (("v2", ours), ("v2, zuko spline", MonotonicRQSTransform)):
            flows.RationalQuadraticSpline = spline  # what build_flow puts in each layer
            try:
                t = time.perf_counter()
                vaeaug.fit(p4, **fit)
                seconds[name].append(time.perf_counter() - t)
            finally:
                flows.RationalQuadraticSpline = ours
    return seconds


if __name__ == "__main__":
    sys.exit(main())
