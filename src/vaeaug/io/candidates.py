"""Candidates, read or generated: their 4-momenta and the layout to write them in.

One container for every sample the package hands around: :func:`~vaeaug.io.read_candidates`
returns one, :meth:`vaeaug.Model.sample` returns one, and the writers and the
integrations take one. It pickles with plain ``pickle``, and so does the array of
:meth:`Candidates.to_awkward` (its vector behavior pickles by reference).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import awkward as ak
import numpy as np

from ..kinematics import COMPONENTS, invariant_mass
from .behavior import VECTOR_BEHAVIOR
from .layout import Layout, from_p4

__all__ = ["Candidates"]


@dataclasses.dataclass
class Candidates:
    """A set of candidates: 4-momenta plus the layout to write them in.

    Attributes:
        p4: shape (N, k, 4), (px, py, pz, E) in GeV, float64.
        layout: object names, branch names and types (of the input read, or of
            the training input for generated candidates).
        weights: per-candidate weights, shape (N,), or None.
        source: for candidates read from a file, where they came from: file, tree,
            branches, entry range, cut, counts (:func:`~vaeaug.io.read_candidates`).
        support_report: for generated candidates, what the support check saw
            (a :class:`~vaeaug.model.support.SupportReport`), else None.
        refine_report: for refined candidates (:func:`vaeaug.refine`), what refinement
            did (a :class:`~vaeaug.sampling.refine.RefineReport`), else None.
        labels: for candidates read from a file, their per-object labels: field (``charge``)
            -> integer array (N, k) (:mod:`vaeaug.io.labels`), else None.
        event_ids: for candidates read from a NanoAOD-style collection, ``run``,
            ``luminosityBlock`` and ``event`` (N,) when the file has them, else None.
    """

    p4: np.ndarray
    layout: Layout
    weights: np.ndarray | None = None
    source: dict = dataclasses.field(default_factory=dict)
    support_report: Any = None
    refine_report: Any = None
    labels: dict[str, np.ndarray] | None = None
    event_ids: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.p4)

    @property
    def objects(self) -> list[str]:
        """The k daughter names, e.g. ``["K1", "pi1", "pi2"]``."""
        return list(self.layout.objects)

    @property
    def mass(self) -> np.ndarray:
        """The parent's invariant mass in GeV, shape (N,)."""
        return invariant_mass(self.p4)

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Branch name -> array, in the input's components and types.

        Flat layouts give one (N,) array per branch (``K1_px``...); a jagged
        layout gives one (N, k) array per collection branch (``Muon_pt``).
        """
        values = from_p4(self.p4, self.layout.components)
        out: dict[str, np.ndarray] = {}
        for i, comp in enumerate(self.layout.components):
            if self.layout.kind == "jagged":
                name = f"{self.layout.collection}_{comp}"
                out[name] = values[:, :, i].astype(self.layout.output_dtype(name))
            else:
                for j, obj in enumerate(self.layout.objects):
                    name = self.layout.branch(obj, i)
                    out[name] = values[:, j, i].astype(self.layout.output_dtype(name))
        if self.layout.kind == "flat":
            out = {name: out[name] for name in self.layout.branch_names()}
        return out

    def to_awkward(self) -> ak.Array:
        """Records with one ``Momentum4D`` field per object (and ``weight``), shape (N,).

        The vector behavior is attached to the array itself, so ``.mass``,
        ``+`` and ``.deltaR`` work in worker processes without a global
        ``vector.register_awkward()``, and the array pickles with plain ``pickle``::

            gen = model.sample(10_000, seed=1).to_awkward()
            (gen.K1 + gen.pi1 + gen.pi2).mass
        """
        fields = {}
        for j, obj in enumerate(self.layout.objects):
            comps = {c: self.p4[:, j, i] for i, c in enumerate(COMPONENTS)}
            fields[obj] = ak.zip(comps, with_name="Momentum4D")
        if self.weights is not None:
            fields["weight"] = self.weights
        return ak.Array(ak.zip(fields, depth_limit=1), behavior=VECTOR_BEHAVIOR)
