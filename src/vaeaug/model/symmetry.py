"""Azimuthal symmetry: draw the parent's phi uniformly when the data allow it.

Collisions are symmetric under rotations about the beam axis, and the decay
features are measured in the parent's helicity frame, which rotates with the
parent. When the training sample's parent azimuth is consistent with uniform
(Kuiper's test, which treats every point of the circle alike, at 1%), the model
does not learn phi at all: it is drawn uniformly at generation. Otherwise (a
detector with dead sectors) phi is learned like every other feature.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PHI_TEST_LEVEL", "kuiper_uniform_pvalue"]

#: Significance level of the uniformity test.
PHI_TEST_LEVEL = 0.01


def kuiper_uniform_pvalue(phi: np.ndarray) -> float:
    """Kuiper's test of angles ``phi`` (radians, shape (N,)) against the uniform law.

    Returns the asymptotic p-value (Stephens' finite-N correction). Written out
    because scipy has no Kuiper test; it is a dozen lines.
    """
    u = np.sort(np.mod(np.asarray(phi, dtype=np.float64), 2 * np.pi) / (2 * np.pi))
    n = len(u)
    if n < 2:
        return 1.0
    i = np.arange(1, n + 1)
    v = np.max(i / n - u) + np.max(u - (i - 1) / n)
    sqrt_n = np.sqrt(n)
    lam = (sqrt_n + 0.155 + 0.24 / sqrt_n) * v
    j = np.arange(1, 101)[:, None]
    terms = 2.0 * (4.0 * j**2 * lam**2 - 1.0) * np.exp(-2.0 * j**2 * lam**2)
    return float(np.clip(terms.sum(), 0.0, 1.0)) if lam > 0.4 else 1.0
