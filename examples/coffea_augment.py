"""Augment dimuon candidates in a coffea processor, with any executor or on Dask.

The input is ``uproot-HZZ.root`` (CMS HEP-tutorial H -> ZZ -> 4 lepton
simulation, tree ``events``, jagged ``Muon_Px/Py/Pz/E/Charge``), as a TTree
or converted to an RNTuple. The processor

1. builds opposite-charge dimuon candidates from ``vector`` Momentum4D muons
   with ``vaeaug.candidates(muons, n=2, charge="opposite")``;
2. trains a model on them (a first pass that collects the candidates with a
   :class:`vaeaug.integrations.coffea.CandidateAccumulator`, then ``fit``), or loads a model file;
3. augments them with ``vaeaug.Augment(model, factor=k, seed=s)``: the generated
   muons keep the names ``mu1, mu2`` and each its source muon's charge;
4. fills ``hist`` histograms of the original and generated dimuon masses (the
   generated weighted by 1/k, so both have the original normalisation).

Usage::

    python examples/coffea_augment.py --data ../shared/data --factor 10 --executor futures
    python examples/coffea_augment.py --data ../shared/data --executor dask --plot mass.png
    python examples/coffea_augment.py --model dimuon.vaeaug.safetensors ...   # load, don't train

``--executor``: ``iterative`` and ``futures`` run ``coffea.processor.Runner``
(virtual NanoEvents, chunks of ``--chunksize``); ``dask`` runs
``vaeaug.integrations.coffea.apply_to_fileset`` (coffea's, which also reads RNTuples) on
dask-awkward arrays (pass ``--scheduler tcp://...`` to use a running Dask
cluster). The generated candidates are the same under all of them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import hist
import numpy as np
import vector
from coffea import processor
from coffea.nanoevents import BaseSchema

import vaeaug
from vaeaug.integrations.coffea import CandidateAccumulator

MUON_MASS = 0.1056583755  # GeV (PDG)
TREE = "events"
FILE = "uproot-HZZ.root"


def _is_dask(array) -> bool:
    return type(array).__module__.startswith("dask_awkward")


def dimuon_pairs(events):
    """Opposite-charge muon pairs, ``N * var * {mu1, mu2}`` of Momentum4D (GeV), mu1 the leading."""
    if _is_dask(events):
        import dask_awkward as lib
    else:
        lib = ak
    muons = lib.zip(
        {"px": events.Muon_Px, "py": events.Muon_Py, "pz": events.Muon_Pz, "E": events.Muon_E,
         "charge": events.Muon_Charge},
        with_name="Momentum4D",
        behavior=vector.backends.awkward.behavior,
    )  # fmt: skip
    return vaeaug.candidates(muons, n=2, charge="opposite", sort_by="pt", fields=["mu1", "mu2"])


def mass_hist(dask: bool, label: str):
    """A weighted histogram of m(mu mu) in GeV (a dask-histogram under dask)."""
    if dask:
        import hist.dask as hist_dask  # dask-histogram: filled lazily, like the arrays

        cls = hist_dask.Hist
    else:
        cls = hist.Hist
    return cls(hist.axis.Regular(60, 60.0, 120.0, name="mass", label="$m(\\mu\\mu)$ [GeV]"),
               storage=hist.storage.Weight())  # fmt: skip


class DimuonProcessor(processor.ProcessorABC):
    """Dimuon candidates, optionally collected for training and augmented.

    Args:
        augment: a :class:`vaeaug.Augment`, or None (no generated histogram).
        collect: also return the candidates as a :class:`CandidateAccumulator`
            (eager/virtual mode: the training pass).
        keep_arrays: also return the generated records (for checks; memory grows
            with the sample).
    """

    def __init__(self, augment: vaeaug.Augment | None = None, *, collect: bool = False,
                 keep_arrays: bool = False) -> None:  # fmt: skip
        self.augment = augment
        self.collect = collect
        self.keep_arrays = keep_arrays

    def process(self, events):
        dask = _is_dask(events)
        flatten = ak.flatten
        if dask:
            import dask_awkward as dak

            flatten = dak.flatten
        pairs = dimuon_pairs(events)
        original = mass_hist(dask, "original")
        original.fill(mass=flatten((pairs.mu1 + pairs.mu2).mass))
        out = {"original": original}
        if self.collect:
            out["train"] = CandidateAccumulator.from_awkward(pairs, objects=["mu1", "mu2"])
        if self.augment is not None:
            gen = self.augment(pairs)
            generated = mass_hist(dask, "generated")
            generated.fill(mass=flatten((gen.mu1 + gen.mu2).mass), weight=flatten(gen.weight))
            out["generated"] = generated
            if not dask:
                # what Augment did in this chunk; the Runner adds the chunks' reports up
                out["vaeaug"] = self.augment.report()
            if self.keep_arrays:
                out["arrays"] = gen if dask else [gen]
        return out

    def postprocess(self, accumulator):
        return accumulator


def train(path: str, *, epochs: int, seed: int, model_out: str | os.PathLike) -> vaeaug.Model:
    """Collect the dimuon candidates in a coffea run, train on them, save the model."""
    runner = processor.Runner(
        executor=processor.IterativeExecutor(status=False), schema=BaseSchema, chunksize=1000
    )
    out = runner({"HZZ": [path]}, DimuonProcessor(collect=True), treename=TREE)
    acc: CandidateAccumulator = out["train"]
    model = acc.fit(
        representation="decay",
        masses=[MUON_MASS, MUON_MASS],
        config=vaeaug.VAEConfig(hidden=(64, 64), latent_dim=4),
        train=vaeaug.TrainConfig(epochs=epochs),
        seed=seed,
        progress=False,
    )
    model.save(model_out)
    return model


def run(path: str, augment: vaeaug.Augment, *, executor: str = "iterative", chunksize: int = 500,
        workers: int = 2, scheduler: str | None = None, keep_arrays: bool = False) -> dict:  # fmt: skip
    """Run the augmenting processor over the file; returns computed outputs."""
    proc = DimuonProcessor(augment, keep_arrays=keep_arrays)
    if executor in ("iterative", "futures"):
        ex = (
            processor.IterativeExecutor(status=False)
            if executor == "iterative"
            else processor.FuturesExecutor(workers=workers, status=False)
        )
        runner = processor.Runner(executor=ex, schema=BaseSchema, chunksize=chunksize)
        out = runner({"HZZ": [path]}, proc, treename=TREE)
        if keep_arrays:
            out["arrays"] = ak.concatenate(out["arrays"]) if out["arrays"] else None
        return out
    if executor == "dask":
        import dask
        import uproot

        from vaeaug.integrations.coffea import apply_to_fileset  # coffea's, and RNTuples too

        n = uproot.open(path)[TREE].num_entries
        steps = [[s, min(s + chunksize, n)] for s in range(0, n, chunksize)]
        fileset = {"HZZ": {"files": {path: {"object_path": TREE, "steps": steps}}}}
        lazy = apply_to_fileset(proc, fileset, schemaclass=BaseSchema)
        if scheduler:
            from dask.distributed import Client

            with Client(scheduler):
                (computed,) = dask.compute(lazy)
        else:
            (computed,) = dask.compute(lazy)
        return computed["HZZ"]
    raise ValueError(f"executor {executor!r} unknown; valid: iterative, futures, dask")


def plot(out: dict, factor: int, png: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    fig, ax = plt.subplots(layout="constrained")
    mplhep.histplot(out["original"], ax=ax, histtype="errorbar", label="original", color="black")
    mplhep.histplot(out["generated"], ax=ax, label=f"generated x{factor} (weight 1/{factor})")
    ax.set_ylabel("candidates / GeV bin")
    ax.legend()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("VAEAUG_TESTDATA", "../shared/data"),
                        help=f"folder with {FILE} (default: $VAEAUG_TESTDATA)")  # fmt: skip
    parser.add_argument("--file", default=FILE,
                        help=f"the file in --data, a TTree or an RNTuple '{TREE}' (default {FILE})")  # fmt: skip
    parser.add_argument(
        "--model", help="model file to load; trained from the file and saved here when missing"
    )
    parser.add_argument("--factor", type=int, default=10, help="generated candidates per candidate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=100, help="training epochs when training")
    parser.add_argument("--executor", choices=("iterative", "futures", "dask"), default="iterative")
    parser.add_argument(
        "--chunksize", type=int, default=500, help="events per chunk (dask: per partition)"
    )
    parser.add_argument("--workers", type=int, default=2, help="futures executor processes")
    parser.add_argument("--scheduler", help="dask scheduler address (dask executor)")
    parser.add_argument("--plot", help="write a PNG of the mass histograms here")
    args = parser.parse_args(argv)

    path = str(Path(args.data) / args.file)
    if not Path(path).is_file():
        print(f"error: {path} not found; pass --data or set VAEAUG_TESTDATA", file=sys.stderr)
        return 2
    model_file = args.model or "dimuon.vaeaug.safetensors"
    start = time.perf_counter()
    if not Path(model_file).is_file():
        train(path, epochs=args.epochs, seed=args.seed, model_out=model_file)
        print(f"trained and saved {model_file} in {time.perf_counter() - start:.1f} s")
    augment = vaeaug.Augment(model_file, factor=args.factor, seed=args.seed)
    start = time.perf_counter()
    out = run(path, augment, executor=args.executor, chunksize=args.chunksize, workers=args.workers,
              scheduler=args.scheduler)  # fmt: skip
    orig, gen = out["original"], out["generated"]
    print(
        f"{args.executor}: {orig.sum().value:.0f} original candidates (in 60-120 GeV), generated sum of weights "
        f"{gen.sum().value:.1f} from {args.factor}x as many; "
        f"mean mass {np.average(orig.axes[0].centers, weights=orig.values()):.2f} / "
        f"{np.average(gen.axes[0].centers, weights=gen.values()):.2f} GeV; {time.perf_counter() - start:.1f} s"
    )
    if "vaeaug" in out:
        print(out["vaeaug"].summary())
    if args.plot:
        plot(out, args.factor, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
