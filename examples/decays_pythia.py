"""Generate signal candidates of a table of decays with Pythia 8 and write them to ROOT.

``DECAYS[name]`` is one entry of the table (a :class:`_pythia.Decay`): the
Pythia settings, the daughters and their PDG masses (from the ``particle``
package), the tracker acceptance and smearing, and the mass window. Every
entry writes one tree, ``signal``, in the style of ``dmeson_pythia.py``:

- ``<name>_px, _py, _pz, _E`` (float32, GeV) for each daughter, in table order;
  daughters of one species are ordered by decreasing measured pT;
- ``charge`` (int32): the sign of the parent's PDG id (+1 for the particle
  listed, -1 for its antiparticle, whose daughters are the charge conjugates);
  for ``dimuon``, the charge of mu1 (mu2 has the opposite one);
- ``parent_pt_true`` (float32, GeV): the generated parent pT (for ``dimuon``,
  the generated pT of the muon pair);
- ``event`` (int64): the index of the generated event, from 0;
- ``source`` (int32, ``dimuon`` only): which Pythia configuration made the
  event (0 Drell-Yan, 1 charmonium, 2 bottomonium).

The tree's title names the channel and the daughters' masses in GeV.

Tracks are selected on their generated pT and |eta| and their momenta scaled
by (1 + r g), g a standard normal, with E recomputed from the PDG mass, so every
daughter's mass is exact. The table (``--list`` prints it as JSON; charge
conjugates included everywhere):

- ``dplus_kpipi``: D+ -> K- pi+ pi+ (K1 pi1 pi2); pT > 0.25 GeV, |eta| < 2.5,
  0.5%; 1.79-1.95 GeV.
- ``lambdac``: Lambda_c+ -> p K- pi+ (p K pi); as D+; 2.21-2.37 GeV.
- ``d0_k3pi``: D0 -> K- pi+ pi+ pi- (K pi1 pi2 pi3); as D+; 1.785-1.945 GeV.
- ``dplus_5body``: D+ -> K- pi+ pi+ pi+ pi- (K pi1 pi2 pi3 pi4); as D+;
  1.79-1.95 GeV.
- ``dimuon``: mu+ mu- pairs (mu1 mu2); pT > 3 GeV, |eta| < 2.4, 1%; 2-150 GeV.

``dplus_kpipi`` is the recipe of ``dmeson_pythia.py`` (its ``signal`` tree,
bit for bit, for the same seed); the others:

- ``lambdac``: pp at 13 TeV, ``HardQCD:hardccbar``, pT-hat > 3 GeV, as the
  D+ recipe, but without multiparton interactions (``PartonLevel:MPI = off``:
  only the signal is written, and this makes the run 5 times faster; the
  charm hadrons come out slightly softer, by ~5% in median pT for D+). Pythia's
  own Lambda_c+ table has p K*0bar and Delta++ K- but no non-resonant p K- pi+
  and no Lambda(1520) pi+, so the table is replaced by four channels giving
  p K- pi+: non-resonant (phase space) 50%, p K*0bar 22%, Delta++ K- 23%,
  Lambda(1520) pi+ 5%, with K*0 -> K+ pi- and Lambda(1520) -> p K- forced.
  The fractions are chosen for the benchmark (roughly the sizes of the
  measured resonant fractions); there is no interference between them.
- ``d0_k3pi``: as ``lambdac``, with the D0 channels of Pythia's table that can
  give K- pi+ pi+ pi- switched on (non-resonant, a1(1260)+ K-, K*0bar rho0,
  K*0bar pi+ pi-, K- pi+ rho0, K1(1270)- pi+) and their resonances decaying
  as Pythia has them; candidates are the D0 whose final state is exactly
  K- pi+ pi+ pi-, so the resonant mix is Pythia's. pi1 and pi2 are the two
  pions with the D0's charge sign (pi+ for a D0), by decreasing pT; pi3 has
  the opposite sign.
- ``dplus_5body``: as ``lambdac``, D+ forced to K- pi+ pi+ pi+ pi- (Pythia has
  only the non-resonant channel: 5-body phase space). pi1-pi3 are the pi+ by
  decreasing pT, pi4 the pi-.
- ``dimuon``: a mix of three Pythia runs in fixed shares of the events:
  Drell-Yan gamma*/Z -> mu mu (``WeakSingleBoson:ffbar2gmZ``, m-hat > 4 GeV),
  prompt charmonium (``Charmonium:all``, pT-hat > 5 GeV, J/psi -> mu mu forced)
  and bottomonium (``Bottomonium:all``, pT-hat > 3 GeV, Upsilon(1S) -> mu mu
  forced; Upsilon(2S,3S) and psi(2S) decay as Pythia has them). The shares
  are set so that the continuum, the J/psi and the Upsilon each hold a large
  fraction of the pairs, not in their cross-section ratio. Multiparton
  interactions and hadronisation are off (hadron decays stay on): the muons
  of the hard process and its showers are unchanged, the rare muons from
  hadron decays that could have been picked as a leading muon are gone, and
  the run is ~20 times faster. A candidate is the two accepted
  muons of highest measured pT, if of opposite charge; mu1 has the higher pT.

Usage::

    pip install "vaeaug[pythia]"      # pythia8mc==8.317.2, particle
    python examples/decays_pythia.py --decay lambdac --events 20000 --seed 21 -o lc.root
    python examples/decays_pythia.py --list
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import uproot

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pythia import (  # the examples folder is not a package: found via sys.path
    BEAMS,
    PYTHIA_VERSION,
    Acceptance,
    Decay,
    Source,
    TreeWriter,
    add_run_arguments,
    add_tail_arguments,
    atomic_output,
    batches,
    check_run_arguments,
    signal_rows,
)
from dmeson_pythia import DPLUS

__all__ = ["DECAYS", "build_parser", "generate", "main", "pdg_mass", "tree_title"]


def pdg_mass(pdg_id: int) -> float:
    """The PDG mass of ``pdg_id`` in GeV, from the ``particle`` package."""
    try:
        from particle import Particle
    except ImportError as err:
        raise SystemExit(
            "this example takes its masses from the particle package: pip install particle "
            "(or pip install 'vaeaug[pythia]')"
        ) from err
    # rounded to the PDG's decimals, so that e.g. 493.677 MeV is exactly 0.493677 GeV
    return round(Particle.from_pdgid(pdg_id).mass / 1000.0, 12)


PROTON, KAON, PION, MUON = 2212, 321, 211, 13
#: A charm-hadron tracker like the D+ recipe's (LHCb-like): pT > 0.25 GeV, |eta| < 2.5, 0.5%.
CHARM_TRACKER = Acceptance(0.25, 2.5, 0.005, {pid: pdg_mass(pid) for pid in (PROTON, KAON, PION)})
#: A CMS-like muon system: pT > 3 GeV, |eta| < 2.4, 1%.
MUON_TRACKER = Acceptance(3.0, 2.4, 0.01, {MUON: pdg_mass(MUON)})
#: Charm production of every charm entry: the D+ recipe's.
CCBAR = (*BEAMS, "HardQCD:hardccbar = on", "PhaseSpace:pTHatMin = 3")
#: The charm entries write the signal only, so the underlying event of multiparton
#: interactions is not needed; it costs 4/5 of the run time. (Through colour
#: reconnection it also hardens the charm hadrons slightly: for D+ -> K pi pi the
#: median parent pT is ~5% higher with it.)
SIGNAL_ONLY = ("PartonLevel:MPI = off",)
#: The dimuon runs keep only the muons: these switch off what cannot change them.
MUONS_ONLY = ("PartonLevel:MPI = off", "HadronLevel:Hadronize = off")


def _entry(name, title, parent, daughters, window, sources, tracker=CHARM_TRACKER, notes=""):
    return Decay(
        name=name,
        title=title,
        parent=parent,
        daughters=tuple(daughters),
        masses={n: pdg_mass(abs(pid)) for n, pid in daughters},
        acceptance=tracker,
        mass_window=window,
        sources=tuple(sources),
        notes=notes,
    )


#: The decay table: name -> :class:`_pythia.Decay`.
DECAYS: dict[str, Decay] = {
    "dplus_kpipi": DPLUS,
    "lambdac": _entry(
        "lambdac",
        "Lambda_c+ -> p K- pi+",
        4122,
        [("p", PROTON), ("K", -KAON), ("pi", PION)],
        (2.21, 2.37),
        [
            Source(
                "ccbar",
                (
                    *CCBAR,
                    *SIGNAL_ONLY,
                    # the Lambda_c+ table replaced: onMode bRatio meMode products
                    "4122:oneChannel = 1 0.50 0 2212 -321 211",
                    "4122:addChannel = 1 0.22 0 2212 -313",
                    "4122:addChannel = 1 0.23 0 2224 -321",
                    "4122:addChannel = 1 0.05 0 102134 211",
                    "313:onMode = off",
                    "313:onIfMatch = 321 -211",
                    "102134:onMode = off",
                    "102134:onIfMatch = 2212 -321",
                ),
            )
        ],
        notes="p K- pi+: non-resonant 50%, p K*0bar 22%, Delta++ K- 23%, Lambda(1520) pi+ 5%",
    ),
    "d0_k3pi": _entry(
        "d0_k3pi",
        "D0 -> K- pi+ pi+ pi-",
        421,
        [("K", -KAON), ("pi1", PION), ("pi2", PION), ("pi3", -PION)],
        (1.785, 1.945),
        [
            Source(
                "ccbar",
                (
                    *CCBAR,
                    *SIGNAL_ONLY,
                    "421:onMode = off",
                    "421:onIfMatch = -321 211 211 -211",
                    "421:onIfMatch = 20213 -321",
                    "421:onIfMatch = -313 113",
                    "421:onIfMatch = -313 211 -211",
                    "421:onIfMatch = -321 211 113",
                    "421:onIfMatch = -10323 211",
                ),
            )
        ],
        notes="Pythia's K- pi+ pi+ pi- channels (a1 K, K*0bar rho0, ...); final state exact",
    ),
    "dplus_5body": _entry(
        "dplus_5body",
        "D+ -> K- pi+ pi+ pi+ pi-",
        411,
        [("K", -KAON), ("pi1", PION), ("pi2", PION), ("pi3", PION), ("pi4", -PION)],
        (1.79, 1.95),
        [
            Source(
                "ccbar",
                (*CCBAR, *SIGNAL_ONLY, "411:onMode = off", "411:onIfMatch = -321 211 211 211 -211"),
            )
        ],
        notes="5-body phase space (Pythia's only K- pi+ pi+ pi+ pi- channel)",
    ),
    "dimuon": _entry(
        "dimuon",
        "mu+ mu- pairs: Drell-Yan, J/psi, Upsilon",
        None,
        [("mu1", MUON), ("mu2", MUON)],
        (2.0, 150.0),
        [
            Source(
                "drell_yan",
                (
                    *BEAMS,
                    *MUONS_ONLY,
                    "WeakSingleBoson:ffbar2gmZ = on",
                    "PhaseSpace:mHatMin = 4",
                    "23:mMin = 4",  # the gamma*/Z mass range (default 10)
                    "23:onMode = off",
                    "23:onIfAny = 13",
                ),
                fraction=0.28,
            ),
            Source(
                "charmonium",
                (
                    *BEAMS,
                    *MUONS_ONLY,
                    "Charmonium:all = on",
                    "PhaseSpace:pTHatMin = 5",
                    "443:onMode = off",
                    "443:onIfMatch = 13 -13",
                ),
                fraction=0.59,
            ),
            Source(
                "bottomonium",
                (
                    *BEAMS,
                    *MUONS_ONLY,
                    "Bottomonium:all = on",
                    "PhaseSpace:pTHatMin = 3",
                    "553:onMode = off",
                    "553:onIfMatch = 13 -13",
                ),
                fraction=0.13,
            ),
        ],
        tracker=MUON_TRACKER,
        notes="fixed shares of events per source, not the cross-section ratio",
    ),
}


def tree_title(decay: Decay) -> str:
    """The ``signal`` tree's title: the channel and the daughters' masses in GeV."""
    masses = " ".join(f"{n}={m!r}" for n, m in decay.masses.items())
    return f"{decay.title} (Pythia {PYTHIA_VERSION}, pp 13 TeV); masses GeV: {masses}"


def generate(
    decay: str | Decay,
    output: str | Path,
    n_events: int,
    seed: int,
    *,
    batch_size: int = 100,
    chunk_size: int = 100_000,
    progress: bool = True,
    verbose: bool = False,
) -> int:
    """Generate ``n_events`` events of ``decay`` and write its ``signal`` tree to ``output``.

    ``decay`` is a name of :data:`DECAYS` or an entry. The file appears only
    when complete. Returns the number of candidates written.
    """
    if isinstance(decay, str):
        if decay not in DECAYS:
            raise KeyError(f"no decay {decay!r}; the table has {', '.join(DECAYS)}")
        decay = DECAYS[decay]
    # the D+ recipe's stream layout: the first child seeds the smearing
    smear_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    events = batches(
        decay, n_events, seed, smear_rng, batch_size=batch_size, progress=progress, verbose=verbose
    )
    branches = decay.branches
    with atomic_output(Path(output)) as tmp, uproot.recreate(tmp) as f:
        tree = TreeWriter(
            f.mktree("signal", branches, title=tree_title(decay)), branches, chunk_size
        )
        for tracks in events:
            tree.add(signal_rows(decay, tracks))
        tree.flush()
    return tree.written


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        description="Generate the signal candidates of one decay of the table with Pythia 8 "
        "and write them to a ROOT file (tree 'signal').",
    )
    parser.add_argument("--decay", choices=list(DECAYS), help="the decay to generate")
    parser.add_argument(
        "--list", action="store_true", help="print the decay table as JSON and exit"
    )
    add_run_arguments(parser, default_seed=21, output_required=False)
    add_tail_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the example; ``argv`` defaults to ``sys.argv[1:]``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(json.dumps({name: d.as_dict() for name, d in DECAYS.items()}, indent=2))
        return 0
    if args.decay is None or args.output is None:
        parser.error("--decay and -o/--output are required (or --list)")
    output = check_run_arguments(parser, args)

    start = time.perf_counter()
    cpu = time.process_time()
    n = generate(
        args.decay,
        output,
        args.events,
        args.seed,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        verbose=args.verbose,
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        f"wrote {output}: {n} {args.decay} candidates from {args.events} events in "
        f"{seconds:.1f} s ({cpu:.1f} s CPU; {args.events / cpu:.0f} events/s, "
        f"{n / cpu:.1f} candidates/s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
