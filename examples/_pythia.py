"""Shared machinery of the Pythia 8 examples (``dmeson_pythia.py``, ``decays_pythia.py``).

A :class:`Decay` says what to generate (one or more Pythia configurations, the
:class:`Source` list), how a tracker sees it (the :class:`Acceptance`) and which
candidates to keep (the daughters, their order and a mass window). This module
runs Pythia in batches (:func:`batches`), selects and smears the tracks
(:func:`accept_and_smear`), finds the signal candidates (:func:`signal_rows`)
and writes trees atomically (:func:`atomic_output`, :class:`TreeWriter`).

Pythia's batch interface (``Pythia.nextBatch``) hands events over as awkward
arrays, so selection, smearing and combinatorics are vectorised over a batch of
events; only the loop over batches is in Python.

This file is not a package module: the examples put their own folder on
``sys.path`` to import it, as ``bench/`` does with its ``_common.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np
from tqdm import tqdm

__all__ = [
    "BEAMS",
    "MAX_PYTHIA_SEED",
    "PYTHIA_VERSION",
    "Acceptance",
    "Batch",
    "BottomK",
    "Decay",
    "Source",
    "Tracks",
    "TreeWriter",
    "accept_and_smear",
    "add_run_arguments",
    "add_tail_arguments",
    "atomic_output",
    "batches",
    "check_run_arguments",
    "concat",
    "invariant_mass",
    "make_pythia",
    "pt_order",
    "signal_rows",
    "source_seed",
]

PYTHIA_VERSION = "8.317.2"
#: Pythia accepts ``Random:seed`` in [0, 900_000_000].
MAX_PYTHIA_SEED = 900_000_000
#: Pythia's common settings of every example: pp at 13 TeV.
BEAMS = ("Beams:idA = 2212", "Beams:idB = 2212", "Beams:eCM = 13000.")


@dataclass(frozen=True)
class Acceptance:
    """A tracker: which final-state particles are seen, and how well.

    A particle of a listed species is accepted when its generated pT exceeds
    ``pt_min`` (GeV) and its generated |eta| is below ``eta_max``. Its momentum is
    then scaled by (1 + ``resolution`` g), g a standard normal, and E recomputed
    from ``masses`` (|PDG id| -> mass in GeV), so the measured mass is exact.
    """

    pt_min: float
    eta_max: float
    resolution: float
    masses: dict[int, float]

    def as_dict(self) -> dict:
        return {
            "pt_min_GeV": self.pt_min,
            "abs_eta_max": self.eta_max,
            "resolution": self.resolution,
            "species": sorted(self.masses),
        }


@dataclass(frozen=True)
class Source:
    """One Pythia configuration and the share of a run's events it generates."""

    name: str
    settings: tuple[str, ...]
    fraction: float = 1.0


@dataclass(frozen=True)
class Decay:
    """One entry of the decay table.

    ``daughters`` are ``(name, PDG id)`` pairs of the particle's decay (the
    antiparticle's are charge conjugated). Daughters of one species must be
    listed next to each other: they are ordered by decreasing measured pT.
    With ``parent`` a PDG id, a candidate is a true decay of that particle whose
    final-state descendants are exactly the daughters, all accepted; with
    ``parent=None`` (pairs of a continuum), it is the two leading accepted
    particles of an event, of opposite charge. Either way its invariant mass
    lies in ``mass_window`` (GeV).
    """

    name: str
    title: str
    parent: int | None
    daughters: tuple[tuple[str, int], ...]
    masses: dict[str, float]
    acceptance: Acceptance
    mass_window: tuple[float, float]
    sources: tuple[Source, ...]
    notes: str = ""
    groups: tuple[tuple[int, ...], ...] = field(init=False, repr=False)

    def __post_init__(self):
        ids = [pid for _, pid in self.daughters]
        groups: list[list[int]] = []
        for j, pid in enumerate(ids):
            if groups and ids[groups[-1][0]] == pid:
                groups[-1].append(j)
            elif pid in ids[:j]:
                raise ValueError(
                    f"decay {self.name!r}: daughters with PDG id {pid} must be listed "
                    f"next to each other, got {ids}"
                )
            else:
                groups.append([j])
        object.__setattr__(self, "groups", tuple(tuple(g) for g in groups))
        missing = {abs(pid) for pid in ids} - set(self.acceptance.masses)
        if missing:
            raise ValueError(f"decay {self.name!r}: no mass for the species {sorted(missing)}")
        if self.parent is None and len(ids) != 2:
            raise ValueError(f"decay {self.name!r}: a pair selection needs 2 daughters")
        total = sum(s.fraction for s in self.sources)
        if not np.isclose(total, 1.0):
            raise ValueError(f"decay {self.name!r}: source fractions sum to {total}, not 1")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.daughters)

    @property
    def branches(self) -> dict[str, np.dtype]:
        """Branch name -> dtype of the ``signal`` tree."""
        out: dict[str, np.dtype] = {
            f"{name}_{c}": np.dtype(np.float32)
            for name in self.names
            for c in ("px", "py", "pz", "E")
        }
        out["charge"] = np.dtype(np.int32)
        out["parent_pt_true"] = np.dtype(np.float32)
        out["event"] = np.dtype(np.int64)
        if len(self.sources) > 1:
            out["source"] = np.dtype(np.int32)
        return out

    def as_dict(self) -> dict:
        """A JSON-ready description (what a benchmark needs to read the file)."""
        return {
            "title": self.title,
            "parent": self.parent,
            "daughters": [{"name": n, "pdg_id": pid} for n, pid in self.daughters],
            "masses_GeV": dict(self.masses),
            "acceptance": self.acceptance.as_dict(),
            "mass_window_GeV": list(self.mass_window),
            "sources": [
                {"name": s.name, "fraction_of_events": s.fraction, "settings": list(s.settings)}
                for s in self.sources
            ],
            "branches": {k: v.name for k, v in self.branches.items()},
            "notes": self.notes,
        }


def source_seed(seed: int, index: int) -> int:
    """Pythia's ``Random:seed`` for source ``index`` of a run with seed ``seed``.

    Source 0 uses ``seed`` itself (so a one-source run is seeded as the user
    says); the others get independent seeds drawn from ``SeedSequence([seed, index])``.
    """
    if index == 0:
        return seed
    state = np.random.SeedSequence([seed, index]).generate_state(1)[0]
    return int(state % MAX_PYTHIA_SEED) + 1


def make_pythia(settings: Sequence[str], verbose: bool):
    """An initialised ``pythia8mc.Pythia`` with ``settings``; explains a missing install."""
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
    settings = list(settings)
    if not verbose:
        settings += ["Print:quiet = on", "Next:numberCount = 0"]
    for line in settings:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia initialisation failed; rerun with --verbose to see why")
    return pythia


class Batch:
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


def accept_and_smear(batch: Batch, acceptance: Acceptance, rng: np.random.Generator):
    """Select tracks and smear them.

    Returns ``(is_track, p4, pt)``: a (P,) mask of accepted tracks, a (P, 4) array
    of measured (px, py, pz, E) in GeV (zero for other particles) and the (P,)
    measured pT. One normal number is drawn per accepted track, in batch order.
    """
    absid = np.abs(batch.id)
    pt_gen = np.hypot(batch.px, batch.py)
    species = np.isin(absid, list(acceptance.masses))
    is_track = (batch.status > 0) & species & (pt_gen > acceptance.pt_min)
    idx = np.flatnonzero(is_track)
    eta = np.arcsinh(batch.pz[idx] / pt_gen[idx])
    idx = idx[np.abs(eta) < acceptance.eta_max]
    is_track = np.zeros_like(is_track)
    is_track[idx] = True

    scale = 1.0 + acceptance.resolution * rng.standard_normal(len(idx))
    p4 = np.zeros((len(batch.id), 4))
    p3 = np.stack([batch.px[idx], batch.py[idx], batch.pz[idx]], axis=1) * scale[:, None]
    table = np.zeros(max(acceptance.masses) + 1)
    for pid, mass in acceptance.masses.items():
        table[pid] = mass
    p4[idx, :3] = p3
    p4[idx, 3] = np.sqrt((p3**2).sum(axis=1) + table[absid[idx]] ** 2)
    pt = np.hypot(p4[:, 0], p4[:, 1])
    return is_track, p4, pt


def invariant_mass(p4: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Invariant mass (GeV) of each row of ``slots``, an (N, k) index array into ``p4``.

    The 4-momenta are added in column order.
    """
    s = p4[slots[:, 0]]
    for j in range(1, slots.shape[1]):
        s = s + p4[slots[:, j]]
    return np.sqrt(np.maximum(s[:, 3] ** 2 - (s[:, :3] ** 2).sum(axis=1), 0.0))


def pt_order(slots: np.ndarray, groups: Sequence[Sequence[int]], pt: np.ndarray) -> np.ndarray:
    """Copy of ``slots`` (N, k) with each group of columns in decreasing measured pT.

    Ties keep their order, so the result depends only on the measured momenta.
    """
    slots = slots.copy()
    for cols in groups:
        if len(cols) < 2:
            continue
        cols = list(cols)
        block = slots[:, cols]
        order = np.argsort(-pt[block], axis=1, kind="stable")
        slots[:, cols] = np.take_along_axis(block, order, axis=1)
    return slots


@dataclass
class Tracks:
    """One batch of events seen by the tracker; ``first_event`` numbers its events in the run."""

    batch: Batch
    is_track: np.ndarray
    p4: np.ndarray
    pt: np.ndarray
    first_event: int
    source: int


def _events_per_source(decay: Decay, n_events: int) -> list[int]:
    """Split ``n_events`` by the source fractions (largest remainder)."""
    share = np.array([s.fraction for s in decay.sources]) * n_events
    counts = np.floor(share).astype(int)
    for j in np.argsort(-(share - counts), kind="stable")[: n_events - counts.sum()]:
        counts[j] += 1
    return counts.tolist()


def batches(
    decay: Decay,
    n_events: int,
    seed: int,
    smear_rng: np.random.Generator,
    *,
    batch_size: int = 100,
    progress: bool = True,
    verbose: bool = False,
) -> Iterator[Tracks]:
    """Generate ``n_events`` events of ``decay`` and yield them batch by batch, smeared.

    With several sources, each round generates ``batch_size`` events split by
    the source fractions, so that any stretch of the output holds the same mix.
    """
    pythias = [
        make_pythia(
            [*s.settings, "Random:setSeed = on", f"Random:seed = {source_seed(seed, j)}"], verbose
        )
        for j, s in enumerate(decay.sources)
    ]
    left = _events_per_source(decay, n_events)
    per_round = [max(1, round(batch_size * s.fraction)) for s in decay.sources]
    done = 0
    with tqdm(total=n_events, unit="ev", disable=not progress) as bar:
        while done < n_events:
            for j, pythia in enumerate(pythias):
                n = min(per_round[j], left[j])
                if n == 0:
                    continue
                batch = Batch(pythia.nextBatch(n))
                is_track, p4, pt = accept_and_smear(batch, decay.acceptance, smear_rng)
                yield Tracks(batch, is_track, p4, pt, done, j)
                left[j] -= batch.n_events
                done += batch.n_events
                bar.update(batch.n_events)


def _rows(decay: Decay, tracks: Tracks, slots, charge, parent_pt, event) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(decay.names):
        for col, comp in enumerate(("px", "py", "pz", "E")):
            out[f"{name}_{comp}"] = tracks.p4[slots[:, j], col]
    out["charge"] = charge
    out["parent_pt_true"] = parent_pt
    out["event"] = event
    out["source"] = np.full(len(event), tracks.source)
    return {name: np.asarray(out[name], dtype=dtype) for name, dtype in decay.branches.items()}


def _in_window(decay: Decay, m: np.ndarray) -> np.ndarray:
    lo, hi = decay.mass_window
    return (m > lo) & (m < hi)


def _nearest_parent(batch: Batch, final: np.ndarray, parent: int) -> np.ndarray:
    """For each final-state particle ``final`` (flat indices), the flat index of its
    nearest ancestor with |PDG id| == ``parent`` through decays only, or -1.

    A decay product (status 91-99) points at the decayed particle through
    ``mother1``; the walk up stops at the first particle that is not one.
    """
    owner = np.full(len(final), -1)
    cur = final.copy()

    def from_decay(i):
        status = np.abs(batch.status[i])
        return (status >= 91) & (status <= 99)

    todo = from_decay(cur)
    while todo.any():
        anc = batch.mother1[cur]
        hit = todo & (np.abs(batch.id[anc]) == parent)
        owner[hit] = anc[hit]
        todo &= ~hit
        cur = np.where(todo, anc, cur)
        todo &= from_decay(cur)
    return owner


def _decay_candidates(decay: Decay, tracks: Tracks) -> dict[str, np.ndarray]:
    """True decays of ``decay.parent`` into exactly the daughters, all accepted, in the window."""
    batch = tracks.batch
    final = np.flatnonzero(batch.status > 0)
    owner = _nearest_parent(batch, final, decay.parent)
    final, owner = final[owner >= 0], owner[owner >= 0]
    k = len(decay.daughters)
    # group the descendants of each parent, in record order
    order = np.lexsort((final, owner))
    final, owner = final[order], owner[order]
    parents, start, count = np.unique(owner, return_index=True, return_counts=True)
    ok = count == k
    parents, start = parents[ok], start[ok]
    kids = final[start[:, None] + np.arange(k)]  # (N, k) record order
    # expected species, charge conjugated for an antiparticle parent
    ids = np.array([pid for _, pid in decay.daughters])
    sign = np.sign(batch.id[parents])[:, None]
    got = np.sort(batch.id[kids], axis=1)
    want = np.sort(sign * ids[None, :], axis=1)
    ok = (got == want).all(axis=1) & tracks.is_track[kids].all(axis=1)
    parents, kids, sign = parents[ok], kids[ok], sign[ok]
    # daughters into table order (stable: record order within a species)
    group_ids = np.array([ids[cols[0]] for cols in decay.groups])
    key = np.argmax((batch.id[kids] * sign)[:, :, None] == group_ids, axis=2)
    slots = np.take_along_axis(kids, np.argsort(key, axis=1, kind="stable"), axis=1)
    keep = _in_window(decay, invariant_mass(tracks.p4, slots))
    parents, slots = parents[keep], slots[keep]
    slots = pt_order(slots, decay.groups, tracks.pt)
    return _rows(
        decay,
        tracks,
        slots,
        charge=np.sign(batch.id[parents]),
        parent_pt=np.hypot(batch.px[parents], batch.py[parents]),
        event=tracks.first_event + batch.event[parents],
    )


def _pair_candidates(decay: Decay, tracks: Tracks) -> dict[str, np.ndarray]:
    """The two accepted particles of highest measured pT in each event, if of opposite charge."""
    batch = tracks.batch
    pid = abs(decay.daughters[0][1])
    idx = np.flatnonzero(tracks.is_track & (np.abs(batch.id) == pid))
    idx = idx[np.lexsort((-tracks.pt[idx], batch.event[idx]))]  # by event, then decreasing pT
    event = batch.event[idx]
    # idx[j] leads its event and idx[j + 1] is the runner-up of the same event
    j = np.flatnonzero(event[1:] == event[:-1])
    j = j[(j == 0) | (event[j] != event[j - 1])]
    slots = np.stack([idx[j], idx[j + 1]], axis=1)
    slots = slots[batch.id[slots[:, 0]] * batch.id[slots[:, 1]] < 0]
    slots = slots[_in_window(decay, invariant_mass(tracks.p4, slots))]
    px = batch.px[slots].sum(axis=1)
    py = batch.py[slots].sum(axis=1)
    return _rows(
        decay,
        tracks,
        slots,
        # the charge of the leading particle (a negative lepton has a positive id)
        charge=-np.sign(batch.id[slots[:, 0]]),
        parent_pt=np.hypot(px, py),
        event=tracks.first_event + batch.event[slots[:, 0]],
    )


def signal_rows(decay: Decay, tracks: Tracks) -> dict[str, np.ndarray]:
    """Branch arrays of the signal candidates of one batch, in event order."""
    if decay.parent is None:
        return _pair_candidates(decay, tracks)
    return _decay_candidates(decay, tracks)


def concat(
    parts: list[dict[str, np.ndarray]], branches: dict[str, np.dtype]
) -> dict[str, np.ndarray]:
    """Row-wise concatenation of branch arrays; empty arrays of ``branches`` for no parts."""
    if not parts:
        return {name: np.empty(0, dtype=dtype) for name, dtype in branches.items()}
    return {name: np.concatenate([p[name] for p in parts]) for name in branches}


class TreeWriter:
    """Buffers rows and extends an uproot tree in chunks of ``chunk_size`` entries."""

    def __init__(self, tree, branches: dict[str, np.dtype], chunk_size: int):
        self.tree = tree
        self.branches = branches
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
            self.tree.extend(concat(self.parts, self.branches))
            self.written += self.pending
            self.parts, self.pending = [], 0


class BottomK:
    """Uniform random subset of at most ``k`` rows of a stream: keeps the smallest keys."""

    def __init__(self, k: int, branches: dict[str, np.dtype]):
        self.k = k
        self.branches = branches
        self.rows = concat([], branches)
        self.keys = np.empty(0)

    def add(self, rows: dict[str, np.ndarray], keys: np.ndarray) -> None:
        rows = concat([self.rows, rows], self.branches)
        keys = np.concatenate([self.keys, keys])
        if len(keys) > self.k:
            keep = np.argpartition(keys, self.k - 1)[: self.k]
            rows = {name: v[keep] for name, v in rows.items()}
            keys = keys[keep]
        self.rows, self.keys = rows, keys

    def result(self) -> dict[str, np.ndarray]:
        order = np.lexsort((self.keys, self.rows["event"]))
        return {name: v[order] for name, v in self.rows.items()}


@contextlib.contextmanager
def atomic_output(output: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``output``; move it into place only on success.

    So ``output`` is never left half-written, and the temporary file never left behind.
    """
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()


def add_run_arguments(
    parser: argparse.ArgumentParser, *, default_seed: int, output_required: bool = True
) -> None:
    """The leading options every generator shares: output, events, seed."""
    parser.add_argument("-o", "--output", required=output_required, help="ROOT file to write")
    parser.add_argument("--events", type=int, default=1000, help="events to generate")
    parser.add_argument("--seed", type=int, default=default_seed, help="Pythia and smearing seed")


def add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    """The trailing shared options (after a script's own ones, to keep ``--help`` order)."""
    parser.add_argument(
        "--batch-size", type=int, default=100, help="events per Pythia batch (default 100)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--verbose", action="store_true", help="show Pythia's own output")


def check_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """Validate the shared options (exits with a usage error); returns the output path."""
    for name in ("events", "batch_size"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not 0 <= args.seed <= MAX_PYTHIA_SEED:
        parser.error(f"--seed must be in [0, {MAX_PYTHIA_SEED}] (Pythia's range), got {args.seed}")
    output = Path(args.output)
    if output.exists() and not args.force:
        parser.error(f"{output} exists; pass --force to overwrite it")
    if not output.parent.is_dir():
        parser.error(f"directory {output.parent} does not exist")
    return output
