r"""Decay representation: parent kinematics plus rest-frame decay variables.

For an ``n``-body decay ``P -> 1 2 [3]`` with known daughter masses ``m_i`` (GeV), the
features are chosen so that the parent mass is an explicit coordinate, the daughter
masses are exact and 4-momentum is conserved by construction: any feature vector decodes
to daughters that sum to a parent of mass ``M``.

Parent (5 features; lab frame, ``P = sum_i p_i``)
    ``parent_log_pt``: ``ln(pt / GeV)``; ``parent_eta``: ``asinh(pz / pt)``;
    ``parent_phi_cos, parent_phi_sin``: ``cos phi, sin phi``;
    ``parent_log_excess``: ``ln((M - sum_i m_i) / GeV)``, with ``M = sqrt(E^2 - |P|^2)`` the
    invariant mass, daughter energies from the mass hypotheses. Every real value decodes to a
    mass above threshold, so no clamp piles events up at ``sum_i m_i`` (a broad continuum
    such as Drell-Yan reaches down to it).

Helicity frame
    The decay angles are measured in the parent rest frame with the axes

    - ``z' = e_r = (sin th cos phi, sin th sin phi, cos th)``, the parent lab direction;
    - ``x' = e_th = (cos th cos phi, cos th sin phi, -sin th)``, in the plane of the beam
      axis and ``z'``, pointing away from ``+z``;
    - ``y' = e_phi = (-sin phi, cos phi, 0) = z' x x'``,

    where ``th, phi`` are the parent's lab polar and azimuthal angles
    (``cos th = tanh eta``). The lab <-> rest transformation is a pure boost along ``z'``
    with ``gamma = E / M`` and ``beta gamma = |P| / M``. Acceptance cuts correlate with
    these angles, which makes the frame a good one to learn in. It stays defined for a
    parent at ``pt -> 0`` because it is built from ``(eta, phi)`` rather than from a cross
    product with the beam axis.

Two-body decays (3 more features, ``D = 8``)
    Direction of daughter 1 in the helicity frame: ``cos_theta_atanh`` (``atanh`` of
    ``cos theta = p1'_z / |p1'|``, so that ``tanh`` maps every real value inside ``(-1, 1)``) and
    ``phi_cos, phi_sin`` (``phi* = atan2(p1'_y, p1'_x)``). The momentum is
    ``q = sqrt(lambda(M^2, m1^2, m2^2)) / 2M`` and daughter 2 is back to back.

Three-body decays (7 more features, ``D = 12``)
    Square Dalitz variables of the pair ``(12)``, ``m12`` its invariant mass in GeV::

        m'     = arccos(2 (m12 - m12min) / (m12max - m12min) - 1) / pi,
        theta' = theta12 / pi,

    with ``m12min = m1 + m2``, ``m12max = M - m3``, and ``theta12`` the helicity angle of
    daughter 1 in the ``(12)`` rest frame, measured from the ``(12)`` flight direction ``n``
    in the parent rest frame (LHCb measures it from daughter 3 instead, which is
    ``pi - theta12``). Both lie in ``[0, 1]`` and enter as ``mprime_logit`` and
    ``thetaprime_logit``, the logit of the value clipped to ``[1e-7, 1 - 1e-7]``; decoding
    with the sigmoid makes every real output a physical Dalitz point.

    Orientation of the decay in the helicity frame, as the ZYZ Euler angles
    ``(alpha, beta, gamma)`` of the frame ``(e_beta, e_alpha, n)``:

    - ``cos_beta_atanh, alpha_cos, alpha_sin``: ``n = (sin b cos a, sin b sin a, cos b)``;
    - ``gamma_cos, gamma_sin``: the decay plane's rotation about ``n``: the component of
      daughter 1's momentum transverse to ``n`` points along
      ``cos g e_beta + sin g e_alpha``, with ``e_beta = (cos b cos a, cos b sin a, -sin b)``
      and ``e_alpha = (-sin a, cos a, 0)``.

    12 features for 12 inputs with 9 degrees of freedom: the only redundancy is the three
    (cos, sin) pairs.

Four to six bodies (and more; ``D = 4 n``)
    Sequential two-body splits ``S_n -> S_{n-1} + n``, ..., ``S_2 -> 1 + 2``, where ``S_j`` is
    the system of daughters ``1..j`` and ``S_n`` the parent. For each split, in the rest frame
    of ``S_j`` (helicity axes for ``S_n``; below, axes with ``z'`` along ``S_j``'s flight
    direction and ``x'`` in the plane of ``z'`` and the previous ``z``): the direction of
    ``S_{j-1}`` (of daughter 1 for ``j = 2``) as ``cos_theta{j}_atanh, phi{j}_cos, phi{j}_sin``;
    and, for ``j >= 3``, the mass of ``S_{j-1}`` as ``m{1..j-1}_frac_logit``, the logit of
    ``T_{j-1} / T_j``, where ``T_j = m(S_j) - sum_{i<=j} m_i`` is the kinetic excess. Every
    real vector decodes to a physical configuration: intermediate masses stay between their
    thresholds by construction.

Decoding guards (values no collider reaches, kept only so that junk input stays finite; they
are counted by :meth:`DecayRepresentation.count_guards`): ``M - sum m_i`` at most ``1e9`` GeV,
``log pt`` in ``[-30, 30]``, ``|eta|`` at most 40. (cos, sin) pairs are normalised
(``(0, 0)`` reads as angle 0).

Encoding reads the daughter 3-momenta only: energies come from the mass hypotheses, as
they do when decoding (so p4 with other masses are projected onto the hypotheses). The
boost between lab and rest frame is done on light-cone components ``E +- p_z'`` computed
without cancellation, so M and the rest-frame momenta keep float64 precision at any boost
(a plain boost loses a factor ``gamma^2``, ~1e8 at eta = 6).

Encoding is numpy. Decoding runs on numpy arrays and on torch tensors (float64, on the
tensor's device) with the same code: the functions it calls are written against the array
API names of :mod:`vaeaug.representations.arrays`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from vaeaug.errors import InputError
from vaeaug.representations.arrays import namespace
from vaeaug.representations.base import (
    ETA_MAX,
    LOG_PT_MAX,
    MASS_MAX,
    TINY,
    Representation,
    check_n_objects,
    decode_collider,
    logit,
    momentum_to_collider,
    sigmoid,
    two_body_momentum,
    unit_pair,
)

__all__ = ["DecayRepresentation"]

# Smallest kinetic excess M - sum m_i (GeV) that encoding keeps, so that its log is finite.
_EXCESS_MIN = 1e-12
# |cos| is clipped to 1 - this before atanh: finite features for exactly collinear decays.
_COS_EPS = 1e-15
_LOG_EXCESS_MAX = float(np.log(MASS_MAX))
# Clip of the square-Dalitz variables before the logit: finite features at the Dalitz edges.
_DALITZ_EPS = 1e-7
# Clip of the n-body mass fractions T_{j-1} / T_j: linear in the mass, so a clip of eps moves
# a subsystem at its threshold by ~sqrt(eps) of its momentum; 1e-15 keeps that at ~3e-8.
_FRAC_EPS = 1e-15
_TINY = TINY


def _to_frame(
    cos_t: np.ndarray,
    sin_t: np.ndarray,
    cos_p: np.ndarray,
    sin_p: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Components of the vector ``(x, y, z)`` along ``(e_theta, e_phi, e_r)``.

    ``e_r = (sin t cos p, sin t sin p, cos t)``, ``e_theta = (cos t cos p, cos t sin p, -sin t)``
    and ``e_phi = (-sin p, cos p, 0)``: a right-handed orthonormal basis. Written out per
    component (arrays of equal or broadcastable shape) because that is several times faster
    than stacked (N, 3) vectors and batched matrix products.
    """
    r = cos_p * x + sin_p * y
    return cos_t * r - sin_t * z, cos_p * y - sin_p * x, sin_t * r + cos_t * z


def _from_frame(
    cos_t: np.ndarray,
    sin_t: np.ndarray,
    cos_p: np.ndarray,
    sin_p: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vector ``a e_theta + b e_phi + c e_r``, the inverse of :func:`_to_frame`."""
    r = cos_t * a + sin_t * c
    return cos_p * r - sin_p * b, sin_p * r + cos_p * b, cos_t * c - sin_t * a


def _light_cone(
    mt2: np.ndarray, z: np.ndarray, e: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(E + z, E - z)`` for transverse mass squared ``mt2 = m^2 + pt^2`` and momentum ``z``.

    The smaller one is computed as ``mt2 / larger``: no cancellation, full relative
    precision even for ultra-relativistic momenta. ``E`` defaults to ``sqrt(mt2 + z^2)``.
    """
    xp = namespace(mt2, z)
    if e is None:
        e = xp.sqrt(mt2 + z**2)
    big = e + xp.abs(z)
    small = mt2 / xp.clip(big, min=_TINY)
    forward = z >= 0
    return xp.where(forward, big, small), xp.where(forward, small, big)


def _atanh(c: np.ndarray) -> np.ndarray:
    """``atanh`` of a cosine, clipped to ``|c| <= 1 - 1e-15`` (finite at the poles)."""
    return np.arctanh(np.clip(c, -1.0 + _COS_EPS, 1.0 - _COS_EPS))


def _tanh_cos_sin(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cos, sin)`` of the polar angle whose cosine is ``tanh(a)``; ``sin = 1 / cosh(a)``."""
    xp = namespace(a)
    return xp.tanh(a), 1.0 / xp.cosh(xp.clip(xp.abs(a), max=700.0))


def _boost_z(e: np.ndarray, z: np.ndarray, gamma: np.ndarray, gamma_beta: np.ndarray):
    """Boost ``(E, p_z)`` along ``z`` by ``(gamma, gamma beta)``: returns ``(E', p_z')``."""
    return gamma * e + gamma_beta * z, gamma * z + gamma_beta * e


class DecayRepresentation(Representation):
    """Parent ``(log pt, eta, phi, M)`` plus helicity-frame decay variables; see the module.

    n_objects: number of daughters, at least 2.
    masses: daughter masses in GeV, one per object, in the order of the 4-momenta. For three
        bodies, objects 0 and 1 form the Dalitz pair ``(12)`` and object 2 is the bachelor.
    object_names: one name per object (default ``p0, p1, ...``); stored for the caller, the
        decay features themselves are named after the parent and the decay angles.
    parent_name: prefix of the parent features (default ``"parent"``).
    """

    name: ClassVar[str] = "decay"

    def __init__(
        self,
        n_objects: int,
        masses: Sequence[float] | None = None,
        *,
        object_names: Sequence[str] | None = None,
        parent_name: str = "parent",
    ) -> None:
        if check_n_objects(n_objects) < 2:
            raise InputError(
                f"the 'decay' representation needs at least 2 daughters, got "
                f"n_objects={n_objects}; use 'collider' (or 'cartesian') instead"
            )
        if masses is None:
            raise InputError(
                "the 'decay' representation needs the daughter masses in GeV, one per object "
                "(e.g. masses=[0.49368, 0.13957, 0.13957] for D+ -> K- pi+ pi+); "
                "without mass hypotheses use 'collider' or 'cartesian'"
            )
        super().__init__(n_objects, masses, object_names=object_names)
        if not isinstance(parent_name, str) or not parent_name:
            raise InputError(f"parent_name must be a non-empty string, got {parent_name!r}")
        self.parent_name = parent_name

    def feature_names(self) -> list[str]:
        parent = [
            f"{self.parent_name}_{c}" for c in ("log_pt", "eta", "phi_cos", "phi_sin", "log_excess")
        ]
        if self.n_objects == 2:
            return [*parent, "cos_theta_atanh", "phi_cos", "phi_sin"]
        if self.n_objects == 3:
            return [
                *parent,
                "mprime_logit",
                "thetaprime_logit",
                "cos_beta_atanh",
                "alpha_cos",
                "alpha_sin",
                "gamma_cos",
                "gamma_sin",
            ]
        names = list(parent)
        for j in range(self.n_objects, 1, -1):
            if j >= 3:
                names.append(f"m{''.join(str(i) for i in range(1, j))}_frac_logit")
            names += [f"cos_theta{j}_atanh", f"phi{j}_cos", f"phi{j}_sin"]
        return names

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_objects": self.n_objects,
            "masses": list(self.masses),
            "object_names": list(self.object_names),
            "parent_name": self.parent_name,
        }

    @property
    def threshold(self) -> float:
        """The kinematic threshold ``sum_i m_i`` of the parent mass, GeV."""
        return float(sum(self.masses))

    def count_guards(self, x: np.ndarray) -> int:
        """Rows of features ``x`` (N, D) that a decoding guard changes (see the module)."""
        x = self._check_features(x)
        bad = (np.abs(x[:, 0]) > LOG_PT_MAX) | (np.abs(x[:, 1]) > ETA_MAX)
        bad |= x[:, 4] > _LOG_EXCESS_MAX
        return int(np.count_nonzero(bad))

    # Encoding

    def to_features(self, p4: np.ndarray) -> np.ndarray:
        p4 = self._check_p4(p4)
        # Component-major copy: every later operation then runs on contiguous memory.
        px, py, pz = np.ascontiguousarray(np.moveaxis(p4[..., :3], -1, 0))  # each (N, k)
        ppx, ppy, ppz = px.sum(axis=1), py.sum(axis=1), pz.sum(axis=1)
        log_pt, eta, cos_phi, sin_phi = momentum_to_collider(ppx, ppy, ppz)
        p_abs = np.sqrt(ppx**2 + ppy**2 + ppz**2)

        # Helicity frame from the exact lab direction (cos th = pz/|p| is more precise than
        # tanh(eta)); a parent along the beam gets the frame of its floored pt.
        pt = np.exp(log_pt)
        p_dir = np.maximum(np.hypot(pt, ppz), _TINY)
        frame = [(v / p_dir)[:, None] for v in (ppz, pt)] + [cos_phi[:, None], sin_phi[:, None]]
        qx, qy, lz = _to_frame(*frame, px, py, pz)  # each (N, k)

        # Light-cone components along z' with the hypothesis masses: all terms positive, so
        # M and the rest-frame momenta keep full precision however large the boost.
        plus, minus = _light_cone(np.square(self.masses) + qx**2 + qy**2, lz)
        m2 = plus.sum(axis=1) * minus.sum(axis=1) - qx.sum(axis=1) ** 2 - qy.sum(axis=1) ** 2
        # M - sum m_i from M^2 - (sum m_i)^2; floored so that its log (and the boost) exist
        total = self.threshold
        excess = np.maximum((m2 - total**2) / (np.sqrt(np.maximum(m2, 0.0)) + total), _EXCESS_MIN)
        m = total + excess
        # Boost to the rest frame: plus shrinks and minus grows by e^y = (E + |P|) / M.
        ey = ((np.sqrt(p_abs**2 + m**2) + p_abs) / m)[:, None]
        qz = 0.5 * (plus / ey - minus * ey)

        columns = [log_pt, eta, cos_phi, sin_phi, np.log(excess)]
        if self.n_objects == 2:
            # Half the relative momentum: equals q1, with the rounding of q1 and q2 averaged.
            half = [0.5 * (c[:, 0] - c[:, 1]) for c in (qx, qy, qz)]
            columns += self._two_body_features(*half)
        elif self.n_objects == 3:
            columns += self._three_body_features(qx, qy, qz, m)
        else:
            columns += self._n_body_features(qx, qy, qz, excess)
        out = np.empty((len(p4), len(columns)))
        for i, column in enumerate(columns):
            out[:, i] = column
        return out

    @staticmethod
    def _two_body_features(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> list[np.ndarray]:
        """Helicity angles of daughter 1 from its rest-frame momentum (x, y, z), each (N,)."""
        norm = np.sqrt(x**2 + y**2 + z**2)
        cos_theta = np.where(norm > 0, z / np.maximum(norm, _TINY), 1.0)
        return [_atanh(cos_theta), *unit_pair(x, y)]

    def _three_body_features(
        self, qx: np.ndarray, qy: np.ndarray, qz: np.ndarray, m: np.ndarray
    ) -> list[np.ndarray]:
        """Dalitz and orientation features from rest-frame momenta (GeV), each (N, 3).

        ``m12`` from ``E^2 - p^2`` would lose the Dalitz edges, where ``m12max - m12`` or
        ``m12 - m12min`` is tiny; both distances are instead computed from momenta (``|p3|``
        in the parent frame, ``|p1|`` in the (12) frame) with formulas free of cancellation.
        """
        m1, m2, m3 = self.masses
        # (12) momentum in the parent frame, averaging p1 + p2 and -p3.
        x12, y12, z12 = (0.5 * (c[:, 0] + c[:, 1] - c[:, 2]) for c in (qx, qy, qz))
        k3 = np.sqrt(x12**2 + y12**2 + z12**2)

        # m12max - m12 = A - m12 with A = M - m3 and m12^2 = (A - d)^2 - k3^2, where
        # d = E3 - m3 = k3^2 / (E3 + m3):  A - m12 = (d (2A - d) + k3^2) / (A + m12).
        a = m - m3
        d = k3**2 / (np.sqrt(m3**2 + k3**2) + m3)
        e12 = a - d
        m12 = np.sqrt(np.maximum((e12 - k3) * (e12 + k3), (m1 + m2) ** 2))
        hi = (d * (2.0 * a - d) + k3**2) / (a + m12)

        # (12) direction n; at k3 = 0 (m12 = m12max) it is undefined and +z' stands in.
        safe = np.where(k3 > 0, k3, 1.0)
        cos_beta = np.where(k3 > 0, z12 / safe, 1.0)
        sin_beta = np.hypot(x12, y12) / safe
        cos_alpha, sin_alpha = unit_pair(x12, y12)

        # Daughters 1 and 2 along (e_beta, e_alpha, n); transverse parts are boost invariant,
        # parallel parts are boosted into the (12) frame; half their difference is p1 there.
        orientation = (cos_beta, sin_beta, cos_alpha, sin_alpha)
        u1, v1, w1 = _to_frame(*orientation, qx[:, 0], qy[:, 0], qz[:, 0])
        u2, v2, w2 = _to_frame(*orientation, qx[:, 1], qy[:, 1], qz[:, 1])
        e1 = np.sqrt(m1**2 + u1**2 + v1**2 + w1**2)
        e2 = np.sqrt(m2**2 + u2**2 + v2**2 + w2**2)
        u, v = 0.5 * (u1 - u2), 0.5 * (v1 - v2)
        w = 0.5 * (e12 * (w1 - w2) - k3 * (e1 - e2)) / np.maximum(m12, _TINY)
        cos_gamma, sin_gamma = unit_pair(u, v)
        perp = np.hypot(u, v)
        # atan2 keeps theta12 and pi - theta12 precise at both Dalitz edges.
        theta_p = np.arctan2(perp, w) / np.pi
        theta_q = np.arctan2(perp, -w) / np.pi

        # m12 - m12min = k1^2/(E1 + m1) + k1^2/(E2 + m2) in the (12) frame, then
        # pi m' / 2 = atan2(sqrt(m12max - m12), sqrt(m12 - m12min)).
        k1sq = u**2 + v**2 + w**2
        lo = k1sq / (np.sqrt(m1**2 + k1sq) + m1) + k1sq / (np.sqrt(m2**2 + k1sq) + m2)
        lo, hi = np.sqrt(lo), np.sqrt(hi)
        mprime_p = np.arctan2(hi, lo) * (2.0 / np.pi)
        mprime_q = np.arctan2(lo, hi) * (2.0 / np.pi)
        return [
            logit(mprime_p, mprime_q, _DALITZ_EPS),
            logit(theta_p, theta_q, _DALITZ_EPS),
            _atanh(cos_beta),
            cos_alpha,
            sin_alpha,
            cos_gamma,
            sin_gamma,
        ]

    # Decoding

    def from_features(self, x: np.ndarray) -> np.ndarray:
        """Decode features ``x`` (N, D) into lab-frame (px, py, pz, E) in GeV, (N, k, 4).

        ``x`` may be a numpy array or a torch tensor on any device (any float dtype); the
        result is float64 of the same kind, on the same device.
        """
        x = self._check_features(x)
        xp = namespace(x)
        pt, eta, cos_phi, sin_phi = decode_collider(x[:, 0], x[:, 1], x[:, 2], x[:, 3])
        excess = xp.exp(xp.clip(x[:, 4], max=_LOG_EXCESS_MAX))
        m = self.threshold + excess
        if self.n_objects == 2:
            daughters = self._two_body_momenta(x[:, 5:], m, excess)
        elif self.n_objects == 3:
            daughters = self._three_body_momenta(x[:, 5:], m, excess)
        else:
            daughters = self._n_body_momenta(x[:, 5:], excess)

        # Boost each daughter from the rest frame to the lab along z' (light-cone components
        # scale by e^y, y the parent rapidity along z'), then rotate to lab axes.
        p_abs = pt * xp.cosh(eta)
        ey = (xp.sqrt(p_abs**2 + m**2) + p_abs) / m
        frame = (xp.tanh(eta), 1.0 / xp.cosh(eta), cos_phi, sin_phi)
        p4 = xp.empty((x.shape[0], self.n_objects, 4), like=x)
        for i, (qx, qy, qz, e) in enumerate(daughters):
            plus, minus = _light_cone(self.masses[i] ** 2 + qx**2 + qy**2, qz, e)
            plus, minus = plus * ey, minus / ey
            p4[:, i, 3] = 0.5 * (plus + minus)
            for c, comp in enumerate(_from_frame(*frame, qx, qy, 0.5 * (plus - minus))):
                p4[:, i, c] = comp
        return p4

    def _two_body_momenta(self, f: np.ndarray, m: np.ndarray,
                          excess: np.ndarray) -> list[tuple[np.ndarray, ...]]:  # fmt: skip
        """Per daughter, rest-frame (x', y', z', E) in GeV in helicity coordinates, each (N,).

        ``excess`` is M - m1 - m2 (GeV), passed on so that no subtraction loses it.
        """
        m1, m2 = self.masses
        cos_t, sin_t = _tanh_cos_sin(f[:, 0])
        cos_p, sin_p = unit_pair(f[:, 1], f[:, 2])
        k = two_body_momentum(m, m1, m2, excess=excess)
        x, y, z = k * sin_t * cos_p, k * sin_t * sin_p, k * cos_t
        xp = namespace(k)
        return [(x, y, z, xp.sqrt(m1**2 + k**2)), (-x, -y, -z, xp.sqrt(m2**2 + k**2))]

    def _three_body_momenta(self, f: np.ndarray, m: np.ndarray,
                            excess: np.ndarray) -> list[tuple[np.ndarray, ...]]:  # fmt: skip
        """Per daughter, rest-frame (x', y', z', E) in GeV in helicity coordinates, each (N,).

        ``excess`` is M - m1 - m2 - m3 (GeV), the span of the Dalitz plot.
        """
        xp = namespace(f)
        m1, m2, m3 = self.masses
        mp, mq = sigmoid(f[:, 0])  # m', 1 - m'
        tp, tq = sigmoid(f[:, 1])  # theta', 1 - theta'
        # m12 - m12min = span cos^2(pi m'/2), m12max - m12 = span sin^2(pi m'/2); written with
        # sin of the smaller of m', 1 - m' so both distances stay precise at the edges.
        span = excess
        lo = span * xp.sin(0.5 * math.pi * mq) ** 2
        hi = span * xp.sin(0.5 * math.pi * mp) ** 2
        m12 = m1 + m2 + lo
        k3 = two_body_momentum(m, m12, m3, excess=hi)  # |p3| = |p12| in the parent frame
        k1 = two_body_momentum(m12, m1, m2, excess=lo)  # |p1| in the (12) frame
        cos_t = xp.where(tp <= 0.5, xp.cos(math.pi * tp), -xp.cos(math.pi * tq))
        sin_t = xp.sin(math.pi * xp.minimum(tp, tq))

        cos_b, sin_b = _tanh_cos_sin(f[:, 2])
        cos_a, sin_a = unit_pair(f[:, 3], f[:, 4])
        cos_g, sin_g = unit_pair(f[:, 5], f[:, 6])

        # Daughters 1, 2 in the (12) frame, boosted along n by beta gamma = k3 / m12; the
        # components are along (e_beta, e_alpha, n) until the final rotation.
        m12_safe = xp.clip(m12, min=_TINY)
        e12 = xp.sqrt(m12**2 + k3**2)
        e1, e2 = xp.sqrt(m1**2 + k1**2), xp.sqrt(m2**2 + k1**2)
        par = k1 * cos_t
        u, v = k1 * sin_t * cos_g, k1 * sin_t * sin_g
        par1 = (e12 * par + k3 * e1) / m12_safe
        par2 = (k3 * e2 - e12 * par) / m12_safe
        orientation = (cos_b, sin_b, cos_a, sin_a)
        zero = xp.zeros_like(k3)
        return [
            (*_from_frame(*orientation, u, v, par1), (e12 * e1 + k3 * par) / m12_safe),
            (*_from_frame(*orientation, -u, -v, par2), (e12 * e2 - k3 * par) / m12_safe),
            (*_from_frame(*orientation, zero, zero, -k3), xp.sqrt(m3**2 + k3**2)),
        ]

    # Four or more bodies: sequential two-body splits (see the module docstring).

    def _n_body_features(
        self, qx: np.ndarray, qy: np.ndarray, qz: np.ndarray, excess: np.ndarray
    ) -> list[np.ndarray]:
        """Sequential-split features from parent-rest-frame momenta (GeV), each (N, n).

        ``excess`` is ``M - sum m_i`` (N,). Works top-down: at split ``S_j -> S_{j-1} + j``
        the daughters of ``S_{j-1}`` are rotated to axes along its flight direction and
        boosted into its rest frame.
        """
        masses = np.asarray(self.masses)
        n = self.n_objects
        x, y, z = (np.array(c, dtype=np.float64) for c in (qx, qy, qz))
        e = np.sqrt(masses**2 + x**2 + y**2 + z**2)
        t_prev = excess
        columns: list[np.ndarray] = []
        for j in range(n, 1, -1):
            last = j - 1  # index of the daughter split off from S_j
            # S_{j-1}'s momentum, averaging its daughters' sum and minus the bachelor's
            sx, sy, sz = (0.5 * (c[:, :last].sum(1) - c[:, last]) for c in (x, y, z))
            k = np.sqrt(sx**2 + sy**2 + sz**2)
            safe = np.where(k > 0, k, 1.0)
            cos_t = np.where(k > 0, sz / safe, 1.0)
            sin_t = np.hypot(sx, sy) / safe
            cos_p, sin_p = unit_pair(sx, sy)
            if j >= 3:
                # T_{j-1} = m(S_{j-1}) - sum m_i, from E_{S_{j-1}}^2 - k^2
                e_sub = e[:, :last].sum(1)
                m_sub = np.sqrt(np.maximum((e_sub - k) * (e_sub + k), 0.0))
                t_sub = np.clip(m_sub - masses[:last].sum(), 0.0, t_prev)
                frac = t_sub / np.maximum(t_prev, _TINY)
                columns.append(logit(frac, 1.0 - frac, _FRAC_EPS))
                t_prev = np.maximum(t_sub, _EXCESS_MIN)
            columns += [_atanh(cos_t), cos_p, sin_p]
            if j == 2:
                break
            # rotate S_{j-1}'s daughters to axes along its direction, then boost to its rest
            frame = (cos_t[:, None], sin_t[:, None], cos_p[:, None], sin_p[:, None])
            x, y, z = _to_frame(*frame, x[:, :last], y[:, :last], z[:, :last])
            e = e[:, :last]
            e_sub = e.sum(1)
            m_sub = np.sqrt(np.maximum((e_sub - k) * (e_sub + k), _TINY))
            gamma, gamma_beta = (e_sub / m_sub)[:, None], (-k / m_sub)[:, None]
            e, z = _boost_z(e, z, gamma, gamma_beta)
        return columns

    def _n_body_momenta(self, f: np.ndarray, excess: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        """Per daughter, parent-rest-frame (x', y', z', E) in GeV in helicity coordinates.

        ``f``: the features after the parent's five, (N, 4 n - 5); ``excess``: M - sum m_i.
        Works bottom-up: ``S_2``'s daughters, then each ``S_{j-1}`` boosted and rotated into
        ``S_j``'s frame beside the bachelor ``j``.
        """
        xp = namespace(f)
        # constants in numpy (the same bits for every array library), as Python floats
        masses = np.asarray(self.masses)
        m_sum = [float(masses[:j].sum()) for j in range(len(masses) + 1)]  # sum_{i<=j} m_i
        m_sq = np.square(masses)
        n = self.n_objects
        # kinetic excesses T_n = excess, T_{j-1} = frac_j * T_j
        t = {n: excess}
        col, angles = 0, {}
        for j in range(n, 1, -1):
            if j >= 3:
                frac, _ = sigmoid(f[:, col])
                t[j - 1] = frac * t[j]
                col += 1
            angles[j] = (f[:, col], f[:, col + 1], f[:, col + 2])
            col += 3

        def mass(j: int) -> np.ndarray:  # m(S_j), GeV
            return m_sum[j] + t[j]

        x = y = z = e = None
        for j in range(2, n + 1):
            cos_t, sin_t = _tanh_cos_sin(angles[j][0])
            cos_p, sin_p = unit_pair(angles[j][1], angles[j][2])
            m_sub = float(masses[0]) + 0.0 * t[j] if j == 2 else mass(j - 1)
            k = two_body_momentum(
                mass(j), m_sub, float(masses[j - 1]), excess=t[j] - (0.0 if j == 2 else t[j - 1])
            )
            if j == 2:
                # daughter 1 along (theta, phi), daughter 2 opposite, in S_2's axes
                x = xp.stack([xp.zeros_like(k), xp.zeros_like(k)], axis=1)
                y = xp.zeros_like(x)
                z = xp.stack([k, -k], axis=1)
                e = xp.stack([xp.sqrt(float(m_sq[i]) + k**2) for i in (0, 1)], axis=1)
            else:
                # boost S_{j-1}'s daughters along its flight (+z') with momentum k
                gamma = (xp.sqrt(m_sub**2 + k**2) / m_sub)[:, None]
                e, z = _boost_z(e, z, gamma, (k / m_sub)[:, None])
                x = xp.concat([x, xp.zeros_like(k)[:, None]], axis=1)
                y = xp.concat([y, xp.zeros_like(k)[:, None]], axis=1)
                z = xp.concat([z, -k[:, None]], axis=1)
                e = xp.concat([e, xp.sqrt(float(m_sq[j - 1]) + k**2)[:, None]], axis=1)
            frame = (cos_t[:, None], sin_t[:, None], cos_p[:, None], sin_p[:, None])
            x, y, z = _from_frame(*frame, x, y, z)
        return [(x[:, i], y[:, i], z[:, i], e[:, i]) for i in range(n)]
