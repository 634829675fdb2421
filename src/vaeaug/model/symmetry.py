"""Symmetries of the training sample that the model need not learn.

Exchange of identical daughters: files often label identical particles by
decreasing pT (``pi1``, ``pi2`` of D+ -> K- pi+ pi+; the leading and subleading
muon). That ordering is a convention, and it draws a sharp, curved boundary
(pT1 = pT2) through every feature of the decay frame that a flow can only blur.
When daughters with equal mass hypotheses are ordered by decreasing pT on every
training candidate, the model learns the exchange-symmetric distribution (each
candidate's labels shuffled within the group by a seeded draw) and every
generated candidate is put back in the file's order. Sorting the symmetrized
distribution gives back the ordered one exactly, so nothing is lost, whatever
the physics of the labels. Two ways to get there (:data:`EXCHANGE_CHOICES`):
``"symmetric"`` trains on the shuffled labels; ``"sort"`` trains on the labels
as given and only sorts the output (then a generated candidate is never in the
wrong order, and the training is that of ``"off"``).

Azimuthal symmetry: draw the parent's phi uniformly when the data allow it.

Collisions are symmetric under rotations about the beam axis, and the decay
features are measured in the parent's helicity frame, which rotates with the
parent. When the training sample's parent azimuth is consistent with uniform
(Kuiper's test, which treats every point of the circle alike, at 1%), the model
does not learn phi at all: it is drawn uniformly at generation. Otherwise (a
detector with dead sectors) phi is learned like every other feature.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..representations.arrays import namespace

__all__ = [
    "EXCHANGE_CHOICES",
    "MASS_RTOL",
    "PHI_TEST_LEVEL",
    "exchange_mode",
    "kuiper_uniform_pvalue",
    "order_by_pt",
    "pt_ordered_groups",
    "shuffle_within",
]

#: Relative tolerance within which two daughters' mass hypotheses are equal.
MASS_RTOL = 1e-3
#: Valid values of ``fit(exchange=...)``: ``"auto"`` (see :func:`exchange_mode`),
#: ``"symmetric"``, ``"sort"``, ``"off"``.
EXCHANGE_CHOICES = ("auto", "symmetric", "sort", "off")

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


def pt_ordered_groups(p4: np.ndarray, masses) -> list[list[int]]:
    """Groups of daughters that the sample labels by decreasing pT: object indices.

    A group holds two or more daughters with equal mass hypotheses (``masses``,
    GeV, one per object, equal within :data:`MASS_RTOL`, the precision of masses
    inferred from data; None gives no group), in label order, each with a pT
    (GeV) at or below the previous one's on every candidate of ``p4`` (N, k, 4).
    A daughter of equal mass that breaks the order (a pi- beside the ordered pi+
    pair of D0 -> K- pi+ pi+ pi-) starts its own group.
    """
    if masses is None or len(p4) == 0:
        return []
    masses = [float(m) for m in masses]
    pt = np.hypot(p4[..., 0], p4[..., 1])
    taken: set[int] = set()
    groups = []
    for i, mass in enumerate(masses):
        if i in taken:
            continue
        group = [i]
        for j in range(i + 1, len(masses)):
            same = math.isclose(masses[j], mass, rel_tol=MASS_RTOL)
            if j not in taken and same and np.all(pt[:, group[-1]] >= pt[:, j]):
                group.append(j)
        if len(group) > 1:
            groups.append(group)
            taken.update(group)
    return groups


def exchange_mode(choice: str, n_objects: int) -> str:
    """What ``fit(exchange=choice)`` does for a decay into ``n_objects`` daughters.

    ``"auto"`` is ``"sort"`` for two bodies and ``"symmetric"`` for three and more:
    chosen on validation splits of the training files (docs/benchmarks.md). For two
    bodies the exchange is the reflection cos(theta*) -> -cos(theta*), phi* -> phi* + pi
    of the decay angles, and the symmetric training scored worse on both two-body
    datasets. The other choices are
    returned as given.
    """
    if choice != "auto":
        return choice
    return "sort" if n_objects == 2 else "symmetric"


def shuffle_within(p4: np.ndarray, groups, rng: np.random.Generator) -> np.ndarray:
    """Copy of ``p4`` (N, k, 4) with each candidate's daughters of each group in a random
    order (uniform over the group's permutations, drawn from ``rng``)."""
    out = np.array(p4, dtype=np.float64, copy=True)
    for group in groups:
        idx = np.asarray(group, dtype=np.intp)
        perm = np.argsort(rng.random((len(out), len(idx))), axis=1)
        out[:, idx] = np.take_along_axis(out[:, idx], perm[..., None], axis=1)
    return out


def order_by_pt(p4, groups):
    """``p4`` (N, k, 4), numpy array or torch tensor, with each group's daughters put in
    order of decreasing pT, in place; returns it. Ties keep their order.

    A bubble sort of elementwise swaps: groups are small (2-3 daughters), and it needs
    nothing but ``where``, so it runs on any device without a host round trip.
    """
    xp = namespace(p4)
    for group in groups:
        for end in range(len(group) - 1, 0, -1):
            for a, b in itertools.pairwise(group[: end + 1]):
                first, second = p4[:, a], p4[:, b]
                swap = xp.hypot(second[:, 0], second[:, 1]) > xp.hypot(first[:, 0], first[:, 1])
                swap = swap[:, None]
                p4[:, a], p4[:, b] = (
                    xp.where(swap, second, first),
                    xp.where(swap, first, second),
                )
    return p4
