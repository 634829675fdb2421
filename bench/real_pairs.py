"""Training/reference files of opposite-sign lepton pairs from a shared real file.

The shared HZZ sample (``uproot-HZZ.root``: CMS tutorial simulation with the
detector's acceptance and resolution) has no independent second file, so its
events are split in two by event number, even to ``<name>_train.root`` and odd
to ``<name>_reference.root``. Every opposite-sign pair of an event is a
candidate (``vaeaug.candidates``), the leading lepton first; candidates of one
event stay in one file. Branches ``l1_px, ..., l2_E`` (GeV) and ``event`` in a
TTree ``signal``, the layout of ``bench/fidelity.py --data``::

    python bench/real_pairs.py --collection Muon --out-dir /work/samples --name hzz_mumu
    OMP_NUM_THREADS=1 python bench/fidelity.py --data /work/samples/hzz_mumu_train.root \\
        --reference /work/samples/hzz_mumu_reference.root --masses 0.10566 0.10566 ...

Only the muons are used: the file holds 52 events with two or more electrons.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
import vector

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import data_dir

__all__ = ["main", "pairs"]


def pairs(path: Path, collection: str) -> tuple[np.ndarray, np.ndarray]:
    """(4-momenta (M, 2, 4) GeV of every opposite-sign pair, event index (M,))."""
    import vaeaug

    tree = uproot.open(path)["events"]
    arrays = tree.arrays([f"{collection}_{c}" for c in ("Px", "Py", "Pz", "E", "Charge")])
    leptons = vector.zip({c.lower() if c != "E" else "E": arrays[f"{collection}_{c}"]
                          for c in ("Px", "Py", "Pz", "E")})  # fmt: skip
    leptons = ak.with_field(leptons, arrays[f"{collection}_Charge"], "charge")
    cands = vaeaug.candidates(leptons, n=2, charge="opposite", fields=["l1", "l2"])
    event = ak.flatten(ak.broadcast_arrays(np.arange(len(arrays)), cands.l1.px)[0]).to_numpy()
    p4 = np.stack([np.stack([ak.flatten(getattr(cands[f], c)).to_numpy()
                             for c in ("px", "py", "pz", "E")], axis=-1)
                   for f in ("l1", "l2")], axis=1)  # fmt: skip
    return p4.astype(np.float64), event


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="Muon")
    parser.add_argument("--data", default=None, help="folder of the shared files")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--name", default="hzz_mumu")
    args = parser.parse_args(argv)
    p4, event = pairs(data_dir(args.data) / "uproot-HZZ.root", args.collection)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for part, keep in (("train", event % 2 == 0), ("reference", event % 2 == 1)):
        path = out / f"{args.name}_{part}.root"
        branches = {f"l{i + 1}_{c}": p4[keep, i, j].astype(np.float32)
                    for i in range(2) for j, c in enumerate(("px", "py", "pz", "E"))}  # fmt: skip
        branches["event"] = event[keep].astype(np.int64)
        with uproot.recreate(path) as f:
            f.mktree("signal", {k: v.dtype for k, v in branches.items()})
            f["signal"].extend(branches)
        print(f"wrote {path}: {int(keep.sum())} pairs of {len(np.unique(event[keep]))} events")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
