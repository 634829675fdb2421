"""Test helpers: hand-built numpy phase-space generators and feature canonicalisation.

The generators share no code with ``vaeaug.representations``: three-body decays are built
from Dalitz invariants in the parent rest frame, n-body decays from a chain of isotropic
two-body decays (GENBOD-like); both get a uniformly random rotation and a general Lorentz
boost to the lab. All momenta in GeV, shapes noted per function.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "D_MASS",
    "K_MASS",
    "MU_MASS",
    "PI_MASS",
    "P_MASS",
    "boost",
    "boost_to_lab",
    "canonical_features",
    "dalitz_momenta",
    "flat_dalitz",
    "momentum_scale",
    "n_body_breakup_momenta",
    "n_body_decays",
    "n_body_rest_frame",
    "random_rotations",
    "rotate",
    "three_body_decays",
]

D_MASS = 1.86966
K_MASS = 0.49368
PI_MASS = 0.13957
# PDG 2024, GeV.
MU_MASS = 0.1056583755
P_MASS = 0.93827208816


def dalitz_momenta(
    m: np.ndarray, masses: tuple[float, float, float], u: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Rest-frame 4-momenta (N, 3, 4) of P -> 1 2 3, parent mass ``m`` (N,) in GeV.

    u in [0, 1] places ``s12 = m12^2`` between its limits; t in [0, 1] places ``s23``
    between its limits at that ``s12`` (0 and 1 are the Dalitz boundary). Daughter 3 goes
    along +z, daughter 1 in the xz plane.
    """
    m1, m2, m3 = masses
    s12 = (m1 + m2) ** 2 + u * ((m - m3) ** 2 - (m1 + m2) ** 2)
    r12 = np.sqrt(s12)
    # Energies and momenta of 2 and 3 in the (12) rest frame give the s23 range (PDG 49.22).
    e2s = (s12 - m1**2 + m2**2) / (2 * r12)
    e3s = (m**2 - s12 - m3**2) / (2 * r12)
    p2s = np.sqrt(np.maximum(e2s**2 - m2**2, 0))
    p3s = np.sqrt(np.maximum(e3s**2 - m3**2, 0))
    lo, hi = (e2s + e3s) ** 2 - (p2s + p3s) ** 2, (e2s + e3s) ** 2 - (p2s - p3s) ** 2
    s23 = lo + t * (hi - lo)

    e1 = (m**2 + m1**2 - s23) / (2 * m)
    e3 = (m**2 + m3**2 - s12) / (2 * m)
    e2 = m - e1 - e3
    k1, k2, k3 = (np.sqrt(np.maximum(e**2 - mm**2, 0)) for e, mm in ((e1, m1), (e2, m2), (e3, m3)))
    denom = 2 * k1 * k3
    cos13 = np.clip(
        np.divide(k2**2 - k1**2 - k3**2, denom, out=np.ones_like(m), where=denom > 0), -1, 1
    )
    sin13 = np.sqrt(1 - cos13**2)
    zero = np.zeros_like(m)
    v1 = np.stack([k1 * sin13, zero, k1 * cos13], axis=-1)
    v3 = np.stack([zero, zero, k3], axis=-1)
    v2 = -v1 - v3
    vecs = np.stack([v1, v2, v3], axis=1)  # (N, 3, 3)
    energies = np.sqrt(np.array(masses) ** 2 + (vecs**2).sum(-1))
    return np.concatenate([vecs, energies[..., None]], axis=-1)


def flat_dalitz(
    rng: np.random.Generator, m: np.ndarray, masses: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(u, t) for :func:`dalitz_momenta` such that the events are flat in the Dalitz plot."""
    m1, m2, m3 = masses
    n = len(m)
    u, t = np.empty(n), np.empty(n)
    todo = np.arange(n)
    while len(todo):
        # Flat phase space is flat in (s12, s23); accept s12 with weight = width of s23 range.
        uu, tt, w = rng.uniform(size=(3, len(todo)))
        mm = m[todo]
        s12 = (m1 + m2) ** 2 + uu * ((mm - m3) ** 2 - (m1 + m2) ** 2)
        r12 = np.sqrt(s12)
        e2s = (s12 - m1**2 + m2**2) / (2 * r12)
        e3s = (mm**2 - s12 - m3**2) / (2 * r12)
        width = 4 * np.sqrt(np.maximum(e2s**2 - m2**2, 0) * np.maximum(e3s**2 - m3**2, 0))
        ok = w * (mm**2) < width  # width < M^2 always
        u[todo[ok]], t[todo[ok]] = uu[ok], tt[ok]
        todo = todo[~ok]
    return u, t


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniformly random rotation matrices (n, 3, 3), from normalised Gaussian quaternions."""
    q = rng.normal(size=(n, 4))
    return quaternion_matrix(q)


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (n, 3, 3) of the (unnormalised) quaternions ``q`` (n, 4)."""
    w, x, y, z = (q / np.linalg.norm(q, axis=-1, keepdims=True)).T
    return np.stack(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    ).transpose(2, 0, 1)


def rotate(p4: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Apply rotations (N, 3, 3) to the 3-momenta of p4 (N, k, 4)."""
    out = p4.copy()
    out[..., :3] = np.einsum("nij,nkj->nki", rot, p4[..., :3])
    return out


def boost_to_lab(
    p4: np.ndarray, m: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray
) -> np.ndarray:
    """Boost rest-frame p4 (N, k, 4) to a lab frame where the parent has (pt, eta, phi).

    General boost with velocity b = P / E:  E' = g (E + b.p),
    p' = p + (g^2 / (g + 1) b.p + g E) b.
    """
    big_p = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)
    return boost(p4, big_p, m)


def boost(p4: np.ndarray, big_p: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Boost p4 (N, k, 4) from the rest frame of a system of mass ``m`` (N,) to the frame
    where that system has 3-momentum ``big_p`` (N, 3); the formula of :func:`boost_to_lab`."""
    big_e = np.sqrt((big_p**2).sum(-1) + m**2)
    b = (big_p / big_e[:, None])[:, None, :]  # (N, 1, 3)
    g = (big_e / m)[:, None]  # (N, 1)
    bp = (b * p4[..., :3]).sum(-1)
    out = np.empty_like(p4)
    out[..., :3] = p4[..., :3] + ((g**2 / (g + 1) * bp + g * p4[..., 3])[..., None]) * b
    out[..., 3] = g * (p4[..., 3] + bp)
    return out


def _isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniformly random unit vectors (n, 3)."""
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def n_body_breakup_momenta(
    m: np.ndarray, masses: tuple[float, ...], fractions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Masses (N, n + 1) and breakup momenta (N, n + 1) of the chain of :func:`n_body_rest_frame`.

    Column j (2 .. n) holds the mass of the system ``1..j`` and the momentum of ``1..j-1``
    (daughter 1 for j = 2) in its rest frame; columns 0 and 1 are unused (mass 1: daughter 1).
    The Kallen function is factorised with the excess ``m(1..j) - m(1..j-1) - m_j`` taken
    from the fractions, so small breakup momenta keep their relative precision.
    """
    masses = np.asarray(masses, dtype=float)
    n_obj = len(masses)
    sub = np.zeros((len(m), n_obj + 1))
    gap = np.zeros((len(m), n_obj + 1))
    excess = m - masses.sum()
    sub[:, n_obj] = m
    for j in range(n_obj, 2, -1):
        gap[:, j] = (1.0 - fractions[:, j - 3]) * excess
        excess = fractions[:, j - 3] * excess
        sub[:, j - 1] = masses[: j - 1].sum() + excess
    gap[:, 2] = excess
    sub[:, 1] = masses[0]
    k = np.zeros((len(m), n_obj + 1))
    for j in range(2, n_obj + 1):
        mj, mi, mk = sub[:, j], sub[:, j - 1], masses[j - 1]
        lam = gap[:, j] * (mj + mi + mk) * (mj - mi + mk) * (mj + mi - mk)
        k[:, j] = np.sqrt(np.maximum(lam, 0.0)) / (2.0 * mj)
    return sub, k


def n_body_rest_frame(
    rng: np.random.Generator, m: np.ndarray, masses: tuple[float, ...], fractions: np.ndarray
) -> np.ndarray:
    """Parent-rest-frame 4-momenta (N, n, 4) of P -> 1 ... n, parent mass ``m`` (N,) in GeV.

    ``fractions`` (N, n - 2) in [0, 1]: the kinetic excess ``m(1..j) - sum_{i<=j} m_i`` of
    the system ``1..j`` is ``fractions[:, j - 2]`` times that of ``1..j+1`` (j = 2 .. n-1),
    the order of the ``m{1..j}_frac_logit`` features read backwards.
    Built bottom-up: the system ``1..j`` decays isotropically to ``1..j-1`` plus ``j`` in its
    rest frame, and is then boosted to the rest frame of ``1..j+1``.
    """
    masses = np.asarray(masses, dtype=float)
    sub, k = n_body_breakup_momenta(m, tuple(masses), fractions)
    # S_2 -> 1 + 2 in the S_2 rest frame
    u = _isotropic(rng, len(m)) * k[:, 2:3]
    p = np.stack([u, -u], axis=1)
    p4 = np.concatenate([p, np.sqrt(masses[:2] ** 2 + (p**2).sum(-1))[..., None]], axis=-1)
    for j in range(3, len(masses) + 1):
        u = _isotropic(rng, len(m)) * k[:, j : j + 1]
        p4 = boost(p4, u, sub[:, j - 1])
        bachelor = np.concatenate([-u, np.sqrt(masses[j - 1] ** 2 + k[:, j : j + 1] ** 2)], -1)
        p4 = np.concatenate([p4, bachelor[:, None]], axis=1)
    return p4


def n_body_decays(
    rng: np.random.Generator,
    n: int,
    masses: tuple[float, ...],
    m: float | np.ndarray,
    log_pt: tuple[float, float] = (np.log(1e-2), np.log(1e3)),
    eta: tuple[float, float] = (-6.0, 6.0),
    fractions: np.ndarray | None = None,
) -> np.ndarray:
    """Random n-body decays in the lab, (n, k, 4) GeV: isotropic splits, random rotation and
    boost. ``fractions`` (n, k - 2) as in :func:`n_body_rest_frame`, default uniform (not
    flat phase space, but every configuration is reached)."""
    m = np.broadcast_to(np.asarray(m, dtype=float), (n,)).copy()
    if fractions is None:
        fractions = rng.uniform(size=(n, len(masses) - 2))
    rest = rotate(n_body_rest_frame(rng, m, masses, fractions), random_rotations(rng, n))
    return boost_to_lab(
        rest,
        m,
        np.exp(rng.uniform(*log_pt, n)),
        rng.uniform(*eta, n),
        rng.uniform(-np.pi, np.pi, n),
    )


def three_body_decays(
    rng: np.random.Generator,
    n: int,
    masses: tuple[float, float, float] = (K_MASS, PI_MASS, PI_MASS),
    m: float | np.ndarray = D_MASS,
    log_pt: tuple[float, float] = (np.log(0.3), np.log(50.0)),
    eta: tuple[float, float] = (-5.0, 5.0),
) -> np.ndarray:
    """Flat phase-space decays in the lab, (n, 3, 4) GeV: D+ -> K- pi+ pi+ by default."""
    m = np.broadcast_to(np.asarray(m, dtype=float), (n,)).copy()
    rest = rotate(dalitz_momenta(m, masses, *flat_dalitz(rng, m, masses)), random_rotations(rng, n))
    return boost_to_lab(
        rest,
        m,
        np.exp(rng.uniform(*log_pt, n)),
        rng.uniform(*eta, n),
        rng.uniform(-np.pi, np.pi, n),
    )


def momentum_scale(p4: np.ndarray) -> np.ndarray:
    """Per-candidate momentum scale (N, 1, 1): the summed energy, in GeV."""
    return p4[..., 3].sum(axis=1)[:, None, None]


def canonical_features(x: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """x (N, D) with the (cos, sin) column pairs normalised, as decoding reads them.

    So ``to_features(from_features(x))`` can be compared with it: the angles of the pairs
    then agree modulo 2 pi. ``(0, 0)`` reads as angle 0.
    """
    x = np.array(x, dtype=float)
    for c, s in pairs:
        r = np.hypot(x[:, c], x[:, s])
        zero = r == 0
        x[:, c] = np.where(zero, 1.0, x[:, c] / np.where(zero, 1.0, r))
        x[:, s] = np.where(zero, 0.0, x[:, s] / np.where(zero, 1.0, r))
    return x
