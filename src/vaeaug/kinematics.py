"""Kinematics shared by every stage: 4-momenta arrays in, physics quantities out.

A sample is a float64 array ``p4`` of shape (N, k, 4), last axis (px, py, pz, E)
in GeV. The quantities come from ``vector`` (numpy backend), so they follow the
conventions of the rest of scikit-hep: a spacelike sum has a *negative* mass
(``-sqrt(-m^2)``), which keeps an unphysical candidate visible instead of piling
it up at zero. :func:`invariant_mass` is the one parent mass of the package;
:func:`invariant_mass_torch` is its twin for tensors, with the same convention.
The float64 light-cone boosts of the decay representation are the one
hand-written piece of kinematics (:mod:`vaeaug.representations.decay`), for
precision that ``vector`` does not offer.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import torch
import vector

__all__ = [
    "COMPONENTS",
    "as_vectors",
    "check_sample",
    "feature_table",
    "invariant_mass",
    "invariant_mass_torch",
    "pair_masses",
    "summed",
    "unphysical_rows",
]

#: The order of the last axis of every ``p4`` array.
COMPONENTS = ("px", "py", "pz", "E")


def as_vectors(p4: np.ndarray) -> list:
    """The k daughters of ``p4`` (N, k, 4) as a list of ``vector`` MomentumNumpy4D arrays (N,)."""
    return [
        vector.array({c: p4[:, i, j] for j, c in enumerate(COMPONENTS)}) for i in range(p4.shape[1])
    ]


def summed(p4: np.ndarray):
    """The parent: the sum of the k daughters of ``p4`` (N, k, 4), a ``vector`` array (N,)."""
    total = np.asarray(p4, dtype=np.float64).sum(axis=1)
    return vector.array({c: total[:, j] for j, c in enumerate(COMPONENTS)})


def invariant_mass(p4: np.ndarray) -> np.ndarray:
    """Invariant mass in GeV of the sum of all daughters: ``p4`` (N, k, 4) -> (N,) float64.

    ``sign(m^2) sqrt(|m^2|)``: a spacelike sum (rounding, or an unphysical candidate)
    gets a negative mass rather than zero or NaN.
    """
    return np.asarray(summed(p4).mass, dtype=np.float64)


def invariant_mass_torch(p4: torch.Tensor) -> torch.Tensor:
    """:func:`invariant_mass` of a tensor: ``p4`` (..., k, 4) GeV -> (...,) GeV, same dtype
    and device, with gradients (infinite where ``m^2 = 0``).

    Agrees with :func:`invariant_mass` to rounding, the sign convention included.
    """
    px, py, pz, e = p4.sum(dim=-2).unbind(-1)
    m2 = e**2 - (px**2 + py**2 + pz**2)
    return torch.copysign(torch.sqrt(m2.abs()), m2)


def pair_masses(p4: np.ndarray) -> dict[str, np.ndarray]:
    """Invariant masses in GeV of every daughter pair, keyed ``m12``, ``m13``, ... (1-based), each (N,)."""
    vecs = as_vectors(np.asarray(p4, dtype=np.float64))
    return {
        f"m{i + 1}{j + 1}": np.asarray((vecs[i] + vecs[j]).mass, dtype=np.float64)
        for i, j in combinations(range(len(vecs)), 2)
    }


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


#: Above this |component| in GeV a daughter is no collision product (the LHC beams carry
#: 6,800 GeV; 1e5 leaves room for any unit mistake short of MeV read as GeV twice).
MAX_COMPONENT_GEV = 1e5


def unphysical_rows(p4: np.ndarray, rounding: float = 0.0) -> dict[str, np.ndarray]:
    """Candidates no detector records, by reason: {reason: mask (N,)} of finite ``p4``
    (N, k, 4) GeV. A daughter with E < 0; a spacelike daughter, m^2 = E^2 - |p|^2 below
    -(1e-6 E^2 + 1e-6 + 4 rounding (E + |p|)) (beyond float32 rounding, and beyond the
    rounding of values stored as multiples of 2 ``rounding``: 0.5 for integers); a daughter
    with all four components zero; a component beyond :data:`MAX_COMPONENT_GEV`. Only
    reasons that occur are keys."""
    p4 = np.asarray(p4, dtype=np.float64)
    e, p2 = p4[..., 3], np.square(p4[..., :3]).sum(axis=-1)
    with np.errstate(all="ignore"):
        tolerance = 1e-6 * e**2 + 1e-6 + 4 * rounding * (np.abs(e) + np.sqrt(p2))
        reasons = {
            "negative energy": (e < 0).any(axis=1),
            "spacelike": (e**2 - p2 < -tolerance).any(axis=1),
            "all components zero": (p4 == 0).all(axis=2).any(axis=1),
            f"a component beyond {MAX_COMPONENT_GEV:g} GeV": (np.abs(p4) > MAX_COMPONENT_GEV).any(
                axis=(1, 2)
            ),
        }
    return {k: v for k, v in reasons.items() if v.any()}
