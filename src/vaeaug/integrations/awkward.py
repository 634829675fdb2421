"""Adaptors between awkward/vector/coffea records and the model's (N, k, 4) 4-momenta.

Into the model, :func:`candidate_p4` accepts candidates whose fields are
4-vectors, e.g. from :func:`candidates` (the builder), ``ak.combinations`` or
``ak.zip`` (``{"K1": ..., "pi1": ..., "pi2": ...}``), one candidate per entry
(``N * {...}``) or a list of candidates per event (``N * var * {...}``).

A 4-vector is any record with one complete set of momentum coordinates, in
any system ``vector`` knows: ``px/py/pz/E`` (also ``Px/Py/Pz``, ``e``,
``energy``), ``pt/eta/phi/mass`` (NanoAOD), ``pt/eta/phi/E``,
``rho/phi/theta/tau``... The names ``x/y/z/t`` are read as momentum only when
the record says it is a Lorentz vector (a ``vector`` ``Momentum4D`` or a
coffea ``LorentzVector``/``Candidate`` such as ``Muon``): elsewhere they are a
position (a NanoAOD secondary vertex's ``x, y, z``) and are never taken for a
momentum.

A jagged collection (``events.Muon``, ``N * var * Muon``) is not candidates:
which objects, with which charges, form one is a choice. :func:`candidates`
makes it explicit: ``candidates(events.Muon, n=2, charge="opposite")``.

Back out, :func:`to_awkward` builds records nested like the input whose
daughters, named like the input's, are

* ``vector`` ``Momentum4D`` records (``px, py, pz, E``) for plain awkward input;
* records of the input's own type (e.g. coffea's ``Muon``, a
  ``PtEtaPhiMCandidate``) with its coordinates and behavior, for coffea
  NanoEvents input, so they add to real objects and fill the same histograms;

and carry the fields that the decay fixes (:data:`CARRIED_FIELDS`, the
charge) from the candidate they were generated from. The behavior is attached
to the array and pickles by reference (coffea executors send outputs back with
plain ``pickle``).

Every function also accepts typetracer arrays (dask-awkward runs functions on
them first): it then touches exactly the columns it would read.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence

import awkward as ak
import numpy as np
import vector

from ..errors import InputError
from ..io.behavior import VECTOR_BEHAVIOR, behavior_of
from ..io.candidates import Candidates
from ..io.layout import Layout, coordinates_of, p4_from_coordinates

__all__ = [
    "CARRIED_FIELDS",
    "CHARGE_RULES",
    "MOMENTUM4D",
    "VECTOR_BEHAVIOR",
    "AwkwardSource",
    "DaughterStyle",
    "behavior_of",
    "candidate_p4",
    "candidates",
    "coordinate_fields",
    "coordinate_values",
    "from_awkward",
    "is_dask",
    "p4_of_vectors",
    "to_awkward",
    "zip_candidates",
]

#: Daughter fields that the decay fixes: each generated daughter carries the
#: value of the daughter it was generated from (a muon stays a mu+ or a mu-).
CARRIED_FIELDS = ("charge", "pdgId")


@dataclasses.dataclass(frozen=True)
class DaughterStyle:
    """How generated daughters are built.

    Attributes:
        record: the record name (``"Momentum4D"``, or the input's, e.g. ``"Muon"``).
        coords: the coordinate fields written, e.g. ``("pt", "eta", "phi", "mass")``.
        source: where the behavior comes from (see :func:`behavior_of`).
    """

    record: str
    coords: tuple[str, ...]
    source: str


#: Plain awkward input gives ``vector`` ``Momentum4D`` daughters in px, py, pz, E.
MOMENTUM4D = DaughterStyle("Momentum4D", ("px", "py", "pz", "E"), "vector")
# coffea input whose record type cannot be rebuilt from its module falls back to this
_COFFEA_CANDIDATE = DaughterStyle(
    "PtEtaPhiMCandidate", ("pt", "eta", "phi", "mass"), "coffea.nanoevents.methods.candidate"
)

# One name per vector coordinate, in the order vector's numpy backend accepts;
# a record must have exactly one azimuthal pair, one longitudinal and one temporal.
# x/y/z/t only count for records that declare themselves Lorentz vectors.
_AZIMUTHAL = (
    ("px", "py"),
    ("Px", "Py"),
    ("PX", "PY"),
    ("pt", "phi"),
    ("rho", "phi"),
    ("Pt", "Phi"),
)
_LONGITUDINAL = ("pz", "Pz", "PZ", "eta", "Eta", "theta")
_TEMPORAL = ("E", "e", "energy", "mass", "m", "M", "Mass", "tau")
_LORENTZ_ONLY = (("x", "y"), "z", "t")
_POSITION = {"x", "y", "z"}
_CANONICAL = {
    "Px": "px", "PX": "px", "Py": "py", "PY": "py", "Pz": "pz", "PZ": "pz",
    "Pt": "pt", "Phi": "phi", "Eta": "eta", "e": "E", "energy": "E", "Mass": "mass", "m": "mass", "M": "mass",
    # read as momenta in a Lorentz-vector record, whatever it calls them
    "x": "px", "y": "py", "z": "pz", "t": "E", "rho": "pt", "tau": "mass",
}  # fmt: skip


def coordinate_fields(
    fields: Sequence[str], *, lorentz: bool = False
) -> tuple[str, str, str, str] | None:
    """The four coordinate field names of a 4-vector record, or None if incomplete.

    Cartesian momenta win when a record has several systems, since they are
    what the model uses (no conversion rounding). ``lorentz``: the record is a
    declared Lorentz vector (vector ``Momentum4D``, coffea ``LorentzVector``),
    so ``x, y, z, t`` are momentum components too; otherwise they are a position.
    """
    present = set(fields)
    azimuthal, longitudinal, temporal = _AZIMUTHAL, _LONGITUDINAL, _TEMPORAL
    if lorentz:
        azimuthal = (*_AZIMUTHAL, _LORENTZ_ONLY[0])
        longitudinal = (*_LONGITUDINAL, _LORENTZ_ONLY[1])
        temporal = (*_TEMPORAL, _LORENTZ_ONLY[2])
    for az in azimuthal:
        if not set(az) <= present:
            continue
        for lon in longitudinal:
            if lon not in present:
                continue
            for tem in temporal:
                if tem in present:
                    return (*az, lon, tem)
    return None


def _record_layout(array):
    layout = array.layout
    while not layout.is_record:
        if not hasattr(layout, "content"):
            return None
        layout = layout.content
    return layout


def _record_class(array) -> type | None:
    """The behavior class of ``array``'s records (vector's, coffea's), or None."""
    layout = _record_layout(array)
    name = layout.parameter("__record__") if layout is not None else None
    if name is None:
        return None
    cls = (array.behavior or {}).get(name) or ak.behavior.get(name)
    return cls if isinstance(cls, type) else None


def _is_lorentz(array) -> bool:
    cls = _record_class(array)
    return cls is not None and issubclass(cls, vector.backends.awkward.MomentumAwkward4D)


def _coordinates(array: ak.Array) -> tuple[str, str, str, str] | None:
    return coordinate_fields(ak.fields(array), lorentz=_is_lorentz(array))


def _is_vector_record(array: ak.Array) -> bool:
    return _coordinates(array) is not None


def _is_position(array: ak.Array) -> bool:
    return _POSITION <= set(ak.fields(array)) and not _is_vector_record(array)


def _position_error(where: str, fields: Sequence[str]) -> InputError:
    return InputError(
        f"{where} has position fields x, y, z but no momentum (fields {list(fields)[:12]}): vaeaug "
        "never reads x, y, z as a momentum unless the record is a Lorentz vector (vector Momentum4D, "
        "coffea LorentzVector/Candidate); give px/py/pz/E or pt/eta/phi/mass daughters"
    )


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


def _daughter_p4(array: ak.Array, where: str) -> tuple[np.ndarray, tuple[str, str, str, str]]:
    """(px, py, pz, E) of a flat array of 4-vector records, and the coordinate fields read."""
    fields = ak.fields(array)
    coords = _coordinates(array)
    if coords is None:
        if _POSITION <= set(fields):
            raise _position_error(where, fields)
        raise InputError(
            f"{where} is not a 4-vector: fields {fields[:12]} lack a complete set of coordinates; "
            "expected px/py/pz/E, pt/eta/phi/mass, pt/eta/phi/E (or another vector coordinate system)"
        )
    cols = {_CANONICAL.get(c, c): _column(array, c, where) for c in coords}
    if _is_typetracer(array):
        return np.empty((0, 4)), coords
    values = {k: np.asarray(ak.to_numpy(v), dtype=np.float64) for k, v in cols.items()}
    return p4_from_coordinates(values), coords


def p4_of_vectors(array: ak.Array, where: str = "objects") -> np.ndarray:
    """(px, py, pz, E) in GeV of a flat array of 4-vector records: (N,) -> (N, 4) float64.

    ``array`` may be a vector ``Momentum4D`` array, a NanoAOD collection or any
    record with a complete set of coordinates (module docstring). ``where``
    names the array in error messages.
    """
    return _daughter_p4(array, where)[0]


def _carried_values(array: ak.Array, field: str) -> np.ndarray:
    """A carried field's values, shape (M,) (empty, of the right dtype, on a typetracer)."""
    col = array[field]
    if _is_typetracer(col):
        ak.typetracer.touch_data(col)
        layout = col.layout
        while hasattr(layout, "content"):
            layout = layout.content
        return np.empty(0, dtype=layout.dtype)
    if col.layout.is_option:
        col = ak.fill_none(col, 0)
    return np.asarray(ak.to_numpy(col))


def _style(array: ak.Array, coords: Sequence[str]) -> DaughterStyle:
    """coffea records keep their type and coordinates; anything else becomes Momentum4D."""
    cls = _record_class(array)
    if cls is None or not cls.__module__.startswith("coffea."):
        return MOMENTUM4D
    record = _record_layout(array).parameter("__record__")
    module = importlib.import_module(cls.__module__)
    if getattr(module, "behavior", {}).get(record) is not cls:
        return _COFFEA_CANDIDATE
    fields = ak.fields(array)
    return DaughterStyle(record, tuple(f for f in fields if f in coords), cls.__module__)


@dataclasses.dataclass
class AwkwardSource:
    """Where candidates taken out of an awkward array sat, so outputs can be built like them.

    The candidates themselves (4-momenta, daughter names) are a
    :class:`~vaeaug.io.candidates.Candidates`; this is what the awkward input adds.

    Attributes:
        counts: candidates per event, shape (N,), when the input had an event
            axis (``N * var * {...}``); None for ``N * {...}``.
        nested: True when the input had an event axis (then ``counts`` is set,
            except on a typetracer).
        is_typetracer: True when the input was a typetracer (the candidates then
            hold no rows).
        carried: daughter -> {field: values of shape (M,)} for the
            :data:`CARRIED_FIELDS` the daughter has (empty arrays on a typetracer).
        styles: daughter -> how its generated copies are built (:class:`DaughterStyle`).
        dropped: the input fields that generated candidates cannot have (sorted,
            each once): a daughter's fields other than its coordinates and
            carried fields, and the candidate record's fields other than daughters.
    """

    counts: np.ndarray | None
    nested: bool = False
    is_typetracer: bool = False
    carried: dict[str, dict[str, np.ndarray]] = dataclasses.field(default_factory=dict)
    styles: dict[str, DaughterStyle] = dataclasses.field(default_factory=dict)
    dropped: tuple[str, ...] = ()


_BUILDER_HINT = (
    "build candidates explicitly, e.g. vaeaug.candidates(events.Muon, n=2, charge='opposite') "
    "or ak.combinations(muons, 2, fields=['mu1', 'mu2'])"
)


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
        positions = [f for f in fields if ak.fields(record[f]) and _is_position(record[f])]
        if positions:
            raise _position_error(f"candidates.{positions[0]}", ak.fields(record[positions[0]]))
        raise InputError(
            f"candidates with fields {fields[:12]} have no 4-vector daughters; expected records such as "
            "ak.zip({'K1': k, 'pi1': p1, 'pi2': p2}) of vector Momentum4D (or pt/eta/phi/mass) records; "
            + _BUILDER_HINT
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
) -> Candidates:
    """The daughters' 4-momenta of awkward candidates, as :class:`~vaeaug.io.candidates.Candidates`.

    Arguments and errors as :func:`from_awkward`, which also says how the
    candidates sat in the input; ``.p4`` has shape (M, k, 4) in GeV.
    """
    return from_awkward(candidates, objects=objects, n_objects=n_objects, where=where)[0]


def from_awkward(
    candidates: ak.Array,
    *,
    objects: Sequence[str] | None = None,
    n_objects: int | None = None,
    where: str = "candidates",
) -> tuple[Candidates, AwkwardSource]:
    """Take the daughters' 4-momenta (and carried fields) out of awkward candidates.

    Args:
        candidates: records of 4-vector daughters, ``N * {...}`` or
            ``N * var * {...}`` (from :func:`candidates`, ``ak.combinations``
            or ``ak.zip``).
        objects: daughter field names to use, in the model's order (default:
            every 4-vector field, in record order).
        n_objects: the model's object count k, checked against the daughters.
        where: how error messages name ``candidates``.

    Returns:
        The candidates (p4 of shape (M, k, 4) in GeV, float64; no rows on a
        typetracer; a flat px/py/pz/E layout of the daughter names) and their
        :class:`AwkwardSource`.

    Raises:
        InputError: not a candidate array, a bare collection (``events.Muon``:
            build candidates with :func:`candidates`), the wrong number of
            daughters, missing fields, position fields, option-type (None)
            coordinates.
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
        record = _record_layout(candidates).parameter("__record__") or "4-vector"
        raise InputError(
            f"{where} is a collection of objects (N * var * {record}), not candidates: which objects "
            f"form a candidate, with which charges, is ambiguous; {_BUILDER_HINT}"
        )

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
    parts, carried, styles, dropped = [], {}, {}, set()
    for name in names:
        daughter = flat[name]
        p4, coords = _daughter_p4(daughter, f"{where}.{name}")
        parts.append(p4)
        fields = ak.fields(daughter)
        carried[name] = {f: _carried_values(daughter, f) for f in CARRIED_FIELDS if f in fields}
        styles[name] = _style(daughter, coords)
        dropped.update(f for f in fields if f not in coords and f not in carried[name])
    dropped.update(f for f in ak.fields(flat) if f not in names)
    p4 = np.stack(parts, axis=1) if not typetracer else np.empty((0, len(names), 4))
    source = AwkwardSource(counts, depth == 2, typetracer, carried, styles, tuple(sorted(dropped)))
    return Candidates(p4, Layout.default(names)), source


def is_dask(array) -> bool:
    """Whether ``array`` is a dask-awkward collection (lazy, partitioned)."""
    return type(array).__module__.startswith("dask_awkward")


def _default_names(collection, n: int) -> tuple[str, ...]:
    meta = collection._meta if is_dask(collection) else collection
    name = ak.parameters(meta).get("collection_name")
    if name is None:
        layout = _record_layout(meta)
        name = layout.parameter("__record__") if layout is not None else None
    if name is None or name.startswith(("Momentum", "Vector")):
        name = "p"
    return tuple(f"{name}{i}" for i in range(n))


#: Valid values of ``candidates(charge=...)`` besides an integer total charge.
CHARGE_RULES = ("opposite", "same", None)


def candidates(
    collection,
    n: int = 2,
    *,
    charge: str | int | None = "opposite",
    sort_by: str | None = "pt",
    fields: Sequence[str] | None = None,
):
    """Candidates of ``n`` objects of one collection: every combination, selected by charge.

    ::

        pairs = vaeaug.candidates(events.Muon, n=2, charge="opposite")   # N * var * {Muon0, Muon1}
        dplus = vaeaug.candidates(tracks, n=3, charge=+1, fields=["t1", "t2", "t3"])

    Args:
        collection: a jagged collection of 4-vectors, ``N * var * {...}``
            (awkward or dask-awkward; coffea NanoEvents, vector ``Momentum4D``,
            or plain records with momentum coordinates).
        n: objects per candidate (>= 1).
        charge: ``"opposite"``: total charge 0 with no neutral daughter (for
            n = 2, a + and a -); ``"same"``: all daughters of one charge; an
            integer: that total charge (``+1`` for D+ -> K- pi+ pi+); None: no
            selection (the collection needs no ``charge`` field).
        sort_by: sort each event's objects by this quantity, largest first,
            before combining, so daughter 0 is the leading one (default pT);
            None keeps the collection's order.
        fields: the daughter names (default ``<collection name>0 ... n-1``,
            e.g. ``Muon0, Muon1``).

    Returns:
        ``N * var * {name0, ..., name(n-1)}`` records built by
        ``ak.combinations``; each daughter keeps the collection's type and
        fields (so a generated one can have its type and charge).
    """
    dask = is_dask(collection)
    if dask:
        import dask_awkward as lib
    else:
        lib = ak
    meta = collection._meta if dask else collection
    if not isinstance(meta, ak.Array):
        raise InputError(f"collection must be an awkward Array, got {type(collection).__name__}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InputError(f"n must be an integer >= 1 (objects per candidate), got {n!r}")
    if meta.ndim != 2 or not ak.fields(meta):
        raise InputError(
            f"collection must be a jagged collection of records (N * var * {{...}}), such as "
            f"events.Muon, got type {meta.type}"
        )
    names = tuple(fields) if fields is not None else _default_names(collection, int(n))
    if len(names) != n or len(set(names)) != n:
        raise InputError(f"fields must be {n} distinct daughter names, got {list(names)}")
    if not _is_vector_record(meta):
        if _POSITION <= set(ak.fields(meta)):
            raise _position_error("collection", ak.fields(meta))
        raise InputError(
            f"collection records {ak.fields(meta)[:12]} lack a complete set of momentum "
            "coordinates; expected px/py/pz/E, pt/eta/phi/mass or pt/eta/phi/E"
        )
    if charge not in CHARGE_RULES and (
        isinstance(charge, bool) or not isinstance(charge, int | np.integer)
    ):
        raise InputError(
            f"charge {charge!r} unknown; valid: 'opposite', 'same', an integer total charge, or None"
        )
    if charge is not None and "charge" not in ak.fields(meta):
        raise InputError(
            f"charge={charge!r} needs a 'charge' field; the collection has {ak.fields(meta)[:12]}; "
            "pass charge=None to combine whatever the charges"
        )
    if charge == "opposite" and n % 2:
        raise InputError(
            f"charge='opposite' needs an even n (total charge 0), got n={n}; give the total "
            "charge instead, e.g. charge=1"
        )
    if sort_by is not None:
        if sort_by not in ak.fields(meta) and not hasattr(meta, sort_by):
            raise InputError(
                f"sort_by={sort_by!r} is neither a field nor a property of the collection "
                f"(fields {ak.fields(meta)[:12]}); pass sort_by=None to keep the order"
            )
        key = collection[sort_by] if sort_by in ak.fields(meta) else getattr(collection, sort_by)
        collection = collection[lib.argsort(key, axis=1, ascending=False)]
    combos = lib.combinations(collection, int(n), fields=list(names))
    return combos if charge is None else _select_charge(combos, names, charge)


def _select_charge(combos, names: Sequence[str], charge: str | int):
    """The candidates of ``combos`` (daughters ``names``) whose charges follow ``charge``."""
    q = [combos[name]["charge"] for name in names]
    total = q[0]
    for qi in q[1:]:
        total = total + qi
    if charge == "opposite":
        keep = total == 0
        for qi in q:
            keep = keep & (qi != 0)
    elif charge == "same":
        keep = q[0] != 0
        for qi in q[1:]:
            keep = keep & (qi == q[0])
    else:
        keep = total == int(charge)
    return combos[keep]


def coordinate_values(p4: np.ndarray, coords: Sequence[str]) -> dict[str, np.ndarray]:
    """Coordinates ``coords`` (field names, any system) of 4-momenta (M, 4) GeV, each (M,).

    Cartesian ones are views of ``p4``; others are computed
    (:func:`vaeaug.io.layout.coordinates_of`).
    """
    values = coordinates_of(p4, [_CANONICAL.get(c, c) for c in coords])
    return dict(zip(coords, values, strict=True))


def to_awkward(
    p4: np.ndarray,
    objects: Sequence[str],
    *,
    weight: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
    carried: dict[str, dict[str, np.ndarray]] | None = None,
    styles: dict[str, DaughterStyle] | None = None,
) -> ak.Array:
    """Candidates as awkward records of 4-vector daughters with their behavior attached.

    Args:
        p4: (px, py, pz, E) in GeV, shape (M, k, 4).
        objects: the k daughter field names.
        weight: per-candidate weights, shape (M,), stored as field ``weight``.
        counts: candidates per event, shape (N,) summing to M: the result is
            then ``N * var * {...}``, else ``M * {...}``.
        extra: further per-candidate fields, each of shape (M,).
        carried: daughter -> {field: values of shape (M,)} stored in the daughter
            after its coordinates (e.g. ``charge``).
        styles: daughter -> :class:`DaughterStyle` (default :data:`MOMENTUM4D`).

    The behavior (:data:`VECTOR_BEHAVIOR`, merged with coffea's for coffea
    styles) is attached to the array itself, so ``(c.K1 + c.pi1).mass`` works in
    a worker process without ``vector.register_awkward()``, and the array
    pickles with plain ``pickle``.
    """
    p4 = np.asarray(p4, dtype=np.float64)
    if p4.ndim != 3 or p4.shape[1:] != (len(objects), 4):
        raise InputError(
            f"p4 must have shape (M, {len(objects)}, 4) for objects {list(objects)}, got {p4.shape}"
        )
    columns = {
        obj: coordinate_values(p4[:, j], (styles or {}).get(obj, MOMENTUM4D).coords)
        for j, obj in enumerate(objects)
    }
    return zip_candidates(columns, weight=weight, counts=counts, extra=extra, carried=carried,
                          styles=styles)  # fmt: skip


def zip_candidates(
    columns: dict[str, dict[str, np.ndarray]],
    *,
    weight: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
    carried: dict[str, dict[str, np.ndarray]] | None = None,
    styles: dict[str, DaughterStyle] | None = None,
) -> ak.Array:
    """:func:`to_awkward` from coordinate columns that are already made (no copy of them).

    Args:
        columns: daughter -> {coordinate field: values of shape (M,)}, in the
            daughters' order and with the fields of each daughter's style
            (:func:`coordinate_values`).
        weight, counts, extra, carried, styles: as in :func:`to_awkward`.
    """
    fields, sources = {}, ["vector"]
    for obj, coordinates in columns.items():
        style = (styles or {}).get(obj, MOMENTUM4D)
        cols = {**coordinates, **(carried or {}).get(obj, {})}
        fields[obj] = ak.zip(cols, with_name=style.record)
        if style.source not in sources:
            sources.append(style.source)
    if weight is not None:
        fields["weight"] = np.asarray(weight)
    for name, values in (extra or {}).items():
        fields[name] = np.asarray(values)
    out = ak.zip(fields, depth_limit=1)
    if counts is not None:
        out = ak.unflatten(out, np.asarray(counts, dtype=np.int64), axis=0)
    return ak.Array(out, behavior=behavior_of(tuple(sources)))
