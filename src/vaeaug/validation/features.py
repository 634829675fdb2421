"""Feature table of a candidate sample: raw 4-momentum components and physics quantities.

A sample is a float64 array ``p4`` with shape (N, k, 4), last axis (px, py, pz, E)
in GeV, with ``objects`` naming the k daughters. Physics quantities are computed
with ``vector`` (numpy backend) so they follow the same conventions as the rest
of scikit-hep.
"""

from __future__ import annotations

import numpy as np

from ..kinematics import COMPONENTS, as_vectors, invariant_mass, pair_masses, summed

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


def check_sample(
    p4: np.ndarray, objects: list[str] | None = None, *, name: str = "p4"
) -> np.ndarray:
    """Return ``p4`` as float64 with shape (N, k, 4), or raise a ValueError saying what is wrong."""
    arr = np.asarray(p4, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[-1] != 4:
        raise ValueError(
            f"{name} must have shape (N, k, 4) with last axis (px, py, pz, E) in GeV; "
            f"got shape {arr.shape}"
        )
    if objects is not None and len(objects) != arr.shape[1]:
        raise ValueError(
            f"{name} has k={arr.shape[1]} daughters but objects names {len(objects)}: {objects}"
        )
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.sum(~np.all(np.isfinite(arr), axis=(1, 2))))
        raise ValueError(f"{name} has {n_bad} candidates with NaN or infinite components")
    return arr


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


def feature_table(
    p4: np.ndarray, objects: list[str], *, raw: bool = True, physics: bool = True
) -> tuple[list[str], np.ndarray]:
    """Feature names and values (N, F) of a sample ``p4`` (N, k, 4) in GeV.

    Raw features are ``{object}_{px,py,pz,E}``. Physics features are the parent
    invariant mass ``m``, the pair masses ``m12``, ``m13``, ... (for k >= 3, since
    for k = 2 the pair mass is the parent mass), the parent ``parent_pt`` and
    ``parent_eta`` and each daughter's ``{object}_pt`` and ``{object}_eta``.
    Masses and momenta are in GeV, pseudorapidities dimensionless.
    """
    arr = check_sample(p4, objects)
    names: list[str] = []
    columns: list[np.ndarray] = []
    if raw:
        for i, obj in enumerate(objects):
            for j, c in enumerate(COMPONENTS):
                names.append(f"{obj}_{c}")
                columns.append(arr[:, i, j])
    if physics:
        vecs = as_vectors(arr)
        parent = summed(arr)
        names.append("m")
        columns.append(parent.mass)
        if len(vecs) >= 3:
            for key, values in pair_masses(arr).items():
                names.append(key)
                columns.append(values)
        names += ["parent_pt", "parent_eta"]
        columns += [parent.pt, parent.eta]
        for obj, v in zip(objects, vecs, strict=True):
            names += [f"{obj}_pt", f"{obj}_eta"]
            columns += [v.pt, v.eta]
    if not names:
        raise ValueError("feature_table needs raw=True or physics=True")
    table = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
    return names, table


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
