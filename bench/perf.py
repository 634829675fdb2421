"""Performance of vaeaug generation, each figure as a ratio to a ceiling measured in the same run.

    python bench/perf.py                      # full CPU run (~25 min on 2 shared cores) -> bench/results/perf-cpu/
    python bench/perf.py --quick              # CI-sized smoke test (< 40 s)
    python bench/perf.py --device cuda        # on a GPU machine
    python bench/perf.py --device cuda --quick  # the prepared GPU run (< 6 min on an H200; bench/gpu_run.sh)
    python bench/perf.py --rows coffea --model M.vaeaug.safetensors   # -> perf-cpu-coffea/

Rows (see docs/performance.md):

1. in-memory generation (``Model.sample``), events/s, vs a bare torch MLP of the
   decoder's shape in the same precision (the compute ceiling); fp32, bf16, and
   fp32 + ``torch.compile``; plus the physics of bf16 vs fp32 (mass peak, mean W1);
2. generation to a ROOT file (``vaeaug.sampling.streaming.generate_to_root``), events/s,
   vs uproot writing the same arrays, already in memory, with the same
   compression and basket size (the I/O ceiling);
3. peak resident memory of ``generate_to_root`` vs N, each N in a fresh subprocess;
4. training time to the fidelity targets on 10,000 D+ candidates vs TVAE (ctgan);
5. coffea: a processor with ``vaeaug.Augment(factor=1)`` and ``(factor=10)`` vs without
   it (events/s), Augment's generated candidates/s vs the same model's bare generation,
   and the extra peak memory of a 100,000-event chunk at factor 40, in fresh subprocesses.

Ceilings (the ``ceilings`` row): the network of the shipped model on ready-made noise,
``Model.features_from_noise`` (prior flow + decoder flow, what the engine runs per call,
without the random numbers, the conversion and the copies): the honest ceiling, and the
ratios' denominator; the decoder flow alone (``flow_inverse(decoder, eps, z)`` on ready z);
and a plain MLP of the same widths (the Gaussian decoder's shape), labelled as such. Each in
fp32, tf32 (CUDA only: ``torch.backends.cuda.matmul.allow_tf32``) and bf16, eager and, where
not skipped, ``torch.compile``. On CUDA also: pinned vs pageable device-to-host copies of the
features and 4-momenta buffers (``copies``), and GPU memory (``torch.cuda.max_memory_allocated``)
in the memory row. Parts that need CUDA are recorded as skipped, with the reason, on the CPU.

``--device cuda --quick`` (the prepared GPU run): training of the shipped defaults on 10,000
candidates for a fixed ``--train-epochs`` (10), throughput rows at 2^23 events (ROOT at 2^22),
memory at 1e7 and 1e8 events (consume-and-drop sink: each chunk of 4-momenta is made and
dropped, nothing written) plus 1e7 to a ROOT file in a temporary folder, and the compiled
variants last; every optional part checks a time budget (``--budget``, 300 s) and is recorded
as skipped when it would overrun.

Torch runs on one thread (the machine is shared); the generation pipeline adds
its converter thread, which the ceiling does not need.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OBJECTS, data_dir, load_p4, machine, markdown_table, one_thread, write_json
from _record import record

ROWS = ("ceilings", "in_memory", "copies", "root", "memory", "coffea", "tvae")
#: Precisions measured: fp32, tf32 (CUDA matmuls in TensorFloat-32; the engine runs "fp32"
#: with torch.backends.cuda.matmul.allow_tf32 on) and bf16 (the engine's bf16 autocast).
PRECISIONS = ("fp32", "tf32", "bf16")
TF32_CPU = (
    "skipped: tf32 is a CUDA matmul mode (torch.backends.cuda.matmul.allow_tf32); no CPU equivalent"
)
CUDA_ONLY = "needs CUDA (device {device})"
# Fidelity targets of issue 5 that are cheap to check here (C2ST is bench/fidelity.py's job).
PEAK_TOL_MEV = 0.5
WIDTH_TOL = 0.05


def _best_rate(fn, n: int, repeats: int, warmup=None) -> float:
    """Events/s of ``fn()`` (which makes ``n`` events), best of ``repeats`` after a warm-up
    (``warmup()``, a smaller call, when given; else ``fn()``)."""
    (warmup or fn)()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - start))
    return best


def _is_cuda(args) -> bool:
    return str(args.device).startswith("cuda")


def _time_left(args) -> float:
    """Seconds left of ``--budget`` (inf without one)."""
    deadline = getattr(args, "deadline", None)
    return float("inf") if deadline is None else deadline - time.perf_counter()


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@contextmanager
def _precision_mode(precision: str, device):
    """tf32: CUDA matmuls and convolutions in TensorFloat-32 for the block; else unchanged."""
    import torch

    if torch.device(device).type != "cuda":
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _engine_precision(precision: str) -> str:
    """The engine's precision: tf32 is fp32 under :func:`_precision_mode`."""
    return "bf16" if precision == "bf16" else "fp32"


def _precisions(args) -> list[str]:
    """The precisions measured: ``--precisions``, else every one the device has."""
    have = list(PRECISIONS) if _is_cuda(args) else ["fp32", "bf16"]
    return [p for p in have if p in (args.precisions or have)]


def _net_rate(device, make_inputs, call, n: int, batches: list[int], precision: str,
              repeats: int) -> dict:  # fmt: skip
    """Events/s of ``call(*make_inputs(batch))`` on ready-made inputs, best batch size."""
    import torch

    rates = {}
    with _precision_mode(precision, device):
        for batch in batches:
            inputs = make_inputs(batch)
            steps = max(1, n // batch)

            def run(inputs=inputs, steps=steps):
                with torch.inference_mode():
                    for _ in range(steps):
                        call(*inputs)
                _sync(device)

            rates[batch] = _best_rate(run, steps * batch, repeats)
            del inputs
    best = max(rates, key=rates.get)
    return {"rate": rates[best], "batch": best, "rates_by_batch": rates}


def _nets(model, precision: str, compile: bool) -> dict:
    """The three ceiling networks: name -> (make_inputs(batch), call, description)."""
    import torch

    from vaeaug.model.flows import flow_inverse

    device, vae = model.device, model.vae
    vae.eval()
    L, D = vae.config.latent_dim, vae.n_features
    bf16 = precision == "bf16"
    hidden = torch.bfloat16 if bf16 else None

    def network(eps):  # what the engine runs per call, on ready-made noise
        return model.features_from_noise(eps, hidden_dtype=hidden)

    def decoder(z, eps):  # the decoder alone on a ready latent point
        if vae.config.decoder == "flow":
            with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                return flow_inverse(vae.decoder, eps, z).float()
        mu, scale = vae.decoder_params(z, hidden)
        return mu + scale * eps

    shape = [L, *reversed(vae.config.hidden), 2 * D]
    layers: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(shape):
        layers += [torch.nn.Linear(a, b), torch.nn.SiLU()]
    mlp = torch.nn.Sequential(*layers[:-1]).to(device).eval()

    def plain_mlp(z):
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            return mlp(z)

    def wrap(fn):
        return torch.compile(fn, dynamic=False) if compile else fn

    c = vae.config
    return {
        "network": (lambda b: (torch.randn(b, model.noise_width, device=device),), wrap(network),
                    f"Model.features_from_noise: {c.prior} prior ({c.prior_flow}, "
                    f"{c.prior_transforms} transforms) + {c.decoder} decoder ({c.decoder_flow}, "
                    f"{c.decoder_transforms} transforms, hidden {list(c.hidden)}) on ready noise"),
        "decoder": (lambda b: (torch.randn(b, L, device=device), torch.randn(b, D, device=device)),
                    wrap(decoder), "the decoder alone (flow_inverse(decoder, eps, z)) on ready z, noise"),
        "plain_mlp_same_widths": (lambda b: (torch.randn(b, L, device=device),), wrap(plain_mlp),
                                  f"plain MLP {'-'.join(map(str, shape))} (SiLU), not the shipped decoder"),
    }  # fmt: skip


def _batches(device, kind: str) -> list[int]:
    import torch

    if torch.device(device).type == "cuda":
        return [1 << 20, 1 << 22]
    return [1 << 12, 1 << 14, 1 << 16] if kind == "plain_mlp_same_widths" else [1 << 14]


def _ceiling(model, name: str, n: int, precision: str, repeats: int, compile: bool = False) -> dict:
    """One ceiling network's rate (see :func:`_nets`); the compile time when compiled."""
    make, call, what = _nets(model, precision, compile)[name]
    start = time.perf_counter()
    if compile:  # the first call compiles; counted apart from the rate
        import torch

        with _precision_mode(precision, model.device), torch.inference_mode():
            call(*make(1 << 10 if model.device.type == "cpu" else 1 << 20))
        _sync(model.device)
    out = _net_rate(model.device, make, call, n, _batches(model.device, name), precision, repeats)
    out["what"] = what
    if compile:
        out["compile_and_measure_seconds"] = time.perf_counter() - start
    return out


def row_ceilings(args, model, n: int, compile: bool = False) -> dict:
    """The ceilings of every network in every precision (eager, or compiled)."""
    out: dict[str, Any] = {"n": n, "ratios_use": "network"}
    for name in ("network", "decoder", "plain_mlp_same_widths"):
        out[name] = {}
        for p in PRECISIONS:
            if p == "tf32" and not _is_cuda(args):
                out[name][p] = TF32_CPU
                continue
            if p not in _precisions(args):
                out[name][p] = "skipped (--precisions)"
                continue
            if compile and _time_left(args) < 60:
                out[name][p] = f"skipped: time budget ({_time_left(args):.0f} s left of --budget)"
                continue
            try:
                out[name][p] = _ceiling(model, name, n, p, args.repeats, compile=compile)
            except Exception as err:  # inductor needs a C++ compiler; record why it failed
                out[name][p] = f"failed: {type(err).__name__}: {str(err)[:200]}"
    return out


def _bare_mlp_rate(model, n: int, precision: str, repeats: int, compile: bool = False) -> dict:
    """The plain MLP of the decoder's widths (kept for comparison with earlier results)."""
    res = _ceiling(model, "plain_mlp_same_widths", n, precision, repeats, compile=compile)
    vae = model.vae
    res["shape"] = [vae.config.latent_dim, *reversed(vae.config.hidden), 2 * vae.n_features]
    return res


def _train_model(p4: np.ndarray, args):
    """Train on ``p4``. CPU --quick: a tiny network for 4 epochs (the smoke test); CUDA --quick:
    the shipped defaults for ``--train-epochs`` (10) epochs; full runs: the shipped defaults."""
    import vaeaug

    tiny = args.quick and not _is_cuda(args)
    config = vaeaug.VAEConfig(hidden=(32, 32), latent_dim=4) if tiny else None
    epochs = 4 if tiny else args.train_epochs
    train = vaeaug.TrainConfig(epochs=epochs) if epochs else vaeaug.TrainConfig()
    _sync(args.device)
    start = time.perf_counter()
    model = vaeaug.fit(p4, objects=OBJECTS, config=config, train=train, seed=args.seed,
                       device=args.device, progress=False)  # fmt: skip
    _sync(args.device)
    info = {"config": "tiny (hidden 32-32, latent 4)" if tiny else "shipped defaults (VAEConfig())",
            "epochs_fixed": epochs or None}  # fmt: skip
    return model, time.perf_counter() - start, info


def _physics(gen: np.ndarray, ref: np.ndarray, seed: int) -> dict:
    from vaeaug.validation import feature_table, robust_peak
    from vaeaug.validation.features import parent_mass
    from vaeaug.validation.metrics import one_d_metrics

    pg, pr = robust_peak(parent_mass(gen)), robust_peak(parent_mass(ref))
    names, fg = feature_table(gen, OBJECTS)
    _, fr = feature_table(ref, OBJECTS)
    w1 = one_d_metrics(fr, fg, names, seed=seed)
    return {
        "peak_mev": 1e3 * pg["median"],
        "peak_err_mev": 1e3 * pg["median_err"],
        "width_mev": 1e3 * pg["half_width"],
        "width_err_mev": 1e3 * pg["half_width_err"],
        "peak_ref_mev": 1e3 * pr["median"],
        "width_ref_mev": 1e3 * pr["half_width"],
        "w1_norm_mean": float(np.mean([v["w1_norm"] for v in w1.values()])),
    }


def row_training(args, train_p4, ref_p4) -> tuple[Any, dict]:
    model, seconds, info = _train_model(train_p4, args)
    phys = _physics(model.sample(4 * len(train_p4), seed=args.seed + 1).p4, ref_p4, args.seed)
    reached = (abs(phys["peak_mev"] - phys["peak_ref_mev"]) <= PEAK_TOL_MEV
               and abs(phys["width_mev"] / phys["width_ref_mev"] - 1) <= WIDTH_TOL)  # fmt: skip
    epochs = len(model.history["val"])
    out = {"n_train": len(train_p4), "vaeaug_seconds": seconds, "epochs": epochs,
           "seconds_per_epoch": seconds / max(epochs, 1), "device": args.device, **info,
           "targets_reached": reached, **phys}  # fmt: skip
    return model, out


def row_tvae(args, train_p4, out: dict) -> None:
    """TVAE (ctgan) trained on the same candidates; fills ``out`` (the training row)."""
    try:
        import ctgan  # noqa: F401
    except ImportError:
        out["tvae"] = "skipped: ctgan is not installed (pip install 'vaeaug[bench]')"
        return
    if args.quick:
        out["tvae"] = "skipped in --quick"
        return
    import pandas as pd
    from ctgan import TVAE

    cols = [f"{o}_{c}" for o in OBJECTS for c in ("px", "py", "pz", "E")]
    # TVAE's default epochs (300), as bench/fidelity.py trains it
    tvae = TVAE(epochs=args.tvae_epochs, enable_gpu=args.device.startswith("cuda"))
    start = time.perf_counter()
    tvae.fit(pd.DataFrame(train_p4.reshape(len(train_p4), -1), columns=cols))
    out["tvae_seconds"] = time.perf_counter() - start
    out["tvae_epochs"] = args.tvae_epochs
    out["ratio_tvae_over_vaeaug"] = out["tvae_seconds"] / out["vaeaug_seconds"]


def _ceiling_of(ceilings: dict | None, name: str, precision: str):
    c = (ceilings or {}).get(name, {}).get(precision)
    return c if isinstance(c, dict) else None


def row_in_memory(args, model, ref_p4, n: int, ceilings: dict | None = None) -> dict:
    """``Model.sample`` and the engine's features alone, per precision, against the ceilings."""
    import torch

    from vaeaug.sampling.engine import Engine

    out: dict[str, Any] = {"n": n, "ceiling": "network (Model.features_from_noise on ready noise)"}
    precisions = _precisions(args)
    if not _is_cuda(args):
        out["tf32"] = TF32_CPU
    for precision in precisions:
        nn = n if precision == "fp32" or _is_cuda(args) else max(n // 8, 10_000)
        ep = _engine_precision(precision)
        with _precision_mode(precision, args.device):
            rate = _best_rate(lambda p=ep, nn=nn: model.sample(nn, seed=5, precision=p), nn,
                              args.repeats)  # fmt: skip
        net = _ceiling_of(ceilings, "network", precision) or _ceiling(model, "network", nn, precision,
                                                                       args.repeats)  # fmt: skip
        mlp = _ceiling_of(ceilings, "plain_mlp_same_widths", precision) or _ceiling(
            model, "plain_mlp_same_widths", nn, precision, args.repeats
        )
        dec = _ceiling_of(ceilings, "decoder", precision)
        vae = model.vae
        out[precision] = {"n": nn, "rate": rate, "ceiling": net["rate"], "ceiling_batch": net["batch"],
                          "ratio": rate / net["rate"],
                          "plain_mlp_ceiling": mlp["rate"], "plain_mlp_batch": mlp["batch"],
                          "ratio_vs_plain_mlp": rate / mlp["rate"],
                          "mlp_shape": [vae.config.latent_dim, *reversed(vae.config.hidden), 2 * vae.n_features]}  # fmt: skip
        if dec:
            out[precision]["decoder_ceiling"] = dec["rate"]
    # the device part alone: latent draws, decoder and noise, features left on the device
    for precision in precisions:
        engine = Engine(model, precision=_engine_precision(precision))
        nn = out[precision]["n"]

        def features(engine=engine, nn=nn):
            with torch.inference_mode():
                for _x in engine.batches(nn, 5):
                    pass
            _sync(args.device)

        with _precision_mode(precision, args.device):
            rate = _best_rate(features, nn, args.repeats)
        out[precision]["features_rate"] = rate
        out[precision]["features_ratio"] = rate / out[precision]["ceiling"]
    # bf16 physics: the same latent draws and noise, decoded in both precisions
    if "bf16" not in precisions:
        out["compile"] = "not run yet (measured last, see row_compile)"
        return out
    m = 200_000 if not args.quick else 10_000
    f32 = _physics(model.sample(m, seed=9).p4, ref_p4, args.seed)
    b16 = _physics(model.sample(m, seed=9, precision="bf16").p4, ref_p4, args.seed)
    out["bf16_physics"] = {"n": m, "fp32": f32, "bf16": b16,
                           "peak_shift_mev": b16["peak_mev"] - f32["peak_mev"],
                           "width_ratio": b16["width_mev"] / f32["width_mev"],
                           "w1_norm_mean_diff": b16["w1_norm_mean"] - f32["w1_norm_mean"]}  # fmt: skip
    out["compile"] = "not run yet (measured last, see row_compile)"
    return out


def _compile_skip(args) -> str | None:
    if args.no_compile:
        return "skipped (--no-compile)"
    if args.quick and not _is_cuda(args):
        return "skipped (--quick on the CPU: compiling takes longer than the smoke test)"
    return None


def row_compile(args, model, n: int, res: dict) -> None:
    """torch.compile: the compiled ceilings (res["ceilings"]["compiled"]) and Model.sample's
    engine compiled, fp32 (res["in_memory"]["compile"]). Run last: compiling costs tens of s."""
    from vaeaug.sampling.engine import Engine
    from vaeaug.sampling.streaming import sample_into

    skip = _compile_skip(args)
    if "ceilings" in res:
        res["ceilings"]["compiled"] = skip or row_ceilings(args, model, n, compile=True)
    if "in_memory" not in res:
        return
    if skip:
        res["in_memory"]["compile"] = skip
        return
    if _time_left(args) < 60:
        res["in_memory"]["compile"] = (
            f"skipped: time budget ({_time_left(args):.0f} s left of --budget)"
        )
        return
    try:
        start = time.perf_counter()
        engine = Engine(model, compile=True)
        sample_into(model, 1 << 16, 0, engine=engine)
        compile_s = time.perf_counter() - start
        rate = _best_rate(lambda: sample_into(model, n, 5, engine=engine), n, args.repeats)
        compiled = res.get("ceilings", {}).get("compiled", {})
        ceiling = _ceiling_of(compiled, "network", "fp32") or _ceiling(
            model, "network", n, "fp32", args.repeats, compile=True
        )
        res["in_memory"]["compile"] = {"rate": rate, "compile_seconds": compile_s, "ceiling": ceiling["rate"],
                                       "ratio": rate / ceiling["rate"]}  # fmt: skip
    except Exception as err:  # inductor needs a C++ compiler; record why it failed
        res["in_memory"]["compile"] = f"failed: {type(err).__name__}: {str(err)[:200]}"


def row_copies(args, model, n: int) -> dict:
    """Device-to-host copies of the streaming buffers: pinned (``non_blocking``) vs pageable."""
    if not _is_cuda(args):
        return {"skipped": CUDA_ONLY.format(device=args.device)}
    import torch

    from vaeaug.sampling.engine import Engine

    device = model.device
    buffers = {
        "features_fp32": torch.randn(n, Engine(model).n_features, device=device),
        "p4_fp64": torch.randn(n, len(model.layout.objects), 4, device=device, dtype=torch.float64),
    }
    out: dict[str, Any] = {"n": n, "repeats": max(3, args.repeats)}
    for name, dev in buffers.items():
        row: dict[str, Any] = {"mb": dev.numel() * dev.element_size() / 1e6}
        for mode in ("pinned", "pageable"):
            start = time.perf_counter()
            host = torch.empty(dev.shape, dtype=dev.dtype, pin_memory=mode == "pinned")
            alloc = time.perf_counter() - start

            def copy(host=host, dev=dev, pinned=mode == "pinned"):
                host.copy_(dev, non_blocking=pinned)
                torch.cuda.synchronize()

            rate = _best_rate(copy, n, out["repeats"])
            row[mode] = {
                "rate": rate,
                "gb_per_s": rate * row["mb"] / n / 1e3,
                "alloc_seconds": alloc,
            }
            del host
        row["pinned_over_pageable"] = row["pinned"]["rate"] / row["pageable"]["rate"]
        out[name] = row
    del buffers
    torch.cuda.empty_cache()
    return out


def row_root(args, model, n: int, chunk: int) -> dict:
    """``generate_to_root`` per precision vs uproot writing the same arrays (fp32 at the top)."""
    import uproot

    from vaeaug.io import Candidates
    from vaeaug.sampling.streaming import generate_to_root

    out: dict[str, Any] = {"n": n, "chunk": chunk, "by_precision": {}}
    if not _is_cuda(args):
        out["by_precision"]["tf32"] = TF32_CPU
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gen.root"
        for precision in _precisions(args):
            p = _engine_precision(precision)

            def gen(m=n, p=p):
                generate_to_root(model, m, path, seed=5, chunk_size=min(chunk, m), precision=p)

            with _precision_mode(precision, args.device):
                rate = _best_rate(gen, n, args.repeats, warmup=lambda: gen(min(n, 1 << 16)))
            out["by_precision"][precision] = {"rate": rate, "file_mb": path.stat().st_size / 1e6}
        # the ceiling: the same branches, already converted, written with the same
        # compression (RootWriter's default ZLIB level 1) and basket size
        arrays = Candidates(model.sample(n, seed=5).p4, model.layout).to_numpy()
        io_path = Path(tmp) / "io.root"

        def write(m=n):
            with uproot.recreate(io_path, compression=uproot.ZLIB(1)) as f:
                t = f.mktree("candidates", {k: v.dtype for k, v in arrays.items()})
                for i in range(0, m, chunk):
                    t.extend({k: v[i : min(i + chunk, m)] for k, v in arrays.items()})

        io_rate = _best_rate(write, n, args.repeats, warmup=lambda: write(min(n, 1 << 16)))
    for r in out["by_precision"].values():
        if isinstance(r, dict):
            r["ratio"] = r["rate"] / io_rate
    fp32 = out["by_precision"]["fp32"]
    out.update(rate=fp32["rate"], io_ceiling=io_rate, ratio=fp32["ratio"], file_mb=fp32["file_mb"])
    return out


# Peak RSS from VmHWM, which belongs to the process's own address space: on Linux
# ru_maxrss survives fork + exec and would report the (large) parent's RSS instead.
_RSS_CHILD = """
import contextlib, json, resource, sys, time
def status_kb(key):
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def peak_kb():
    return status_kb("VmHWM:")
# what the imports and the model cost before any event: resident MB after each step
imports = {"python": status_kb("VmRSS:") / 1024}
import numpy
imports["numpy"] = status_kb("VmRSS:") / 1024
import torch
imports["torch"] = status_kb("VmRSS:") / 1024
import uproot
imports["uproot"] = status_kb("VmRSS:") / 1024
import vector
imports["vector"] = status_kb("VmRSS:") / 1024
import vaeaug
from vaeaug.sampling.streaming import generate_to_root
imports["vaeaug"] = status_kb("VmRSS:") / 1024
torch.set_num_threads(1)
n, out, chunk, device, sink = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
model = vaeaug.load(sys.argv[1]).to(device)
imports["model"] = status_kb("VmRSS:") / 1024
cuda = model.device.type == "cuda"
if cuda:  # the CUDA context belongs to the baseline
    torch.zeros(1, device=model.device)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
base = peak_kb()
start = time.perf_counter()
if sink == "root":
    generate_to_root(model, n, out, seed=1, chunk_size=chunk)
else:  # consume and drop: each chunk of 4-momenta is made, touched and let go
    total = 0
    with contextlib.closing(model.iter_samples(n, seed=1, chunk_size=chunk)) as chunks:
        for p4 in chunks:
            total += len(p4)
    assert total == n, total
if cuda:
    torch.cuda.synchronize()
dt = time.perf_counter() - start
res = {"base_kb": base, "peak_kb": peak_kb(), "seconds": dt, "imports_mb": imports}
if cuda:
    res["gpu_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    res["gpu_max_reserved_mb"] = torch.cuda.max_memory_reserved() / 2**20
print(json.dumps(res))
"""


def row_memory(args, model, cases: list[tuple[int, str, int]]) -> list[dict]:
    """Peak RSS (and on CUDA peak GPU memory) of generating N events, each case in a fresh
    process: sink "root" (``generate_to_root`` into a temporary folder) or "null"
    (``Model.iter_samples``, each chunk dropped: the generation's own memory, no file)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "m.safetensors"
        model.save(model_path)
        for n, sink, chunk in cases:
            row: dict[str, Any] = {"n": n, "sink": sink, "chunk": chunk, "device": args.device}
            left = _time_left(args)
            if left < 30:
                row["skipped"] = f"time budget ({left:.0f} s left of --budget)"
                rows.append(row)
                continue
            out = Path(tmp) / "big.root"
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            cmd = [sys.executable, "-c", _RSS_CHILD, str(model_path), str(n), str(out), str(chunk),
                   args.device, sink]  # fmt: skip
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                                     timeout=None if left == float("inf") else left)  # fmt: skip
            except subprocess.TimeoutExpired:
                row["skipped"] = f"timed out after the {left:.0f} s left of --budget"
                rows.append(row)
                continue
            if res.returncode:
                raise RuntimeError(f"memory child failed:\n{res.stderr[-2000:]}")
            r = json.loads(res.stdout.strip().splitlines()[-1])
            row.update(baseline_mb=r["base_kb"] / 1024, peak_rss_mb=r["peak_kb"] / 1024,
                       seconds=r["seconds"], rate=n / r["seconds"], imports_mb=r["imports_mb"],
                       file_mb=out.stat().st_size / 1e6 if sink == "root" else 0.0)  # fmt: skip
            if "gpu_max_allocated_mb" in r:
                row["gpu_max_allocated_mb"] = r["gpu_max_allocated_mb"]
                row["gpu_max_reserved_mb"] = r["gpu_max_reserved_mb"]
            else:
                row["gpu_memory"] = CUDA_ONLY.format(device=args.device)
            out.unlink(missing_ok=True)
            rows.append(row)
    return rows


def _candidates(events):
    """D+ candidates ``N * {K1, pi1, pi2}`` (vector Momentum4D) from the flat branches."""
    import awkward as ak

    from vaeaug.integrations.awkward import VECTOR_BEHAVIOR

    return ak.zip({o: ak.zip({c: events[f"{o}_{c}"] for c in ("px", "py", "pz", "E")},
                             with_name="Momentum4D") for o in OBJECTS},
                  depth_limit=1, behavior=VECTOR_BEHAVIOR)  # fmt: skip


class _MassProcessor:
    """The coffea processor of the coffea row: D+ candidates from the flat branches, the
    parent-mass histogram filled, optionally after ``vaeaug.Augment`` (weights w / factor).

    Made a ``coffea.processor.ProcessorABC`` by :func:`_mass_processor` (coffea is imported lazily).
    """

    def __init__(self, augment=None) -> None:
        self.augment = augment

    def process(self, events):
        import hist

        cands = _candidates(events)
        weight = None
        if self.augment is not None:
            cands = self.augment(cands)
            weight = cands.weight
        h = hist.Hist.new.Reg(100, 1.8, 1.95, name="m").Weight()
        h.fill(m=(cands.K1 + cands.pi1 + cands.pi2).mass, weight=weight)
        return {"mass": h, "events": len(events)}

    def postprocess(self, accumulator):
        return accumulator


def _mass_processor(augment=None):
    from coffea import processor

    class MassProcessor(_MassProcessor, processor.ProcessorABC):
        pass

    return MassProcessor(augment)


# The memory figure: one processor step on an in-memory chunk of N candidates, in a
# fresh process. The peak RSS (VmHWM) is reset to the current RSS just before the step
# (Linux: "5" > /proc/self/clear_refs), so "extra" is the step's own peak above what the
# process held before it (imports, the chunk, the model loaded by Augment.__init__).
# The peak is read twice: when the Augment call returns (its output held: the call's
# cost) and at the end of the step (the histogram of 40x more candidates included).
_COFFEA_RSS_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from _common import OBJECTS, data_dir, load_p4, one_thread
one_thread()
import awkward as ak
import vaeaug
from perf import _candidates, _mass_processor
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
folder, model_path, n, factor = data_dir(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
import vaeaug.integrations.coffea
if int(sys.argv[6]):
    vaeaug.integrations.coffea.BLOCK_ROWS = int(sys.argv[6])
if int(sys.argv[7]):
    vaeaug.integrations.coffea.DECODE_ROWS["cpu"] = int(sys.argv[7])
p4 = np.concatenate([load_p4(folder, w, "signal") for w in ("train", "reference")])
p4 = np.tile(p4, (-(-n // len(p4)), 1, 1))[:n]
events = ak.zip({f"{o}_{c}": p4[:, j, i].copy() for j, o in enumerate(OBJECTS)
                 for i, c in enumerate(("px", "py", "pz", "E"))})
del p4
augment = vaeaug.Augment(model_path, factor=factor, seed=1, device="cpu") if factor else None
out = {}
class Probe:
    # Augment, noting the peak RSS when the call returns (its output then held)
    def __call__(self, cands):
        start = time.perf_counter()
        gen = augment(cands)
        out.update(call_s=time.perf_counter() - start, call_peak_mb=status("VmHWM"),
                   output_mb=gen.nbytes / 2**20, output_rows=len(gen))
        return gen
out["reset_peak"] = reset_peak()
out["rss_before_mb"] = status("VmRSS")
start = time.perf_counter()
res = _mass_processor(Probe() if augment is not None else None).process(events)
out["seconds"] = time.perf_counter() - start
out["peak_mb"] = status("VmHWM")
out["fills"] = float(res["mass"].sum(flow=True).value)
print(json.dumps(out))
"""


def _coffea_memory(args, model_path: Path, events: int, factor: int, block: int = 0,
                   decode: int = 0) -> dict:  # fmt: skip
    """Peak RSS of the processor step on ``events`` candidates, with and without Augment
    (``block``, ``decode``: Augment's BLOCK_ROWS and CPU DECODE_ROWS when not 0)."""
    from vaeaug.integrations.coffea import BLOCK_ROWS, DECODE_ROWS

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out: dict[str, Any] = {"events": events, "factor": factor, "block_rows": block or BLOCK_ROWS,
                           "decode_rows": decode or DECODE_ROWS["cpu"]}  # fmt: skip
    for label, f in (("without", 0), ("with", factor)):
        cmd = [sys.executable, "-c", _COFFEA_RSS_CHILD, str(Path(__file__).parent), str(data_dir(args.data)),
               str(model_path), str(events), str(f), str(block), str(decode)]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if res.returncode:
            raise RuntimeError(f"coffea memory child failed:\n{res.stderr[-2000:]}")
        out[label] = json.loads(res.stdout.strip().splitlines()[-1])
    w, wo = out["with"], out["without"]
    # the Augment call alone (its output held), and the whole step against the bare one
    out["augment_call_extra_mb"] = w["call_peak_mb"] - w["rss_before_mb"]
    out["output_mb"] = w["output_mb"]
    out["augment_beyond_output_mb"] = out["augment_call_extra_mb"] - w["output_mb"]
    out["processor_extra_mb"] = (w["peak_mb"] - w["rss_before_mb"]) - (
        wo["peak_mb"] - wo["rss_before_mb"]
    )
    return out


def _model_summary(model) -> dict:
    c = model.config
    return {"decoder": c.decoder, "decoder_flow": c.decoder_flow, "prior": c.prior,
            "hidden": list(c.hidden), "latent_dim": c.latent_dim,
            "parameters": sum(p.numel() for p in model.vae.parameters()),
            "n_train": model.provenance.get("n_events"), "epochs": len(model.history.get("val", []))}  # fmt: skip


def row_coffea(args, model) -> dict:
    """A coffea processor over the D+ reference file, with and without ``vaeaug.Augment``.

    Rates: ``processor.Runner`` (iterative executor, ``--coffea-chunks`` chunks of
    ``--coffea-chunk`` events, the processor pickled per chunk as coffea does), bare and with
    ``Augment(factor=1)`` and ``(factor=10)``; for each factor, the same model's bare
    generation (``Model.sample`` and ``generate_from_noise``) of as many candidates as
    Augment makes. Timings interleaved, best of ``--repeats``. Memory:
    :func:`_coffea_memory` per ``--coffea-memory`` case.
    """
    try:
        import coffea  # noqa: F401
    except ImportError:
        return {"skipped": "coffea is not installed (pip install 'vaeaug[coffea]')"}
    from coffea import processor
    from coffea.nanoevents import BaseSchema

    import vaeaug
    from vaeaug.integrations.coffea import candidate_noise, generate_from_noise, model_load_count

    chunk, n_chunks = args.coffea_chunk, args.coffea_chunks
    path = str(data_dir(args.data) / "dplus_kpipi_reference.root")
    factors = (1, 10)
    out: dict[str, Any] = {"chunk": chunk, "chunks": n_chunks, "factors": list(factors),
                           "executor": "coffea.processor.Runner + IterativeExecutor, BaseSchema",
                           "model": _model_summary(model)}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.vaeaug.safetensors"
        model.save(model_path)
        augments = {
            f: vaeaug.Augment(model_path, factor=f, seed=1, device=args.device) for f in factors
        }
        quiet = processor.IterativeExecutor(status=False)
        runner = processor.Runner(executor=quiet, pre_executor=quiet, schema=BaseSchema,
                                  chunksize=chunk, maxchunks=n_chunks)  # fmt: skip

        def run(augment=None) -> int:
            res = runner({"dplus": [path]}, _mass_processor(augment), treename="signal")
            return res["events"]

        # coffea evens out the chunks: the first n_chunks hold about n_chunks * chunk events
        n_events = out["n_events"] = run()
        p4 = vaeaug.read_candidates(path, tree="signal", objects=OBJECTS).p4[:n_events]
        fns = {"bare": run, **{f"augment_{f}": (lambda a=a: run(a)) for f, a in augments.items()}}
        for f in factors:  # the same model's bare generation of as many candidates
            keys, eps = candidate_noise(p4, 1, f, model.noise_width)
            fns[f"model_sample_{f}"] = lambda n=f * n_events: model.sample(n, seed=1)
            fns[f"generate_from_noise_{f}"] = lambda k=keys, e=eps: generate_from_noise(model, k, e)
            # and cut into the processor's chunks: the model's own cost per call (the network's
            # fixed cost, the support's redraw rounds) counted as in the processor
            parts = [
                candidate_noise(c, 1, f, model.noise_width) for c in np.array_split(p4, n_chunks)
            ]
            fns[f"generate_per_chunk_{f}"] = lambda parts=parts: [
                generate_from_noise(model, k, e) for k, e in parts
            ]
        seconds = _best_seconds(fns, args.repeats)
        rate = out["events_per_s"] = {
            k: n_events / seconds[k] for k in ("bare", *(f"augment_{f}" for f in factors))
        }
        out["seconds"] = seconds
        out["generated"] = {}
        for f in factors:
            out[f"ratio_factor{f}_vs_bare"] = rate[f"augment_{f}"] / rate["bare"]
            gen = {"augment": f * rate[f"augment_{f}"],
                   "model_sample": f * n_events / seconds[f"model_sample_{f}"],
                   "generate_from_noise": f * n_events / seconds[f"generate_from_noise_{f}"],
                   "generate_per_chunk": f * n_events / seconds[f"generate_per_chunk_{f}"]}  # fmt: skip
            # the target: against the faster of the two bare generations of the whole count
            gen["ratio"] = gen["augment"] / max(gen["model_sample"], gen["generate_from_noise"])
            gen["ratio_vs_per_chunk"] = gen["augment"] / gen["generate_per_chunk"]
            out["generated"][str(f)] = gen
        # every chunk unpickled a fresh Augment; all found the model this process loaded once
        out["model_loads_in_this_process"] = model_load_count(augments[1].model_sha256)
        out["memory"] = []
        for case in args.coffea_memory:
            events, *options = case.split(",")
            opts = dict(o.split("=", 1) for o in options)
            mem_model = Path(opts["model"]) if "model" in opts else model_path
            row = _coffea_memory(args, mem_model, int(float(events)), args.coffea_memory_factor,
                                 int(float(opts.get("block", 0))), int(float(opts.get("decode", 0))))  # fmt: skip
            row["model"] = _model_summary(vaeaug.load(mem_model))
            row["row_model"] = "model" not in opts
            out["memory"].append(row)
    return out


def _best_seconds(fns: dict, repeats: int) -> dict:
    """Best wall time of each function, after one warm-up each; the repeats interleaved
    (one call of each in turn), so that a change in the machine's load hits all alike."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def coffea_markdown(r: dict) -> list[str]:
    """The coffea row's tables: rates against the bare processor and bare generation, memory."""
    rate, m = r["events_per_s"], r["model"]
    lines = [f"coffea: {r['executor']}, {r['n_events']} D+ candidates of the reference file in chunks of "
             f"{r['chunk']}; model: {m['decoder']} decoder ({m['decoder_flow']}), {m['prior']} prior, "
             f"hidden {m['hidden']}, {m['parameters']} parameters; the model loaded "
             f"{r['model_loads_in_this_process']} time(s) in the process over all runs.", ""]  # fmt: skip
    rows = [["bare processor (mass histogram)", _fmt(rate["bare"]), "-", "-", "-"]]
    for f in r["factors"]:
        rows.append([f"processor with Augment(factor={f})", _fmt(rate[f"augment_{f}"]),
                     f"bare processor: {_fmt(rate['bare'])}", f"{r[f'ratio_factor{f}_vs_bare']:.3g}", "-"])  # fmt: skip
    for f in r["factors"]:
        g = r["generated"][str(f)]
        rows.append([f"generated candidates/s inside the processor, factor {f}", _fmt(g["augment"]),
                     f"bare generation of {f * r['n_events']}: Model.sample {_fmt(g['model_sample'])}, "
                     f"generate_from_noise {_fmt(g['generate_from_noise'])}",
                     f"{g['ratio']:.2f}", ">= 0.7"])  # fmt: skip
        rows.append([f"the same, against bare generation cut into the {r['chunks']} chunks",
                     _fmt(g["augment"]), f"generate_from_noise per chunk: {_fmt(g['generate_per_chunk'])}",
                     f"{g['ratio_vs_per_chunk']:.2f}", "-"])  # fmt: skip
    lines.append(
        markdown_table(["figure", "events/s", "compared with (events/s)", "ratio", "target"], rows)
    )
    if r.get("memory"):
        mem_rows = []
        for c in r["memory"]:
            model = "the row's model" if c["row_model"] else (
                f"{c['model']['decoder']} decoder, {c['model']['prior']} prior, hidden {c['model']['hidden']}")  # fmt: skip
            mem_rows.append([f"{c['events']:,}", str(c["factor"]), f"{c['block_rows']:,} / {c['decode_rows']:,}", model,
                             f"{c['output_mb']:.0f}",
                             f"{c['augment_call_extra_mb']:.0f}", f"{c['augment_beyond_output_mb']:.0f}",
                             f"{c['processor_extra_mb']:.0f}", f"{c['with']['seconds']:.0f}"])  # fmt: skip
        lines += ["", markdown_table(
            ["chunk (events)", "factor", "block / network call (rows)", "model", "output (MB)", "Augment call: extra peak RSS (MB)",
             "of which beyond the output (MB)", "processor step: extra peak RSS vs without Augment (MB)",
             "step with Augment (s)"], mem_rows)]  # fmt: skip
    return lines


def ceilings_markdown(c: dict) -> list[str]:
    """The ceilings: each network on ready-made inputs, per precision, eager and compiled."""
    names = {"network": "network (prior + decoder flows) on ready noise",
             "decoder": "decoder flow alone on ready z and noise",
             "plain_mlp_same_widths": "plain MLP of the same widths (not the shipped decoder)"}  # fmt: skip
    rows = []
    for mode, part in (("eager", c), ("torch.compile", c.get("compiled"))):
        if isinstance(part, str):
            rows.append([f"all, {mode}", "-", "-", part])
            continue
        for name, label in names.items():
            for p in PRECISIONS:
                r = (part or {}).get(name, {}).get(p)
                if r is None:
                    continue
                if isinstance(r, dict):
                    rows.append([f"{label}, {mode}", p, _fmt(r["rate"]), f"batch {r['batch']}"])
                else:
                    rows.append([f"{label}, {mode}", p, "-", r])
    return [
        f"Ceilings (N={c['n']:.2g} per timing; best batch):",
        "",
        markdown_table(["network", "precision", "events/s", "note"], rows),
    ]


def markdown(res: dict) -> str:
    lines = [f"Machine: {res['machine']['cpu']}, {res['machine']['cores']} cores, torch threads 1, "
             f"device {res['device']}; torch {res['machine']['torch']}; quick={res['quick']}.", ""]  # fmt: skip
    rows = []
    mem = res.get("in_memory", {})
    for p in PRECISIONS:
        if isinstance(mem.get(p), dict):
            r = mem[p]
            rows.append([f"in-memory generation, {p} (N={r['n']:.2g})", _fmt(r["rate"]),
                         f"network on ready noise {p}, batch {r['ceiling_batch']}: {_fmt(r['ceiling'])}",
                         f"{r['ratio']:.2f}", ">= 0.7"])  # fmt: skip
            rows.append([f"the same, against a plain MLP {'-'.join(map(str, r['mlp_shape']))} {p} "
                         "(not the shipped decoder)", _fmt(r["rate"]),
                         f"plain MLP, batch {r['plain_mlp_batch']}: {_fmt(r['plain_mlp_ceiling'])}",
                         f"{r['ratio_vs_plain_mlp']:.2f}", "-"])  # fmt: skip
    for p in PRECISIONS:
        if "features_rate" in (mem.get(p) if isinstance(mem.get(p), dict) else {}):
            r = mem[p]
            rows.append([f"features on the device only (Engine.batches), {p}", _fmt(r["features_rate"]),
                         f"network on ready noise: {_fmt(r['ceiling'])}", f"{r['features_ratio']:.2f}", "-"])  # fmt: skip
    if isinstance(mem.get("compile"), dict):
        c = mem["compile"]
        rows.append([f"in-memory, fp32 + torch.compile ({c['compile_seconds']:.0f} s to compile)",
                     _fmt(c["rate"]), f"compiled network: {_fmt(c['ceiling'])}", f"{c['ratio']:.2f}",
                     ">= 0.7"])  # fmt: skip
    if "root" in res:
        r = res["root"]
        for p, b in r.get("by_precision", {"fp32": r}).items():
            if isinstance(b, dict):
                rows.append([f"generation to ROOT, {p} (N={r['n']:.2g}, chunk {r['chunk']})", _fmt(b["rate"]),
                             f"uproot writing the arrays in memory, ZLIB(1): {_fmt(r['io_ceiling'])}",
                             f"{b['ratio']:.2f}", ">= 0.8"])  # fmt: skip
        if isinstance(mem.get("fp32"), dict):
            rows.append(["generation to ROOT vs in memory (overlap of writing)", _fmt(r["rate"]),
                         f"in-memory generation fp32: {_fmt(mem['fp32']['rate'])}",
                         f"{r['rate'] / mem['fp32']['rate']:.2f}", "-"])  # fmt: skip
    if rows:
        lines.append(
            markdown_table(["figure", "events/s", "ceiling (events/s)", "ratio", "target"], rows)
        )
    if "ceilings" in res:
        lines += ["", *ceilings_markdown(res["ceilings"])]
    if isinstance(res.get("copies"), dict):
        c = res["copies"]
        if "skipped" in c:
            lines += ["", f"device-to-host copies: {c['skipped']}"]
        else:
            lines += ["", markdown_table(
                ["buffer (N events)", "MB", "pinned events/s (GB/s)", "pageable events/s (GB/s)", "pinned / pageable"],
                [[f"{k} ({c['n']:.2g})", f"{b['mb']:.0f}", f"{_fmt(b['pinned']['rate'])} ({b['pinned']['gb_per_s']:.1f})",
                  f"{_fmt(b['pageable']['rate'])} ({b['pageable']['gb_per_s']:.1f})", f"{b['pinned_over_pageable']:.2f}"]
                 for k, b in c.items() if isinstance(b, dict)])]  # fmt: skip
    if isinstance(res.get("coffea"), dict) and "events_per_s" in res["coffea"]:
        lines += ["", *coffea_markdown(res["coffea"])]
    if "memory" in res:
        mem_rows = []
        for r in res["memory"]:
            n_chunk = [f"{r['n']:.0e}", r.get("sink", "root"), f"{r.get('chunk', '-')}"]
            if "skipped" in r:
                mem_rows.append([*n_chunk, r["skipped"], "-", "-", "-", "-"])
                continue
            gpu = f"{r['gpu_max_allocated_mb']:.0f}" if "gpu_max_allocated_mb" in r else "-"
            mem_rows.append([*n_chunk, f"{r['peak_rss_mb']:.0f}", f"{r['baseline_mb']:.0f}", gpu,
                             _fmt(r["rate"]), f"{r['file_mb']:.0f}"])  # fmt: skip
        lines += ["", markdown_table(["N", "sink", "chunk", "peak RSS (MB)", "after import+load (MB)",
                                      "GPU max allocated (MB)", "events/s", "file (MB)"], mem_rows)]  # fmt: skip
        if res.get("memory_spread"):
            lines += ["", "; ".join(f"peak RSS spread over N, {k}: {100 * v:.1f}%"
                                    for k, v in res["memory_spread"].items())]  # fmt: skip
        imports = next((r["imports_mb"] for r in res["memory"] if "imports_mb" in r), None)
        if imports:
            steps = list(imports.items())
            lines += ["", "Resident memory before any event (MB, cumulative): " + ", ".join(
                f"{k} {v:.0f} (+{v - steps[i - 1][1]:.0f})" if i else f"{k} {v:.0f}"
                for i, (k, v) in enumerate(steps))]  # fmt: skip
    if "bf16_physics" in mem:
        b = mem["bf16_physics"]
        f32, b16 = b["fp32"], b["bf16"]
        lines += ["", markdown_table(
            ["precision", "mass peak (MeV)", "16-84% half-width (MeV)", "mean W1/spread vs reference"],
            [[p, f"{d['peak_mev']:.2f} ± {d['peak_err_mev']:.2f}", f"{d['width_mev']:.2f} ± {d['width_err_mev']:.2f}",
              f"{d['w1_norm_mean']:.4f}"] for p, d in (("fp32", f32), ("bf16", b16))])]  # fmt: skip
    if "training" in res:
        t = res["training"]
        if "tvae_seconds" in t:
            tvae = (f"{t['tvae_seconds']:.0f} s ({t['tvae_epochs']} epochs); "
                    f"TVAE / vaeaug = {t['ratio_tvae_over_vaeaug']:.2f}")  # fmt: skip
        else:
            tvae = t.get("tvae", "not run yet")
        lines += [
            "",
            f"training: {t.get('config', 'shipped defaults')} on {t.get('device', res['device'])}"
            + (f", a fixed {t['epochs_fixed']} epochs" if t.get("epochs_fixed") else ""),
            "",
        ]
        lines += ["", markdown_table(
            ["training set", "vaeaug training (s)", "epochs", "peak / width (MeV) vs reference",
             "targets reached", "TVAE"],
            [[f"{t['n_train']} D+", f"{t['vaeaug_seconds']:.0f}", str(t["epochs"]),
              f"{t['peak_mev']:.2f} / {t['width_mev']:.2f} vs {t['peak_ref_mev']:.2f} / {t['width_ref_mev']:.2f}",
              str(t["targets_reached"]), tvae]])]  # fmt: skip
    if isinstance(res.get("coffea"), dict) and "skipped" in res["coffea"]:
        lines += ["", f"coffea row skipped: {res['coffea']['skipped']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="CI-sized smoke test (small N, tiny model)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument(
        "--results",
        default=str(Path(__file__).parent / "results"),
        help="results folder: writes <results>/<run>/latest.json and history.jsonl "
        "(<run>: perf-cpu, perf-cpu-coffea, perf-cuda-quick...)",
    )
    p.add_argument(
        "--data",
        help="folder with the D+ files (default $VAEAUG_TESTDATA, else ../shared/data beside "
        "the repository)",
    )
    p.add_argument(
        "--memory-n",
        type=float,
        nargs="+",
        help="N values of the memory row, ROOT sink (default 1e6 1e7, quick 1e4 5e4; CUDA --quick: "
        "1e7 and 1e8 to a consume-and-drop sink, and 1e7 to ROOT)",
    )
    p.add_argument(
        "--memory-chunk",
        type=int,
        nargs="+",
        help="chunk sizes of the memory row, each with every --memory-n (default: the shipped "
        "default, vaeaug.sampling.streaming.DEFAULT_CHUNK; quick 16384)",
    )
    p.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        help="precisions of the throughput rows (default: all the device has; bf16 is slow on "
        "CPUs without bf16 units)",
    )
    p.add_argument(
        "--memory-sink",
        nargs="+",
        choices=("root", "null"),
        default=["root"],
        help="sinks of the --memory-n cases: root (generate_to_root, default) and/or null "
        "(Model.iter_samples, each chunk dropped: generation without the writer)",
    )
    p.add_argument(
        "--memory-model",
        choices=("run", "gaussian"),
        default="run",
        help="model of the memory row: the run's (default) or a fast one trained for 2 epochs "
        "(gaussian decoder, standard prior), so that 3e7 events take minutes on a CPU",
    )
    p.add_argument("--n", type=float, help="events of the throughput rows (default 2e6, quick 1e4)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (best is kept)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    p.add_argument("--tvae-epochs", type=int, default=300, help="TVAE epochs (default 300)")
    p.add_argument(
        "--rows", nargs="+", default=list(ROWS), choices=ROWS, help="rows to run (default all)"
    )
    p.add_argument(
        "--coffea-chunk",
        type=int,
        help="events per chunk of the coffea row (default 1000, quick 100)",
    )
    p.add_argument(
        "--coffea-chunks", type=int, default=4, help="chunks of the coffea row (default 4)"
    )
    p.add_argument(
        "--coffea-memory",
        nargs="*",
        help="cases of the coffea memory figure: EVENTS[,block=ROWS][,decode=ROWS][,model=FILE]: "
        "a chunk of EVENTS candidates; Augment's BLOCK_ROWS and CPU DECODE_ROWS, and another "
        "model file (e.g. a faster one) for that case; default 1e5, quick 1e3",
    )
    p.add_argument(
        "--coffea-memory-factor", type=int, default=40, help="factor of the memory figure (40)"
    )
    p.add_argument(
        "--train-epochs",
        type=int,
        help="fixed training epochs (default: CUDA --quick 10, else the shipped TrainConfig, "
        "early stopping; CPU --quick trains a tiny network for 4)",
    )
    p.add_argument(
        "--budget",
        type=float,
        help="seconds after which the optional parts (compile, memory cases) are skipped and "
        "recorded so (default: CUDA --quick 300, else none)",
    )
    p.add_argument("--model", help="use this model file instead of training one (no training row)")
    p.add_argument("--save-model", help="save the trained model here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    one_thread()
    from vaeaug.training import choose_device

    args.device = str(choose_device(args.device))
    cuda = args.device.startswith("cuda")
    args.repeats = args.repeats or (1 if args.quick else 2)
    if args.train_epochs is None and args.quick and cuda:
        args.train_epochs = 10
    if args.budget is None and args.quick and cuda:
        args.budget = 300.0
    # CUDA --quick: enough rows to fill the GPU (2 engine batches of 64 blocks), ROOT at half
    if args.n:
        n = int(args.n)
    else:
        n = ((1 << 23) if cuda else 10_000) if args.quick else 2_000_000
    n_root = n // 2 if cuda and args.quick and not args.n else n
    from vaeaug.sampling.streaming import DEFAULT_CHUNK

    if args.memory_n:
        mem_cases = [(int(x), sink) for sink in args.memory_sink for x in args.memory_n]
    elif args.quick and cuda:
        # 1e8 x 3 daughters x 4 float64 would be 9.6 GB in memory and ~4.8 GB on disk even in
        # float32: the RSS points use a consume-and-drop sink; one ROOT point at 1e7
        mem_cases = [(10_000_000, "null"), (100_000_000, "null"), (10_000_000, "root")]
    else:
        mem_cases = [(int(x), "root") for x in ([1e4, 5e4] if args.quick else [1e6, 1e7])]
    # ROOT row: the shipped default chunk on the CPU; 2**20 events on CUDA (fills the GPU)
    chunk = 1 << 14 if args.quick and not cuda else (1 << 20 if cuda else DEFAULT_CHUNK)
    # the memory row: each N at each --memory-chunk (default: the shipped default chunk)
    mem_chunks = args.memory_chunk or [1 << 14 if args.quick and not cuda else DEFAULT_CHUNK]
    mem_cases = [(n_, sink, c) for c in mem_chunks for n_, sink in mem_cases]
    args.coffea_chunk = args.coffea_chunk or (100 if args.quick else 1000)
    if args.coffea_memory is None:
        args.coffea_memory = ["1e3"] if args.quick else ["1e5"]

    folder = data_dir(args.data)
    train = load_p4(folder, "train", "signal")
    ref = load_p4(folder, "reference", "signal")
    n_train = 2_000 if args.quick and not cuda else 10_000
    train = train[np.random.default_rng(args.seed).permutation(len(train))[:n_train]]

    res: dict[str, Any] = {"quick": args.quick, "device": args.device, "machine": machine(),
                           "command": " ".join(["python bench/perf.py", *(argv if argv is not None else sys.argv[1:])])}  # fmt: skip
    out = Path(args.results)
    # a run of some rows gets its own record (perf-cpu-coffea/), not the full run's
    partial = (
        "" if set(args.rows) == set(ROWS) else "-" + "-".join(r for r in ROWS if r in args.rows)
    )
    stem = f"perf-{args.device.split(':')[0]}{partial}" + ("-quick" if args.quick else "")
    t0 = time.perf_counter()
    args.deadline = None if args.budget is None else t0 + args.budget
    res["budget_seconds"] = args.budget
    if cuda:
        import torch

        res["machine"]["gpu"] = torch.cuda.get_device_name(torch.device(args.device))

    def save() -> str:
        # after every row, so that a long run's finished rows are never lost
        res["seconds"] = time.perf_counter() - t0
        write_json(out / stem / "partial.json", res)
        return markdown(res)

    rows = set(args.rows)
    if args.model:
        import vaeaug

        model = vaeaug.load(args.model).to(args.device)
    elif rows == {"memory"} and args.memory_model == "gaussian":
        model = None  # the memory row trains its own
    else:
        model, res["training"] = row_training(args, train, ref)
        if args.save_model:
            model.save(args.save_model)
        model.to(args.device)
    if "ceilings" in rows:
        res["ceilings"] = row_ceilings(args, model, n)
        save()
    if "in_memory" in rows:
        res["in_memory"] = row_in_memory(args, model, ref, n, res.get("ceilings"))
        save()
    if "copies" in rows:
        res["copies"] = row_copies(args, model, n)
        save()
    if "root" in rows:
        res["root"] = row_root(args, model, n_root, min(chunk, n_root))
        save()
    if "memory" in rows:
        mem_model = model
        if args.memory_model == "gaussian":
            # memory does not depend on the network's cost, but the time to reach 3e7 does
            import vaeaug

            mem_model = vaeaug.fit(train, objects=OBJECTS, seed=args.seed, progress=False,
                                   config=vaeaug.VAEConfig(decoder="gaussian", prior="standard"),
                                   train=vaeaug.TrainConfig(epochs=2), device=args.device)  # fmt: skip
        res["memory_model"] = {"which": args.memory_model, **_model_summary(mem_model)}
        res["memory"] = row_memory(args, mem_model, mem_cases)
        # flatness: per chunk and sink, (largest - smallest) / smallest peak RSS over N
        spread: dict[str, list[float]] = {}
        for r in res["memory"]:
            if "peak_rss_mb" in r:
                spread.setdefault(f"{r['sink']} chunk {r['chunk']}", []).append(r["peak_rss_mb"])
        res["memory_spread"] = {k: max(v) / min(v) - 1 for k, v in spread.items() if len(v) > 1}
        save()
    if "ceilings" in rows or "in_memory" in rows:
        row_compile(args, model, n, res)
        save()
    if "coffea" in rows:
        res["coffea"] = row_coffea(args, model)
        save()
    if "tvae" in rows and "training" in res:
        row_tvae(args, train, res["training"])
    md = save()
    path = record(
        stem, res, results=out, argv=["bench/perf.py", *(sys.argv[1:] if argv is None else argv)]
    )
    (out / stem / "partial.json").unlink(missing_ok=True)
    print(md)
    print(json.dumps({"seconds": res["seconds"], "record": str(path)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
