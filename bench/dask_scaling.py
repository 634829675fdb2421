"""Scaling of ``vaeaug generate --dask`` with the number of local workers, as a ratio to one.

    python bench/dask_scaling.py                          # full run -> bench/results/dask-scaling/latest.json
    python bench/dask_scaling.py --model M.vaeaug.safetensors --workers 1 2 4 8
    python bench/dask_scaling.py --n 20000 --partition-size 5000 --workers 1 2 --results /tmp/dasksmoke

For each K of ``--workers``: the local cluster that ``vaeaug generate --dask local:K``
starts (``vaeaug.integrations.dask.client``: K worker processes, one thread each), the model
loaded on every worker and a small untimed run (so that no worker's first call is
timed), then timed: what the command runs between starting the cluster and renaming
its output directory, ``vaeaug.integrations.dask.generate`` + ``write`` of ``--n``
events in partitions of ``--partition-size`` into a fresh directory, best of
``--repeats``. The cluster start and the model load are recorded, not timed.
Reference row: plain ``vaeaug generate`` (``generate_to_root``, one file) in this
process, one torch thread, same ``--n`` and seed.

Model: ``--model FILE``, or a fast one trained here for ``--epochs`` (5) on the D+
training file (``VAEConfig(decoder="gaussian", prior="standard", hidden=[64, 64])``),
stated in the results. Target (issue "Scale-out stays on Dask"): >= 1.7x with 2
workers, on a machine with the cores for it: the results record the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OBJECTS, data_dir, load_p4, machine, markdown_table, one_thread
from _record import record

TARGET = 1.7  # events/s with 2 workers over 1 worker


def _load_on_worker(data: bytes, sha256: str, device: str) -> int:
    """Load the model into the worker's cache; returns the worker's torch threads."""
    import torch

    from vaeaug.integrations.cache import cached_model
    from vaeaug.model.support import SupportWarning

    # the timing model puts many candidates outside the support (redrawn): a warning per task
    warnings.simplefilter("ignore", SupportWarning)
    cached_model(data, sha256, device)
    return torch.get_num_threads()


def _model(args) -> tuple[Path, dict[str, Any]]:
    """The model file to generate from, and its description for the results."""
    import vaeaug

    if args.model:
        return Path(args.model), {"file": str(args.model)}
    p4 = load_p4(data_dir(args.data), "train", "signal")
    config = vaeaug.VAEConfig(decoder="gaussian", prior="standard", hidden=[64, 64])
    start = time.perf_counter()
    model = vaeaug.fit(p4, objects=OBJECTS, config=config,
                       train=vaeaug.TrainConfig(epochs=args.epochs), seed=args.seed,
                       device="cpu", progress=False)  # fmt: skip
    info = {
        "trained_here": 'VAEConfig(decoder="gaussian", prior="standard", hidden=[64, 64]), '
        f"{args.epochs} epoch{'s' * (args.epochs != 1)} on the {len(p4)} D+ signal candidates of dplus_kpipi_train.root "
        "(a fast model for timing, not for physics)",
        "train_seconds": time.perf_counter() - start,
    }
    path = Path(args.scratch) / "dask-scaling.vaeaug.safetensors"
    model.save(path)
    return path, info


def _best(fn, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn()``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def row_plain(args, path: Path) -> dict[str, Any]:
    """Plain ``vaeaug generate``: ``generate_to_root`` to one file in this process."""
    import vaeaug
    from vaeaug.sampling.streaming import generate_to_root

    model = vaeaug.load(path, device=args.device)
    out = Path(args.scratch) / "plain.root"

    def run() -> None:
        generate_to_root(model, args.n, out, seed=args.seed)
        out.unlink()

    generate_to_root(model, min(args.n, 10_000), out, seed=args.seed + 1)  # warm-up
    out.unlink()
    times = _best(run, args.repeats)
    return {"seconds": times, "rate": args.n / min(times)}


def row_dask(args, path: Path, k: int) -> dict[str, Any]:
    """``generate --dask local:K`` without the cluster start: generate + write, timed."""
    import dask

    from vaeaug.integrations.cache import sha256_of
    from vaeaug.integrations.dask import client, generate, write

    data = path.read_bytes()
    res: dict[str, Any] = {"workers": k}
    start = time.perf_counter()
    with client(k) as cluster_client:
        cluster_client.wait_for_workers(k)
        res["cluster_start_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        threads = cluster_client.run(_load_on_worker, data, sha256_of(data), args.device)
        res["model_load_seconds"] = time.perf_counter() - start
        res["torch_threads_per_worker"] = sorted(threads.values())
        out = Path(args.scratch) / f"dask-{k}"

        def run(n: int = args.n, partition: int = args.partition_size) -> None:
            sample = generate(path, n, seed=args.seed, partition_size=partition,
                              device=args.device)  # fmt: skip
            with dask.config.set(scheduler=cluster_client):
                files = write(sample, out, prefix="generated")
            assert len(files) == sample.npartitions, files
            shutil.rmtree(out)

        run(n=1000 * k, partition=1000)  # every worker's first call, untimed (most likely)
        res["seconds"] = _best(run, args.repeats)
    res["rate"] = args.n / min(res["seconds"])
    return res


def markdown(res: dict) -> str:
    m = res["machine"]
    model = res["model"].get("trained_here") or f"file {res['model']['file']}"
    lines = [
        "# `vaeaug generate --dask`: scaling with local workers",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable by this process); "
        f"torch {m['torch']}, dask {res['dask_version']}. Model: {model}.",
        f"{res['n']:,} events, partitions of {res['partition_size']:,} "
        f"({res['partitions']} files), device {res['device']}, best of {res['repeats']}; the "
        "cluster start and the model load on the workers are not timed.",
        "",
    ]
    base = res.get("rate_1_worker")
    rows = []
    for r in res["dask"]:
        ratio = "" if base is None else f"{r['rate'] / base:.2f}"
        rows.append([f"--dask local:{r['workers']}", str(r["workers"]), f"{r['rate']:.3g}", ratio,
                     f"{min(r['seconds']):.2f}", f"{r['cluster_start_seconds']:.1f}"])  # fmt: skip
    plain = res["plain"]
    ratio = "" if base is None else f"{plain['rate'] / base:.2f}"
    rows.append(["plain generate (one process)", "", f"{plain['rate']:.3g}", ratio,
                 f"{min(plain['seconds']):.2f}", ""])  # fmt: skip
    header = ["run", "workers", "events/s", "ratio to 1 worker", "seconds", "cluster start (s)"]
    lines += [markdown_table(header, rows), ""]
    two = next((r for r in res["dask"] if r["workers"] == 2), None)
    if two is not None and base is not None:
        lines.append(f"Target: >= {TARGET} with 2 workers, on a machine with the cores for it; "
                     f"measured {two['rate'] / base:.2f} on {m['usable_cores']} usable cores.")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="model file (default: train a fast one, see the docstring)")
    p.add_argument("--data", help="folder with the D+ files (default $VAEAUG_TESTDATA)")
    p.add_argument("--epochs", type=int, default=5, help="epochs of the trained model (5)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="K values (1 2 4)")
    p.add_argument("--n", type=float, default=2e6, help="events per run (default 2e6)")
    p.add_argument("--partition-size", type=int, default=250_000,
                   help="events per partition and file (default 250000)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=2, help="timed repeats, best kept (2)")
    p.add_argument("--device", default="cpu", help="device of the workers and the plain run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--results",
        default=str(Path(__file__).parent / "results"),
        help="results folder: writes <results>/dask-scaling/latest.json and history.jsonl",
    )
    p.add_argument("--tmp", help="folder for the generated files (default: the system's)")
    args = p.parse_args(argv)
    args.n = int(args.n)
    if min(args.workers) < 1 or args.n < 1 or args.partition_size < 1 or args.repeats < 1:
        p.error("--workers, --n, --partition-size and --repeats must be >= 1")
    one_thread()
    # an undertrained timing model puts candidates outside the support; they are redrawn
    from vaeaug.model.support import SupportWarning

    warnings.simplefilter("ignore", SupportWarning)
    import dask

    res: dict[str, Any] = {
        "command": " ".join(["python bench/dask_scaling.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {**machine(), "usable_cores": len(os.sched_getaffinity(0))},
        "dask_version": dask.__version__,
        "n": args.n,
        "partition_size": args.partition_size,
        "partitions": -(-args.n // args.partition_size),
        "repeats": args.repeats,
        "device": args.device,
        "seed": args.seed,
        "target": f">= {TARGET}x events/s with 2 workers vs 1, on a machine with the cores for it",
    }  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="vaeaug-dask-scaling-") as scratch:
        args.scratch = scratch
        path, res["model"] = _model(args)
        res["dask"] = []
        for k in sorted(set(args.workers)):
            res["dask"].append(row_dask(args, path, k))
            print(f"local:{k}: {res['dask'][-1]['rate']:.3g} events/s", file=sys.stderr)
        res["plain"] = row_plain(args, path)
    one = next((r for r in res["dask"] if r["workers"] == 1), None)
    res["rate_1_worker"] = None if one is None else one["rate"]
    for r in [*res["dask"], res["plain"]]:
        r["ratio_to_1_worker"] = None if one is None else r["rate"] / one["rate"]
    path = record(
        "dask-scaling",
        res,
        results=Path(args.results),
        argv=["bench/dask_scaling.py", *(sys.argv[1:] if argv is None else argv)],
    )
    print(markdown(res))
    print(f"-> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
