"""Feature table of a candidate sample: raw 4-momentum components and physics quantities.

:func:`feature_table` and :func:`check_sample` live in :mod:`vaeaug.kinematics` (an
ensemble's out-of-bag check uses them at training time) and are re-exported here.

A sample is a float64 array ``p4`` with shape (N, k, 4), last axis (px, py, pz, E)
in GeV, with ``objects`` naming the k daughters. Physics quantities are computed
with ``vector`` (numpy backend) so they follow the same conventions as the rest
of scikit-hep.
"""

from __future__ import annotations

import numpy as np

from ..kinematics import (
    COMPONENTS,
    as_vectors,
    check_sample,
    feature_table,
    invariant_mass,
    pair_masses,
)

__all__ = [
    "COMPONENTS",
    "as_vectors",
    "check_sample",
    "dalitz_variables",
    "feature_label",
    "feature_table",
    "pair_masses",
    "parent_mass",
]


def parent_mass(p4: np.ndarray) -> np.ndarray:
    """Invariant mass in GeV of the sum of all daughters; ``p4`` (N, k, 4) -> (N,), checked."""
    return invariant_mass(check_sample(p4))


def dalitz_variables(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dalitz variables (m12^2, m23^2) in GeV^2 of a three-body sample ``p4`` (N, 3, 4)."""
    arr = check_sample(p4)
    if arr.shape[1] != 3:
        raise ValueError(f"a Dalitz plot needs k=3 daughters; got k={arr.shape[1]}")
    m = pair_masses(arr)
    return m["m12"] ** 2, m["m23"] ** 2


_COMPONENT_TEX = {"px": "p_x", "py": "p_y", "pz": "p_z", "E": "E", "pt": "p_T", "eta": r"\eta"}


def feature_label(name: str, objects: list[str] | None = None) -> str:
    """Axis label with units for a feature name from :func:`feature_table`."""
    if name == "m":
        return r"$m$(parent) [GeV]"
    if name.startswith("m") and name[1:].isdigit() and len(name) == 3:
        i, j = int(name[1]) - 1, int(name[2]) - 1
        if objects is not None and max(i, j) < len(objects):
            return rf"$m$({objects[i]} {objects[j]}) [GeV]"
        return rf"$m_{{{name[1:]}}}$ [GeV]"
    obj, _, comp = name.rpartition("_")
    tex = _COMPONENT_TEX.get(comp)
    if tex is None:
        return name
    who = "parent" if obj == "parent" else obj
    unit = "" if comp == "eta" else " [GeV]"
    return f"${tex}$({who}){unit}"
