"""The built-in samples: small numpy generators, so nothing is downloaded.

- :func:`dplus_kpipi`: D+ -> K- pi+ pi+ candidates, used by ``vaeaug demo``, the
  tests and the examples. It mimics the shared Pythia 8 sample closely enough
  for a demonstration: a parent pT spectrum like charm from hard scattering, a
  broad rapidity plateau, flat three-body phase space, tracker acceptance
  (pT > 0.25 GeV, |eta| < 2.5) and 0.5% momentum smearing with E recomputed
  from the PDG mass. It is no substitute for Pythia: there is no underlying
  event, and so no combinatorial background.
- :func:`dimuon_continuum`: opposite-sign muon pairs whose mass is a falling
  Drell-Yan-like continuum plus a narrow J/psi-like peak, in a CMS-like
  acceptance (pT > 3 GeV, |eta| < 2.4, 1% smearing): a parent mass that is
  not one peak, for fast tests of what a model does on a continuum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import vector
from particle import Particle

__all__ = [
    "DIMUON_OBJECTS",
    "DPLUS_MASS",
    "JPSI_MASS",
    "KAON_MASS",
    "MUON_MASS",
    "PION_MASS",
    "dimuon_continuum",
    "dplus_kpipi",
]

#: PDG masses in GeV, from the ``particle`` package's PDG table (MeV there).
DPLUS_MASS = Particle.from_pdgid(411).mass / 1e3
KAON_MASS = Particle.from_pdgid(321).mass / 1e3
PION_MASS = Particle.from_pdgid(211).mass / 1e3
MUON_MASS = Particle.from_pdgid(13).mass / 1e3
JPSI_MASS = Particle.from_pdgid(443).mass / 1e3

#: The names of the daughters, in the order of the returned array.
OBJECTS = ("K1", "pi1", "pi2")
#: The names of the muons of :func:`dimuon_continuum`, in the order of the returned array.
DIMUON_OBJECTS = ("mu1", "mu2")

#: The dimuon sample's acceptance: CMS-like muons.
DIMUON_PT_MIN = 3.0  # GeV
DIMUON_ETA_MAX = 2.4
#: The continuum's mass range (GeV) and power law, dN/dm ~ m^-DY_POWER (Drell-Yan-like).
DY_MASS_RANGE = (4.0, 120.0)
DY_POWER = 3.0


def _two_body_momentum(m: np.ndarray, m1: float | np.ndarray, m2: float | np.ndarray) -> np.ndarray:
    """Daughter momentum (GeV) in the rest frame of a mass-``m`` two-body decay."""
    arg = (m**2 - (m1 + m2) ** 2) * (m**2 - (m1 - m2) ** 2)
    return np.sqrt(np.maximum(arg, 0.0)) / (2 * m)


def _isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit vectors, shape (n, 3), uniform on the sphere."""
    cos_t = rng.uniform(-1, 1, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    sin_t = np.sqrt(1 - cos_t**2)
    return np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=-1)


def _phase_space_rest_frame(rng: np.random.Generator, n: int) -> np.ndarray:
    """Flat three-body phase space of D+ -> K pi pi at rest: (n, 3, 4) in GeV.

    Dalitz-plot points are drawn uniformly (phase space is flat in
    (m12^2, m23^2)) by rejection, then the decay is oriented at random.
    """
    M, m1, m2, m3 = DPLUS_MASS, KAON_MASS, PION_MASS, PION_MASS
    out = np.empty((0, 3, 4))
    while len(out) < n:
        k = 2 * (n - len(out)) + 64
        m12 = np.sqrt(rng.uniform((m1 + m2) ** 2, (M - m3) ** 2, k))
        m23sq = rng.uniform((m2 + m3) ** 2, (M - m1) ** 2, k)
        # kinematic limits of m23^2 at this m12 (PDG kinematics review, eq. 49.23)
        e2 = (m12**2 - m1**2 + m2**2) / (2 * m12)
        e3 = (M**2 - m12**2 - m3**2) / (2 * m12)
        p2, p3 = np.sqrt(np.maximum(e2**2 - m2**2, 0)), np.sqrt(np.maximum(e3**2 - m3**2, 0))
        lo, hi = (e2 + e3) ** 2 - (p2 + p3) ** 2, (e2 + e3) ** 2 - (p2 - p3) ** 2
        ok = (m23sq > lo) & (m23sq < hi)
        m12, m23sq, e3, p3, lo, hi = m12[ok], m23sq[ok], e3[ok], p3[ok], lo[ok], hi[ok]
        # in the (12) rest frame: particle 3 along +z, particle 1 at angle theta
        q1 = _two_body_momentum(m12, m1, m2)
        # m23^2 = m2^2 + m3^2 + 2 (E2 E3 + q1 p3 cos theta), linear in cos theta
        cos_t = np.clip((2 * m23sq - hi - lo) / (hi - lo), -1, 1)
        sin_t = np.sqrt(1 - cos_t**2)
        zeros = np.zeros_like(q1)
        p1 = np.stack([q1 * sin_t, zeros, q1 * cos_t, np.sqrt(q1**2 + m1**2)], -1)
        p2_ = np.stack([-q1 * sin_t, zeros, -q1 * cos_t, np.sqrt(q1**2 + m2**2)], -1)
        p3_ = np.stack([zeros, zeros, p3, e3], -1)
        # boost all to the parent rest frame: the (12) system moves along -z there
        # the parent in the (12) frame: the (12) system at rest plus particle 3
        parent = vector.array({"px": zeros, "py": zeros, "pz": p3, "E": m12 + e3})
        daughters = [
            vector.array(dict(zip(("px", "py", "pz", "E"), np.moveaxis(p, -1, 0))))
            for p in (p1, p2_, p3_)
        ]
        rest = [d.boostCM_of_p4(parent) for d in daughters]
        block = np.stack([np.stack([r.px, r.py, r.pz, r.E], -1) for r in rest], axis=1)
        out = np.concatenate([out, _random_rotation(rng, block)])
    return out[:n]


def _random_rotation(rng: np.random.Generator, p4: np.ndarray) -> np.ndarray:
    """Rotate each event's 3-momenta by an independent uniform random rotation."""
    n = len(p4)
    # a random rotation from a uniformly random unit quaternion (Shoemake 1992)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    rot = np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )
    out = p4.copy()
    out[..., :3] = np.einsum("nij,nkj->nki", rot, p4[..., :3])
    return out


def dplus_kpipi(n: int = 20_000, *, seed: int = 0, smearing: float = 0.005) -> np.ndarray:
    """Generate ``n`` accepted D+ -> K- pi+ pi+ candidates.

    Args:
        n: number of candidates returned (after acceptance).
        seed: the seed of every random draw.
        smearing: relative momentum resolution (0.005 = 0.5%).

    Returns:
        4-momenta of shape (n, 3, 4), (px, py, pz, E) in GeV, daughters in the
        order ``("K1", "pi1", "pi2")`` with pi1 the pion of higher pT.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of candidates, got {n}")
    rng = np.random.default_rng(seed)
    masses = np.array([KAON_MASS, PION_MASS, PION_MASS])
    out = np.empty((0, 3, 4))
    while len(out) < n:
        k = 3 * (n - len(out)) + 256
        # parent pT: a gamma-shaped spectrum peaking near 2.5 GeV with a tail,
        # close to charm from hard ccbar production with pT-hat > 3 GeV
        pt = 0.5 + rng.gamma(2.2, 1.35, k)
        eta = rng.uniform(-3.5, 3.5, k)
        phi = rng.uniform(-np.pi, np.pi, k)
        parent = vector.array({"pt": pt, "eta": eta, "phi": phi, "mass": np.full(k, DPLUS_MASS)})
        rest = _phase_space_rest_frame(rng, k)
        lab = []
        for j in range(3):
            d = vector.array(
                {"px": rest[:, j, 0], "py": rest[:, j, 1], "pz": rest[:, j, 2], "E": rest[:, j, 3]}
            )
            b = d.boost_p4(parent)
            p3 = np.stack([b.px, b.py, b.pz], -1) * (1 + smearing * rng.normal(size=(k, 1)))
            energy = np.sqrt((p3**2).sum(-1) + masses[j] ** 2)
            lab.append(np.concatenate([p3, energy[:, None]], -1))
        p4 = np.stack(lab, axis=1)
        pt_d = np.hypot(p4[..., 0], p4[..., 1])
        eta_d = np.arcsinh(p4[..., 2] / np.maximum(pt_d, 1e-12))
        accepted = ((pt_d > 0.25) & (np.abs(eta_d) < 2.5)).all(axis=1)
        tot = p4.sum(axis=1)
        mass = np.sqrt(np.maximum(tot[:, 3] ** 2 - (tot[:, :3] ** 2).sum(-1), 0))
        accepted &= (mass > 1.79) & (mass < 1.95)
        p4 = p4[accepted]
        # order the pions by pT, as the shared Pythia sample does
        swap = np.hypot(p4[:, 2, 0], p4[:, 2, 1]) > np.hypot(p4[:, 1, 0], p4[:, 1, 1])
        p4[swap, 1:] = p4[swap, :0:-1]
        out = np.concatenate([out, p4])
    return out[:n]


def _power_law(rng: np.random.Generator, n: int, lo: float, hi: float, power: float) -> np.ndarray:
    """``n`` draws of dN/dm ~ m^-power on [lo, hi] (power != 1), by the inverse CDF."""
    a = 1.0 - power
    u = rng.uniform(0.0, 1.0, n)
    return (lo**a + u * (hi**a - lo**a)) ** (1.0 / a)


def _accepted_pairs(
    rng: np.random.Generator, n: int, mass: Callable[[int], np.ndarray], smearing: float
) -> np.ndarray:
    """``n`` accepted muon pairs, (n, 2, 4) GeV, whose parent masses are drawn by ``mass(k)``."""
    out = np.empty((0, 2, 4))
    while len(out) < n:
        k = 4 * (n - len(out)) + 256
        m = mass(k)
        # a Drell-Yan-like pair pT spectrum (mean 8 GeV) and a broad rapidity plateau
        pt = rng.gamma(2.0, 4.0, k)
        y = rng.uniform(-3.0, 3.0, k)
        phi = rng.uniform(-np.pi, np.pi, k)
        mt = np.sqrt(m**2 + pt**2)
        parent = vector.array(
            {
                "px": pt * np.cos(phi),
                "py": pt * np.sin(phi),
                "pz": mt * np.sinh(y),
                "E": mt * np.cosh(y),
            }
        )
        # isotropic two-body decay at rest
        q = _two_body_momentum(m, MUON_MASS, MUON_MASS)
        u = _isotropic(rng, k) * q[:, None]
        e = np.sqrt(q**2 + MUON_MASS**2)
        lab = []
        for sign in (1.0, -1.0):
            d = vector.array(
                {"px": sign * u[:, 0], "py": sign * u[:, 1], "pz": sign * u[:, 2], "E": e}
            )
            b = d.boost_p4(parent)
            p3 = np.stack([b.px, b.py, b.pz], -1) * (1 + smearing * rng.normal(size=(k, 1)))
            energy = np.sqrt((p3**2).sum(-1) + MUON_MASS**2)
            lab.append(np.concatenate([p3, energy[:, None]], -1))
        p4 = np.stack(lab, axis=1)
        pt_d = np.hypot(p4[..., 0], p4[..., 1])
        eta_d = np.arcsinh(p4[..., 2] / np.maximum(pt_d, 1e-12))
        accepted = ((pt_d > DIMUON_PT_MIN) & (np.abs(eta_d) < DIMUON_ETA_MAX)).all(axis=1)
        out = np.concatenate([out, p4[accepted]])
    return out[:n]


def dimuon_continuum(
    n: int = 20_000, *, seed: int = 0, peak_fraction: float = 0.2, smearing: float = 0.01
) -> np.ndarray:
    """Generate ``n`` accepted opposite-sign muon pairs: a continuum plus a narrow peak.

    A fraction ``peak_fraction`` of the pairs (binomially distributed) come
    from a J/psi-like parent of mass 3.0969 GeV (zero width: the peak's width is
    the resolution, about 30 MeV), the others from a Drell-Yan-like continuum,
    dN/dm ~ m^-3 on 4-120 GeV. Both have the same pair pT (mean 8 GeV) and
    rapidity (uniform in ``|y| < 3``) spectra and decay isotropically. Each muon's
    momentum is scaled by (1 + ``smearing`` g), g a standard normal, and its E
    recomputed from the muon mass, so both masses are exact; then both muons
    must have pT > 3 GeV and ``|eta| < 2.4`` (measured), so the acceptance shapes
    the low-mass end of the continuum, as in a real dimuon selection.

    Args:
        n: number of pairs returned (after acceptance).
        seed: the seed of every random draw.
        peak_fraction: the probability that a pair comes from the peak, in [0, 1].
        smearing: relative momentum resolution (0.01 = 1%).

    Returns:
        4-momenta of shape (n, 2, 4), (px, py, pz, E) in GeV, muons in the order
        ``("mu1", "mu2")`` with mu1 the muon of higher pT. Peak and continuum
        pairs are shuffled together.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of pairs, got {n}")
    if not 0.0 <= peak_fraction <= 1.0:
        raise ValueError(f"peak_fraction must be in [0, 1], got {peak_fraction}")
    rng = np.random.default_rng(seed)
    n_peak = int(rng.binomial(n, peak_fraction))
    peak = _accepted_pairs(rng, n_peak, lambda k: np.full(k, JPSI_MASS), smearing)
    continuum = _accepted_pairs(
        rng, n - n_peak, lambda k: _power_law(rng, k, *DY_MASS_RANGE, DY_POWER), smearing
    )
    p4 = np.concatenate([peak, continuum])[rng.permutation(n)]
    swap = np.hypot(p4[:, 1, 0], p4[:, 1, 1]) > np.hypot(p4[:, 0, 0], p4[:, 0, 1])
    p4[swap] = p4[swap, ::-1]
    return p4
