"""Input coercion: whatever a user hands to :func:`vaeaug.fit` as candidates, checked.

:func:`as_candidates` accepts :class:`~vaeaug.io.candidates.Candidates`, an array of
4-momenta (N, k, 4) GeV, or a mapping of flat branches (``{"K1_px": ..., ...}``),
and refuses non-finite or unphysical 4-momenta and bad weights (negative, non-finite, or
summing to zero) with an :class:`~vaeaug.errors.InputError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..kinematics import unphysical_rows
from .candidates import Candidates
from .layout import Layout, detect_flat_objects, to_p4

__all__ = ["as_candidates"]


def _from_branches(data: Mapping, objects: Sequence[str] | None) -> Candidates:
    found, comps = detect_flat_objects(list(data))
    chosen = tuple(objects) if objects else found
    if not chosen:
        raise InputError(
            f"no <object>_px/py/pz/E (or pt/eta/phi/mass) columns among {list(data)[:12]}"
        )
    values = np.stack(
        [np.stack([np.asarray(data[f"{o}_{c}"]) for c in comps], -1) for o in chosen], 1
    )
    dtypes = {f"{o}_{c}": str(np.asarray(data[f"{o}_{c}"]).dtype) for o in chosen for c in comps}
    return Candidates(to_p4(values, comps), Layout("flat", chosen, comps, None, dtypes))


def _from_array(data, objects: Sequence[str] | None) -> Candidates:
    p4 = np.asarray(data, dtype=np.float64)
    if p4.ndim != 3 or p4.shape[-1] != 4:
        raise InputError(
            f"4-momenta must have shape (N, k, 4) as (px, py, pz, E) in GeV, got {p4.shape}"
        )
    names = tuple(objects) if objects else tuple(f"p{i}" for i in range(p4.shape[1]))
    if len(names) != p4.shape[1]:
        raise InputError(f"{len(names)} object names given for {p4.shape[1]} objects")
    return Candidates(p4, Layout.default(names))


def as_candidates(data, objects: Sequence[str] | None = None, weights=None) -> Candidates:
    """Checked candidates from ``data``.

    Args:
        data: :class:`Candidates` (used as they are), 4-momenta (N, k, 4) as
            (px, py, pz, E) in GeV, or a mapping of flat branches
            (``<object>_px/py/pz/E`` or ``<object>_pt/eta/phi/mass``).
        objects: the object names: for an array (default ``p0, p1, ...``) or the
            objects to take from a mapping (default: all found).
        weights: per-candidate weights, shape (N,), finite and >= 0; they replace
            those of ``data``.
    """
    if isinstance(data, Candidates):
        table = data
    elif isinstance(data, Mapping):
        table = _from_branches(data, objects)
    else:
        table = _from_array(data, objects)
    if weights is not None:
        table = dataclasses.replace(table, weights=np.asarray(weights, np.float64))
    w = table.weights
    if w is not None and (w.shape != (len(table),) or not np.isfinite(w).all() or (w < 0).any()):
        raise InputError(
            f"weights must be finite, non-negative and of shape ({len(table)},), got shape "
            f"{w.shape} with minimum {w.min() if w.size else 'n/a'}"
        )
    if w is not None and len(w) and not w.sum() > 0:
        raise InputError(
            f"weights sum to {w.sum():g} ({int((w == 0).sum())} of {len(w)} are zero): training "
            "needs a positive total weight; check the weight branch (--weight / weights=)"
        )
    if not np.isfinite(table.p4).all():
        raise InputError(
            "the 4-momenta contain NaN or inf; drop them first (read_candidates does this)"
        )
    # Candidates (read_candidates) were checked on reading, with their storage's rounding
    if not isinstance(data, Candidates) and (unphysical := unphysical_rows(table.p4)):
        bad = np.logical_or.reduce(list(unphysical.values()))
        what = "; ".join(f"{int(m.sum())} with {k}" for k, m in unphysical.items())
        raise InputError(
            f"{int(bad.sum())} of {len(table)} candidates are unphysical ({what}); drop them "
            "first (read_candidates does this)"
        )
    return table
