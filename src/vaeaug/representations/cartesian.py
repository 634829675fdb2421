"""Cartesian representation: the 4-momentum components themselves.

Features per object ``o`` (GeV): ``o_px, o_py, o_pz, o_E``, object after object, so
``D = 4 k``. The simplest baseline: nothing is built in, the model has to learn masses and
the phi symmetry by itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from vaeaug.representations.arrays import namespace
from vaeaug.representations.base import (
    MOMENTUM_MAX,
    Representation,
)

__all__ = ["CartesianRepresentation"]


class CartesianRepresentation(Representation):
    """Features are ``(px, py, pz, E)`` in GeV per object, unchanged.

    n_objects: the number ``k`` of final-state objects.
    object_names: one name per object for the feature names (default ``p0, p1, ...``).

    Decoding clamps ``E >= |p|`` so that no object comes out space-like, and each component
    to ``+-1e15`` GeV so that junk cannot overflow; physical input passes through unchanged.
    """

    name: ClassVar[str] = "cartesian"

    def __init__(self, n_objects: int, *, object_names: Sequence[str] | None = None) -> None:
        super().__init__(n_objects, object_names=object_names)

    def feature_names(self) -> list[str]:
        return [f"{o}_{c}" for o in self.object_names for c in ("px", "py", "pz", "E")]

    def to_features(self, p4: np.ndarray) -> np.ndarray:
        p4 = self._check_p4(p4)
        return p4.reshape(len(p4), 4 * self.n_objects).copy()

    def from_features(self, x: np.ndarray) -> np.ndarray:
        x = self._check_features(x)  # numpy or a tensor on any device: decoded where it is
        xp = namespace(x)
        p4 = xp.reshape(xp.clip(x, -MOMENTUM_MAX, MOMENTUM_MAX), (x.shape[0], self.n_objects, 4))
        p3 = p4[..., :3]
        p4[..., 3] = xp.maximum(p4[..., 3], xp.sqrt(xp.sum(p3 * p3, axis=-1)))
        return p4

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_objects": self.n_objects,
            "object_names": list(self.object_names),
        }
