"""Streaming generation: bounded memory whatever the sample size.

::

    for p4 in stream(model, 100_000_000, seed=1):                # (n_c, k, 4) GeV chunks
        ...
    generate_to_root(model, 100_000_000, "big.root", seed=1)     # bounded memory

The model is anything with the attributes of
:class:`~vaeaug.sampling.protocol.SamplingModel` (a :class:`vaeaug.Model`); the
options of a run are one :class:`~vaeaug.sampling.options.SamplingOptions`, or its
fields as keywords.

The features come from :class:`~vaeaug.sampling.engine.Engine` (deterministic in
``(seed, n)``). A candidate outside the training support is redrawn from
counter-based numbers keyed by (seed, i, round) (:mod:`vaeaug.noise`).
The numpy conversion to 4-momenta is elementwise per event, so the events
depend only on ``(seed, n)`` and the device type, never on the chunking.

Pipeline (:func:`stream`). A producer thread samples and decodes on the device
and copies the standardized features (float32) into one of a few reusable
chunk buffers (pinned host memory on CUDA, so that the device-to-host copy is
asynchronous, ``non_blocking=True``, and runs at full bus speed; pageable
memory is ~50x slower). Converter threads turn a full buffer into float64
4-momenta (numpy, which releases the GIL) while the caller's thread consumes
the previous chunk, e.g. writes it to ROOT. The buffers are recycled through a
free list, so peak memory is a few chunks whatever ``n``.

Conversion on the device. For the device types in :data:`CONVERT_ON_DEVICE`
(CUDA) the chunk buffers stay on the device and the converter decodes them
there, in torch float64 (:func:`vaeaug.sampling.decode.to_p4` takes tensors; the same
code as the numpy path), then copies the 4-momenta and features to pinned host
memory: on a GPU the numpy conversion would otherwise be the whole cost. The
events agree with the numpy path's to 1e-9 relative (tested; the differences are
rounding, ~1e-16 of the event's energy), not bit for bit; they still depend only
on ``(seed, n)`` and the device type. On the CPU numpy is faster
(``bench/results/conversion/latest.json``) and stays the default, bit for bit;
``stream(..., convert_on_device=True)`` forces the device path anywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import InputError
from ..model.support import SupportReport
from ..noise import index_keys
from ..settings import check_sampling
from . import sizes
from .decode import enforce_support, to_p4
from .engine import Engine
from .options import SamplingOptions
from .protocol import SamplingModel
from .sizes import BLOCK, DEFAULT_CHUNK

__all__ = ["CONVERT_ON_DEVICE", "DEFAULT_CHUNK", "check_fits_in_memory", "default_chunk",
           "generate_to_root", "iter_chunks", "sample_into", "stream"]  # fmt: skip

#: Device types whose features are converted to 4-momenta on the device (torch
#: float64) rather than by numpy on the host. Not the CPU: there numpy is faster
#: (bench/conversion.py); add "cpu" here to flip that default.
CONVERT_ON_DEVICE = frozenset({"cuda"})


class _Stop(Exception):
    """The consumer went away; the producer ends quietly."""


def _get(q: queue.Queue, stop: threading.Event):
    # a timeout so that a producer waiting for a free buffer notices the stop
    while True:
        try:
            return q.get(timeout=0.05)
        except queue.Empty:
            if stop.is_set():
                raise _Stop from None


def _producer(engine: Engine, n: int, seed: int, chunk: int, free: queue.Queue,
              ready: queue.Queue, stop: threading.Event) -> None:  # fmt: skip
    """Fill chunk buffers with features; put (buffer, rows, first index, cuda event) on ``ready``."""
    cuda = engine.device.type == "cuda"
    try:
        # inference mode and autocast are thread-local: entered here, not by the caller
        ctx = torch.cuda.device(engine.device) if cuda else contextlib.nullcontext()
        with ctx, torch.inference_mode():
            buf, filled, start = None, 0, 0
            for x in engine.batches(n, seed):
                off = 0
                while off < len(x):
                    if buf is None:
                        buf, filled = _get(free, stop), 0
                    m = min(len(x) - off, len(buf) - filled)
                    buf[filled : filled + m].copy_(x[off : off + m], non_blocking=cuda)
                    filled, off = filled + m, off + m
                    if filled == len(buf):
                        ready.put((buf, filled, start, _record(cuda)))
                        buf, start = None, start + filled
                if stop.is_set():
                    return
            if buf is not None and filled:
                ready.put((buf, filled, start, _record(cuda)))
        ready.put(None)
    except _Stop:
        pass
    except BaseException as err:  # handed to the consumer, which re-raises it
        ready.put(err)


def _record(cuda: bool):
    if not cuda:
        return None
    event = torch.cuda.Event()
    event.record()
    return event


def _converter(model: SamplingModel, seed: int, support: str,
               on_device: bool = False) -> Callable:  # fmt: skip
    def convert(buf: torch.Tensor, rows: int, start: int, event,
                free: queue.Queue) -> tuple[np.ndarray, SupportReport]:  # fmt: skip
        report = SupportReport()
        try:
            if event is not None:
                event.synchronize()
            if on_device:
                return _convert_on_device(model, seed, support, buf, rows, start, report)
            # slices of one block: the conversion's float64 temporaries (dozens of
            # arrays) then stay a few MB instead of hundreds for a 1M-event chunk
            out = np.empty((rows, len(model.objects), 4))
            for i in range(0, rows, BLOCK):
                j = min(i + BLOCK, rows)
                p4, features = to_p4(model, buf[i:j].numpy())
                keys = index_keys(seed, np.arange(start + i, start + j))
                report.add(enforce_support(model, p4, features, keys, support))
                out[i:j] = p4
            return out, report
        finally:
            free.put(buf)

    return convert


def _convert_on_device(model: SamplingModel, seed: int, support: str, buf: torch.Tensor, rows: int,
                       start: int, report: SupportReport) -> tuple[np.ndarray, SupportReport]:  # fmt: skip
    """Decode ``buf[:rows]`` where it lives; the 4-momenta come back in a host array (rows, k, 4).

    The host copies go to pinned memory on CUDA (asynchronous, full bus speed);
    the support check and its redraws then run on the host as in the numpy path.
    """
    cuda = buf.device.type == "cuda"
    # pinned blocks come from torch's caching host allocator: reused chunk after chunk
    out = torch.empty((rows, len(model.objects), 4), dtype=torch.float64, pin_memory=cuda)
    step = min(rows, sizes.DEVICE_ROWS.get(buf.device.type, BLOCK))
    staged = torch.empty((step, model.representation.n_features), dtype=torch.float64,
                         pin_memory=cuda)  # fmt: skip
    with torch.inference_mode():
        for i in range(0, rows, step):
            j = min(i + step, rows)
            p4, features = to_p4(model, buf[i:j])
            out[i:j].copy_(p4, non_blocking=cuda)
            staged[: j - i].copy_(features, non_blocking=cuda)
            if cuda:
                torch.cuda.current_stream(buf.device).synchronize()
            keys = index_keys(seed, np.arange(start + i, start + j))
            report.add(enforce_support(model, out[i:j].numpy(), staged[: j - i].numpy(), keys,
                                       support))  # fmt: skip
    return out.numpy(), report


def _default_converters() -> int:
    # one converter per spare core, beyond the producer's and the consumer's,
    # capped: each in-flight chunk costs memory
    return max(1, min(4, (os.cpu_count() or 2) - 2))


def default_chunk(device: torch.device | str) -> int:
    """Events per chunk when none is given: :data:`DEFAULT_CHUNK`, 2**20 on CUDA."""
    return sizes.DEVICE_CHUNK.get(torch.device(device).type, DEFAULT_CHUNK)


def _options(options: SamplingOptions | None, changes: dict) -> SamplingOptions:
    """``options`` (default :class:`SamplingOptions`) with the fields in ``changes`` replaced."""
    options = options or SamplingOptions()
    return dataclasses.replace(options, **changes) if changes else options


def stream(model: SamplingModel, n: int, seed: int = 0, options: SamplingOptions | None = None,
           *, engine: Engine | None = None, report: SupportReport | None = None,
           **changes) -> Iterator[np.ndarray]:  # fmt: skip
    """Generated 4-momenta in chunks of ``chunk_size`` (the last may be shorter): (n_c, k, 4) GeV.

    Generation, conversion and whatever the caller does with a chunk overlap
    (see the module docstring). Peak memory is about ``(converters + 3) *
    chunk_size`` events, whatever ``n``. Closing the iterator early (or an
    exception in the caller) stops the producer and the converters.

    Args:
        model: a :class:`vaeaug.Model` (:class:`~vaeaug.sampling.protocol.SamplingModel`).
        n: number of events (>= 0).
        seed: the sample's seed.
        options: the run's :class:`SamplingOptions` (default: all defaults);
            ``changes``, fields of it as keywords (``chunk_size=...``), replace its
            values. ``support``: a redraw depends only on (seed, the event's index,
            the round), so the events stay independent of ``chunk_size``;
            ``convert_on_device``: the events agree with the numpy path's to 1e-9
            relative, not bit for bit.
        engine: a prepared :class:`Engine` (reuses a compiled decoder).
        report: a :class:`~vaeaug.model.support.SupportReport` to fill.
    """
    opts = _options(options, changes)
    if n < 0:
        raise InputError(f"number of candidates must be >= 0, got {n}")
    if n == 0:
        return
    support, convert_on_device = opts.support, opts.convert_on_device
    engine = engine or Engine(model, precision=opts.precision, compile=opts.compile)
    converters = opts.converters or _default_converters()
    chunk = min(opts.chunk_size or default_chunk(engine.device), n)
    if convert_on_device is None:
        convert_on_device = engine.device.type in CONVERT_ON_DEVICE
    # the features stay on the device for a conversion there; else host buffers, pinned on CUDA
    if convert_on_device:
        place = {"device": engine.device}
    else:
        place = {"pin_memory": engine.device.type == "cuda"}
    free: queue.Queue = queue.Queue()
    for _ in range(converters + 2):
        free.put(torch.empty(chunk, engine.n_features, dtype=torch.float32, **place))
    ready: queue.Queue = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=_producer, args=(engine, n, seed, chunk, free, ready, stop),
                              name="vaeaug-generate", daemon=True)  # fmt: skip
    pool = ThreadPoolExecutor(converters, thread_name_prefix="vaeaug-convert")
    convert = _converter(model, seed, support, convert_on_device)
    report = report if report is not None else SupportReport()
    if model.support is not None:
        report.expected_rate = model.support.expected_rate
    pending: deque[Future] = deque()
    try:
        # inside the try: a signal arriving while the thread starts still stops it
        thread.start()
        while True:
            item = ready.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            pending.append(pool.submit(convert, *item, free))
            if len(pending) > converters:
                p4, part = pending.popleft().result()
                report.add(part)
                yield p4
        while pending:
            p4, part = pending.popleft().result()
            report.add(part)
            yield p4
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        if thread.ident is not None:
            thread.join()


def iter_chunks(model: SamplingModel, n: int, seed: int = 0,
                options: SamplingOptions | None = None, *, progress: bool = False,
                report: SupportReport | None = None, warn: bool = True,
                **changes) -> Iterator[np.ndarray]:  # fmt: skip
    """:func:`stream` for a user: ``n`` and ``seed`` checked, a progress bar, and a
    :class:`~vaeaug.model.support.SupportWarning` at the end when more candidates
    fell outside the support than real ones would (:meth:`SupportReport.warn_if_excess`;
    ``warn=False``: none, the caller reports ``report`` itself).

    What :meth:`vaeaug.Model.iter_samples` and :func:`generate_to_root` run; chunks
    (n_c, k, 4) GeV. ``options`` and ``changes``: see :func:`stream`.
    """
    check_sampling(n, seed)
    opts = _options(options, changes)
    report = report if report is not None else SupportReport()
    bar = tqdm(total=n, desc="generating", unit="ev", unit_scale=True, disable=not progress,
               leave=False)  # fmt: skip
    with contextlib.closing(stream(model, n, seed, opts, report=report)) as chunks:
        for p4 in chunks:
            bar.update(len(p4))
            yield p4
    bar.close()
    if warn:
        report.warn_if_excess(opts.support)


def sample_into(model: SamplingModel, n: int, seed: int = 0,
                options: SamplingOptions | None = None, *, progress: bool = False,
                engine: Engine | None = None, report: SupportReport | None = None,
                **changes) -> np.ndarray:  # fmt: skip
    """All ``n`` events in one array (n, k, 4) GeV, filled chunk by chunk (no concatenation).

    ``options``, ``engine``, ``report`` and ``changes``: see :func:`stream`.
    """
    check_sampling(n, seed)
    check_fits_in_memory(n, len(model.objects))
    out = np.empty((n, len(model.objects), 4))
    bar = tqdm(total=n, desc="generating", unit="ev", unit_scale=True, disable=not progress,
               leave=False)  # fmt: skip
    start = 0
    chunks = stream(model, n, seed, _options(options, changes), engine=engine, report=report)
    with contextlib.closing(chunks):
        for p4 in chunks:
            out[start : start + len(p4)] = p4
            start += len(p4)
            bar.update(len(p4))
    bar.close()
    return out


def check_fits_in_memory(n: int, k: int) -> None:
    """Refuse, before anything is allocated, ``n`` events of ``k`` daughters in one array
    (float64, n * k * 32 bytes) larger than the machine's memory, naming the largest
    ``n`` that fits and the streaming alternatives, whose memory does not grow with ``n``."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): numpy's own check
        return
    per_event = 4 * 8 * k
    if n * per_event > memory:
        raise InputError(
            f"{n:,} candidates of {k} daughters need {n * per_event / 1e9:.3g} GB in one "
            f"array, more than this machine's {memory / 1e9:.3g} GB of memory; valid: "
            f"n <= {memory // per_event:,}, or stream them (Model.iter_samples, "
            "vaeaug generate), whose memory does not grow with n"
        )


def generate_to_root(model: SamplingModel, n: int, path, *, seed: int = 0,
                     tree: str | None = None, progress: bool = False,
                     options: SamplingOptions | None = None,
                     report: SupportReport | None = None, overwrite: bool = True,
                     **changes) -> int:  # fmt: skip
    """Stream ``n`` generated candidates into a ROOT tree; returns the number written.

    The chunks come from :func:`iter_chunks` (so from :func:`stream`): the next
    chunk is generated and converted while this one is written, and memory stays
    bounded whatever ``n``. The candidates' labels (charges) are drawn keyed by ``seed``
    (:mod:`vaeaug.io.labels`). The file, in the model's layout, appears only when
    complete (:class:`vaeaug.io.RootWriter` writes atomically): an exception or
    Ctrl-C leaves no output; an existing file is replaced only with ``overwrite``.
    ``options``, ``report`` and ``changes``: see :func:`stream`.
    """
    from ..io import RootWriter

    chunks = iter_chunks(model, n, seed, options, progress=progress, report=report, **changes)
    with (RootWriter(path, model.layout, tree=tree, seed=seed, overwrite=overwrite) as writer,
          contextlib.closing(chunks)):  # fmt: skip
        for p4 in chunks:
            writer.write(p4)
    return writer.n_written
