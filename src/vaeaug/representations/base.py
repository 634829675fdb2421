"""The :class:`Representation` interface and the kinematics helpers the representations share.

A representation is an invertible map between the lab-frame 4-momenta of the ``k``
final-state objects of each candidate, an array of shape ``(N, k, 4)`` holding
``(px, py, pz, E)`` in GeV, and the ``D`` real features the model learns, shape ``(N, D)``.

``from_features`` is applied to model output, so it accepts any finite real input and
maps it into the physical domain (angles wrapped, masses and energies clamped) instead of
producing NaN. Everything is float64, vectorised over candidates.

One implementation, two array libraries: encoding is numpy; decoding (``from_features``
and the helpers below) calls its array functions through a namespace ``xp``
(:mod:`vaeaug.representations.arrays`), so the same code runs on numpy arrays and on torch
tensors on any device. Numpy input gives numpy output, bit for bit what numpy-only code
gave; a tensor gives a float64 tensor on its own device.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from vaeaug.errors import InputError
from vaeaug.kinematics import MAX_COMPONENT_GEV
from vaeaug.representations.arrays import as_float64, namespace

__all__ = ["Representation"]

# Decoding clamps. They only act on values far outside any collider's reach (pt above
# e^30 GeV ~ 1e13 GeV, |eta| > 40, masses above 1e9 GeV, momentum components above
# 1e15 GeV); their job is to keep every
# intermediate square finite, so that junk model output still decodes without inf/NaN.
_LOG_PT_MIN = -30.0
LOG_PT_MAX = 30.0
ETA_MAX = 40.0
MASS_MAX = 1e9
MOMENTUM_MAX = 1e15
# pt floor (GeV) used when encoding: an object exactly along the beam has log(pt) = -inf and
# an undefined eta; this floor keeps both finite and equal to the decoding lower bound.
_PT_MIN = float(np.exp(_LOG_PT_MIN))
#: The smallest positive normal float64, as a Python float (any array library accepts it).
TINY = float(np.finfo(np.float64).tiny)


class Representation(abc.ABC):
    """Invertible map between 4-momenta of ``n_objects`` objects and model features.

    Subclasses set :attr:`name` and implement :meth:`feature_names`, :meth:`to_features`,
    :meth:`from_features` and :meth:`to_dict`. ``Representation(**d)`` with
    ``d = to_dict()`` minus ``"name"`` rebuilds an equal object.
    """

    name: ClassVar[str]
    n_objects: int
    object_names: list[str]
    masses: list[float] | None = None

    def __init__(
        self,
        n_objects: int,
        masses: Sequence[float] | None = None,
        *,
        object_names: Sequence[str] | None = None,
    ) -> None:
        """Checks and stores the objects' count, mass hypotheses (GeV) and names."""
        self.n_objects = check_n_objects(n_objects)
        self.masses = check_masses(masses, self.n_objects)
        self.object_names = check_object_names(object_names, self.n_objects)

    @abc.abstractmethod
    def feature_names(self) -> list[str]:
        """The ``D`` feature names, in column order."""

    @abc.abstractmethod
    def to_features(self, p4: np.ndarray) -> np.ndarray:
        """Encode 4-momenta.

        p4: lab-frame ``(px, py, pz, E)`` in GeV, shape ``(N, n_objects, 4)``.
        Returns the features, float64 with shape ``(N, D)``.
        """

    @abc.abstractmethod
    def from_features(self, x: np.ndarray) -> np.ndarray:
        """Decode features (any finite real values) into physical 4-momenta.

        x: the features, shape ``(N, D)``.
        Returns lab-frame ``(px, py, pz, E)`` in GeV, float64 with shape ``(N, n_objects, 4)``.
        """

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description, with ``"name"``; see ``representation_from_dict``."""

    @property
    def n_features(self) -> int:
        """The number ``D`` of features."""
        return len(self.feature_names())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Representation):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    # Input checks shared by the subclasses.

    def _check_p4(self, p4: np.ndarray) -> np.ndarray:
        p4 = np.asarray(p4, dtype=np.float64)
        if p4.ndim != 3 or p4.shape[1:] != (self.n_objects, 4):
            raise InputError(
                f"{self.name} representation expects 4-momenta of shape "
                f"(N, {self.n_objects}, 4) = (candidates, objects, (px, py, pz, E)); "
                f"got shape {p4.shape}"
            )
        return p4

    def _check_features(self, x: np.ndarray) -> np.ndarray:
        x = as_float64(x)  # a tensor stays a tensor (float64, same device)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(
                f"{self.name} representation expects features of shape (N, {self.n_features}) "
                f"with columns {self.feature_names()}; got shape {tuple(x.shape)}"
            )
        return x


def check_n_objects(n_objects: int) -> int:
    if isinstance(n_objects, bool) or not isinstance(n_objects, int | np.integer):
        raise InputError(f"n_objects must be a positive integer, got {n_objects!r}")
    if n_objects < 1:
        raise InputError(f"n_objects must be a positive integer, got {n_objects}")
    return int(n_objects)


def check_object_names(object_names: Sequence[str] | None, n_objects: int) -> list[str]:
    if object_names is None:
        return [f"p{i}" for i in range(n_objects)]
    if isinstance(object_names, str):
        raise InputError(f"object_names must be a list of {n_objects} strings, got a string")
    names = list(object_names)
    if len(names) != n_objects or not all(isinstance(n, str) and n for n in names):
        raise InputError(
            f"object_names must be {n_objects} non-empty strings (one per object), got {names!r}"
        )
    if len(set(names)) != len(names):
        raise InputError(f"object_names must be distinct, got {names!r}")
    return names


def check_masses(masses: Sequence[float] | None, n_objects: int) -> list[float] | None:
    if masses is None:
        return None
    try:
        values = [float(m) for m in masses]
    except (TypeError, ValueError):
        raise InputError(
            f"masses must be {n_objects} numbers in GeV (one per object), got {masses!r}"
        ) from None
    if len(values) != n_objects:
        raise InputError(
            f"masses must have one entry per object ({n_objects}), got {len(values)}: {values}"
        )
    if not all(np.isfinite(m) and 0 <= m <= MAX_COMPONENT_GEV for m in values):
        # a daughter heavier than any momentum component vaeaug reads is a unit mistake
        raise InputError(
            f"masses must be finite, >= 0 and at most {MAX_COMPONENT_GEV:g} GeV, got {values}"
        )
    return values


# Kinematics helpers. Arrays broadcast; shapes are (N,) or (N, k) unless stated. Those used
# when decoding take numpy arrays or torch tensors and return the same kind; a bound by a
# Python number is ``xp.clip(x, min=...)`` (torch's maximum takes tensors only).


def unit_pair(c: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalise a (cos, sin) pair onto the unit circle; (0, 0) becomes (1, 0)."""
    xp = namespace(c, s)
    # Scaling by the larger component first keeps hypot finite for any finite input.
    big = xp.maximum(xp.abs(c), xp.abs(s))
    nonzero = big > 0
    safe = xp.where(nonzero, big, 1.0)
    c = xp.where(nonzero, c / safe, 1.0)
    s = xp.where(nonzero, s / safe, 0.0)
    r = xp.hypot(c, s)
    return c / r, s / r


def momentum_to_collider(
    px: np.ndarray, py: np.ndarray, pz: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(px, py, pz) in GeV -> (log pt, eta, cos phi, sin phi), pt floored at ``_PT_MIN``."""
    pt = np.hypot(px, py)
    cos_phi, sin_phi = unit_pair(px, py)
    pt = np.maximum(pt, _PT_MIN)
    return np.log(pt), np.arcsinh(pz / pt), cos_phi, sin_phi


def decode_collider(
    log_pt: np.ndarray, eta: np.ndarray, cos_phi: np.ndarray, sin_phi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clamp (log pt, eta) into range and normalise (cos phi, sin phi).

    Returns (pt in GeV, eta, cos phi, sin phi).
    """
    xp = namespace(log_pt, eta)
    pt = xp.exp(xp.clip(log_pt, _LOG_PT_MIN, LOG_PT_MAX))
    return (pt, xp.clip(eta, -ETA_MAX, ETA_MAX), *unit_pair(cos_phi, sin_phi))


def two_body_momentum(
    m: np.ndarray, m1: np.ndarray | float, m2: np.ndarray | float, excess: np.ndarray | None = None
) -> np.ndarray:
    """Momentum (GeV) of either daughter in the rest frame of a mass-``m`` two-body decay.

    ``excess`` is ``m - m1 - m2`` when the caller knows it more precisely than the
    difference (near threshold); negative values (rounding) count as threshold.
    """
    xp = namespace(m)
    if excess is None:
        excess = m - m1 - m2
    excess = xp.clip(excess, min=0.0)
    # Factorised Kallen function: sqrt(lambda(m^2, m1^2, m2^2)) / (2 m), precise at threshold.
    lam = excess * (m + m1 + m2) * xp.clip(m - m1 + m2, min=0.0) * xp.clip(m + m1 - m2, min=0.0)
    return xp.sqrt(lam) / (2.0 * xp.clip(m, min=TINY))


def logit(p: np.ndarray, q: np.ndarray, eps: float) -> np.ndarray:
    """logit(p) from p and q = 1 - p, each computed precisely; p is clipped to [eps, 1 - eps].

    Taking q separately keeps full relative precision when p is close to 1.
    """
    return np.log(np.clip(p, eps, 1.0 - eps)) - np.log(np.clip(q, eps, 1.0 - eps))


def sigmoid(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid(x), sigmoid(-x)) = (p, 1 - p), both with full relative precision.

    exp(-|x|) never overflows, so any finite x is fine.
    """
    xp = namespace(x)
    e = xp.exp(-xp.abs(x))
    big, small = 1.0 / (1.0 + e), e / (1.0 + e)
    positive = x >= 0
    return xp.where(positive, big, small), xp.where(positive, small, big)
