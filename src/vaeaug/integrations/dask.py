"""Generate a large sample on a Dask cluster and write it with ``uproot.dask_write``.

::

    from dask.distributed import Client, LocalCluster
    from vaeaug.integrations.dask import generate, write

    client = Client(LocalCluster(n_workers=4, threads_per_worker=1))
    sample = generate("dplus.vaeaug.safetensors", 100_000_000, seed=1, partition_size=1_000_000)
    files = write(sample, "generated/", tree="signal")      # one file per partition

The sample is a dask-awkward array with one partition per seed: partition ``i``
holds ``Model.sample(n_i, seed=s_i)`` with ``s_i`` derived from ``(seed, i)``,
so the events depend only on ``(model, n, seed, partition_size)``, never on
which worker made which partition, or how many workers there were. The same
code runs on any Dask cluster (``dask_jobqueue.HTCondorCluster``, coffea-casa's
scheduler): only the ``Client`` changes. The model travels as its file's bytes.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence

import awkward as ak
import numpy as np

from ..api import Model
from ..errors import InputError
from ..io.candidates import Candidates
from ..io.labels import generated_event_ids
from ..noise import child_seed
from .cache import cached_model, model_file_bytes, sha256_of

__all__ = ["FORMS", "client", "generate", "partition_seeds", "write"]

#: Valid ``form=`` values of :func:`generate`.
FORMS = ("branches", "vectors")


def partition_seeds(seed: int, n_partitions: int) -> list[int]:
    """The seed of each partition: independent streams derived from ``(seed, i)``."""
    return [child_seed(seed, i) for i in range(n_partitions)]


@contextlib.contextmanager
def client(scheduler: int | str) -> Iterator:
    """A ``distributed.Client``: of ``scheduler`` local worker processes (an int, one
    thread each), or of the running scheduler at that address; closed (and a local
    cluster stopped) on exit. What ``vaeaug generate --dask`` runs on."""
    from distributed import Client, LocalCluster

    if isinstance(scheduler, int):
        # no dashboard: its port (8787) is often taken by another cluster on the machine;
        # the scheduler's HTTP server (health checks) would still try 8787 and warn when
        # taken, so it gets a free port on the loopback interface
        with LocalCluster(n_workers=scheduler, threads_per_worker=1, processes=True,
                          dashboard_address=None,
                          scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
                Client(cluster, set_as_default=False) as local:  # fmt: skip
            yield local
        return
    try:
        remote = Client(scheduler, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise InputError(f"--dask: cannot connect to the scheduler at {scheduler} ({err})") from err
    with remote:
        yield remote


def _branches(candidates: Candidates, seed: int, start: int) -> ak.Array:
    """Records of the training input's branches (names, components, types), with the labels
    and event ids of generated candidates ``start ...`` of a partition drawn with ``seed``
    (:mod:`vaeaug.io.labels`)."""
    layout = candidates.layout
    values = candidates.to_numpy()
    labels = ({} if layout.labels is None
              else layout.labels.draw_generated(seed, 0, len(candidates)))  # fmt: skip
    if layout.kind == "jagged":
        # a NanoAOD-style collection: uproot writes <collection>_<comp> and the counter n<collection>
        coll = {c: ak.from_regular(values[f"{layout.collection}_{c}"]) for c in layout.components}
        coll.update({f: ak.from_regular(v) for f, v in labels.items()})
        ids = generated_event_ids(start, len(candidates))
        return ak.zip({**ids, layout.collection: ak.zip(coll)}, depth_limit=1)
    for field, v in labels.items():
        values.update({f"{obj}_{field}": v[:, j] for j, obj in enumerate(layout.objects)})
    return ak.zip(values, depth_limit=1)


class _GeneratePartition:
    """Makes one partition on a worker; the model is loaded there, once per process."""

    def __init__(self, model_bytes: bytes, form: str, device: str, chunk_size: int | None,
                 sample_options: dict | None = None) -> None:  # fmt: skip
        self.model_bytes = model_bytes
        self.form = form
        self.device = device
        self.chunk_size = chunk_size
        # Model.sample's precision, compile and support: the first and last change the events
        self.sample_options = dict(sample_options or {})
        self._model: Model | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}

    def __dask_tokenize__(self):
        return (
            type(self).__name__,
            sha256_of(self.model_bytes),
            self.form,
            self.device,
            sorted(self.sample_options.items()),
        )

    def model(self) -> Model:
        if self._model is None:  # at most one load per worker process (the cache)
            self._model = cached_model(self.model_bytes, sha256_of(self.model_bytes), self.device)
        return self._model

    def build(self, candidates: Candidates, seed: int = 0, start: int = 0) -> ak.Array:
        if self.form == "vectors":
            return candidates.to_awkward()
        return _branches(candidates, seed, start)

    def __call__(self, partition: tuple[int, int, int]) -> ak.Array:
        n, seed, start = partition  # its size, seed, and first candidate's index in the sample
        sample = self.model().sample(n, seed=seed, chunk_size=self.chunk_size,
                                     **self.sample_options)  # fmt: skip
        return self.build(sample, seed, start)


def generate(
    model: Model | str | os.PathLike,
    n: int,
    *,
    seed: int = 0,
    partition_size: int = 1_000_000,
    form: str = "branches",
    device: str = "auto",
    precision: str = "fp32",
    support: str = "reject",
    compile: bool = False,
    chunk_size: int | None = None,
):
    """A generated sample of ``n`` candidates as a lazy dask-awkward array.

    Args:
        model: a :class:`vaeaug.Model` or a model file path.
        n: the number of candidates.
        seed: with ``partition_size``, fixes every event (module docstring).
        partition_size: candidates per partition (one task, one output file).
        form: ``"branches"``: records of the training input's branches (same
            names, components and types, ready for :func:`write`); ``"vectors"``:
            ``Momentum4D`` daughters with the vector behavior, for analysis.
        device: where workers run the network (``"auto"``: a GPU when they have one).
        precision, support, compile: as in :meth:`vaeaug.Model.sample`; ``precision``
            and ``support`` change the events, ``compile`` does not.
        chunk_size: events per call of the network on a worker (memory grows with
            it; default: :func:`vaeaug.sampling.streaming.default_chunk` of the worker's
            device); it never changes the events.

    Returns:
        ``dask_awkward.Array`` with ``ceil(n / partition_size)`` partitions and
        known divisions.
    """
    import dask_awkward as dak

    if form not in FORMS:
        raise InputError(f"form {form!r} unknown; valid: {', '.join(FORMS)}")
    if n < 1 or partition_size < 1 or (chunk_size is not None and chunk_size < 1):
        raise InputError(
            f"n, partition_size and chunk_size must be >= 1, got n={n}, "
            f"partition_size={partition_size}, chunk_size={chunk_size}"
        )
    data = model_file_bytes(model, who="generate")
    layout = (
        model if isinstance(model, Model) else cached_model(data, sha256_of(data), "cpu")
    ).layout
    n_parts = math.ceil(n / partition_size)
    sizes = [min(partition_size, n - i * partition_size) for i in range(n_parts)]
    options = {"precision": precision, "support": support, "compile": compile}
    maker = _GeneratePartition(data, form, device, chunk_size=chunk_size, sample_options=options)
    empty = maker.build(Candidates(np.empty((0, layout.n_objects, 4)), layout))
    meta = ak.Array(empty.layout.to_typetracer(forget_length=True), behavior=empty.behavior)
    divisions = tuple(int(x) for x in np.concatenate([[0], np.cumsum(sizes)]))
    return dak.from_map(
        maker,
        list(zip(sizes, partition_seeds(seed, n_parts), divisions[:-1], strict=True)),
        label="vaeaug-generate",
        meta=meta,
        divisions=divisions,
    )


def write(
    array,
    destination: str | os.PathLike,
    *,
    tree: str = "candidates",
    prefix: str = "generated",
    compute: bool = True,
    compression: str = "zlib",
    compression_level: int = 1,
) -> Sequence[str] | object:
    """Write a dask-awkward array with ``uproot.dask_write``: one ROOT file per partition.

    Args:
        array: e.g. the output of :func:`generate` (``form="branches"``).
        destination: a directory (created), local or any fsspec URL uproot writes to.
        tree: the TTree name.
        prefix: file names are ``<prefix>-part<i>.root``.
        compute: write now (True) or return the lazy write for ``dask.compute``.

    Returns:
        The written file paths, in partition order, when ``compute``; else the lazy task.
    """
    import uproot

    destination = os.fspath(destination)
    if "://" not in destination:
        os.makedirs(destination, exist_ok=True)
    result = uproot.dask_write(
        array,
        destination,
        compute=compute,
        prefix=prefix,
        tree_name=tree,
        compression=compression,
        compression_level=compression_level,
    )
    if not compute:
        return result
    if "://" in destination:
        return result
    names = [
        f for f in os.listdir(destination) if f.startswith(f"{prefix}-part") and f.endswith(".root")
    ]
    names.sort(
        key=lambda f: int(f[len(prefix) + 5 : -5]) if f[len(prefix) + 5 : -5].isdigit() else -1
    )
    return [os.path.join(destination, f) for f in names]
