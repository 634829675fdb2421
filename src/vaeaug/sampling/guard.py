"""The training support as a wrapper around any generator of candidates.

vaeaug's own sampling redraws candidates outside the training support event by event
(:mod:`vaeaug.sampling.decode`). :class:`SupportGuard` gives any other generator, a
normalizing flow, TVAE or a fast simulation, the same support and redraws, so that
generators are compared with the same guard::

    guard = SupportGuard(train_p4, ["K1", "pi1", "pi2"], masses=[0.4937, 0.1396, 0.1396])
    p4, report = guard.sample(lambda n, seed: my_generator(n, seed), 40_000, seed=2)

The support is :class:`vaeaug.model.support.Support` fitted on the lab-frame observables
(each daughter's pT and eta, the parent's pT, eta and mass) and, when the daughters'
masses are given, the non-angular features of the decay representation of the training
sample, as :func:`vaeaug.fit` fits it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..model.support import Support, observables
from ..noise import Stream, child_seed
from ..representations import make_representation

__all__ = ["SupportGuard"]


class SupportGuard:
    """The training support of a sample of (N, k, 4) GeV candidates, for any generator.

    Args:
        train: the training candidates (N, k, 4), (px, py, pz, E) in GeV.
        objects: the k daughters' names (they name the support's observables).
        masses: the daughters' masses in GeV; with two or more daughters the support also
            bounds the non-angular features of the decay representation, as
            :func:`vaeaug.fit` does; None: lab-frame observables only.
        seed: seeds the support's real-vs-real rate (:meth:`Support.fit`).
    """

    def __init__(self, train: np.ndarray, objects: Sequence[str],
                 masses: Sequence[float] | None, *, seed: int = 0) -> None:  # fmt: skip
        self.objects = list(objects)
        self.rep = None
        if masses is not None and len(objects) >= 2:
            self.rep = make_representation("decay", len(objects), masses=list(masses),
                                           object_names=self.objects)  # fmt: skip
        names, values = self._values(train)
        self.support = Support.fit(values, names, seed=seed)

    def _values(self, p4: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(names, values (N, O)): lab-frame observables, then the non-angular decay features."""
        names, obs = observables(p4, self.objects)
        if self.rep is None:
            return names, obs
        feats = self.rep.feature_names()
        keep = [i for i, f in enumerate(feats) if not f.endswith(("_cos", "_sin"))]
        x = self.rep.to_features(p4)[:, keep]
        return names + [f"feature:{feats[i]}" for i in keep], np.concatenate([obs, x], axis=1)

    def inside(self, p4: np.ndarray) -> np.ndarray:
        """(N,) bool: finite and inside the support."""
        ok = np.isfinite(p4).all(axis=(1, 2))
        out = np.zeros(len(p4), dtype=bool)
        if ok.any():
            with np.errstate(all="ignore"):
                values = self._values(p4[ok])[1]
            out[ok] = self.support.inside(values)  # NaN compares false: outside
        return out

    def sample(self, draw: Callable[[int, int], np.ndarray], n: int, seed: int,
               max_rounds: int = 100) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
        """``n`` candidates of ``draw(m, seed)`` inside the support, and what it took.

        Round 0 is ``draw(n, seed)``; round r >= 1 draws twice the missing count (at
        least 64) with the seed ``child_seed(seed, Stream.GUARD_REDRAW, r)`` and fills the
        slots outside, in order, so the result depends only on ``(seed, n)``.
        Returns (p4 (n, k, 4), {"outside_first": fraction of the first draw outside,
        "drawn": candidates drawn in all, "unresolved": slots still outside}).
        """
        p4 = np.array(draw(n, seed), dtype=np.float64)
        todo = np.flatnonzero(~self.inside(p4))
        first, drawn = len(todo) / max(n, 1), n
        for round_ in range(1, max_rounds + 1):
            if not len(todo):
                break
            m = max(64, 2 * len(todo))
            new = np.asarray(
                draw(m, child_seed(seed, Stream.GUARD_REDRAW, round_)), dtype=np.float64
            )
            drawn += m
            good = new[self.inside(new)][: len(todo)]
            p4[todo[: len(good)]] = good
            todo = todo[len(good) :]
        return p4, {"outside_first": first, "drawn": drawn, "unresolved": int(len(todo))}
