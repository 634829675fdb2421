"""Refinement: a classifier's density ratio makes generated candidates closer to the real ones.

Any generator of candidates (vaeaug, a normalizing flow, TVAE, a fast simulation) leaves
regions where it generates too many or too few candidates. A classifier trained to tell
the real training candidates (label 1) from generated ones (label 0), classes balanced,
estimates the density ratio ``w(x) = p(x) / (1 - p(x)) = p_real(x) / p_generated(x)``.
:class:`Refiner` fits it once and then either

* **rejects** (``mode="reject"``, discriminator rejection sampling, Azadi et al. 2018,
  arXiv:1810.06758): each fresh candidate is kept with probability ``min(w, c) / c``,
  so the output is unweighted; or
* **weights** (``mode="weight"``, DCTR-style reweighting, Diefenbacher et al. 2020,
  arXiv:2009.03796): each fresh candidate gets the weight ``min(w, c)``, scaled so the
  weights sum to the number of candidates (the sample's yield is kept).

The clip ``c`` is the ``clip_quantile`` quantile of ``w`` over a calibration sample drawn
for it alone, so one badly estimated candidate cannot take the whole weight. Three
disjoint draws are used: the classifier's generated class, the calibration sample and
the candidates returned; the classifier stops on its own validation split. It sees the
real candidates given to :meth:`Refiner.fit` (the training sample) and nothing else:
whatever judges the refined sample must be real data it never saw.

The classifier is scikit-learn's ``HistGradientBoostingClassifier`` on the lab-frame
observables of the support (each daughter's pT and eta, the parent's pT, eta and mass)
and, when the daughters' masses are given, every feature of the decay representation::

    refiner = Refiner.fit(lambda n, s: model.sample(n, seed=s).p4, train_p4,
                          ["K1", "pi1", "pi2"], masses=[0.4937, 0.1396, 0.1396], seed=3)
    p4, weights, report = refiner.sample(40_000, seed=4, mode="reject")

:func:`vaeaug.refine` does this for a vaeaug model in one call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..model.support import observables
from ..noise import Stream, child_seed
from ..representations import make_representation

__all__ = ["CLASSIFIER_DEFAULTS", "MODES", "RefineReport", "Refiner"]

MODES = ("reject", "weight")
#: HistGradientBoostingClassifier settings: shallow trees, a slow rate and early stopping
#: on a validation split, for a few hundred to a few thousand real candidates. Chosen with
#: the clip quantile and the default mode on validation splits of the benchmark's training
#: files, two base generators (``bench/tune_refine.py``, docs/dev/refine-plan.md).
CLASSIFIER_DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_iter": 400,
    "max_leaf_nodes": 7,
    "min_samples_leaf": 80,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.25,
    "n_iter_no_change": 20,
}
#: Generated candidates drawn for the classifier and for the calibration, per real one.
GENERATED_PER_REAL = 4
MIN_GENERATED = 4_000
MAX_ROUNDS = 100
#: Draws of one rejection round at most (memory: a round is held at once).
MAX_ROUND_DRAWS = 1_000_000


@dataclasses.dataclass
class RefineReport:
    """What refinement did to a sample.

    Attributes:
        mode: "reject" or "weight".
        n: candidates returned.
        drawn: candidates drawn from the generator for them (reject: n / acceptance).
        acceptance: the calibration sample's mean of ``min(w, c) / c``: the expected
            fraction of draws kept by rejection.
        ess_fraction: Kish effective sample size of the clipped weights over the
            calibration sample, as a fraction of its size: (sum w)^2 / (n sum w^2).
        clip: the clip ``c`` of the density ratio.
        clipped_fraction: the calibration sample's fraction with ``w > c``.
        classifier_iterations: boosting iterations kept by early stopping.
        fit_seconds: time to draw, fit the classifier and calibrate.
    """

    mode: str
    n: int
    drawn: int
    acceptance: float
    ess_fraction: float
    clip: float
    clipped_fraction: float
    classifier_iterations: int
    fit_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line for a command's output."""
        return (
            f"refined ({self.mode}): acceptance {self.acceptance:.2f}, effective sample "
            f"{self.ess_fraction:.0%} of the candidates, ratio clipped at {self.clip:.3g} "
            f"({self.clipped_fraction:.1%} above)"
        )


def _kish_fraction(w: np.ndarray) -> float:
    """Kish effective sample size of weights ``w`` (N,) as a fraction of N."""
    return float(w.sum() ** 2 / (len(w) * np.square(w).sum())) if len(w) else float("nan")


class Refiner:
    """A fitted density-ratio classifier between real and generated candidates.

    Build it with :meth:`fit`; :meth:`ratio` gives the clipped density ratio of any
    candidates and :meth:`sample` draws refined samples.
    """

    def __init__(self, draw: Callable[[int, int], np.ndarray], objects: Sequence[str],
                 masses: Sequence[float] | None, classifier: Any, clip: float,
                 calibration: dict[str, float]) -> None:  # fmt: skip
        self.draw = draw
        self.objects = list(objects)
        self._rep = _decay_representation(self.objects, masses)
        self.classifier = classifier
        self.clip = float(clip)
        self.calibration = calibration

    # -- fitting ----------------------------------------------------------
    @classmethod
    def fit(
        cls,
        draw: Callable[[int, int], np.ndarray],
        real: np.ndarray,
        objects: Sequence[str],
        masses: Sequence[float] | None = None,
        *,
        seed: int = 0,
        real_weights: np.ndarray | None = None,
        clip_quantile: float = 0.99,
        n_generated: int | None = None,
        classifier_kwargs: dict[str, Any] | None = None,
    ) -> Refiner:
        """Train the classifier of ``real`` against ``draw``'s candidates and calibrate it.

        Args:
            draw: ``draw(m, seed)`` returns m generated candidates (m, k, 4), (px, py, pz,
                E) in GeV; the same seed must give the same candidates.
            real: the real candidates (N, k, 4) GeV, usually the training sample.
            objects: the k daughters' names.
            masses: the daughters' masses in GeV (adds the decay representation's
                features); None: lab-frame observables only.
            seed: seeds the draws (``Stream.REFINE_FIT``, ``Stream.REFINE_CALIBRATE``)
                and the classifier (``Stream.REFINE_CLASSIFIER``).
            real_weights: per-candidate weights of ``real`` (N,), or None.
            clip_quantile: the density ratio is clipped at this quantile of its
                calibration values, in (0, 1].
            n_generated: generated candidates for the classifier and, again, for the
                calibration; default max(4 N, 4,000).
            classifier_kwargs: overrides of :data:`CLASSIFIER_DEFAULTS`.
        """
        import time

        from sklearn.ensemble import HistGradientBoostingClassifier

        start = time.perf_counter()
        real = _checked_p4(real, len(objects), "real")
        if not 0.0 < clip_quantile <= 1.0:
            raise ValueError(f"clip_quantile must be in (0, 1], got {clip_quantile!r}")
        if len(real) < 50:
            raise ValueError(f"refinement needs at least 50 real candidates, got {len(real)}")
        wr = np.ones(len(real)) if real_weights is None else np.asarray(real_weights, float)
        if wr.shape != (len(real),) or not np.isfinite(wr).all() or (wr < 0).any() or wr.sum() <= 0:
            raise ValueError(
                f"real_weights must be {len(real)} finite, non-negative weights with a positive sum"
            )
        m = n_generated or max(GENERATED_PER_REAL * len(real), MIN_GENERATED)
        rep = _decay_representation(list(objects), masses)
        fake = _checked_p4(
            draw(m, child_seed(seed, Stream.REFINE_FIT)), len(objects), "draw", drop_nonfinite=True
        )
        x = np.concatenate([_features(real, objects, rep), _features(fake, objects, rep)])
        y = np.concatenate([np.ones(len(real)), np.zeros(len(fake))])
        # balanced classes: each class carries half the total weight
        sw = np.concatenate([wr / wr.sum(), np.full(len(fake), 1.0 / len(fake))]) * len(y) / 2
        kwargs = {**CLASSIFIER_DEFAULTS, **(classifier_kwargs or {})}
        classifier = HistGradientBoostingClassifier(
            random_state=child_seed(seed, Stream.REFINE_CLASSIFIER) % 2**32, **kwargs
        )
        classifier.fit(x, y, sample_weight=sw)
        refiner = cls(draw, objects, masses, classifier, np.inf, {})
        cal = _checked_p4(
            draw(m, child_seed(seed, Stream.REFINE_CALIBRATE)),
            len(objects),
            "draw",
            drop_nonfinite=True,
        )
        w = refiner.ratio(cal, clipped=False)
        refiner.clip = float(np.quantile(w, clip_quantile))
        wc = np.minimum(w, refiner.clip)
        refiner.calibration = {
            "acceptance": float(wc.mean() / refiner.clip),
            "ess_fraction": _kish_fraction(wc),
            "clipped_fraction": float((w > refiner.clip).mean()),
            "classifier_iterations": int(classifier.n_iter_),
            "fit_seconds": time.perf_counter() - start,
        }
        return refiner

    # -- use --------------------------------------------------------------
    def ratio(self, p4: np.ndarray, *, clipped: bool = True) -> np.ndarray:
        """The estimated density ratio real/generated of candidates (M, k, 4) GeV: (M,).

        Non-finite candidates get 0. ``clipped``: capped at :attr:`clip`.
        """
        p4 = np.asarray(p4, dtype=np.float64)
        w = np.zeros(len(p4))
        ok = np.isfinite(p4).all(axis=(1, 2))
        if ok.any():
            p = self.classifier.predict_proba(_features(p4[ok], self.objects, self._rep))[:, 1]
            p = np.clip(p, 1e-6, 1 - 1e-6)
            w[ok] = p / (1 - p)
        return np.minimum(w, self.clip) if clipped else w

    def sample(self, n: int, *, seed: int = 0,
               mode: str = "weight") -> tuple[np.ndarray, np.ndarray | None, RefineReport]:  # fmt: skip
        """``n`` refined candidates: (p4 (n, k, 4) GeV, weights (n,) or None, report).

        ``mode="reject"``: draw in rounds (round r with ``child_seed(seed,
        Stream.REFINE_DRAW, r)``, its uniforms with ``Stream.REFINE_ACCEPT``) and keep
        each candidate with probability ``min(w, c) / c``, in order, until n are kept;
        the result depends only on ``(seed, n)``. Weights are None.
        ``mode="weight"``: draw n candidates (round 0's seed) and weight each by
        ``min(w, c)``, scaled to sum to n.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        k = len(self.objects)
        if mode == "weight":
            p4 = np.asarray(self.draw(n, child_seed(seed, Stream.REFINE_DRAW, 0)), np.float64)
            w = self.ratio(p4)
            weights = w * (n / w.sum()) if w.sum() > 0 else np.ones(n)
            return p4, weights, self._report(mode, n, n)
        out = np.empty((n, k, 4))
        filled, drawn = 0, 0
        acceptance = max(self.calibration["acceptance"], 1e-3)
        for round_ in range(MAX_ROUNDS):
            if filled == n:
                break
            m = min(int(np.ceil(1.1 * (n - filled) / acceptance)) + 64, MAX_ROUND_DRAWS)
            p4 = np.asarray(self.draw(m, child_seed(seed, Stream.REFINE_DRAW, round_)),
                            np.float64)  # fmt: skip
            u = np.random.default_rng(child_seed(seed, Stream.REFINE_ACCEPT, round_)).random(m)
            kept = p4[u * self.clip < self.ratio(p4)][: n - filled]
            out[filled : filled + len(kept)] = kept
            filled, drawn = filled + len(kept), drawn + m
        if filled < n:
            raise RuntimeError(
                f"refinement kept {filled} of {n} candidates in {MAX_ROUNDS} rounds "
                f"({drawn} drawn): the generator and the real sample barely overlap"
            )
        return out, None, self._report(mode, n, drawn)

    def _report(self, mode: str, n: int, drawn: int) -> RefineReport:
        return RefineReport(mode=mode, n=n, drawn=drawn, clip=self.clip, **self.calibration)


def _decay_representation(objects: list[str], masses: Sequence[float] | None):
    if masses is None or len(objects) < 2:
        return None
    return make_representation("decay", len(objects), masses=list(masses), object_names=objects)


def _features(p4: np.ndarray, objects: Sequence[str], rep) -> np.ndarray:
    """The classifier's inputs (N, F): lab-frame observables, then the decay features."""
    with np.errstate(all="ignore"):
        x = observables(p4, objects)[1]
        if rep is not None:
            x = np.concatenate([x, rep.to_features(p4)], axis=1)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _checked_p4(p4: np.ndarray, k: int, name: str, *, drop_nonfinite: bool = False) -> np.ndarray:
    """``p4`` as float64 (N, k, 4) GeV; a non-finite candidate is refused, or dropped with
    ``drop_nonfinite`` (a generator's draws: the support guard may leave none, a flow may)."""
    p4 = np.asarray(p4, dtype=np.float64)
    if p4.ndim != 3 or p4.shape[1:] != (k, 4):
        raise ValueError(
            f"{name} must have shape (N, {k}, 4) (px, py, pz, E in GeV), got {p4.shape}"
        )
    finite = np.isfinite(p4).all(axis=(1, 2))
    if drop_nonfinite:
        return p4[finite]
    if not finite.all():
        raise ValueError(f"{name} holds non-finite 4-momenta")
    return p4
