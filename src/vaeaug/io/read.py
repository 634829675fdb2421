"""Read decay candidates' 4-momenta from ROOT TTrees or RNTuples with uproot.

A TTree and an RNTuple are read the same way: ``file[name]`` gives either
(an RNTuple is ``uproot.models.RNTuple.Model_ROOT_3a3a_RNTuple``) and both
have ``keys()``, ``num_entries`` and ``arrays(branches, entry_start=...,
entry_stop=...)``. A cut is evaluated by :mod:`vaeaug.io.cut` for both (uproot's
RNTuple reader accepts ``cut=`` and ignores it).

Everything that can go wrong with user input raises :class:`~vaeaug.errors.InputError`
with a message that names the bad input and the valid choices.
"""

from __future__ import annotations

import fnmatch
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from ..errors import InputError, close_matches
from ..kinematics import unphysical_rows
from .candidates import Candidates
from .cut import cut_branches, evaluate_cut
from .labels import EVENT_ID_BRANCHES, ObjectLabels, label_fields_of
from .layout import COMPONENT_SETS, Layout, daughter_components, detect_flat_objects, to_p4

__all__ = ["IntegerBranchWarning", "NonFiniteWarning", "UnphysicalWarning", "read_candidates"]


#: Every component name of every component set (for recognising momentum branches).
_ALL_COMPONENTS = frozenset(c for comps in COMPONENT_SETS for c in comps)


class NonFiniteWarning(UserWarning):
    """Candidates with NaN or inf components were dropped."""


class UnphysicalWarning(UserWarning):
    """Candidates with an unphysical daughter (negative energy, spacelike, all zero, a
    component beyond 1e5 GeV) were dropped."""


class IntegerBranchWarning(UserWarning):
    """Momentum branches of integer or boolean type: read as float64, written as float64."""


#: uproot class names of the objects read as candidate tables, and their format.
_TABLE_CLASSES = {"TTree": "ttree", "TNtuple": "ttree", "ROOT::RNTuple": "rntuple"}
_KIND = {"ttree": "TTree", "rntuple": "RNTuple"}


def _open_tree(path: str | os.PathLike, tree: str | None):
    """Open the TTree or RNTuple ``tree`` of ``path``: (object, name, format)."""
    path = Path(path)
    if not path.exists():
        siblings = [p.name for p in path.parent.glob("*.root")] if path.parent.exists() else []
        raise InputError(f"input file '{path}' does not exist{close_matches(path.name, siblings)}")
    try:
        file = uproot.open(path)
    except Exception as err:  # uproot raises many kinds on a non-ROOT file
        raise InputError(f"'{path}' is not a readable ROOT file ({_one_line(err)})") from err
    # a truncated file (an interrupted copy or write) may still open, and even
    # yield some trees; its header says where the file should end
    size, end = path.stat().st_size, getattr(file.file, "fEND", None)
    if end is not None and size < end:
        file.close()
        raise InputError(
            f"'{path}' is truncated: it holds {size} bytes, but its header says {end} "
            "(an interrupted copy or write?); copy it again"
        )
    formats: dict[str, str] = {}
    for key, cls in file.classnames(recursive=True).items():
        if cls in _TABLE_CLASSES:
            formats.setdefault(key.split(";")[0], _TABLE_CLASSES[cls])
    trees = list(formats)
    listing = ", ".join(f"{t} ({_KIND[f]})" for t, f in formats.items()) or "none"
    if tree is None:
        if len(trees) != 1:
            file.close()
            raise InputError(
                f"'{path}' holds several trees or none (TTrees and RNTuples there: {listing}); "
                "choose one with --tree / tree="
            )
        tree = trees[0]
    if tree not in trees:
        file.close()
        raise InputError(
            f"tree '{tree}' not in '{path}'; trees there (TTree or RNTuple): {listing}"
            f"{close_matches(tree, trees)}"
        )
    try:
        return file[tree], tree, formats[tree]
    except Exception as err:
        file.close()
        raise InputError(
            f"tree '{tree}' in '{path}' cannot be read; the file is damaged ({_one_line(err)})"
        ) from err


def _one_line(err: Exception) -> str:
    """uproot's multi-line messages on one line, as error messages here are."""
    return " ".join(str(err).split())


def _select(names: list[str], patterns: Sequence[str] | None) -> list[str]:
    if not patterns:
        return names
    chosen = []
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise InputError(
                f"branch '{pattern}' matches nothing in the tree{close_matches(pattern, names)}"
            )
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def _named_daughters(daughters: Mapping[str, Sequence[str]], all_names: list[str], tree: str
                     ) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, tuple[str, ...]]]:  # fmt: skip
    """(objects, components, object -> its four branches) of ``daughters=``."""
    used: dict[str, str] = {}
    for obj, bnames in daughters.items():
        for b in bnames:
            if b in used:
                raise InputError(
                    f"branch '{b}' is given to two daughters ('{used[b]}' and '{obj}'): each "
                    "daughter needs its own four branches (check the --daughter options)"
                )
            used[b] = obj
    systems, mapped = {}, {}
    for obj, bnames in daughters.items():
        bnames = tuple(bnames)
        for b in bnames:
            if b not in all_names:
                raise InputError(
                    f"branch '{b}' of daughter '{obj}' not in tree '{tree}'{close_matches(b, all_names)}"
                )
        systems[obj] = daughter_components(obj, bnames)
        mapped[obj] = bnames
    comps = next(iter(systems.values()))
    if any(c != comps for c in systems.values()):
        raise InputError(
            "all daughters must use one coordinate system; got "
            + ", ".join(f"{o}: {'/'.join(c)}" for o, c in systems.items())
        )
    return tuple(mapped), comps, mapped


def _collection(collection: str, n_objects: int | None, all_names: list[str], tree: str
                ) -> tuple[tuple[str, ...], tuple[str, ...]]:  # fmt: skip
    """(objects, components) of the first ``n_objects`` objects of a jagged ``collection``."""
    comps = next(
        (c for c in COMPONENT_SETS if all(f"{collection}_{x}" in all_names for x in c)), None
    )
    if comps is None:
        raise InputError(
            f"collection '{collection}' lacks a complete set of 4-momentum branches in tree "
            f"'{tree}' (need e.g. {collection}_pt/eta/phi/mass or {collection}_px/py/pz/E)"
            f"{close_matches(collection + '_pt', all_names)}"
        )
    if n_objects is None or n_objects < 1:
        raise InputError(
            f"collection '{collection}' needs n_objects >= 1 (the first k objects are used)"
        )
    return tuple(f"{collection}{i}" for i in range(n_objects)), comps


def _flat_objects(names: list[str], all_names: list[str], objects: Sequence[str] | None,
                  tree: str) -> tuple[tuple[str, ...], tuple[str, ...]]:  # fmt: skip
    """(objects, components) of flat ``<object>_<component>`` branches among ``names``."""
    _refuse_collections(names, all_names, objects, tree)
    found, comps = detect_flat_objects(names)
    if objects:
        missing = [o for o in objects if not all(f"{o}_{c}" in all_names for c in comps)]
        if missing or not found:
            comps_list = "/".join(comps)
            raise InputError(
                f"object '{missing[0] if missing else objects[0]}' has no complete {comps_list} "
                f"branches in tree '{tree}'{close_matches((missing or list(objects))[0], found or all_names)}"
            )
        return tuple(objects), comps
    _refuse_incomplete(names, found, tree)
    if not found:
        raise InputError(
            f"no 4-momentum branches found in tree '{tree}' (looked for <object>_px/py/pz/E or "
            f"<object>_pt/eta/phi/mass); branches there: {', '.join(all_names[:20])}"
            + (" ..." if len(all_names) > 20 else "")
        )
    return found, comps


def _refuse_collections(names: list[str], all_names: list[str], objects: Sequence[str] | None,
                        tree: str) -> None:  # fmt: skip
    """Refuse reading NanoAOD-style collections (``nMuon``, ``Muon_pt[nMuon]``) as flat
    objects: name the collections and the option that reads them."""
    prefixes = {n.rpartition("_")[0] for n in names if n.rpartition("_")[2] in _ALL_COMPONENTS}
    counted = {n[1:] for n in all_names if n[:1] in "nN"}  # nMuon (NanoAOD), NMuon (HZZ)
    collections = sorted(p for p in prefixes if p and p in counted)
    asked = [o for o in objects or () if o in counted]
    if asked or (collections and not objects):
        example = (asked or ["Muon" if "Muon" in collections else collections[0]])[0]
        raise InputError(
            f"tree '{tree}' holds per-event collections (a counter n<Name>, then <Name>_pt "
            f"... per object): {', '.join(collections[:12])}"
            f"{' ...' if len(collections) > 12 else ''}. Read one with --collection NAME "
            f"--n-objects K (collection=, n_objects=), e.g. --collection {example} --n-objects 2 "
            "for the first two of each event"
        )


def _refuse_incomplete(names: list[str], found: Sequence[str], tree: str) -> None:
    """Refuse an object with three of the four components of a set but not the fourth
    (``pi2_px/py/pz`` without ``pi2_E``): left out, it would silently lose a daughter."""
    present = set(names)
    for comps in COMPONENT_SETS:
        prefixes = {n.rpartition("_")[0] for n in names if n.rpartition("_")[2] in comps}
        for prefix in sorted(prefixes - set(found)):
            have = [c for c in comps if f"{prefix}_{c}" in present]
            if len(have) == 3:
                (lacking,) = (c for c in comps if c not in have)
                raise InputError(
                    f"object '{prefix}' in tree '{tree}' has {', '.join(f'{prefix}_{c}' for c in have)} "
                    f"but no {prefix}_{lacking}: every daughter needs its four components. Pick "
                    "the complete ones with --objects / objects=, or name the branches with "
                    "--daughter / daughters="
                )


def _refuse_arrays(arrays: ak.Array, names: Sequence[str], tree: str) -> None:
    """Refuse a branch of ``names`` that holds an array per entry (jagged ``var * float``
    or fixed-size ``3 * float``) where one number per candidate belongs."""
    for name in names:
        content = arrays[name].type.content
        if isinstance(content, (ak.types.ListType, ak.types.RegularType)):
            kind = (
                "a jagged array" if isinstance(content, ak.types.ListType) else "a fixed-size array"
            )
            raise InputError(
                f"branch '{name}' in tree '{tree}' holds {kind} ({content}) per entry, not one "
                "number per candidate: read a per-event collection with --collection NAME "
                "--n-objects K (collection=, n_objects=), or give flat per-candidate branches"
            )


def _storage_rounding(dtypes: Mapping[str, str], wanted: Sequence[str]) -> float:
    """Half the storage quantum of the momentum branches: 0.5 when any holds integers
    (the unit is their precision), else 0 (float rounding is allowed for separately)."""
    return 0.5 if any(np.dtype(dtypes[b]).kind != "f" for b in wanted) else 0.0


def _values(arrays: ak.Array, wanted: list[str], k: int, collection: str | None
            ) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """(components (N, k, 4) in the branches' system, the entries kept (bool, per entry read)
    or None for all) of the arrays read.

    A collection keeps the events with at least ``k`` objects, and their first ``k``.
    """
    if collection is not None:
        cols = [arrays[name] for name in wanted]
        keep = ak.num(cols[0], axis=1) >= k
        values = np.stack([ak.to_numpy(c[keep][:, :k]) for c in cols], axis=-1)
        return values, ak.to_numpy(keep)
    flat = np.stack([ak.to_numpy(arrays[name]) for name in wanted], axis=-1)
    return flat.reshape(len(flat), k, 4), None


def _labels(arrays: ak.Array, fields: Mapping[str, list[str]], k: int, collection: str | None,
            keep: np.ndarray | None) -> dict[str, np.ndarray]:  # fmt: skip
    """Label field -> its values (N, k) of the kept entries (:mod:`vaeaug.io.labels`); fields
    that hold anything but one integer per object (floats, arrays) are left out."""
    out = {}
    for field, branches in fields.items():
        try:
            if collection is not None:
                values = ak.to_numpy(arrays[branches[0]][keep][:, :k])
            else:
                values = np.stack([ak.to_numpy(arrays[b]) for b in branches], axis=1)
        except (ValueError, TypeError):  # not one number per object: not a label
            continue
        if values.dtype.kind in "iub" and values.ndim == 2:
            out[field] = values
    return out


def _good_rows(p4: np.ndarray, weights: np.ndarray | None, path, strict: bool,
               rounding: float = 0.0) -> np.ndarray:  # fmt: skip
    """The candidates to keep (bool, (N,)): not those with a NaN or inf value or an
    unphysical daughter (:func:`vaeaug.kinematics.unphysical_rows`).

    ``strict``: refuse them instead (InputError); otherwise a :class:`NonFiniteWarning` or
    :class:`UnphysicalWarning` that counts them by reason.
    """
    finite = np.isfinite(p4).all(axis=(1, 2))
    if weights is not None:
        finite &= np.isfinite(weights)
    reasons = {"NaN or inf values": ~finite}
    reasons.update(
        {
            k: v & finite
            for k, v in unphysical_rows(np.where(finite[:, None, None], p4, 0.0), rounding).items()
        }
    )
    reasons = {k: v for k, v in reasons.items() if v.any()}
    bad = np.zeros(len(p4), dtype=bool)
    for mask in reasons.values():
        bad |= mask
    n_bad = int(bad.sum())
    if n_bad:
        what = "; ".join(f"{int(m.sum())} with {k}" for k, m in reasons.items())
        if strict:
            raise InputError(
                f"{n_bad} of {len(p4)} candidates in '{path}' are unusable ({what}; strict mode)"
            )
        category = NonFiniteWarning if list(reasons) == ["NaN or inf values"] else UnphysicalWarning
        # stack: here, read_candidates, its caller
        warnings.warn(f"dropped {n_bad} of {len(p4)} candidates from '{path}': {what}",
                      category, stacklevel=3)  # fmt: skip
    return ~bad


def read_candidates(
    path: str | os.PathLike,
    *,
    tree: str | None = None,
    objects: Sequence[str] | None = None,
    branches: Sequence[str] | None = None,
    collection: str | None = None,
    n_objects: int | None = None,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    cut: str | None = None,
    weight: str | None = None,
    strict: bool = False,
    daughters: Mapping[str, Sequence[str]] | None = None,
) -> Candidates:
    """Read candidates from a ROOT TTree or RNTuple.

    Flat layout (default): objects are the prefixes of ``<object>_<component>``
    branches (components px/py/pz/E or pt/eta/phi/mass, see
    :data:`~vaeaug.io.layout.COMPONENT_SETS`). ``objects`` picks and orders
    them; ``branches`` restricts the branches considered (names or glob
    patterns such as ``"pi*_*"``).

    Jagged layout: ``collection="Muon", n_objects=2`` takes the first two
    muons of events that have at least two (``Muon_pt/eta/phi/mass`` or
    ``Muon_Px/Py/Pz/E``).

    Branches named freely: ``daughters={"mu1": ["px1", "py1", "pz1", "E1"],
    "mu2": [...]}`` names each daughter's four branches, as px, py, pz, E or
    pt, eta, phi, mass (e.g. ``["pt1", "eta1", "phi1", "M1"]``).

    Args:
        path: the ROOT file.
        tree: the TTree or RNTuple name; may be omitted when the file holds one.
        entry_start, entry_stop: the entry range read.
        cut: a selection of entries in uproot's cut syntax, e.g. ``"K1_E > 2"`` or
            ``"(nMuon == 2) & (Muon_pt[:, 0] > 20)"``, evaluated by vaeaug on TTrees and
            RNTuples alike (:mod:`vaeaug.io.cut`).
        weight: a branch holding per-candidate weights.
        strict: refuse (instead of dropping with a warning) non-finite values.
        daughters: daughter name -> its four branch names (see above).

    Returns:
        A :class:`~vaeaug.io.candidates.Candidates` with ``p4`` of shape (N, k, 4) in GeV.
    """
    if daughters and (collection is not None or objects or branches):
        raise InputError(
            "daughters= names the branches itself: do not combine it with collection=, objects= "
            "or branches= (--daughter with --collection, --objects or --branches)"
        )
    ttree, tree, fmt = _open_tree(path, tree)
    all_names = list(ttree.keys())
    mapped: dict[str, tuple[str, ...]] = {}
    try:
        names = _select(all_names, branches)
        if daughters:
            layout_objects, comps, mapped = _named_daughters(daughters, all_names, tree)
            wanted = [b for o in layout_objects for b in mapped[o]]
        elif collection is not None:
            layout_objects, comps = _collection(collection, n_objects, all_names, tree)
            wanted = [f"{collection}_{c}" for c in comps]
        else:
            layout_objects, comps = _flat_objects(names, all_names, objects, tree)
            wanted = [f"{o}_{c}" for o in layout_objects for c in comps]
        if weight and weight not in all_names:
            raise InputError(
                f"weight branch '{weight}' not in tree '{tree}'{close_matches(weight, all_names)}"
            )
        # per-object labels (charge) and, for a collection, the event ids: written back
        prefixes = [collection] if collection is not None else list(layout_objects)
        labels = {} if mapped else label_fields_of(prefixes, all_names)
        ids = (list(EVENT_ID_BRANCHES) if collection is not None
               and all(b in all_names for b in EVENT_ID_BRANCHES) else [])  # fmt: skip
        read = wanted + ([weight] if weight else [])
        read += [b for bs in labels.values() for b in bs if b not in read] + ids
        # the cut is evaluated here, on either format (uproot's RNTuple reader ignores cut=)
        extra = [b for b in cut_branches(cut, all_names) if b not in read] if cut else []
        arrays = ttree.arrays(read + extra, entry_start=entry_start, entry_stop=entry_stop,
                              library="ak")  # fmt: skip
        entries_in_range = len(arrays)
        if cut:
            arrays = arrays[evaluate_cut(cut, {b: arrays[b] for b in arrays.fields}, len(arrays))]
    except InputError:
        raise
    except Exception as err:
        what = f"cut '{cut}'" if cut else "branches"
        raise InputError(f"could not read {what} from tree '{tree}': {err}") from err
    finally:
        # everything needed is in memory now; do not keep a file handle per read
        ttree.file.close()

    _refuse_arrays(arrays, ([] if collection is not None else wanted) + ([weight] if weight else []),
                   tree)  # fmt: skip
    dtypes = {name: str(ak.to_numpy(ak.ravel(arrays[name])).dtype) for name in wanted}
    k = len(layout_objects)
    values, keep = _values(arrays, wanted, k, collection)
    kept = arrays if keep is None else arrays[keep]
    weights = ak.to_numpy(kept[weight]).astype(np.float64) if weight else None
    p4 = to_p4(values, comps)
    good = _good_rows(p4, weights, path, strict, rounding=_storage_rounding(dtypes, wanted))
    n_bad = int(len(good) - good.sum())
    p4 = p4[good]
    weights = weights[good] if weights is not None else None
    label_values = {f: v[good] for f, v in _labels(arrays, labels, k, collection, keep).items()}
    event_ids = {b: ak.to_numpy(kept[b])[good] for b in ids} or None
    if len(p4) == 0:
        raise InputError(
            f"the selection in '{path}' (tree '{tree}', entries {entry_start}:{entry_stop}, cut {cut!r}) "
            "is empty: no candidates to use"
        )

    layout = Layout("jagged" if collection else "flat", layout_objects, comps, collection, dtypes,
                    tree, format=fmt, branches=mapped,
                    labels=ObjectLabels.from_values(label_values))  # fmt: skip
    if integers := layout.integer_branches():
        kinds = sorted({dtypes[b] for b in integers})
        warnings.warn(
            f"{len(integers)} momentum branches of '{path}' hold {'/'.join(kinds)} values "
            f"({', '.join(integers[:4])}{', ...' if len(integers) > 4 else ''}): generated "
            "candidates are written to them as float64, which holds any value (an integer "
            "type would round or wrap them)",
            IntegerBranchWarning,
            stacklevel=2,
        )
    source = {
        "file": str(path), "tree": tree, "format": fmt, "branches": wanted,
        "entry_start": entry_start, "entry_stop": entry_stop, "cut": cut,
        "entries_in_range": entries_in_range, "entries_read": len(arrays),
        "entries_with_objects": len(values),
        "dropped": n_bad,  # non-finite or unphysical
    }  # fmt: skip
    if mapped:
        source["daughters"] = {o: list(b) for o, b in mapped.items()}
    return Candidates(p4=p4, layout=layout, weights=weights, source=source,
                      labels=label_values or None, event_ids=event_ids)  # fmt: skip
