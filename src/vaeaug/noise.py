"""Counter-based random numbers: normals that depend only on a 64-bit key and a counter.

The main generation stream draws from ``torch.Generator`` blocks (fast, on the
device). Where numbers must belong to one *event* rather than to a position in a
stream, they come from here: the partners of a coffea candidate (keyed by the
candidate's own 4-momenta) and the redraws of a candidate outside the training
support (keyed by the event's index in the sample and the redraw round). Either
way the result does not depend on chunking, executors or worker counts.

The generator is SplitMix64's output function applied to ``key + counter *
golden``, then Box-Muller: vectorised numpy, no per-event state.

Every other use of a user's seed (the training split, the support's halves, the
validation subsamples) draws from its own sub-stream, ``child_seed(seed, Stream.X)``,
so that no two uses of one seed see the same numbers.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = [
    "Stream",
    "candidate_keys",
    "child_seed",
    "index_keys",
    "keyed_normals",
    "keyed_uniforms",
    "mix",
    "seed_words",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


class Stream(enum.IntEnum):
    """The first element of the seed path of each use of a user's seed.

    ``child_seed(seed, Stream.TRAIN_SPLIT)`` seeds the training split, and so on. Block
    ``b`` of a generated sample uses the path ``(b,)`` and the redraw keys ``(1,)``
    (:func:`index_keys`); these tags lie far above any block index. Each use keeps a
    fixed path length: numpy's ``SeedSequence`` pads short entropy with zeros, so the
    paths ``(tag,)`` and ``(tag, 0)`` would give the same numbers.
    """

    TRAIN_SPLIT = 0x5EED_0001  # training / validation split (vaeaug.training)
    TRAIN_ORDER = 0x5EED_0002  # batch order and the score's fixed noise (vaeaug.training)
    TRAIN_INIT = 0x5EED_0003  # initial weights and reparameterisation noise (vaeaug.fit)
    EXCHANGE_SHUFFLE = 0x5EED_0004  # labels of identical daughters, exchange="symmetric"
    SUPPORT_SPLIT = 0x5EED_0005  # the halves of the support's real-vs-real rate
    GENERATED = 0x5EED_0006  # a sample generated with the seed its model was trained with
    C2ST = 0x5EED_0101  # C2ST subsampling, train/test split and bootstrap
    C2ST_CLASSIFIER = 0x5EED_0102  # the C2ST classifier's random_state
    C2ST_FLOOR_SPLIT = 0x5EED_0103  # the halves of the original for the C2ST floor
    C2ST_FLOOR = 0x5EED_0104  # the C2ST between those halves
    ONE_D_SPLIT = 0x5EED_0105  # the halves of the one-dimensional metrics' floors
    CORRELATION_SPLIT = 0x5EED_0106  # the halves of the correlation floors
    MEMORISATION = 0x5EED_0107  # the memorisation check's subsamples
    AMPLIFICATION = 0x5EED_0108  # the amplification curve's subsamples and bootstrap
    SUBSAMPLE_ORIGINAL = 0x5EED_0109  # validation's subsample of the original sample
    SUBSAMPLE_GENERATED = 0x5EED_010A  # validation's subsample of the generated sample
    DEMO_REFERENCE = 0x5EED_0201  # the demo's independent reference sample
    GUARD_REDRAW = 0x5EED_0007  # (GUARD_REDRAW, round): SupportGuard's redraws
    GENERATED_LABELS = 0x5EED_0008  # per-object labels (charge) of generated candidates
    ENSEMBLE_BOOTSTRAP = 0x5EED_0501  # (ENSEMBLE_BOOTSTRAP, i): member i's bootstrap replica
    ENSEMBLE_MEMBER = 0x5EED_0502  # (ENSEMBLE_MEMBER, i): member i's training seed
    ENSEMBLE_SAMPLE = 0x5EED_0503  # (ENSEMBLE_SAMPLE, i): member i's share of a sample
    ENSEMBLE_OUT_OF_BAG = 0x5EED_0504  # (ENSEMBLE_OUT_OF_BAG, i): member i's out-of-bag sample
    TRAINSET_CLASS = 0x5EED_0301  # (TRAINSET_CLASS, label): a training set's class model
    REFINE_FIT = 0x5EED_0401  # refinement: the classifier's generated class
    REFINE_CALIBRATE = 0x5EED_0402  # refinement: the sample that sets the clip
    REFINE_CLASSIFIER = 0x5EED_0403  # refinement: the classifier's random_state
    REFINE_DRAW = 0x5EED_0404  # (REFINE_DRAW, round): refinement's draws
    REFINE_ACCEPT = 0x5EED_0405  # (REFINE_ACCEPT, round): their acceptance uniforms


def mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on a uint64 array (wraps modulo 2**64 by design)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def seed_words(seed: int, *path: int, n: int = 1, dtype=np.uint64) -> np.ndarray:
    """``n`` words of the sub-stream ``path`` of ``seed``: ``SeedSequence([seed, *path])``.

    Every seed derivation of the package goes through here (or :func:`child_seed`),
    so sub-streams never collide by accident (see :class:`Stream`).
    """
    return np.random.SeedSequence([seed, *path]).generate_state(n, dtype)


def child_seed(seed: int, *path: int) -> int:
    """A 63-bit integer seed (for ``torch.Generator`` or numpy) of the sub-stream ``path`` of ``seed``."""
    return int(seed_words(seed, *path)[0] >> np.uint64(1))


def candidate_keys(p4: np.ndarray, seed: int) -> np.ndarray:
    """A 64-bit key per candidate from ``seed`` and its float64 4-momenta: (M, k, 4) -> (M,)."""
    words = np.ascontiguousarray(p4, dtype=np.float64).reshape(len(p4), -1).view(np.uint64)
    h = np.full(len(p4), seed_words(seed)[0])
    with np.errstate(over="ignore"):
        for col in words.T:
            h = mix((h ^ col) + _GOLDEN)
    return h


def index_keys(seed: int, index: np.ndarray, stream: int = 1) -> np.ndarray:
    """A 64-bit key per event index (int64, shape (M,)) of a sample drawn with ``seed``."""
    with np.errstate(over="ignore"):
        return mix(np.asarray(index, dtype=np.uint64) * _GOLDEN + seed_words(seed, stream)[0])


def keyed_uniforms(keys: np.ndarray, width: int, round_: int = 0) -> np.ndarray:
    """Uniforms strictly inside (0, 1), shape (M, width), from keys (M,) and a round number.

    Round ``r`` uses counters ``r * width + 1 ... (r + 1) * width``, so rounds never overlap.
    """
    counters = np.arange(round_ * width + 1, (round_ + 1) * width + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = mix(np.asarray(keys, dtype=np.uint64)[:, None] + counters * _GOLDEN)
    # 53 random bits, centred in their bin: strictly inside (0, 1), so log() is finite
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def keyed_normals(keys: np.ndarray, width: int, round_: int = 0) -> np.ndarray:
    """Standard normals (M, width) from keys (M,) and a round number (Box-Muller)."""
    pairs = (width + 1) // 2
    u = keyed_uniforms(keys, 2 * pairs, round_)
    r = np.sqrt(-2.0 * np.log(u[:, :pairs]))
    theta = 2.0 * np.pi * u[:, pairs:]
    return np.concatenate([r * np.cos(theta), r * np.sin(theta)], axis=1)[:, :width]
