"""Generate D+ -> K- pi+ pi+ candidates with Pythia 8 and write them to ROOT.

This is the recipe of the project's benchmark files (``dplus_kpipi_train.root``
with ``--seed 11``, ``dplus_kpipi_reference.root`` with ``--seed 12``):

- pythia8mc 8.317.2, pp at 13 TeV, ``HardQCD:hardccbar = on``,
  ``PhaseSpace:pTHatMin = 3``, D+ decays forced to K- pi+ pi+ (charge
  conjugates included).
- Final-state K+- and pi+- are accepted with generated pT > 0.25 GeV and
  |eta| < 2.5. Their momenta are then scaled by (1 + 0.005 g), g a standard
  normal, and E is recomputed from the PDG mass (a tracker's resolution).
- Tree ``signal``: the three daughters of a true D+ or D-, all accepted, with
  m(K pi pi) in 1.79-1.95 GeV.
- Tree ``background``: same-event combinations of one kaon and two pions with
  the charges of a D+ (K- pi+ pi+) or D- (K+ pi- pi-), not all three from one
  D, in the same mass window; ``parent_pt_true`` = -1. ``--max-bkg-per-event``
  and ``--max-bkg`` draw a uniform random subset.

Branches (units GeV): ``K1_px, K1_py, K1_pz, K1_E``, ``pi1_*``, ``pi2_*`` as
float32, where pi1 is the pion of higher measured (smeared) pT; ``charge``
int32 (+1 for D+); ``parent_pt_true`` float32; ``event`` int64 (index of the
generated event, from 0).

Usage::

    pip install "vaeaug[pythia]"      # pythia8mc==8.317.2
    python examples/dmeson_pythia.py --events 2000 --seed 11 -o out.root

The machinery (batches of events, the tracker, the signal finder, the writers)
is shared with ``decays_pythia.py`` and lives in ``_pythia.py``; this file adds
the D+ recipe (:data:`DPLUS`, also the ``dplus_kpipi`` entry of the decay table)
and its combinatorial background.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
from particle import Particle

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pythia import (  # the examples folder is not a package: found via sys.path
    BEAMS,
    Acceptance,
    Batch,
    BottomK,
    Decay,
    Source,
    TreeWriter,
    add_run_arguments,
    add_tail_arguments,
    atomic_output,
    batches,
    check_run_arguments,
    invariant_mass,
    pt_order,
    signal_rows,
)

__all__ = ["BRANCHES", "DPLUS", "build_parser", "generate", "main", "pythia_settings"]

#: PDG masses used to recompute E after smearing, GeV (the particle package's PDG table).
KAON_MASS = Particle.from_pdgid(321).mass / 1e3
PION_MASS = Particle.from_pdgid(211).mass / 1e3
PT_MIN = 0.25  # GeV, generated pT
ETA_MAX = 2.5
RESOLUTION = 0.005  # relative momentum resolution
MASS_WINDOW = (1.79, 1.95)  # GeV, m(K pi pi)

#: The Pythia settings of the recipe, less the random seed.
SETTINGS = (
    *BEAMS,
    "HardQCD:hardccbar = on",
    "PhaseSpace:pTHatMin = 3",
    # Forcing a decay means switching every channel off, then the wanted one on.
    "411:onMode = off",
    "411:onIfMatch = -321 211 211",
)

#: The D+ -> K- pi+ pi+ recipe as an entry of the decay table.
DPLUS = Decay(
    name="dplus_kpipi",
    title="D+ -> K- pi+ pi+",
    parent=411,
    daughters=(("K1", -321), ("pi1", 211), ("pi2", 211)),
    masses={"K1": KAON_MASS, "pi1": PION_MASS, "pi2": PION_MASS},
    acceptance=Acceptance(PT_MIN, ETA_MAX, RESOLUTION, {321: KAON_MASS, 211: PION_MASS}),
    mass_window=MASS_WINDOW,
    sources=(Source("ccbar", SETTINGS),),
    notes="the recipe of the shared dplus_kpipi_{train,reference}.root (seeds 11, 12)",
)

#: Branch name -> dtype of both trees, in the order of the benchmark files.
BRANCHES: dict[str, np.dtype] = DPLUS.branches
TITLES = {
    "signal": "D+ -> K- pi+ pi+ signal (Pythia 8, 13 TeV)",
    "background": "combinatorial K pi pi background (Pythia 8, 13 TeV)",
}


def pythia_settings(seed: int) -> list[str]:
    """The Pythia configuration strings of the recipe, for random seed ``seed``."""
    return [*SETTINGS, "Random:setSeed = on", f"Random:seed = {seed}"]


def _background_triplets(batch: Batch, is_track) -> tuple[np.ndarray, ...]:
    """All same-event (K, pi, pi) with D-like charges, as flat index arrays (N,) each."""
    idx = np.flatnonzero(is_track)
    counts = np.bincount(batch.event[idx], minlength=batch.n_events)
    tracks = ak.unflatten(idx, counts)
    tid = ak.unflatten(batch.id[idx], counts)
    ks, as_, bs = [], [], []
    # D+ -> K- pi+ pi+ and its conjugate.
    for kaon_id, pion_id in ((-321, 211), (321, -211)):
        pairs = ak.combinations(tracks[tid == pion_id], 2)
        trip = ak.cartesian([tracks[tid == kaon_id], pairs], axis=1)
        k, pair = ak.unzip(trip)
        a, b = ak.unzip(pair)
        ks.append(ak.to_numpy(ak.flatten(k)))
        as_.append(ak.to_numpy(ak.flatten(a)))
        bs.append(ak.to_numpy(ak.flatten(b)))
    return tuple(np.concatenate(x).astype(np.int64) for x in (ks, as_, bs))


def _background(
    tracks,
    rng: np.random.Generator,
    max_per_event: int | None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Combinatorial candidates in the mass window, at most ``max_per_event`` per event.

    Returns the branch arrays and one uniform random key per row, used to draw a
    uniform subset across the whole run.
    """
    batch = tracks.batch
    k, a, b = _background_triplets(batch, tracks.is_track)
    m = invariant_mass(tracks.p4, np.stack([k, a, b], axis=1))
    keep = (m > MASS_WINDOW[0]) & (m < MASS_WINDOW[1])
    k, a, b = k[keep], a[keep], b[keep]
    mother = batch.mother1
    from_d = np.abs(batch.id[mother[k]]) == 411
    same_d = from_d & (mother[k] == mother[a]) & (mother[k] == mother[b])
    k, a, b = k[~same_d], a[~same_d], b[~same_d]
    event = batch.event[k]
    key = rng.random(len(k))
    if max_per_event is not None:
        order = np.lexsort((key, event))
        k, a, b, event, key = k[order], a[order], b[order], event[order], key[order]
        starts = np.flatnonzero(np.r_[True, event[1:] != event[:-1]])
        rank = np.arange(len(event)) - np.repeat(starts, np.diff(np.r_[starts, len(event)]))
        sel = rank < max_per_event
        k, a, b, event = k[sel], a[sel], b[sel], event[sel]
        # The kept rows have the smallest keys of their event; fresh keys keep the
        # run-wide draw from favouring busy events.
        key = rng.random(len(k))
    slots = pt_order(np.stack([k, a, b], axis=1), DPLUS.groups, tracks.pt)
    rows = {}
    for j, name in enumerate(DPLUS.names):
        for col, comp in enumerate(("px", "py", "pz", "E")):
            rows[f"{name}_{comp}"] = tracks.p4[slots[:, j], col]
    rows["charge"] = -np.sign(batch.id[k])
    rows["parent_pt_true"] = np.full(len(k), -1.0)
    rows["event"] = tracks.first_event + event
    return {name: np.asarray(rows[name], dtype=dtype) for name, dtype in BRANCHES.items()}, key


def generate(
    output: str | os.PathLike,
    n_events: int,
    seed: int,
    *,
    max_bkg_per_event: int | None = 4,
    max_bkg: int | None = None,
    batch_size: int = 100,
    chunk_size: int = 100_000,
    progress: bool = True,
    verbose: bool = False,
) -> dict[str, int]:
    """Generate ``n_events`` Pythia events and write the ``signal`` and ``background`` trees.

    The file is written to a temporary name beside ``output`` and moved into
    place only when complete, so ``output`` is never left half-written. Returns
    the number of entries per tree.
    """
    # Independent streams, so the smearing does not depend on the background draw.
    smear_seq, bkg_seq = np.random.SeedSequence(seed).spawn(2)
    smear_rng, bkg_rng = np.random.default_rng(smear_seq), np.random.default_rng(bkg_seq)
    events = batches(
        DPLUS, n_events, seed, smear_rng, batch_size=batch_size, progress=progress, verbose=verbose
    )
    with atomic_output(Path(output)) as tmp, uproot.recreate(tmp) as f:
        trees = {
            name: TreeWriter(f.mktree(name, BRANCHES, title=TITLES[name]), BRANCHES, chunk_size)
            for name in ("signal", "background")
        }
        sample = BottomK(max_bkg, BRANCHES) if max_bkg is not None else None
        for tracks in events:
            trees["signal"].add(signal_rows(DPLUS, tracks))
            rows, keys = _background(tracks, bkg_rng, max_bkg_per_event)
            if sample is None:
                trees["background"].add(rows)
            else:
                sample.add(rows, keys)
        if sample is not None:
            rows = sample.result()
            for start in range(0, len(rows["event"]), chunk_size):
                trees["background"].add({k: v[start : start + chunk_size] for k, v in rows.items()})
        for tree in trees.values():
            tree.flush()
    return {name: tree.written for name, tree in trees.items()}


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        description="Generate D+ -> K- pi+ pi+ signal and combinatorial background "
        "with Pythia 8 and write them to a ROOT file (trees 'signal', 'background').",
    )
    add_run_arguments(parser, default_seed=11)
    parser.add_argument(
        "--max-bkg-per-event",
        type=int,
        default=4,
        help="at most this many background candidates per event, drawn at random "
        "(default 4; 0 means no limit)",
    )
    parser.add_argument(
        "--max-bkg",
        type=int,
        default=0,
        help="at most this many background candidates in total, a uniform random "
        "subset of the run (default 0: no limit)",
    )
    add_tail_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example; ``argv`` defaults to ``sys.argv[1:]``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    output = check_run_arguments(parser, args)
    for name in ("max_bkg_per_event", "max_bkg"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")

    start = time.perf_counter()
    counts = generate(
        output,
        args.events,
        args.seed,
        max_bkg_per_event=args.max_bkg_per_event or None,
        max_bkg=args.max_bkg or None,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    print(
        f"wrote {output}: {counts['signal']} signal, {counts['background']} background "
        f"candidates from {args.events} events in {seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
