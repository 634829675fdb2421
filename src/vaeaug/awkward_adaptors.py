"""Adaptors between awkward/vector records and the model's (N, k, 4) 4-momenta.

Into the model, :func:`candidate_p4` accepts

* candidates whose fields are 4-vectors, e.g. from ``ak.zip`` or
  ``ak.combinations`` (``{"K1": ..., "pi1": ..., "pi2": ...}``), one candidate
  per entry (``N * {...}``) or a list of candidates per event (``N * var * {...}``);
* a jagged collection of 4-vectors (``events.Muon``, ``N * var * Muon``): the
  first k objects of each event form its candidate (the collection is clipped to
  the model's object count; events with fewer than k objects have none);

where a 4-vector is any record with one complete set of coordinates, in any
system ``vector`` knows: ``px/py/pz/E`` (also ``Px/Py/Pz``, ``x/y/z/t``, ``e``,
``energy``), ``pt/eta/phi/mass`` (NanoAOD), ``pt/eta/phi/E``, ``rho/phi/theta/tau``...
A ``vector`` Momentum4D array, a NanoAOD ``PtEtaPhiMCandidate`` collection and a plain
record of branches all work.

Back out, :func:`to_awkward` builds records whose daughters are ``Momentum4D``
with the vector behavior attached to the array (see
:meth:`vaeaug.Candidates.to_awkward`), nested like the input, plus a ``weight``.

Every function also accepts typetracer arrays (dask-awkward runs functions on
them first): it then touches exactly the coordinate columns it would read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import awkward as ak
import numpy as np
import vector

from .candidates import Candidates
from .errors import InputError
from .io.layout import Layout

__all__ = [
    "VECTOR_BEHAVIOR",
    "CandidateArrays",
    "candidate_p4",
    "coordinate_fields",
    "p4_of_vectors",
    "to_awkward",
]


class _PicklableBehavior(dict):
    """vector's awkward behavior, pickled by reference to this module.

    vector's behavior dict holds lambdas, so an array carrying it cannot go
    through plain ``pickle``, which coffea's executors use to send outputs
    back; this copy unpickles as the receiver's own copy instead.
    """

    def __reduce__(self):
        return (_vector_behavior, ())


def _vector_behavior() -> _PicklableBehavior:
    return VECTOR_BEHAVIOR


#: The behavior attached to the arrays this module returns: ``Momentum4D``
#: methods (``.mass``, ``+``, ``.deltaR``), picklable with plain ``pickle``.
VECTOR_BEHAVIOR = _PicklableBehavior(vector.backends.awkward.behavior)

# One name per vector coordinate, in the order vector's numpy backend accepts;
# a record must have exactly one azimuthal pair, one longitudinal and one temporal.
_AZIMUTHAL = (
    ("px", "py"),
    ("Px", "Py"),
    ("PX", "PY"),
    ("x", "y"),
    ("pt", "phi"),
    ("rho", "phi"),
    ("Pt", "Phi"),
)
_LONGITUDINAL = ("pz", "Pz", "PZ", "z", "eta", "Eta", "theta")
_TEMPORAL = ("E", "e", "energy", "t", "mass", "m", "M", "Mass", "tau")
_CANONICAL = {
    "Px": "px", "PX": "px", "Py": "py", "PY": "py", "Pz": "pz", "PZ": "pz",
    "Pt": "pt", "Phi": "phi", "Eta": "eta", "e": "E", "energy": "E", "Mass": "mass", "m": "mass", "M": "mass",
    # read as momenta, whatever the record calls them
    "x": "px", "y": "py", "z": "pz", "t": "E", "rho": "pt", "tau": "mass",
}  # fmt: skip


def coordinate_fields(fields: Sequence[str]) -> tuple[str, str, str, str] | None:
    """The four coordinate field names of a 4-vector record, or None if incomplete.

    Cartesian momenta win when a record has several systems, since they are
    what the model uses (no conversion rounding).
    """
    present = set(fields)
    for az in _AZIMUTHAL:
        if not set(az) <= present:
            continue
        for lon in _LONGITUDINAL:
            if lon not in present:
                continue
            for tem in _TEMPORAL:
                if tem in present:
                    return (*az, lon, tem)
    return None


def _is_vector_record(array: ak.Array) -> bool:
    return coordinate_fields(ak.fields(array)) is not None


def _is_typetracer(array) -> bool:
    return ak.backend(array) == "typetracer"


def _column(array: ak.Array, field: str, where: str) -> ak.Array:
    """One coordinate column as a non-option array, with a clear error on None values."""
    col = array[field]
    if _is_typetracer(col):
        ak.typetracer.touch_data(col)
        return col
    if col.layout.is_option or (col.ndim > 1 and "?" in str(col.type)):
        n_none = int(ak.sum(ak.is_none(col, axis=-1)))
        if n_none:
            raise InputError(
                f"{where}.{field} has {n_none} missing (None) values; select candidates without "
                "them first (e.g. ak.drop_none, or a mask on ak.is_none), the model needs 4 numbers per object"
            )
        col = ak.drop_none(col)
    return col


def p4_of_vectors(array: ak.Array, where: str = "objects") -> np.ndarray:
    """(px, py, pz, E) in GeV of a flat array of 4-vector records: (N,) -> (N, 4) float64.

    ``array`` may be a vector ``Momentum4D`` array, a NanoAOD collection or any
    record with a complete set of coordinates (module docstring). ``where``
    names the array in error messages.
    """
    fields = ak.fields(array)
    coords = coordinate_fields(fields)
    if coords is None:
        raise InputError(
            f"{where} is not a 4-vector: fields {fields[:12]} lack a complete set of coordinates; "
            "expected px/py/pz/E, pt/eta/phi/mass, pt/eta/phi/E (or another vector coordinate system)"
        )
    cols = {_CANONICAL.get(c, c): _column(array, c, where) for c in coords}
    if _is_typetracer(array):
        return np.empty((0, 4))
    values = {k: np.asarray(ak.to_numpy(v), dtype=np.float64) for k, v in cols.items()}
    if {"px", "py", "pz", "E"} <= set(values):
        return np.stack([values["px"], values["py"], values["pz"], values["E"]], axis=-1)
    v = vector.array(values)
    return np.stack([v.px, v.py, v.pz, v.E], axis=-1).astype(np.float64)


@dataclasses.dataclass
class CandidateArrays:
    """Candidates taken out of an awkward array, ready for the model.

    Attributes:
        p4: (px, py, pz, E) in GeV, shape (M, k, 4), float64 (empty on a typetracer).
        objects: the k daughter names, in the order of ``p4``'s second axis.
        counts: candidates per event, shape (N,), when the input had an event
            axis (``N * var * {...}`` or a jagged collection); None for ``N * {...}``.
        nested: True when the input had an event axis (then ``counts`` is set,
            except on a typetracer).
        is_typetracer: True when the input was a typetracer (p4 then holds nothing).
    """

    p4: np.ndarray
    objects: tuple[str, ...]
    counts: np.ndarray | None
    nested: bool = False
    is_typetracer: bool = False


def _daughter_fields(
    record: ak.Array, objects: Sequence[str] | None, n_objects: int | None
) -> list[str]:
    fields = ak.fields(record)
    if objects is not None:
        missing = [o for o in objects if o not in fields]
        if missing:
            raise InputError(f"candidates have no field(s) {missing}; their fields are {fields}")
        return list(objects)
    daughters = [f for f in fields if ak.fields(record[f]) and _is_vector_record(record[f])]
    if not daughters:
        raise InputError(
            f"candidates with fields {fields[:12]} have no 4-vector daughters; expected records such as "
            "ak.zip({'K1': k, 'pi1': p1, 'pi2': p2}) of vector Momentum4D (or pt/eta/phi/mass) records, "
            "or a jagged collection like events.Muon"
        )
    if n_objects is not None and len(daughters) != n_objects:
        raise InputError(
            f"the model was trained on {n_objects} objects but the candidates have {len(daughters)} "
            f"4-vector daughters ({', '.join(daughters)}); pass objects=[...] to choose {n_objects}"
        )
    return daughters


def candidate_p4(
    candidates: ak.Array,
    *,
    objects: Sequence[str] | None = None,
    n_objects: int | None = None,
    where: str = "candidates",
) -> CandidateArrays:
    """Take the daughters' 4-momenta out of awkward candidates.

    Args:
        candidates: records of 4-vector daughters (``N * {...}`` or
            ``N * var * {...}``) or a jagged collection of 4-vectors (``N * var * Muon``).
        objects: daughter field names to use, in the model's order (default:
            every 4-vector field, in record order; for a collection the first
            ``n_objects`` objects become ``<name>0, <name>1, ...``).
        n_objects: the model's object count k, checked against the daughters;
            required for a jagged collection (how many objects to keep).
        where: how error messages name ``candidates``.

    Returns:
        :class:`CandidateArrays` with p4 of shape (M, k, 4) in GeV.

    Raises:
        InputError: not a candidate array, the wrong number of daughters, missing
            fields, option-type (None) coordinates.
    """
    if not isinstance(candidates, ak.Array):
        raise InputError(f"{where} must be an awkward Array, got {type(candidates).__name__}")
    typetracer = _is_typetracer(candidates)
    depth = candidates.ndim
    if depth not in (1, 2) or not ak.fields(candidates):
        raise InputError(
            f"{where} must be records (N * {{...}}) or lists of records per event (N * var * {{...}}), "
            f"got type {candidates.type}"
        )
    if depth == 2 and _is_vector_record(candidates):
        # a collection of objects: the first k of each event form one candidate
        if n_objects is None:
            raise InputError(
                f"{where} is a collection of 4-vectors; say how many objects make a candidate (n_objects)"
            )
        n = ak.num(candidates, axis=1)
        if not typetracer:
            n = ak.to_numpy(n)
            keep = n >= n_objects
            clipped = candidates[keep][:, :n_objects]
            flat = ak.flatten(clipped, axis=1)
            p4 = p4_of_vectors(flat, where).reshape(-1, n_objects, 4)
            counts = keep.astype(np.int64)
        else:
            ak.typetracer.touch_data(n)
            p4_of_vectors(ak.flatten(candidates, axis=1), where)
            p4, counts = np.empty((0, n_objects, 4)), None
        names = tuple(objects) if objects is not None else _collection_names(candidates, n_objects)
        if len(names) != n_objects:
            raise InputError(
                f"{len(names)} object names given for candidates of {n_objects} objects"
            )
        return CandidateArrays(p4, names, counts, True, typetracer)

    flat = candidates
    counts = None
    if depth == 2:
        n = ak.num(candidates, axis=1)
        if typetracer:
            ak.typetracer.touch_data(n)
        else:
            counts = np.asarray(ak.to_numpy(n), dtype=np.int64)
        flat = ak.flatten(candidates, axis=1)
    names = _daughter_fields(flat, objects, n_objects)
    if n_objects is not None and len(names) != n_objects:
        raise InputError(
            f"the model was trained on {n_objects} objects but {len(names)} daughters were chosen ({', '.join(names)})"
        )
    parts = [p4_of_vectors(flat[name], f"{where}.{name}") for name in names]
    p4 = np.stack(parts, axis=1) if not typetracer else np.empty((0, len(names), 4))
    return CandidateArrays(p4, tuple(names), counts, depth == 2, typetracer)


def _collection_names(collection: ak.Array, k: int) -> tuple[str, ...]:
    name = (
        ak.parameters(collection).get("collection_name")
        or collection.layout.content.parameter("__record__")
        or "p"
    )
    return tuple(f"{name}{i}" for i in range(k))


def to_awkward(
    p4: np.ndarray,
    objects: Sequence[str],
    *,
    weight: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> ak.Array:
    """Candidates as awkward records of ``Momentum4D`` daughters with the vector behavior.

    Args:
        p4: (px, py, pz, E) in GeV, shape (M, k, 4).
        objects: the k daughter field names.
        weight: per-candidate weights, shape (M,), stored as field ``weight``.
        counts: candidates per event, shape (N,) summing to M: the result is
            then ``N * var * {...}``, else ``M * {...}``.
        extra: further per-candidate fields, each of shape (M,).

    The behavior (:data:`VECTOR_BEHAVIOR`) is attached to the array itself, so
    ``(c.K1 + c.pi1).mass`` works in a worker process without
    ``vector.register_awkward()``, and the array pickles with plain ``pickle``.
    """
    p4 = np.asarray(p4, dtype=np.float64)
    if p4.ndim != 3 or p4.shape[1:] != (len(objects), 4):
        raise InputError(
            f"p4 must have shape (M, {len(objects)}, 4) for objects {list(objects)}, got {p4.shape}"
        )
    out = Candidates(p4, Layout.default(objects), weight).to_awkward()
    for name, values in (extra or {}).items():
        out = ak.with_field(out, np.asarray(values), name)
    if counts is not None:
        out = ak.unflatten(out, np.asarray(counts, dtype=np.int64), axis=0)
    return ak.Array(out, behavior=VECTOR_BEHAVIOR)
