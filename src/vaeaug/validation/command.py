"""``vaeaug validate``: read ROOT files, run :func:`~vaeaug.validation.report.validate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..noise import Stream, child_seed

__all__ = ["REPORT_FILES", "run_validate"]

#: What ``vaeaug validate`` writes into ``--out`` (a directory already holding one of them
#: is refused without -f).
REPORT_FILES = ("report.md", "summary.json", "histograms.root", "features")


def _subsample(p4: np.ndarray, n_max: int, seed: int) -> np.ndarray:
    """At most ``n_max`` rows, drawn without replacement from ``seed``, order kept."""
    if len(p4) <= n_max:
        return p4
    rows = np.sort(np.random.default_rng(seed).choice(len(p4), n_max, replace=False))
    return p4[rows]


def _selection(layout, objects: list[str] | None) -> dict:
    """read_candidates arguments that read a model's daughters (``objects`` picks flat ones)."""
    if objects and layout.kind == "flat":
        return {"objects": objects}
    return layout.read_selection()


def _training_sample(model, objects: list[str]) -> np.ndarray | None:
    """The model's training candidates, re-read from the file its provenance names."""
    from ..io import read_candidates

    source = model.provenance.get("source") or {}
    path = source.get("file")
    if not path or not Path(path).exists():
        return None
    select = ({"daughters": source["daughters"]} if source.get("daughters")
              else _selection(model.layout, objects))  # fmt: skip
    table = read_candidates(path, tree=source.get("tree"),
                            entry_start=source.get("entry_start"), entry_stop=source.get("entry_stop"),
                            cut=source.get("cut"), **select)  # fmt: skip
    return table.p4


def run_validate(args: argparse.Namespace) -> str:
    """Run the command from parsed CLI arguments; returns the one-line summary."""
    from ..api import load
    from ..io import check_output_dir, read_candidates, refuse_overwriting_inputs
    from .report import validate

    for given in (args.original, args.generated, args.reference, args.model):
        if given is not None:
            refuse_overwriting_inputs(args.out, [given])
    from ..io.layout import parse_daughters
    from .regions import parse_resonances

    # a malformed --resonance fails before any file is read
    resonances = parse_resonances(getattr(args, "resonance", None) or [])
    out = check_output_dir(args.out, "--out", writes=REPORT_FILES, overwrite=args.overwrite)
    model = load(args.model) if args.model else None
    daughters = parse_daughters(args.daughter) if getattr(args, "daughter", None) else None
    # with --daughter, the generated file has the original's branch names too; with a model,
    # its layout says what to read (a jagged collection has no flat objects)
    if getattr(args, "collection", None):
        if daughters or args.objects:
            raise InputError("--collection reads a jagged collection: do not combine it with "
                             "--objects or --daughter")  # fmt: skip
        select = {"collection": args.collection, "n_objects": args.n_objects or 2}
    elif daughters:
        select = {"daughters": daughters}
    else:
        select = _selection(model.layout, args.objects) if model else {"objects": args.objects}
    original = read_candidates(args.original, tree=args.tree, **select)
    objects = original.objects
    if "objects" in select:
        select = {"objects": objects}
    generated = read_candidates(args.generated, tree=args.generated_tree or args.tree, **select)
    if generated.objects != objects:
        raise InputError(
            f"the generated file has objects {generated.objects}, the original {objects}"
        )
    reference = None
    if args.reference:
        reference = read_candidates(args.reference, tree=args.tree, **select).p4
    history = training = members = None
    if model is not None:
        history = model.history
        training = _training_sample(model, objects)
        if hasattr(model, "members"):
            members = _member_samples(model, args, generated, args.max_events)
    out.mkdir(parents=True, exist_ok=True)
    n_max = args.max_events
    summary = validate(
        _subsample(original.p4, n_max, child_seed(args.seed, Stream.SUBSAMPLE_ORIGINAL)),
        _subsample(generated.p4, n_max, child_seed(args.seed, Stream.SUBSAMPLE_GENERATED)),
        objects,
        out,
        reference_p4=reference,
        training_p4=training,
        history=history,
        resonances=resonances,
        style=args.style,
        seed=args.seed,
        formats=tuple(args.formats),
        progress=sys.stderr.isatty(),  # a bar redrawn into a log file only fills it
        overwrite=args.overwrite,
        member_p4=members,
        shared_variance=_shared_variance(model) if members is not None else None,
    )
    c2st = summary["c2st"]
    mass = summary["mass"]
    band = ""
    if "ensemble" in summary:
        e = summary["ensemble"]
        band = (f"; ensemble of {e['members']}: χ² {e['chi2_stat']:.1f} (stat) / "
                f"{e['chi2_stat_model']:.1f} (stat+model) for {e['ndf']} bins")  # fmt: skip
    return (
        f"validated {summary['n_generated']} generated vs {summary['n_original']} original "
        f"candidates (of {len(generated)} and {len(original)}): C2ST AUC "
        f"{c2st['test']['auc']:.3f} (floor {c2st['floor']['auc']:.3f}), mass peak "
        f"{mass['generated']['robust_median']:.5f} vs {mass['original']['robust_median']:.5f} GeV"
        f"{band} -> {out}/report.md"
    )


def _shared_variance(ens) -> float | None:
    """The ensemble's out-of-bag shared error (None: a file written before the check, or
    no out-of-bag candidates to measure it on)."""
    return (ens.out_of_bag or {}).get("shared_variance")


def _member_samples(ens, args, generated, n_max: int) -> list[np.ndarray]:
    """Each member's sample: the generated file's rows of each ``member`` (the branch
    ``vaeaug generate`` writes from an ensemble file), else ``len(generated) / K`` drawn from
    each member here (seed sub-stream ``Stream.ENSEMBLE_SAMPLE`` of ``--seed``); each at most
    ``n_max / K``."""
    import uproot

    k = len(ens)
    tree = generated.source.get("tree") or args.generated_tree or args.tree
    member = None
    with uproot.open(args.generated) as f:
        t = f[tree] if tree else None
        if t is not None and "member" in t.keys():
            member = t["member"].array(library="np")
    each = max(n_max // k, 1)
    if member is not None and len(member) == len(generated):
        if member.min() < 0 or member.max() >= k:
            raise InputError(f"'{args.generated}' has member numbers {member.min()} to "
                             f"{member.max()}, but the model is an ensemble of {k} members")  # fmt: skip
        return [_subsample(generated.p4[member == i], each,
                           child_seed(args.seed, Stream.ENSEMBLE_SAMPLE, i)) for i in range(k)]  # fmt: skip
    seed = child_seed(args.seed, Stream.ENSEMBLE_SAMPLE) % 2**32
    return [c.p4 for c in ens.member_samples(min(max(len(generated) // k, 1), each), seed=seed)]
