"""Every batch size of the sampling path, in one place.

None of them changes the events: each is either fixed per device type (so the
decoder's row groups, whose rounding can depend on the row count, depend only on
the device type and ``n``) or only cuts work that is elementwise per event.
Memory and speed are what they trade (``docs/performance.md``).
"""

from __future__ import annotations

__all__ = [
    "BATCH_BLOCKS",
    "BLOCK",
    "DECODE_ROWS",
    "DEFAULT_CHUNK",
    "DEVICE_CHUNK",
    "DEVICE_ROWS",
    "NOISE_BATCH_ROWS",
    "REDRAW_ROWS",
]

#: Events per random-number block: block b of a sample draws from a generator
#: seeded by (seed, b), so the events do not depend on the batch size.
BLOCK = 1 << 16
#: Blocks decoded per device batch. One block (64k events) keeps the CPU's work
#: small enough to interleave with the converter; a GPU needs millions of rows in
#: flight to reach its throughput (64 blocks = 4.2M events, ~200 MB of features).
BATCH_BLOCKS = {"cpu": 1, "cuda": 64}
#: Rows per network call (prior and decoder). CPU: 4k rows keep each call's
#: temporaries (the spline flows' knots and bin lookups, dozens of tensors per layer)
#: at ~45 MB of resident memory, against ~150 MB at 16k rows, and run 10-20% faster
#: than 16k rows (flow or Gaussian decoder: bench/results/memory-flow). GPU: 1M rows
#: (1 GB per 256-wide activation) keep the GPU busy and fit an 8 GB card.
#: Fixed per device type, so they never change the events.
DECODE_ROWS = {"cpu": 1 << 12, "cuda": 1 << 20}

#: Default events per chunk handed to the caller (and per ROOT basket):
#: 131,072 events of 3 daughters are 12.6 MB of float64 4-momenta. Larger chunks
#: cost memory (a few chunks are in flight, and the heap fragments around them)
#: and gain no speed on the CPU (bench/results/perf-cpu-memory/latest.json).
DEFAULT_CHUNK = 1 << 17
#: Device types with another default chunk. CUDA: 2**20 events, so that the
#: device-side conversion (a few hundred kernel launches per chunk) and the copies
#: stay large enough to keep the GPU busy.
DEVICE_CHUNK = {"cuda": 1 << 20}
#: Rows per device-side conversion, by device type. CUDA: dozens of float64
#: temporaries of 1M rows (~0.5 GB for 3 bodies) on the device, and few enough
#: kernel launches (~300 per call) per event that the GPU, not the launch
#: overhead, sets the pace. Elsewhere one random-number block, as for numpy: on
#: the CPU, 1M-row calls run at half the rate of cache-sized ones.
DEVICE_ROWS = {"cuda": 1 << 20}

#: Rows per network call when decoding given noise
#: (:func:`vaeaug.sampling.decode.p4_from_noise`) unless the caller says otherwise.
NOISE_BATCH_ROWS = 1 << 16
#: Rows per redraw batch of the support check: redraws are decoded in zero-padded
#: groups of this many rows, so that a redraw's bits do not depend on which other
#: redraws share its batch (:func:`vaeaug.sampling.decode.enforce_support`).
REDRAW_ROWS = 256
