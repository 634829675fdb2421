"""Generators with a known mismodelling, for tests of what wraps a generator (the support
guard, refinement): real candidates, a fraction of them boosted along z."""

from __future__ import annotations

import numpy as np
import vector


def boosted_along_z(p4: np.ndarray, rapidity: float) -> np.ndarray:
    """``p4`` (N, k, 4) GeV boosted along z by ``rapidity``: every daughter's and the
    parent's eta shift by it, masses are kept (vector's ``boostZ``)."""
    v = vector.array({"px": p4[..., 0], "py": p4[..., 1], "pz": p4[..., 2], "E": p4[..., 3]})
    b = v.boostZ(beta=np.tanh(rapidity))
    return np.stack([b.px, b.py, b.pz, b.E], axis=-1)


def boosted_mixture(pool: np.ndarray, fraction: float, rapidity: float):
    """``draw(n, seed)``: n candidates of ``pool`` (with replacement), a ``fraction`` of them
    boosted along z by ``rapidity``; the same seed gives the same candidates."""

    def draw(n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        p4 = pool[rng.integers(0, len(pool), n)]
        bad = rng.random(n) < fraction
        p4[bad] = boosted_along_z(p4[bad], rapidity)
        return p4

    return draw
