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

Pythia's batch interface (``Pythia.nextBatch``) hands events over as awkward
arrays, so all selection, smearing and combinatorics below is vectorised over a
batch of events; only the loop over batches is in Python.
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
from tqdm import tqdm

__all__ = ["BRANCHES", "build_parser", "generate", "main", "pythia_settings"]

#: PDG masses used to recompute E after smearing, GeV (the particle package's PDG table).
KAON_MASS = Particle.from_pdgid(321).mass / 1e3
PION_MASS = Particle.from_pdgid(211).mass / 1e3
PT_MIN = 0.25  # GeV, generated pT
ETA_MAX = 2.5
RESOLUTION = 0.005  # relative momentum resolution
MASS_WINDOW = (1.79, 1.95)  # GeV, m(K pi pi)
PYTHIA_VERSION = "8.317.2"

#: Branch name -> dtype of both trees, in the order of the benchmark files.
BRANCHES: dict[str, np.dtype] = {
    **{
        f"{p}_{c}": np.dtype(np.float32)
        for p in ("K1", "pi1", "pi2")
        for c in ("px", "py", "pz", "E")
    },
    "charge": np.dtype(np.int32),
    "parent_pt_true": np.dtype(np.float32),
    "event": np.dtype(np.int64),
}
TITLES = {
    "signal": "D+ -> K- pi+ pi+ signal (Pythia 8, 13 TeV)",
    "background": "combinatorial K pi pi background (Pythia 8, 13 TeV)",
}


def pythia_settings(seed: int) -> list[str]:
    """The Pythia configuration strings of the recipe, for random seed ``seed``."""
    return [
        "Beams:idA = 2212",
        "Beams:idB = 2212",
        "Beams:eCM = 13000.",
        "HardQCD:hardccbar = on",
        "PhaseSpace:pTHatMin = 3",
        # Forcing a decay means switching every channel off, then the wanted one on.
        "411:onMode = off",
        "411:onIfMatch = -321 211 211",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
    ]


def _make_pythia(seed: int, verbose: bool):
    try:
        import pythia8mc
    except ImportError as err:
        raise SystemExit(
            f"this example needs pythia8mc=={PYTHIA_VERSION}: "
            f"pip install 'pythia8mc=={PYTHIA_VERSION}' (or pip install 'vaeaug[pythia]')"
        ) from err
    version = getattr(pythia8mc, "__version__", None)
    if version is not None and version != PYTHIA_VERSION:
        print(
            f"warning: pythia8mc {version} is installed; the benchmark files were made "
            f"with {PYTHIA_VERSION}, so events will differ",
            file=sys.stderr,
        )
    pythia = pythia8mc.Pythia("", verbose)
    settings = pythia_settings(seed)
    if not verbose:
        settings += ["Print:quiet = on", "Next:numberCount = 0"]
    for line in settings:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia initialisation failed; rerun with --verbose to see why")
    return pythia


class _Batch:
    """Flat (all particles of all events in a batch) view of one Pythia batch.

    Particle arrays have shape (P,), P the number of particles in the batch;
    ``event`` maps each particle to its event index inside the batch.
    """

    def __init__(self, events: ak.Array):
        prt = events.prt
        counts = ak.to_numpy(ak.num(prt.id, axis=1))
        self.n_events = len(counts)
        offsets = np.zeros(self.n_events + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        self.event = np.repeat(np.arange(self.n_events), counts)

        def flat(x):
            return ak.to_numpy(ak.flatten(x, axis=1))

        self.id = flat(prt.id)
        self.status = flat(prt.status)
        start = offsets[self.event]
        # Pythia indices are per event; make them index the flat arrays.
        self.mother1 = flat(prt.mother1) + start
        self.daughter1 = flat(prt.daughter1) + start
        self.daughter2 = flat(prt.daughter2) + start
        self.has_daughters = flat(prt.daughter1) > 0
        self.px = flat(prt.p.px)
        self.py = flat(prt.p.py)
        self.pz = flat(prt.p.pz)


def _accept_and_smear(batch: _Batch, rng: np.random.Generator):
    """Select tracks and smear them.

    Returns ``(is_track, p4, pt)``: a (P,) mask of accepted K/pi tracks, a (P, 4)
    array of measured (px, py, pz, E) in GeV (zero for other particles) and the
    (P,) measured pT.
    """
    absid = np.abs(batch.id)
    pt_gen = np.hypot(batch.px, batch.py)
    is_track = (batch.status > 0) & ((absid == 321) | (absid == 211)) & (pt_gen > PT_MIN)
    idx = np.flatnonzero(is_track)
    eta = np.arcsinh(batch.pz[idx] / pt_gen[idx])
    idx = idx[np.abs(eta) < ETA_MAX]
    is_track = np.zeros_like(is_track)
    is_track[idx] = True

    scale = 1.0 + RESOLUTION * rng.standard_normal(len(idx))
    p4 = np.zeros((len(batch.id), 4))
    p3 = np.stack([batch.px[idx], batch.py[idx], batch.pz[idx]], axis=1) * scale[:, None]
    mass = np.where(absid[idx] == 321, KAON_MASS, PION_MASS)
    p4[idx, :3] = p3
    p4[idx, 3] = np.sqrt((p3**2).sum(axis=1) + mass**2)
    pt = np.hypot(p4[:, 0], p4[:, 1])
    return is_track, p4, pt


def _mass(p4: np.ndarray, k: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Invariant mass (GeV) of the triplets (k, a, b), each an index array of shape (N,)."""
    s = p4[k] + p4[a] + p4[b]
    return np.sqrt(np.maximum(s[:, 3] ** 2 - (s[:, :3] ** 2).sum(axis=1), 0.0))


def _rows(p4, pt, k, a, b, charge, parent_pt, event) -> dict[str, np.ndarray]:
    """Branch arrays for the candidates (k, a, b); pi1 is the pion of higher measured pT."""
    swap = pt[b] > pt[a]
    pi1 = np.where(swap, b, a)
    pi2 = np.where(swap, a, b)
    out = {}
    for name, i in (("K1", k), ("pi1", pi1), ("pi2", pi2)):
        for col, comp in enumerate(("px", "py", "pz", "E")):
            out[f"{name}_{comp}"] = p4[i, col]
    out["charge"] = charge
    out["parent_pt_true"] = parent_pt
    out["event"] = event
    return {name: np.asarray(out[name], dtype=dtype) for name, dtype in BRANCHES.items()}


def _in_window(m: np.ndarray) -> np.ndarray:
    return (m > MASS_WINDOW[0]) & (m < MASS_WINDOW[1])


def _signal(batch: _Batch, is_track, p4, pt, first_event: int) -> dict[str, np.ndarray]:
    """True D+- -> K pi pi decays with all three daughters accepted, in the mass window."""
    d = np.flatnonzero((np.abs(batch.id) == 411) & batch.has_daughters)
    # The forced decay gives exactly three consecutive daughters.
    d = d[batch.daughter2[d] - batch.daughter1[d] == 2]
    first = batch.daughter1[d]
    kids = first[:, None] + np.arange(3)  # (N, 3)
    ok = is_track[kids].all(axis=1)
    d, kids = d[ok], kids[ok]
    is_kaon = np.abs(batch.id[kids]) == 321
    if not np.all(is_kaon.sum(axis=1) == 1):
        raise RuntimeError("a D+- decayed to something other than K pi pi; check 411:onMode")
    order = np.argsort(~is_kaon, axis=1, kind="stable")  # kaon first
    kids = np.take_along_axis(kids, order, axis=1)
    k, a, b = kids.T
    keep = _in_window(_mass(p4, k, a, b))
    d, k, a, b = d[keep], k[keep], a[keep], b[keep]
    return _rows(
        p4,
        pt,
        k,
        a,
        b,
        charge=np.sign(batch.id[d]),
        parent_pt=np.hypot(batch.px[d], batch.py[d]),
        event=first_event + batch.event[d],
    )


def _background_triplets(batch: _Batch, is_track) -> tuple[np.ndarray, ...]:
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
    batch: _Batch,
    is_track,
    p4,
    pt,
    first_event: int,
    rng: np.random.Generator,
    max_per_event: int | None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Combinatorial candidates in the mass window, at most ``max_per_event`` per event.

    Returns the branch arrays and one uniform random key per row, used to draw a
    uniform subset across the whole run.
    """
    k, a, b = _background_triplets(batch, is_track)
    keep = _in_window(_mass(p4, k, a, b))
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
    rows = _rows(
        p4,
        pt,
        k,
        a,
        b,
        charge=-np.sign(batch.id[k]),
        parent_pt=np.full(len(k), -1.0),
        event=first_event + event,
    )
    return rows, key


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not parts:
        return {name: np.empty(0, dtype=dtype) for name, dtype in BRANCHES.items()}
    return {name: np.concatenate([p[name] for p in parts]) for name in BRANCHES}


class _TreeWriter:
    """Buffers rows and extends an uproot tree in chunks of ``chunk_size`` entries."""

    def __init__(self, tree, chunk_size: int):
        self.tree = tree
        self.chunk_size = chunk_size
        self.parts: list[dict[str, np.ndarray]] = []
        self.pending = 0
        self.written = 0

    def add(self, rows: dict[str, np.ndarray]) -> None:
        n = len(rows["event"])
        if n:
            self.parts.append(rows)
            self.pending += n
        if self.pending >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.tree.extend(_concat(self.parts))
            self.written += self.pending
            self.parts, self.pending = [], 0


class _BottomK:
    """Uniform random subset of at most ``k`` rows of a stream: keeps the smallest keys."""

    def __init__(self, k: int):
        self.k = k
        self.rows = _concat([])
        self.keys = np.empty(0)

    def add(self, rows: dict[str, np.ndarray], keys: np.ndarray) -> None:
        rows = _concat([self.rows, rows])
        keys = np.concatenate([self.keys, keys])
        if len(keys) > self.k:
            keep = np.argpartition(keys, self.k - 1)[: self.k]
            rows = {name: v[keep] for name, v in rows.items()}
            keys = keys[keep]
        self.rows, self.keys = rows, keys

    def result(self) -> dict[str, np.ndarray]:
        order = np.lexsort((self.keys, self.rows["event"]))
        return {name: v[order] for name, v in self.rows.items()}


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
    output = Path(output)
    pythia = _make_pythia(seed, verbose)
    # Independent streams, so the smearing does not depend on the background draw.
    smear_seq, bkg_seq = np.random.SeedSequence(seed).spawn(2)
    smear_rng, bkg_rng = np.random.default_rng(smear_seq), np.random.default_rng(bkg_seq)

    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        with uproot.recreate(tmp) as f:
            trees = {
                name: _TreeWriter(f.mktree(name, BRANCHES, title=TITLES[name]), chunk_size)
                for name in ("signal", "background")
            }
            sample = _BottomK(max_bkg) if max_bkg is not None else None
            done = 0
            with tqdm(total=n_events, unit="ev", disable=not progress) as bar:
                while done < n_events:
                    n = min(batch_size, n_events - done)
                    batch = _Batch(pythia.nextBatch(n))
                    is_track, p4, pt = _accept_and_smear(batch, smear_rng)
                    trees["signal"].add(_signal(batch, is_track, p4, pt, done))
                    rows, keys = _background(
                        batch, is_track, p4, pt, done, bkg_rng, max_bkg_per_event
                    )
                    if sample is None:
                        trees["background"].add(rows)
                    else:
                        sample.add(rows, keys)
                    done += batch.n_events
                    bar.update(batch.n_events)
            if sample is not None:
                rows = sample.result()
                for start in range(0, len(rows["event"]), chunk_size):
                    trees["background"].add(
                        {k: v[start : start + chunk_size] for k, v in rows.items()}
                    )
            for tree in trees.values():
                tree.flush()
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {name: tree.written for name, tree in trees.items()}


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        description="Generate D+ -> K- pi+ pi+ signal and combinatorial background "
        "with Pythia 8 and write them to a ROOT file (trees 'signal', 'background').",
    )
    parser.add_argument("-o", "--output", required=True, help="ROOT file to write")
    parser.add_argument("--events", type=int, default=1000, help="events to generate")
    parser.add_argument("--seed", type=int, default=11, help="Pythia and smearing seed")
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
    parser.add_argument(
        "--batch-size", type=int, default=100, help="events per Pythia batch (default 100)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--verbose", action="store_true", help="show Pythia's own output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example; ``argv`` defaults to ``sys.argv[1:]``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("events", "batch_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in ("max_bkg_per_event", "max_bkg"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    output = Path(args.output)
    if output.exists() and not args.force:
        parser.error(f"{output} exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        parser.error(f"directory {output.parent} does not exist")

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
