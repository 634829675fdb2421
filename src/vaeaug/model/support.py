"""The training support: where real candidates live, and the detector acceptance.

A generator can put candidates where no real one could be: a daughter at
|eta| = 7 when the tracker stops at 2.5, a muon above the beam energy. Such
candidates are easy for a classifier to spot and poison a training set. The
:class:`Support` stores, for a set of lab-frame observables and for the model's
features, the interval the training sample covers, widened by a margin about as
large as a second real sample of the same size would exceed it. Sharp cuts of
the selection (every daughter with pT > 0.25 GeV and |eta| < 2.5) are edges of
high density, so their margin is tiny: the acceptance is learned from the data.

Observables (GeV for momenta and masses): for each daughter ``<name>_pt``,
``<name>_eta``; for the parent (the sum of the daughters) ``parent_pt``,
``parent_eta``, ``parent_mass``; and every model feature ``feature:<name>``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ..kinematics import as_vectors, summed
from ..noise import Stream, child_seed

__all__ = [
    "SUPPORT_MODES",
    "Support",
    "SupportReport",
    "SupportWarning",
    "observables",
]

#: Valid values of the ``support`` option of sampling: ``"reject"`` redraws candidates
#: outside the support, ``"warn"`` keeps them and warns above the real-vs-real rate,
#: ``"off"`` does neither.
SUPPORT_MODES = ("reject", "warn", "off")

# Order statistics that set the margin: the mean spacing of the K outermost values.
_MARGIN_ORDER = 10


class SupportWarning(UserWarning):
    """More generated candidates fall outside the training support than real ones would."""


def observables(p4: np.ndarray, objects: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Lab-frame observables that selections cut on: names and values (N, 2 k + 3).

    p4: (N, k, 4) as (px, py, pz, E) in GeV. Each daughter's pT and eta, then
    the parent's pT, eta and mass (:mod:`vaeaug.kinematics`).
    """
    daughters, parent = as_vectors(p4), summed(p4)
    names = [f"{o}_{q}" for o in objects for q in ("pt", "eta")]
    names += ["parent_pt", "parent_eta", "parent_mass"]
    columns = [q for v in daughters for q in (v.pt, v.eta)] + [parent.pt, parent.eta, parent.mass]
    return names, np.stack(columns, axis=1).astype(np.float64, copy=False)


@dataclasses.dataclass
class SupportReport:
    """What the support check saw while sampling.

    Attributes:
        n: candidates generated (delivered).
        outside: of those, first draws outside the support.
        unresolved: candidates still outside after the redraws (kept); sampling with
            ``support="reject"`` raises instead of keeping any, so it is 0 there.
        expected_rate: the fraction of a second real sample outside the support.
        edges: first draws beyond each edge, keyed ``"pi2_pt < 0.2456"`` (observable,
            side, bound; see :meth:`Support.edges_crossed`); a draw can cross several.
    """

    n: int = 0
    outside: int = 0
    unresolved: int = 0
    expected_rate: float = 0.0
    edges: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def outside_fraction(self) -> float:
        return self.outside / self.n if self.n else 0.0

    def add(self, other: SupportReport) -> None:
        self.n += other.n
        self.outside += other.outside
        self.unresolved += other.unresolved
        for edge, count in other.edges.items():
            self.edges[edge] = self.edges.get(edge, 0) + count

    def excess(self) -> bool:
        """Is the outside fraction above the real-vs-real rate by more than 3 sigma?"""
        if not self.n:
            return False
        p = self.expected_rate
        return self.outside > self.n * p + 3.0 * np.sqrt(self.n * max(p, 1.0 / self.n)) + 1

    def summary(self, edges: int = 3) -> str:
        """One line: the outside fraction against the real-vs-real rate, and the ``edges``
        edges crossed most often, each with its share of the candidates."""
        top = sorted(self.edges.items(), key=lambda item: (-item[1], item[0]))[:edges]
        where = ", ".join(f"{e} ({c / self.n:.1%})" for e, c in top) if self.n else ""
        return (
            f"{self.outside_fraction:.2%} of generated candidates fell outside the training "
            f"support (real vs real: {self.expected_rate:.2%})"
            + (f"; {self.unresolved} kept after redraws" if self.unresolved else "")
            + (f"; most often {where}" if where else "")
        )

    def warn_if_excess(self, mode: str, stacklevel: int = 3) -> None:
        if mode == "off" or not self.excess():
            return
        action = (
            "they were redrawn"
            if mode == "reject"
            else "they are in the output; use support='reject' (--support reject) to redraw them"
        )
        warnings.warn(f"{self.summary()}; {action}", SupportWarning, stacklevel=stacklevel)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "outside_fraction": self.outside_fraction}


class Support:
    """Per-observable intervals ``[lo, hi]`` of the training sample, with margins.

    Attributes:
        names: observable names (see the module docstring), length O.
        lo, hi: bounds, shape (O,), in the observables' units (GeV, or none).
        expected_rate: fraction of a second real sample outside (estimated by
            splitting the training sample in two).
    """

    def __init__(self, names: Sequence[str], lo: np.ndarray, hi: np.ndarray,
                 expected_rate: float = 0.0) -> None:  # fmt: skip
        self.names = list(names)
        self.lo = np.asarray(lo, dtype=np.float64)
        self.hi = np.asarray(hi, dtype=np.float64)
        self.expected_rate = float(expected_rate)
        if self.lo.shape != (len(self.names),) or self.hi.shape != self.lo.shape:
            raise InputError(
                f"support bounds must have shape ({len(self.names)},), got {self.lo.shape} "
                f"and {self.hi.shape}"
            )
        distinct = len(set(self.names)) == len(self.names)
        if not distinct or not all(isinstance(n, str) for n in self.names):
            raise InputError(f"support observable names must be distinct strings, got {self.names}")
        bad = ~(np.isfinite(self.lo) & np.isfinite(self.hi) & (self.lo <= self.hi))
        if bad.any():
            j = int(np.argmax(bad))
            raise InputError(
                f"support interval of {self.names[j]!r} is [{self.lo[j]}, {self.hi[j]}]; valid: "
                "finite bounds with lo <= hi"
            )
        if not 0.0 <= self.expected_rate <= 1.0:
            raise InputError(
                f"support expected_rate is {self.expected_rate}; valid: a fraction in [0, 1]"
            )

    @staticmethod
    def _bounds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.sort(values, axis=0)
        k = min(_MARGIN_ORDER, len(v) - 1)
        if k < 1:
            return v[0], v[-1]
        lo = v[0] - (v[k] - v[0]) / k
        hi = v[-1] + (v[-1] - v[-1 - k]) / k
        return lo, hi

    @classmethod
    def fit(cls, observables_: np.ndarray, names: Sequence[str], seed: int = 0) -> Support:
        """Bounds from the training values (N, O); the real-vs-real rate from two random
        halves, drawn from the sub-stream ``Stream.SUPPORT_SPLIT`` of ``seed``."""
        lo, hi = cls._bounds(observables_)
        rng = np.random.default_rng(child_seed(seed, Stream.SUPPORT_SPLIT))
        order = rng.permutation(len(observables_))
        half = len(order) // 2
        rate = 0.0
        if half >= 20:
            a, b = observables_[order[:half]], observables_[order[half : 2 * half]]
            la, ha = cls._bounds(a)
            rate = float(np.mean(((b < la) | (b > ha)).any(axis=1)))
        return cls(names, lo, hi, rate)

    def inside(self, values: np.ndarray) -> np.ndarray:
        """Mask (N,) of rows of ``values`` (N, O) inside every interval (NaN is outside)."""
        return ((values >= self.lo) & (values <= self.hi)).all(axis=1)

    def edges_crossed(self, values: np.ndarray) -> dict[str, int]:
        """How many rows of ``values`` (N, O) lie beyond each edge: keys ``"name < lo"`` and
        ``"name > hi"`` (bounds to 4 significant digits), only the edges crossed."""
        counts = {}
        for j, name in enumerate(self.names):
            column = values[:, j]
            for side, beyond, bound in (("<", column < self.lo[j], self.lo[j]),
                                        (">", column > self.hi[j], self.hi[j])):  # fmt: skip
                if n := int(np.count_nonzero(beyond)):
                    counts[f"{name} {side} {bound:.4g}"] = n
        return counts

    def describe(self, limit: int | None = None) -> list[str]:
        """Human-readable lines ``name in [lo, hi]``."""
        rows = [f"{n} in [{lo:.6g}, {hi:.6g}]" for n, lo, hi in zip(self.names, self.lo, self.hi)]
        return rows[:limit] if limit else rows

    def to_dict(self) -> dict:
        return {
            "names": self.names,
            "lo": self.lo.tolist(),
            "hi": self.hi.tolist(),
            "expected_rate": self.expected_rate,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Support:
        """The support :meth:`to_dict` wrote; InputError names a missing key or a value of the
        wrong JSON type (bounds that are not numbers, a NaN, an interval with lo > hi)."""
        keys = ("names", "lo", "hi", "expected_rate")
        if not isinstance(d, dict) or any(k not in d for k in keys):
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise InputError(f"a support needs the keys {', '.join(keys)}; got {got}")
        number = (int, float)
        if not all(isinstance(d[k], list) and all(isinstance(v, number) and not isinstance(v, bool)
                                                  for v in d[k]) for k in ("lo", "hi")) or (
            not isinstance(d["expected_rate"], number) or not isinstance(d["names"], list)
        ):  # fmt: skip
            raise InputError(
                "a support's lo and hi are lists of numbers, its names a list of strings and "
                "its expected_rate a number"
            )
        return cls(d["names"], np.asarray(d["lo"], dtype=np.float64),
                   np.asarray(d["hi"], dtype=np.float64), d["expected_rate"])  # fmt: skip
