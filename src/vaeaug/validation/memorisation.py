"""Memorisation check: are generated candidates closer to the training set than real ones?

Features are standardised with the training set's median and IQR/1.349, then
each generated candidate's Euclidean distance to its nearest training candidate
is compared with the same distance for held-out real candidates, which the
model never saw. A generator that copies its training set sits at distance ~0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from ..noise import Stream, child_seed

__all__ = ["heldout_rows", "memorisation"]


def heldout_rows(real: np.ndarray, training: np.ndarray) -> np.ndarray:
    """Boolean mask (N,) of rows of ``real`` (N, F) that do not appear exactly in ``training``."""
    train_keys = {row.tobytes() for row in np.ascontiguousarray(training)}
    return np.array(
        [row.tobytes() not in train_keys for row in np.ascontiguousarray(real)], dtype=bool
    )


def memorisation(
    generated: np.ndarray,
    training: np.ndarray,
    heldout: np.ndarray,
    *,
    max_events: int | None = 50_000,
    flag_fraction: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Nearest-training-neighbour distances of ``generated`` (M, F) vs ``heldout`` (H, F).

    ``training`` (T, F) is the sample the model was trained on; ``heldout`` are
    real candidates not in it. Each sample is subsampled to ``max_events`` to
    bound the cost. Returns ``available``, ``median_generated`` and
    ``median_heldout`` (standardised units), ``ratio_of_medians``
    (generated / held-out; ~1 is healthy, << 1 is memorisation),
    ``heldout_p1`` (1st percentile of held-out distances), ``fraction_below_p1``
    (fraction of generated candidates closer than that; ~0.01 is healthy),
    ``fraction_exact_copies`` (distance < 1e-6, rounding in the neighbour search) and ``flagged``
    (fraction_below_p1 > ``flag_fraction``).
    """
    from sklearn.neighbors import NearestNeighbors

    if len(heldout) < 100:
        return {
            "available": False,
            "reason": f"need at least 100 held-out real candidates not in the training set; got {len(heldout)}",
        }
    rng = np.random.default_rng(child_seed(seed, Stream.MEMORISATION))

    def sub(x):
        if max_events is None or len(x) <= max_events:
            return x
        return x[rng.choice(len(x), max_events, replace=False)]

    centre = np.median(training, axis=0)
    scale = stats.iqr(training, axis=0, scale="normal")  # IQR / 1.349
    # A constant feature carries no distance information; avoid dividing by zero.
    scale[scale <= 0] = 1.0
    nn = NearestNeighbors(n_neighbors=1).fit((training - centre) / scale)
    d_gen = nn.kneighbors((sub(generated) - centre) / scale)[0][:, 0]
    d_held = nn.kneighbors((sub(heldout) - centre) / scale)[0][:, 0]
    med_gen, med_held = float(np.median(d_gen)), float(np.median(d_held))
    p1 = float(np.quantile(d_held, 0.01))
    frac = float(np.mean(d_gen < p1))
    return {
        "available": True,
        "median_generated": med_gen,
        "median_heldout": med_held,
        "ratio_of_medians": med_gen / med_held if med_held > 0 else float("nan"),
        "heldout_p1": p1,
        "fraction_below_p1": frac,
        "fraction_exact_copies": float(np.mean(d_gen < 1e-6)),
        "flagged": bool(frac > flag_fraction),
        "n_generated": len(d_gen),
        "n_heldout": len(d_held),
        "n_training": len(training),
    }
