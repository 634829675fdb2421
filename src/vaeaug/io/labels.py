"""What a written file holds besides the 4-momenta: per-object labels and NanoAOD event ids.

A model learns 4-momenta only, but an analysis reads more of each object: coffea's
``MuonArray`` requires ``Muon_charge``, and ``NanoAODSchema`` refuses a file without the
event ids ``run``, ``luminosityBlock`` and ``event``. So the written files keep

* the **per-object labels** of the input (:data:`LABEL_FIELDS`: ``charge``, ``pdgId``), as
  :class:`ObjectLabels`: every combination of the k objects' labels seen in the training
  sample and how often. A generated candidate gets one combination drawn with those
  frequencies, keyed by its index in the sample (so the same seed gives the same labels
  whatever the chunking). A label constant per object (``K1_charge = -1`` in a D+ sample) is
  kept exactly; a varying one (the leading muon's charge) keeps its frequencies, not its
  correlation with the momenta (the model does not learn it);
* for NanoAOD-style (jagged) layouts, the **event ids** (:data:`EVENT_ID_BRANCHES`): the
  input's for original candidates, and ``run = 0``, ``luminosityBlock = 0``, ``event`` =
  the candidate's index in the generated sample for generated ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from ..noise import Stream, index_keys, keyed_uniforms

__all__ = [
    "EVENT_ID_BRANCHES",
    "LABEL_FIELDS",
    "MAX_PATTERNS",
    "ObjectLabels",
    "generated_event_ids",
    "label_fields_of",
]

#: Per-object integer fields carried to written files (matched case-insensitively, written
#: with the input's spelling: HZZ's ``Muon_Charge`` stays ``Muon_Charge``).
LABEL_FIELDS = ("charge", "pdgId")
#: The event ids ``NanoAODSchema`` requires, with NanoAOD's types.
EVENT_ID_BRANCHES = {"run": "uint32", "luminosityBlock": "uint32", "event": "uint64"}
#: More distinct label combinations than this and the labels are not a label (they are not kept).
MAX_PATTERNS = 256


@dataclasses.dataclass(frozen=True)
class ObjectLabels:
    """The combinations of per-object labels in a sample, with their counts.

    Attributes:
        names: the label fields as spelled in the input (``("charge", "pdgId")``).
        dtypes: their numpy dtype strings, one per name.
        patterns: P combinations, each ``len(names) * k`` integers, name-major
            (``charge`` of objects 0..k-1, then ``pdgId`` of objects 0..k-1).
        counts: how many candidates of the sample have each combination (P,).
    """

    names: tuple[str, ...]
    dtypes: tuple[str, ...]
    patterns: tuple[tuple[int, ...], ...]
    counts: tuple[int, ...]

    @classmethod
    def from_values(cls, values: Mapping[str, np.ndarray]) -> ObjectLabels | None:
        """The combinations of ``values`` (name -> integer array (N, k)); None when there are
        none or more than :data:`MAX_PATTERNS` of them."""
        if not values:
            return None
        names = tuple(values)
        stacked = np.concatenate([np.asarray(values[n]).astype(np.int64) for n in names], axis=1)
        patterns, counts = np.unique(stacked, axis=0, return_counts=True)
        if len(patterns) == 0 or len(patterns) > MAX_PATTERNS:
            return None
        return cls(
            names,
            tuple(np.asarray(values[n]).dtype.name for n in names),
            tuple(tuple(int(v) for v in p) for p in patterns),
            tuple(int(c) for c in counts),
        )

    def draw(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        """One combination per key (M,), with the sample's frequencies: name -> (M, k) array
        of the input's dtype."""
        cumulative = np.cumsum(self.counts) / sum(self.counts)
        u = keyed_uniforms(keys, 1)[:, 0]
        chosen = np.asarray(self.patterns, dtype=np.int64)[
            np.minimum(np.searchsorted(cumulative, u, side="right"), len(self.counts) - 1)
        ]
        k = chosen.shape[1] // len(self.names)
        return {
            name: chosen[:, i * k : (i + 1) * k].astype(dtype)
            for i, (name, dtype) in enumerate(zip(self.names, self.dtypes, strict=True))
        }

    def draw_generated(self, seed: int, start: int, n: int) -> dict[str, np.ndarray]:
        """The labels of generated candidates ``start .. start + n - 1`` of a sample drawn
        with ``seed``: name -> (n, k)."""
        keys = index_keys(seed, np.arange(start, start + n), Stream.GENERATED_LABELS)
        return self.draw(keys)

    def to_dict(self) -> dict:
        return {
            "names": list(self.names),
            "dtypes": list(self.dtypes),
            "patterns": [list(p) for p in self.patterns],
            "counts": list(self.counts),
        }

    @classmethod
    def from_dict(cls, d: Mapping | None) -> ObjectLabels | None:
        if not d:
            return None
        return cls(
            tuple(str(n) for n in d["names"]),
            tuple(str(t) for t in d["dtypes"]),
            tuple(tuple(int(v) for v in p) for p in d["patterns"]),
            tuple(int(c) for c in d["counts"]),
        )


def label_fields_of(prefixes: Sequence[str], all_names: Sequence[str]) -> dict[str, list[str]]:
    """The label fields every one of ``prefixes`` has (``Muon`` -> ``Muon_charge``): field as
    spelled -> its branch per prefix. Matched case-insensitively against :data:`LABEL_FIELDS`."""
    present = set(all_names)
    wanted = {f.lower() for f in LABEL_FIELDS}
    out: dict[str, list[str]] = {}
    first = prefixes[0] if prefixes else None
    for name in all_names:
        prefix, sep, field = name.rpartition("_")
        if not sep or prefix != first or field.lower() not in wanted:
            continue
        branches = [f"{p}_{field}" for p in prefixes]
        if all(b in present for b in branches):
            out[field] = branches
    return out


def generated_event_ids(start: int, n: int) -> dict[str, np.ndarray]:
    """Event ids of generated candidates ``start .. start + n - 1``: run 0, luminosity block 0,
    event = the index in the generated sample; each (n,) of NanoAOD's type."""
    return {
        "run": np.zeros(n, EVENT_ID_BRANCHES["run"]),
        "luminosityBlock": np.zeros(n, EVENT_ID_BRANCHES["luminosityBlock"]),
        "event": np.arange(start, start + n, dtype=EVENT_ID_BRANCHES["event"]),
    }
