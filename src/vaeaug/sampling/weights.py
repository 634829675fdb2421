"""The one weight rule of a combined output: real candidates and the generated ones together.

A combined sample (``vaeaug augment --combined``, :func:`generate_to_root` with the
originals, ``Augment(mode="combined")``) is filled into histograms as one sample, so
its weights must sum to the input's weighted yield ``Y = sum(w)``, not to twice it.
Each real candidate of weight ``w`` hands its weight to itself and to the ``factor``
generated candidates that stand beside it, in equal shares:

- every real candidate keeps ``w / (1 + factor)``: the real part sums to ``Y / (1 + factor)``;
- the generated part sums to ``Y * factor / (1 + factor)``. With partners (``Augment``)
  each partner gets its source's ``w / (1 + factor)``; without them (the CLI, where the
  generated candidates come from the model's whole distribution) each of the ``n``
  generated candidates gets ``Y * factor / ((1 + factor) * n)``.

``factor`` is the ratio of generated to real candidates, ``n / len(w)``, when the caller
has no fixed factor.
"""

from __future__ import annotations

import numpy as np

__all__ = ["combined_weights"]


def combined_weights(
    weights: np.ndarray, n_generated: int, *, partners: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(real weights (M,), generated weights (n_generated,)) that sum to ``weights.sum()``.

    Args:
        weights: the real candidates' weights, shape (M,), finite and >= 0.
        n_generated: how many generated candidates join them; with ``partners`` a
            multiple of M, laid out source by source (the partners of candidate 0
            first, then those of candidate 1, ...).
        partners: each real candidate has ``n_generated // M`` generated partners that
            share its weight; otherwise the generated part's weight is shared equally.
    """
    w = np.asarray(weights, dtype=np.float64)
    m = len(w)
    if m == 0:
        return w.copy(), np.zeros(n_generated)
    factor = n_generated / m
    real = w / (1.0 + factor)
    if partners:
        if n_generated % m:
            raise ValueError(f"{n_generated} partners are not a multiple of {m} sources")
        return real, np.repeat(real, n_generated // m)
    share = w.sum() * factor / (1.0 + factor) / max(n_generated, 1)
    return real, np.full(n_generated, share)
