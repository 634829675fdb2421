"""Collider representation: (log pt, eta, phi, mass) per object.

Features per object ``o``, object after object:

- ``o_log_pt``: ``ln(pt / GeV)``, ``pt = sqrt(px^2 + py^2)``;
- ``o_eta``: pseudorapidity ``asinh(pz / pt)``;
- ``o_phi_cos``, ``o_phi_sin``: ``cos phi, sin phi`` with ``phi = atan2(py, px)``, so the
  model sees phi as the periodic quantity it is; decoding normalises the pair (``(0, 0)``
  reads as ``phi = 0``);
- ``o_m``: mass ``sqrt(max(E^2 - p^2, 0))`` in GeV, only when no mass hypothesis is given.
  With ``masses`` the mass is not a feature and ``E = sqrt(p^2 + m^2)`` uses the hypothesis.

So ``D = 5 k`` without masses and ``D = 4 k`` with them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from vaeaug.representations.arrays import namespace
from vaeaug.representations.base import (
    MASS_MAX,
    Representation,
    decode_collider,
    momentum_to_collider,
)

__all__ = ["ColliderRepresentation"]


class ColliderRepresentation(Representation):
    """Per object ``(log pt, eta, cos phi, sin phi[, m])``; see the module docstring.

    n_objects: the number ``k`` of final-state objects.
    masses: mass hypotheses in GeV, one per object; if given, masses are fixed and are not
        features. If not, each mass is a feature, decoded clamped to ``[0, 1e9]`` GeV.
    object_names: one name per object for the feature names (default ``p0, p1, ...``).

    Decoding clamps ``log pt`` to ``[-30, 30]`` and ``|eta|`` to 40, far outside any
    detector, only so that junk input cannot overflow. Objects with ``pt`` below
    ``e^-30`` GeV (exactly along the beam) are encoded with that floor.
    """

    name: ClassVar[str] = "collider"

    @property
    def _per_object(self) -> list[str]:
        base = ["log_pt", "eta", "phi_cos", "phi_sin"]
        return base if self.masses is not None else [*base, "m"]

    def feature_names(self) -> list[str]:
        return [f"{o}_{c}" for o in self.object_names for c in self._per_object]

    def to_features(self, p4: np.ndarray) -> np.ndarray:
        p4 = self._check_p4(p4)
        px, py, pz, e = np.moveaxis(p4, -1, 0)  # each (N, k)
        columns = list(momentum_to_collider(px, py, pz))
        if self.masses is None:
            p = np.sqrt(px**2 + py**2 + pz**2)
            columns.append(np.sqrt(np.maximum((e - p) * (e + p), 0.0)))
        # (N, k, c) -> (N, k c): object after object, matching feature_names().
        return np.stack(columns, axis=-1).reshape(len(p4), self.n_features)

    def from_features(self, x: np.ndarray) -> np.ndarray:
        x = self._check_features(x)  # numpy or a tensor on any device: decoded where it is
        xp = namespace(x)
        f = xp.reshape(x, (x.shape[0], self.n_objects, len(self._per_object)))
        pt, eta, cos_phi, sin_phi = decode_collider(f[..., 0], f[..., 1], f[..., 2], f[..., 3])
        px, py, pz = pt * cos_phi, pt * sin_phi, pt * xp.sinh(eta)
        if self.masses is None:
            m = xp.clip(f[..., 4], 0.0, MASS_MAX)
        else:
            m = xp.constant(self.masses, like=x)
        e = xp.sqrt(px**2 + py**2 + pz**2 + m**2)
        return xp.stack([px, py, pz, e], axis=-1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_objects": self.n_objects,
            "masses": None if self.masses is None else list(self.masses),
            "object_names": list(self.object_names),
        }
