"""NanoAOD events from RNTuples under dask: what coffea's dask mode cannot read.

coffea's ``NanoEventsFactory.from_root(mode="dask")`` (and so
``coffea.dataset_tools.apply_to_fileset``) fails on an RNTuple: it asks uproot
for each field's "title", which an RNTuple field does not have (``'RField'
object has no attribute 'title'``). Eager and virtual modes (and
``coffea.processor.Runner``) read RNTuples. :func:`dask_events` reads the
RNTuple with ``uproot.dask`` instead and zips NanoAOD-style collections per
partition, attaching coffea's NanoAOD behavior.

:data:`PartialNanoAODSchema` (made on first use, so coffea stays optional) is
``NanoAODSchema`` for files with part of NanoAOD's branches.

coffea, dask-awkward and uproot's dask support are imported inside the functions
that need them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import awkward as ak

from ..errors import InputError
from .behavior import behavior_of

__all__ = [
    "PartialNanoAODSchema",  # noqa: F822 (made on first use, by __getattr__)
    "dask_events",
    "has_rntuple",
    "is_rntuple",
    "nanoaod_events",
    "nanoaod_plan",
]

_NANOAOD_BEHAVIOR = "coffea.nanoevents.methods.nanoaod"


def is_rntuple(path: str, object_path: str) -> bool:
    """Whether ``object_path`` in the ROOT file ``path`` is an RNTuple (not a TTree)."""
    import uproot

    with uproot.open(path) as file:
        return isinstance(file[object_path], uproot.behaviors.RNTuple.RNTuple)


def has_rntuple(files: Mapping) -> bool:
    """Whether any of uproot/coffea ``files`` (``{path: "Events"}`` or ``{path:
    {"object_path": "Events", ...}}``) is an RNTuple."""
    return any(
        is_rntuple(path, spec if isinstance(spec, str) else spec["object_path"])
        for path, spec in files.items()
    )


def nanoaod_plan(fields: Sequence[str], schemaclass) -> tuple:
    """How flat fields become NanoAOD events: (name, record or None, {field: column}, {field: fill}).

    ``schemaclass``: coffea's ``NanoAODSchema`` or a subclass (its ``rename_items``,
    ``full_like_items`` and ``mixins`` are read).
    """
    groups: dict[str, list[str]] = {}
    plan = []
    for name in fields:
        prefix, sep, _ = name.partition("_")
        if sep and prefix:
            groups.setdefault(prefix, []).append(name)
        elif not (name.startswith("n") and any(f.startswith(f"{name[1:]}_") for f in fields)):
            plan.append((name, None, {}, {}))  # run, event, ...; nMuon-style counters are implied
    for prefix, members in groups.items():
        columns = {m[len(prefix) + 1 :]: m for m in members}
        for old, new in schemaclass.rename_items.items():
            if old.startswith(f"{prefix}_") and old in fields:
                columns[new[len(prefix) + 1 :]] = columns.pop(old[len(prefix) + 1 :])
        # what coffea fills in to make a 4-vector type complete (a jet's charge of 0)
        fills = {}
        for name, (_, (_, value)) in schemaclass.full_like_items.items():
            if name.startswith(f"{prefix}_") and name[len(prefix) + 1 :] not in columns:
                fills[name[len(prefix) + 1 :]] = value
        record = schemaclass.mixins.get(prefix, "NanoCollection")
        plan.append((prefix, record, columns, fills))
    return tuple(plan)


def nanoaod_events(flat: ak.Array, plan: tuple) -> ak.Array:
    """One partition's NanoAOD events from its flat fields (``ak.zip`` per collection)."""
    out = {}
    for name, record, columns, fills in plan:
        if record is None:
            out[name] = flat[name]
            continue
        fields = {field: flat[column] for field, column in columns.items()}
        first = next(iter(fields.values()))
        fields.update({field: ak.full_like(first, value) for field, value in fills.items()})
        jagged = first.ndim > 1
        collection = ak.zip(fields, depth_limit=None if jagged else 1, with_name=record)
        if jagged:
            collection = ak.with_parameter(collection, "collection_name", name)
        out[name] = collection
    return ak.Array(ak.zip(out, depth_limit=1), behavior=behavior_of(("vector", _NANOAOD_BEHAVIOR)))


def dask_events(files: Mapping, *, schemaclass=None, uproot_options: Mapping | None = None):
    """Dask-awkward events from TTrees or RNTuples, for a processor's ``process``.

    A TTree goes through coffea (``NanoEventsFactory.from_root(mode="dask")``).
    An RNTuple, which coffea's dask mode cannot read, is read with
    ``uproot.dask(files)``; with ``NanoAODSchema`` (or a subclass) each
    ``X_*`` group becomes a collection ``events.X`` (``ak.zip`` per
    partition, as ``dask_awkward.zip`` does), with coffea's NanoAOD record
    type (``Muon``, ``Jet``...) and behavior, so ``events.Muon.pt``, ``+`` and
    ``.delta_r`` work; cross-references (``Muon.matched_jet``) are not built.
    With ``BaseSchema`` the flat fields are returned as they are.

    Column projection is coarser than coffea's: zipping a collection reads
    the offsets, so every column of every collection in the file is read.
    Choose the branches with ``uproot_options={"filter_name": ["nJet",
    "Jet_*"]}``.

    Args:
        files: uproot/coffea files, ``{path: "Events"}`` or ``{path:
            {"object_path": "Events", "steps": [[0, 100], ...]}}``.
        schemaclass: ``NanoAODSchema`` (default), a subclass, or ``BaseSchema``.
        uproot_options: passed to ``uproot.dask`` (or coffea).
    """
    import uproot
    from coffea.nanoevents import BaseSchema, NanoAODSchema, NanoEventsFactory

    schemaclass = schemaclass or NanoAODSchema
    options = dict(uproot_options or {})
    if not has_rntuple(files):
        return NanoEventsFactory.from_root(
            dict(files), schemaclass=schemaclass, mode="dask", uproot_options=options
        ).events()
    if schemaclass is not BaseSchema and not issubclass(schemaclass, NanoAODSchema):
        raise InputError(
            f"dask mode on an RNTuple supports NanoAODSchema (and subclasses) or BaseSchema, not "
            f"{schemaclass.__name__}; use coffea.processor.Runner (virtual mode) for other schemas"
        )
    # an opened RNTuple does not pickle: a distributed scheduler could not take the graph
    options.setdefault("open_files", False)
    flat = uproot.dask(dict(files), **options)
    if schemaclass is BaseSchema:
        return flat
    import dask_awkward as dak

    plan = nanoaod_plan(flat.fields, schemaclass)
    return dak.map_partitions(nanoaod_events, flat, plan, label="vaeaug-nanoevents")


def _partial_nanoaod_schema() -> type:
    from coffea.nanoevents import NanoAODSchema

    class PartialNanoAODSchema(NanoAODSchema):
        """``NanoAODSchema`` for files with part of NanoAOD's branches (a skim, a test file).

        Stock ``NanoAODSchema`` refuses a file without the event ids (``run``,
        ``luminosityBlock``, ``event``), e.g. an RNTuple of muon branches only;
        this one accepts it silently (``error_missing_event_ids = False``, and
        the warning that setting gives is expected, so not shown), and does not
        warn about cross-references to collections the file does not hold.
        """

        error_missing_event_ids = False
        warn_missing_crossrefs = False

        def __init__(self, base_form, *args, **kwargs):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Missing event_ids", RuntimeWarning)
                super().__init__(base_form, *args, **kwargs)

    # pickled by reference (futures executors send the schema to workers)
    PartialNanoAODSchema.__module__ = __name__
    PartialNanoAODSchema.__qualname__ = "PartialNanoAODSchema"
    return PartialNanoAODSchema


def __getattr__(name: str):
    # coffea is imported only when the schema is asked for: reading works without it
    if name == "PartialNanoAODSchema":
        cls = _partial_nanoaod_schema()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
