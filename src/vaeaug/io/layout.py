"""How candidates are laid out in a ROOT tree, and conversion to 4-momenta.

A :class:`Layout` remembers the branch names, component names and types of
the input, so generated candidates are written back under the same names and
types and the user's downstream code runs unchanged. Two layouts exist:

* ``flat``: one branch per object and component, e.g. ``K1_px ... pi2_E``;
* ``jagged``: the first k objects of a NanoAOD-style collection, e.g.
  ``Muon_pt/eta/phi/mass``; written back as a collection of exactly k objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import vector

from ..errors import InputError
from ..kinematics import COMPONENTS
from .labels import ObjectLabels

__all__ = [
    "COMPONENT_SETS",
    "FORMATS",
    "Layout",
    "coordinates_of",
    "daughter_components",
    "detect_flat_objects",
    "from_p4",
    "p4_from_coordinates",
    "parse_daughters",
    "to_p4",
]

#: ROOT object kinds read and written: ``"ttree"`` (TTree) and ``"rntuple"``
#: (ROOT::RNTuple, ROOT's columnar successor, uproot >= 5.7 writes it).
FORMATS = ("ttree", "rntuple")

#: Recognised 4-momentum component names, in the order read. The first three
#: spell cartesian momenta, the others collider coordinates.
COMPONENT_SETS: tuple[tuple[str, str, str, str], ...] = (
    ("px", "py", "pz", "E"),
    ("Px", "Py", "Pz", "E"),
    ("px", "py", "pz", "e"),
    ("pt", "eta", "phi", "mass"),
    ("pt", "eta", "phi", "m"),
    ("pt", "eta", "phi", "E"),
    ("pt", "eta", "phi", "e"),
)

_VECTOR_NAMES = {
    "px": "px",
    "py": "py",
    "pz": "pz",
    "e": "E",
    "pt": "pt",
    "eta": "eta",
    "phi": "phi",
    "mass": "mass",
    "m": "mass",
}


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the candidates' 4-momenta live in a tree.

    Attributes:
        kind: ``"flat"`` or ``"jagged"``.
        objects: the k object names (``("K1", "pi1", "pi2")``; for a jagged
            collection ``("Muon0", "Muon1")``).
        components: the four component names as spelled in the branches.
        collection: the collection name of a jagged layout (``"Muon"``), else None.
        dtypes: branch name -> numpy dtype string of the input branch.
        tree: the tree (or RNTuple) name of the input.
        format: ``"ttree"`` or ``"rntuple"``: what the input was, and so what
            is written by default.
        branches: object -> its four branch names, when they do not follow
            ``<object>_<component>`` (``{"mu1": ("px1", "py1", "pz1", "E1")}``).
        labels: the input's per-object labels (``Muon_charge``, ``K1_charge``) and how
            often each combination occurs (:class:`~vaeaug.io.labels.ObjectLabels`), written
            with generated candidates; None when the input has none.
    """

    kind: str
    objects: tuple[str, ...]
    components: tuple[str, str, str, str]
    collection: str | None = None
    dtypes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tree: str = "candidates"
    format: str = "ttree"
    branches: Mapping[str, tuple[str, str, str, str]] = dataclasses.field(default_factory=dict)
    labels: ObjectLabels | None = None

    def __post_init__(self) -> None:
        """Refuse a layout no tree could hold or no writer could write back (a model file
        edited by hand): an unknown kind or format, components that are not one of
        :data:`COMPONENT_SETS`, object and branch names that are empty, repeated, or hold
        whitespace, control characters or '/', and branch types other than bool, integer or
        float (:meth:`output_dtype`)."""
        if self.kind not in ("flat", "jagged"):
            raise InputError(f"layout kind {self.kind!r} unknown; valid: flat, jagged")
        if self.format not in FORMATS:
            raise InputError(f"layout format {self.format!r} unknown; valid: {', '.join(FORMATS)}")
        if tuple(self.components) not in COMPONENT_SETS:
            raise InputError(
                f"layout components {list(self.components)} unknown; valid: "
                + ", ".join("/".join(c) for c in COMPONENT_SETS)
            )
        if not self.objects:
            raise InputError("a layout needs at least one object")
        for name in self.objects:
            _check_name(name, "object")
        if len(set(self.objects)) != len(self.objects):
            raise InputError(
                f"layout objects {list(self.objects)} repeat a name; each must be unique"
            )
        if self.kind == "jagged":
            _check_name(self.collection, "collection")
        if not isinstance(self.tree, str) or not self.tree or not self.tree.isprintable():
            raise InputError(f"layout tree {self.tree!r} is not a tree name (a printable string)")
        unknown = [o for o in self.branches if o not in self.objects]
        if unknown or any(len(b) != 4 for b in self.branches.values()):
            raise InputError(
                f"layout branches {dict(self.branches)} must map objects of the layout "
                f"({', '.join(self.objects)}) to four branch names each"
            )
        names = self.branch_names()
        for name in names:
            _check_name(name, "branch")
        if repeated := sorted({b for b in names if names.count(b) > 1}):
            raise InputError(
                f"layout branch names {', '.join(repeated)} are used twice; each object "
                "component needs its own branch"
            )
        if self.labels is not None:
            self._check_labels(self.labels)
        for name, dtype in self.dtypes.items():
            if _numeric_kind(dtype) is None:
                raise InputError(
                    f"layout type {dtype!r} of branch {name!r} is not a numeric type; valid: "
                    "bool, integer or float types (float32, float64, int16, ...)"
                )

    def _check_labels(self, labels: ObjectLabels) -> None:
        """Label fields usable as branch names, of integer types, one pattern value per field
        and object, positive counts."""
        for name in labels.names:
            _check_name(name, "label")
        width = len(labels.names) * len(self.objects)
        if (
            len(labels.dtypes) != len(labels.names)
            or any(_numeric_kind(t) not in ("i", "u", "b") for t in labels.dtypes)
            or any(len(p) != width for p in labels.patterns)
            or len(labels.counts) != len(labels.patterns)
            or any(c < 1 for c in labels.counts)
        ):
            raise InputError(
                f"layout labels {list(labels.names)} are inconsistent; valid: one integer type "
                f"per label, patterns of {width} values (labels x objects), a count >= 1 each"
            )

    @property
    def n_objects(self) -> int:
        return len(self.objects)

    def branch(self, obj: str, i: int) -> str:
        """The branch of component ``i`` of object ``obj`` in a flat layout."""
        if obj in self.branches:
            return self.branches[obj][i]
        return f"{obj}_{self.components[i]}"

    def output_dtype(self, name: str) -> str:
        """The type branch ``name`` is written with: the input's when it is float32 or float64,
        float64 when the input held integers or booleans (generated momenta are not integers:
        an int16 in MeV would wrap) or another float (float16 rounds, no writer takes it),
        float32 when unknown."""
        dtype = np.dtype(self.dtypes.get(name, "float32"))
        return dtype.name if dtype.name in ("float32", "float64") else "float64"

    def integer_branches(self) -> list[str]:
        """The input branches of integer or boolean type (written as float64)."""
        return [b for b in self.branch_names()
                if np.dtype(self.dtypes.get(b, "float32")).kind != "f"]  # fmt: skip

    def read_selection(self) -> dict:
        """``read_candidates`` keyword arguments that read this layout's branches from a file:
        the collection, the named daughter branches, or the flat objects."""
        if self.kind == "jagged":
            return {"collection": self.collection, "n_objects": self.n_objects}
        if self.branches:
            return {"daughters": {o: list(b) for o, b in self.branches.items()}}
        return {"objects": list(self.objects)}

    def branch_names(self) -> list[str]:
        """The input branch names, object-major (``K1_px, K1_py, ..., pi2_E``)."""
        if self.kind == "jagged":
            return [f"{self.collection}_{c}" for c in self.components]
        return [self.branch(o, i) for o in self.objects for i in range(4)]

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "objects": list(self.objects),
            "components": list(self.components),
            "collection": self.collection,
            "dtypes": dict(self.dtypes),
            "tree": self.tree,
            "format": self.format,
            "branches": {o: list(b) for o, b in self.branches.items()},
            "labels": None if self.labels is None else self.labels.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Layout:
        """The layout :meth:`to_dict` wrote. Raises InputError naming a missing key or a value
        of the wrong JSON type; the values themselves are checked as every layout's are."""
        if not isinstance(d, Mapping) or any(k not in d for k in ("kind", "objects", "components")):
            keys = sorted(d) if isinstance(d, Mapping) else type(d).__name__
            raise InputError(f"a layout needs the keys kind, objects and components; got {keys}")
        branches = d.get("branches") or {}
        dtypes = d.get("dtypes") or {}
        if (
            not _strings(d["objects"])
            or not _strings(d["components"])
            or not isinstance(branches, Mapping)
            or not all(_strings(b) for b in branches.values())
            or not isinstance(dtypes, Mapping)
        ):
            raise InputError(
                "a layout's objects and components are lists of strings, its branches maps "
                "objects to lists of strings and its dtypes maps branches to type names"
            )
        return cls(
            kind=d["kind"],
            objects=tuple(d["objects"]),
            components=tuple(d["components"]),
            collection=d.get("collection"),
            dtypes=dict(dtypes),
            tree=d.get("tree", "candidates"),
            format=d.get("format", "ttree"),
            branches={o: tuple(b) for o, b in branches.items()},
            labels=ObjectLabels.from_dict(d.get("labels")),
        )

    @classmethod
    def default(cls, objects: Iterable[str]) -> Layout:
        """A flat (px, py, pz, E) float32 layout for arrays that came from no file."""
        objects = tuple(objects)
        comps = COMPONENT_SETS[0]
        return cls(
            "flat", objects, comps, None, {f"{o}_{c}": "float32" for o in objects for c in comps}
        )


def _check_name(name: object, what: str) -> None:
    """Refuse an object, collection or branch name that is not a non-empty string free of
    whitespace, control characters and '/' (a path separator in ROOT files)."""
    if (
        not isinstance(name, str)
        or not name
        or not name.isprintable()
        or any(c.isspace() or c == "/" for c in name)
    ):
        raise InputError(
            f"layout {what} name {name!r} is not usable: valid names are non-empty, without "
            "whitespace, control characters or '/'"
        )


def _strings(value: object) -> bool:
    """Is ``value`` a JSON list of strings?"""
    return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)


def _numeric_kind(dtype: object) -> str | None:
    """The numpy kind (``"b"``, ``"i"``, ``"u"``, ``"f"``) of a branch type string, None when
    it is not a bool, integer or float type (or no type at all)."""
    try:
        kind = np.dtype(dtype).kind if isinstance(dtype, str) else None
    except TypeError:
        return None
    return kind if kind in ("b", "i", "u", "f") else None


def detect_flat_objects(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, str, str, str]]:
    """Find objects spelled ``<object>_<component>`` among branch ``names``.

    Returns the object names in order of first appearance and the component
    set that covers the most objects; empty objects when none is complete.
    """
    names = list(names)
    present = set(names)
    best: tuple[tuple[str, ...], tuple[str, str, str, str]] = ((), COMPONENT_SETS[0])
    for comps in COMPONENT_SETS:
        objects: list[str] = []
        for name in names:
            prefix, sep, suffix = name.rpartition("_")
            if sep and suffix == comps[0] and all(f"{prefix}_{c}" in present for c in comps):
                objects.append(prefix)
        if len(objects) > len(best[0]):
            best = (tuple(objects), comps)
    return best


# Daughter branch names reduced to a component name: "px1" -> "px", "mu1_E" -> "e"
_MAPPED_SETS = {
    ("px", "py", "pz", "e"): ("px", "py", "pz", "E"),
    ("px", "py", "pz", "energy"): ("px", "py", "pz", "E"),
    ("pt", "eta", "phi", "m"): ("pt", "eta", "phi", "mass"),
    ("pt", "eta", "phi", "mass"): ("pt", "eta", "phi", "mass"),
    ("pt", "eta", "phi", "e"): ("pt", "eta", "phi", "E"),
    ("pt", "eta", "phi", "energy"): ("pt", "eta", "phi", "E"),
}


def _component_of(branch: str, obj: str) -> str:
    token = branch.lower().replace(obj.lower(), "") if obj else branch.lower()
    return "".join(c for c in token if c.isalpha())


def parse_daughters(specs: Iterable[str]) -> dict[str, tuple[str, str, str, str]]:
    """Parse ``NAME=B1,B2,B3,B4`` daughter specifications (the CLI's ``--daughter``).

    The four branches are the daughter's px, py, pz, E or pt, eta, phi, mass,
    in that order, e.g. ``mu1=px1,py1,pz1,E1`` or ``mu1=pt1,eta1,phi1,M1``.

    Returns:
        daughter name -> its four branch names, in the order given.
    """
    out: dict[str, tuple[str, str, str, str]] = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        branches = tuple(b.strip() for b in rest.split(","))
        if not sep or not name.strip() or len(branches) != 4 or not all(branches):
            raise InputError(
                f"daughter '{spec}' is not NAME=B1,B2,B3,B4; give four branches, "
                "e.g. mu1=px1,py1,pz1,E1 or mu1=pt1,eta1,phi1,M1"
            )
        name = name.strip()
        if name in out:
            raise InputError(f"daughter '{name}' is given twice")
        out[name] = branches  # type: ignore[assignment]
    return out


def daughter_components(obj: str, branches: tuple[str, ...]) -> tuple[str, str, str, str]:
    """The components (``px/py/pz/E`` or ``pt/eta/phi/mass``) that ``branches`` spell.

    The branch names must read, once the daughter name, digits and separators
    are removed, as px, py, pz, E (or e, energy) or pt, eta, phi, M (or m,
    mass, E), in this order.
    """
    tokens = tuple(_component_of(b, obj) for b in branches)
    comps = _MAPPED_SETS.get(tokens)
    if comps is None:
        raise InputError(
            f"daughter '{obj}': cannot tell the coordinates of branches {', '.join(branches)}; "
            "give them in the order px,py,pz,E or pt,eta,phi,M (names such as px1,py1,pz1,E1 "
            "or pt1,eta1,phi1,M1)"
        )
    return comps


def coordinates_of(p4: np.ndarray, names: Sequence[str]) -> list[np.ndarray]:
    """Coordinates ``names`` of 4-momenta ``p4`` (..., 4), (px, py, pz, E) in GeV, each of shape (...).

    ``names`` are vector's coordinate names: ``px, py, pz, E`` are views of ``p4``;
    ``pt, eta, phi, theta, mass``... are computed with ``vector`` (float64).
    """
    v = None
    out = []
    for name in names:
        if name in COMPONENTS:
            out.append(p4[..., COMPONENTS.index(name)])
            continue
        if v is None:
            v = vector.array({c: p4[..., i] for i, c in enumerate(COMPONENTS)})
        if name == "mass":
            # a mass coordinate is written to a branch, which holds no negative mass:
            # clamp tiny negative m^2 from rounding instead of returning NaN
            out.append(np.sqrt(np.maximum(v.tau2, 0.0)))
        else:
            out.append(np.asarray(getattr(v, name), dtype=np.float64))
    return out


def p4_from_coordinates(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """(px, py, pz, E) in GeV, shape (..., 4) float64, from one complete set of coordinate
    columns named as vector names them (``{"pt": ..., "eta": ..., "phi": ..., "mass": ...}``)."""
    if set(COMPONENTS) <= set(columns):
        return np.stack([columns[c] for c in COMPONENTS], axis=-1).astype(np.float64, copy=False)
    v = vector.array(dict(columns))
    return np.stack([v.px, v.py, v.pz, v.E], axis=-1).astype(np.float64, copy=False)


def to_p4(values: np.ndarray, components: tuple[str, str, str, str]) -> np.ndarray:
    """Convert (..., 4) arrays in ``components`` to (px, py, pz, E) in GeV, float64."""
    values = np.asarray(values, dtype=np.float64)
    return p4_from_coordinates(
        {_VECTOR_NAMES[c.lower()]: values[..., i] for i, c in enumerate(components)}
    )


def from_p4(p4: np.ndarray, components: tuple[str, str, str, str]) -> np.ndarray:
    """Convert (..., 4) arrays of (px, py, pz, E) in GeV to ``components`` order."""
    p4 = np.asarray(p4, dtype=np.float64)
    if components[0].lower() == "px":
        return p4
    return np.stack(coordinates_of(p4, [_VECTOR_NAMES[c.lower()] for c in components]), axis=-1)
