"""The generation engine: seeded blocks, batched decoding, a streaming pipeline.

::

    engine = Engine(model, precision="bf16", compile=True)      # on model.device
    for p4 in stream(model, 100_000_000, seed=1):                # (n_c, k, 4) GeV chunks
        ...
    generate_to_root(model, 100_000_000, "big.root", seed=1)     # bounded memory

Determinism. Event ``i`` of a sample belongs to random-number block
``b = i // BLOCK``; block ``b`` draws its standard normals (the prior's, the
decoder's and, when the parent azimuth is uniform, its own) from a
``torch.Generator`` seeded by ``SeedSequence([seed, b])``. A candidate outside
the training support is redrawn from counter-based numbers keyed by (seed, i,
round) (:mod:`vaeaug.noise`). The
decoder runs on groups of rows whose boundaries depend only on the device type
and ``n`` (never on the chunk size the caller asks for), so the events depend
only on ``(seed, n)`` and the device type (CPU and CUDA random streams differ),
bit for bit. The numpy conversion to 4-momenta is elementwise per event.

Pipeline (:func:`stream`). A producer thread samples and decodes on the device
and copies the standardized features (float32) into one of a few reusable
chunk buffers (pinned host memory on CUDA, so that the device-to-host copy is
asynchronous, ``non_blocking=True``, and runs at full bus speed; pageable
memory is ~50x slower). Converter threads turn a full buffer into float64
4-momenta (numpy, which releases the GIL) while the caller's thread consumes
the previous chunk, e.g. writes it to ROOT. The buffers are recycled through a
free list, so peak memory is a few chunks whatever ``n``.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import InputError
from .model.support import SUPPORT_MODES, SupportReport
from .noise import index_keys

__all__ = [
    "BLOCK",
    "DEFAULT_CHUNK",
    "PRECISIONS",
    "Engine",
    "block_seed",
    "generate_to_root",
    "sample_into",
    "stream",
]

#: Events per random-number block: block b of a sample draws from a generator
#: seeded by (seed, b), so the events do not depend on the batch size.
BLOCK = 1 << 16
#: Default events per chunk handed to the caller (and per ROOT basket):
#: 1M events of 3 daughters are 96 MB of float64 4-momenta.
DEFAULT_CHUNK = 1 << 20
#: Valid values of ``precision``: "fp32", or "bf16" (decoder hidden layers under
#: bfloat16 autocast; output layer, noise and everything after in float32/float64).
PRECISIONS = ("fp32", "bf16")

# Blocks decoded per device batch. One block (64k events) keeps the CPU's work
# small enough to interleave with the converter; a GPU needs millions of rows in
# flight to reach its throughput (64 blocks = 4.2M events, ~200 MB of features).
_BATCH_BLOCKS = {"cpu": 1, "cuda": 64}
# Rows per decoder call. CPU: 16k rows x 256 hidden units (16 MB of
# activations) stay in cache and run twice as fast as 64k rows. GPU: 1M rows
# (1 GB per 256-wide activation) keep the GPU busy and fit an 8 GB card.
# Fixed per device type, so they never change the events.
_DECODE_ROWS = {"cpu": 1 << 14, "cuda": 1 << 20}


def block_seed(seed: int, b: int) -> int:
    """The 63-bit seed of random-number block ``b`` of a sample drawn with ``seed``."""
    return int(np.random.SeedSequence([seed, b]).generate_state(1, np.uint64)[0] >> 1)


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"precision '{precision}' unknown; valid: {', '.join(PRECISIONS)}")
    return precision


class Engine:
    """Samples standardized features from a model on the model's device.

    Args:
        model: a :class:`vaeaug.Model` (its network stays where it is).
        precision: "fp32" (default) or "bf16" (hidden layers of the decoder under
            bfloat16 autocast; pays on GPUs and on CPUs with bf16 matrix units, is
            ~4x slower on CPUs without them).
        compile: run the noise-to-features map through ``torch.compile`` (a
            one-off compilation of tens of seconds; pays on GPUs for large samples).
        batch_blocks: random-number blocks decoded per device batch (default: 1 on
            CPU, 64 on CUDA). Changing it changes the decoder's row groups on CUDA,
            and so possibly the last bits of the events.
    """

    def __init__(self, model, *, precision: str = "fp32", compile: bool = False,
                 batch_blocks: int | None = None) -> None:  # fmt: skip
        self.model = model
        self.device = model.device
        self.precision = _check_precision(precision)
        self.batch_blocks = batch_blocks or _BATCH_BLOCKS.get(self.device.type, 1)
        self.decode_rows = _DECODE_ROWS.get(self.device.type)
        dtype = torch.bfloat16 if self.precision == "bf16" else None

        def features(eps: torch.Tensor) -> torch.Tensor:
            return model.features_from_noise(eps, hidden_dtype=dtype)

        self._features: Callable[[torch.Tensor], torch.Tensor] = (
            torch.compile(features, dynamic=False) if compile else features
        )

    @property
    def n_features(self) -> int:
        """Columns of :meth:`features` output: learned features (+ the phi noise)."""
        return len(self.model.learned) + int(self.model.phi_uniform)

    def features(self, eps: torch.Tensor) -> torch.Tensor:
        """Standardized features (B, n_features) float32 from normals (B, noise_width)."""
        rows = self.decode_rows or len(eps)
        outs = [self._features(eps[i : i + rows]) for i in range(0, len(eps), rows)]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def batches(self, n: int, seed: int) -> Iterator[torch.Tensor]:
        """Standardized features of the ``n`` events, (B, n_features) float32 on the device.

        Block ``b`` draws all its normals, (rows, noise_width), from one generator
        seeded by :func:`block_seed`. Must run under ``torch.inference_mode()``
        (thread-local: enter it in the thread that iterates).
        """
        n_blocks = math.ceil(n / BLOCK)
        width = self.model.noise_width
        self.model.vae.eval()
        for first in range(0, n_blocks, self.batch_blocks):
            eps = []
            for b in range(first, min(first + self.batch_blocks, n_blocks)):
                g = torch.Generator(device=self.device)
                g.manual_seed(block_seed(seed, b))
                eps.append(torch.randn(min(BLOCK, n - b * BLOCK), width, generator=g,
                                       device=self.device))  # fmt: skip
            yield self.features(eps[0] if len(eps) == 1 else torch.cat(eps))


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


def _converter(model, seed: int, support: str) -> Callable:
    def convert(buf: torch.Tensor, rows: int, start: int, event,
                free: queue.Queue) -> tuple[np.ndarray, SupportReport]:  # fmt: skip
        report = SupportReport()
        try:
            if event is not None:
                event.synchronize()
            # slices of one block: the conversion's float64 temporaries (dozens of
            # arrays) then stay a few MB instead of hundreds for a 1M-event chunk
            out = np.empty((rows, len(model.objects), 4))
            for i in range(0, rows, BLOCK):
                j = min(i + BLOCK, rows)
                p4, features = model.to_p4(buf[i:j].numpy())
                keys = index_keys(seed, np.arange(start + i, start + j))
                report.add(model.enforce_support(p4, features, keys, support))
                out[i:j] = p4
            return out, report
        finally:
            free.put(buf)

    return convert


def _default_converters() -> int:
    # one converter per spare core, beyond the producer's and the consumer's,
    # capped: each in-flight chunk costs memory
    return max(1, min(4, (os.cpu_count() or 2) - 2))


def stream(model, n: int, seed: int = 0, *, chunk_size: int = DEFAULT_CHUNK,
           precision: str = "fp32", compile: bool = False, converters: int | None = None,
           engine: Engine | None = None, support: str = "reject",
           report: SupportReport | None = None) -> Iterator[np.ndarray]:  # fmt: skip
    """Generated 4-momenta in chunks of ``chunk_size`` (the last may be shorter): (n_c, k, 4) GeV.

    Generation, conversion and whatever the caller does with a chunk overlap
    (see the module docstring). Peak memory is about ``(converters + 3) *
    chunk_size`` events, whatever ``n``. Closing the iterator early (or an
    exception in the caller) stops the producer and the converters.

    Args:
        model: a :class:`vaeaug.Model`.
        n: number of events (>= 0).
        seed: the sample's seed.
        chunk_size: events per yielded chunk.
        precision, compile: see :class:`Engine`.
        converters: threads converting features to 4-momenta (default: spare cores, 1-4).
        engine: a prepared :class:`Engine` (reuses a compiled decoder).
        support: one of :data:`~vaeaug.model.support.SUPPORT_MODES`: redraw ("reject"),
            count ("warn") or ignore ("off") candidates outside the training support.
            A redraw depends only on (seed, the event's index, the round), so the
            events stay independent of ``chunk_size``.
        report: a :class:`~vaeaug.model.support.SupportReport` to fill.
    """
    if support not in SUPPORT_MODES:
        raise InputError(f"support '{support}' unknown; valid: {', '.join(SUPPORT_MODES)}")
    if n < 0:
        raise InputError(f"number of candidates must be >= 0, got {n}")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    if n == 0:
        return
    engine = engine or Engine(model, precision=precision, compile=compile)
    converters = converters or _default_converters()
    chunk = min(chunk_size, n)
    pin = engine.device.type == "cuda"
    free: queue.Queue = queue.Queue()
    for _ in range(converters + 2):
        free.put(torch.empty(chunk, engine.n_features, dtype=torch.float32, pin_memory=pin))
    ready: queue.Queue = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=_producer, args=(engine, n, seed, chunk, free, ready, stop),
                              name="vaeaug-generate", daemon=True)  # fmt: skip
    pool = ThreadPoolExecutor(converters, thread_name_prefix="vaeaug-convert")
    convert = _converter(model, seed, support)
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


def sample_into(model, n: int, seed: int = 0, *, progress: bool = False, **kwargs) -> np.ndarray:
    """All ``n`` events in one array (n, k, 4) GeV, filled chunk by chunk (no concatenation).

    ``kwargs`` go to :func:`stream`.
    """
    out = np.empty((n, len(model.layout.objects), 4))
    bar = tqdm(total=n, desc="generating", unit="ev", unit_scale=True, disable=not progress,
               leave=False)  # fmt: skip
    start = 0
    with contextlib.closing(stream(model, n, seed, **kwargs)) as chunks:
        for p4 in chunks:
            out[start : start + len(p4)] = p4
            start += len(p4)
            bar.update(len(p4))
    bar.close()
    return out


def generate_to_root(model, n: int, path, *, seed: int = 0, tree: str | None = None,
                     original: np.ndarray | None = None, progress: bool = False,
                     chunk_size: int = DEFAULT_CHUNK, precision: str = "fp32",
                     compile: bool = False, compression=None, support: str = "reject",
                     report: SupportReport | None = None) -> int:  # fmt: skip
    """Stream ``n`` generated candidates into a ROOT tree; returns the number written.

    The chunks come from :meth:`vaeaug.Model.iter_samples` (so from
    :func:`stream`): the next chunk is generated and converted while this one
    is written, and memory stays bounded whatever ``n``. The file appears only
    when complete (:class:`vaeaug.io.RootWriter` writes atomically): an
    exception or Ctrl-C leaves no output. With ``original`` (M, k, 4) GeV the
    originals come first with weight 1 and ``is_generated`` 0, the generated
    ones follow with ``is_generated`` 1 and weight M / n: the real and the
    generated parts each sum to M (the rule of ``vaeaug augment --combined``). ``compression``: an uproot compression
    (default the writer's, ZLIB level 1). ``support`` and ``report``: see :func:`stream`.
    """
    from .io import FLAG_BRANCH, WEIGHT_BRANCH, RootWriter

    extra = {FLAG_BRANCH: "int8", WEIGHT_BRANCH: "float32"} if original is not None else {}
    chunks = model.iter_samples(n, seed=seed, chunk_size=chunk_size, progress=progress,
                                precision=precision, compile=compile, support=support,
                                report=report)  # fmt: skip
    with RootWriter(path, model.layout, tree=tree, extra=extra, compression=compression) as writer:
        if original is not None:
            writer.write(original, is_generated=np.zeros(len(original), np.int8),
                         weight=np.ones(len(original)))  # fmt: skip
            w_gen = len(original) / max(n, 1)
        with contextlib.closing(chunks):
            for p4 in chunks:
                if original is not None:
                    writer.write(p4, is_generated=np.ones(len(p4), np.int8),
                                 weight=np.full(len(p4), w_gen))  # fmt: skip
                else:
                    writer.write(p4)
    return writer.n_written
