"""Write candidates to a ROOT TTree or RNTuple with uproot, chunked and atomically.

The output uses the input's branch names and types (from its
:class:`~vaeaug.io.layout.Layout`), and by default its format (TTree or
RNTuple), so downstream code runs unchanged. It keeps the input's per-object labels
(``Muon_charge``) and, for a NanoAOD-style collection, the event ids NanoAODSchema
requires (:mod:`vaeaug.io.labels`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from ..errors import InputError
from .atomic import atomic_output
from .labels import EVENT_ID_BRANCHES, generated_event_ids
from .layout import FORMATS, Layout, from_p4

__all__ = [
    "FLAG_BRANCH",
    "NANOAOD_FLAG_BRANCH",
    "WEIGHT_BRANCH",
    "RootWriter",
    "estimate_bytes",
    "flag_branch",
    "write_candidates",
]

#: Branch marking generated (1) vs original (0) candidates in a combined tree.
FLAG_BRANCH = "is_generated"
#: The same in a NanoAOD-style file: NanoEvents reads ``is_generated`` as a collection
#: ``is`` with a field ``generated``, ``isGenerated`` as a plain field.
NANOAOD_FLAG_BRANCH = "isGenerated"
#: Branch with per-candidate weights in a combined tree.
WEIGHT_BRANCH = "weight"


def flag_branch(layout: Layout) -> str:
    """The name of the generated/original flag in a combined tree of ``layout``."""
    return NANOAOD_FLAG_BRANCH if layout.kind == "jagged" else FLAG_BRANCH


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InputError(f"output format {fmt!r} unknown; valid: {', '.join(FORMATS)}")
    return fmt


class RootWriter:
    """Append chunks of candidates to one TTree or RNTuple; the file appears only on success.

    Use as a context manager::

        with RootWriter("out.root", layout) as writer:
            for p4 in chunks:
                writer.write(p4)

    Memory stays bounded by the chunk size. Uproot writes one TBasket (or
    RNTuple cluster) per ``extend``, so chunks should be large (1e5-1e6
    candidates). ``format``: ``"ttree"`` or ``"rntuple"``; default the
    layout's, i.e. the input's. ``overwrite``: replace an existing file at ``path``
    (else the final rename is exclusive: :func:`~vaeaug.io.atomic_output`).

    Each chunk may carry the per-object labels and event ids of real candidates
    (:meth:`write`); a chunk without them is generated: its labels are drawn from the
    layout's :class:`~vaeaug.io.labels.ObjectLabels` keyed by ``seed`` and the
    candidate's index among the generated ones, and a collection gets generated event
    ids (:func:`~vaeaug.io.labels.generated_event_ids`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        layout: Layout,
        *,
        tree: str | None = None,
        extra: dict[str, str] | None = None,
        compression: uproot.compression.Compression | None = None,
        format: str | None = None,
        seed: int = 0,
        overwrite: bool = True,
    ) -> None:
        self.format = _check_format(format or layout.format)
        self.seed = seed
        self.n_generated = 0
        self.overwrite = overwrite
        self.path = Path(path)
        self.layout = layout
        self.tree = tree or layout.tree
        self.extra = dict(extra or {})  # branch name -> dtype string
        self.compression = compression if compression is not None else uproot.ZLIB(1)
        self.n_written = 0
        self._atomic = None
        self._file = None
        self._ttree = None

    def __enter__(self) -> RootWriter:
        self._atomic = atomic_output(self.path, overwrite=self.overwrite)
        tmp = self._atomic.__enter__()
        try:
            self._file = uproot.recreate(tmp, compression=self.compression)
        except BaseException as err:
            # let atomic_output clean up and name the output in the error
            if not self._atomic.__exit__(type(err), err, err.__traceback__):
                raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            self._file.close()
        except BaseException as err:
            # a failure on close (a full disk) is the error when there was none before
            if exc is None:
                if not self._atomic.__exit__(type(err), err, err.__traceback__):
                    raise
                return False
        return bool(self._atomic.__exit__(exc_type, exc, tb))

    def _columns(self, p4: np.ndarray, extra: dict[str, np.ndarray],
                 labels: dict[str, np.ndarray] | None, event_ids: dict | None) -> dict:  # fmt: skip
        layout = self.layout
        values = from_p4(p4, layout.components)
        columns: dict = {}
        if layout.kind == "jagged":
            # NanoAOD's event ids come first
            columns.update({b: np.asarray(event_ids[b]).astype(t)
                            for b, t in EVENT_ID_BRANCHES.items()})  # fmt: skip
            k = layout.n_objects
            fields = {}
            for i, comp in enumerate(layout.components):
                name = f"{layout.collection}_{comp}"
                fields[comp] = values[:, :, i].astype(layout.output_dtype(name))
            fields.update(labels or {})
            fields = {c: ak.unflatten(v.reshape(-1), np.full(len(v), k)) for c, v in fields.items()}
            if self.format == "rntuple":
                # an RNTuple stores a record field as one field with subfields;
                # NanoAOD-style readers expect nMuon and Muon_pt, as in a TTree
                columns[f"n{layout.collection}"] = np.full(len(values), k, np.int32)
                columns.update({f"{layout.collection}_{c}": v for c, v in fields.items()})
            else:
                columns[layout.collection] = ak.zip(fields)
        else:
            for j, obj in enumerate(layout.objects):
                for i in range(4):
                    name = layout.branch(obj, i)
                    columns[name] = values[:, j, i].astype(layout.output_dtype(name))
                for field, v in (labels or {}).items():
                    columns[f"{obj}_{field}"] = v[:, j]
        for name, dtype in self.extra.items():
            columns[name] = np.asarray(extra[name]).astype(dtype)
        return columns

    def write(self, p4: np.ndarray, *, real: bool = False,
              labels: dict[str, np.ndarray] | None = None,
              event_ids: dict[str, np.ndarray] | None = None, **extra: np.ndarray) -> None:  # fmt: skip
        """Append candidates: ``p4`` of shape (N, k, 4) in GeV, extra branches of shape (N,).

        ``labels`` (field -> (N, k)) and ``event_ids`` (``run``... -> (N,)): those of
        ``real`` candidates, or of generated ones that have their own (posterior partners
        keep their source's labels). Otherwise generated candidates get theirs here, and
        real ones without event ids get zeros.
        """
        k = len(self.layout.objects)
        if np.ndim(p4) != 3 or np.shape(p4)[1:] != (k, 4):
            raise InputError(
                f"p4 of shape {np.shape(p4)} does not match the layout: its {k} objects "
                f"({', '.join(self.layout.objects)}) need shape (N, {k}, 4)"
            )
        if len(p4) == 0:
            return
        missing = set(self.extra) - set(extra)
        if missing:
            raise ValueError(f"write() needs values for extra branches {sorted(missing)}")
        if not real:
            if labels is None and self.layout.labels is not None:
                labels = self.layout.labels.draw_generated(self.seed, self.n_generated, len(p4))
            if event_ids is None:
                event_ids = generated_event_ids(self.n_generated, len(p4))
            self.n_generated += len(p4)
        elif self.layout.kind == "jagged" and event_ids is None:
            # real candidates of a file without event ids
            event_ids = {b: np.zeros(len(p4), t) for b, t in EVENT_ID_BRANCHES.items()}
        if self.layout.labels is not None and set(labels or {}) != set(self.layout.labels.names):
            raise ValueError(f"write() needs the labels {list(self.layout.labels.names)}, got "
                             f"{sorted(labels or {})}")  # fmt: skip
        columns = self._columns(p4, extra, labels, event_ids)
        if self._ttree is None and self.format == "rntuple":
            # mkrntuple takes the fields' awkward form (not a dict of types)
            self._ttree = self._file.mkrntuple(self.tree, ak.Array(columns).layout.form)
        elif self._ttree is None:
            # mktree (not assignment, which makes an RNTuple in uproot >= 5.7)
            # gives a TTree; a jagged collection gets its nMuon-style counter
            types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in columns.items()}
            self._ttree = self._file.mktree(self.tree, types)
        self._ttree.extend(columns)
        self.n_written += len(p4)


def estimate_bytes(layout: Layout, n: int, extra: dict[str, str] | None = None) -> int:
    """Bytes that ``n`` candidates take in a tree of ``layout`` before compression.

    The branch types come from the layout (float32 where unknown); a jagged
    collection adds its counter and offsets (4 bytes each per event). ZLIB
    saves little on generated floating-point values, so this is close to the
    file size.
    """
    per = sum(np.dtype(layout.output_dtype(b)).itemsize for b in layout.branch_names())
    if layout.labels is not None:
        per += sum(np.dtype(t).itemsize for t in layout.labels.dtypes) * (
            1 if layout.kind == "jagged" else layout.n_objects)  # fmt: skip
    if layout.kind == "jagged":
        per = per * layout.n_objects + 8
        per += sum(np.dtype(t).itemsize for t in EVENT_ID_BRANCHES.values())
    per += sum(np.dtype(d).itemsize for d in (extra or {}).values())
    return int(n) * per


def write_candidates(
    path: str | os.PathLike,
    chunks: Iterable[np.ndarray] | np.ndarray,
    layout: Layout,
    *,
    original: np.ndarray | None = None,
    original_weights: np.ndarray | None = None,
    original_labels: dict[str, np.ndarray] | None = None,
    original_event_ids: dict[str, np.ndarray] | None = None,
    generated_weight: float | None = None,
    generated_weights: np.ndarray | None = None,
    tree: str | None = None,
    chunk_size: int = 1_000_000,
    format: str | None = None,
    seed: int = 0,
    overwrite: bool = True,
) -> int:
    """Write generated candidates (optionally after the originals) to one TTree or RNTuple.

    Args:
        path: the output ROOT file (written atomically).
        chunks: generated 4-momenta, one (N, k, 4) array or an iterable of them.
        layout: branch names and types to use (normally the input's).
        original: if given, the original candidates (M, k, 4) are written first
            and the tree gets a flag (:func:`flag_branch`: ``is_generated``, or
            ``isGenerated`` for a collection; 0/1) and ``weight`` branches.
        original_weights: weights of the originals in the tree (default 1).
        original_labels, original_event_ids: their labels (field -> (M, k)) and event ids
            (``run``... -> (M,)), as :attr:`Candidates.labels` and ``event_ids`` hold them;
            needed for labels when ``layout`` has them (:mod:`vaeaug.io.labels`).
        generated_weight: the weight of each generated candidate in a combined
            tree (default 1). ``vaeaug augment --combined`` passes the weights of
            :func:`vaeaug.sampling.weights.combined_weights`, so that the whole
            tree sums to the input's total weight.
        generated_weights: a weight per generated candidate (N,), e.g. refinement's
            (:func:`vaeaug.refine`); ``chunks`` must then be one array. They are written
            as the ``weight`` branch (times ``generated_weight`` in a combined tree).
        chunk_size: candidates per basket when ``chunks`` is one array.
        format: ``"ttree"`` or ``"rntuple"`` (default the layout's: the input's).
        seed: keys the generated candidates' labels (with their index in the sample).
        overwrite: replace an existing file at ``path``; without it, a file there
            (even one that appears while this writes) raises InputError and stays.

    Returns:
        The number of candidates written.
    """
    if isinstance(chunks, np.ndarray):
        array = chunks
        if generated_weights is not None and np.shape(generated_weights) != (len(array),):
            raise ValueError(f"generated_weights must have shape ({len(array)},), got "
                             f"{np.shape(generated_weights)}")  # fmt: skip
        chunks = (array[i : i + chunk_size] for i in range(0, len(array), chunk_size))
    elif generated_weights is not None:
        raise ValueError("generated_weights needs the generated candidates as one array")
    flag = flag_branch(layout)
    extra = {flag: "int8", WEIGHT_BRANCH: "float32"} if original is not None else {}
    if generated_weights is not None:
        extra[WEIGHT_BRANCH] = "float32"
    gw = 1.0 if generated_weight is None else generated_weight
    with RootWriter(path, layout, tree=tree, extra=extra, format=format, seed=seed,
                    overwrite=overwrite) as writer:  # fmt: skip
        if original is not None:
            w = np.ones(len(original)) if original_weights is None else original_weights
            for i in range(0, len(original), chunk_size):
                sl = slice(i, i + chunk_size)
                part = {"labels": original_labels, "event_ids": original_event_ids}
                part = {k: None if v is None else {b: a[sl] for b, a in v.items()}
                        for k, v in part.items()}  # fmt: skip
                writer.write(original[sl], real=True, weight=w[sl],
                             **{flag: np.zeros(len(original[sl]))}, **part)  # fmt: skip
        start = 0
        for p4 in chunks:
            columns = {}
            if original is not None:
                columns[flag] = np.ones(len(p4))
            if generated_weights is not None:
                columns[WEIGHT_BRANCH] = gw * generated_weights[start : start + len(p4)]
            elif original is not None:
                columns[WEIGHT_BRANCH] = np.full(len(p4), gw)
            writer.write(p4, **columns)
            start += len(p4)
    return writer.n_written
