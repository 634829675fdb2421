"""Toy D+ -> K- pi+ pi+ samples for the validation tests."""

from __future__ import annotations

import numpy as np
import pytest

M_D, SIGMA_D = 1.86966, 0.008  # GeV: D+ mass and a typical LHCb-like resolution
M_K, M_PI = 0.493677, 0.139570  # GeV
M_KST, G_KST = 0.8955, 0.047  # GeV: K*(892)0, gives the Dalitz plot some structure
OBJECTS = ["K1", "pi1", "pi2"]


def _boost(p4: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Boost four-vectors ``p4`` (N, 4) by velocity ``beta`` (N, 3)."""
    b2 = np.sum(beta**2, axis=1)
    gamma = 1 / np.sqrt(1 - b2)
    bp = np.sum(beta * p4[:, :3], axis=1)
    coef = np.where(b2 > 0, (gamma - 1) / np.where(b2 > 0, b2, 1), 0.0)
    p3 = p4[:, :3] + (coef * bp + gamma * p4[:, 3])[:, None] * beta
    e = gamma * (p4[:, 3] + bp)
    return np.column_stack([p3, e])


def _random_rotation(n: int, rng: np.random.Generator) -> np.ndarray:
    # QR of a Gaussian matrix with sign fix is Haar-distributed on O(3); flip to SO(3).
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


def make_toy(
    n: int,
    rng: np.random.Generator,
    *,
    resonance_fraction: float = 0.5,
    mass_shift: float = 0.0,
) -> np.ndarray:
    """Toy D+ -> K pi pi candidates (n, 3, 4) in GeV with px, py, pz, E.

    The parent mass is Gaussian (mean M_D + mass_shift, width SIGMA_D); the Dalitz
    plot is phase space plus a K*0 band in both K pi combinations; the parent has
    an exponential pT (mean 5 GeV) and flat eta in [2, 4.5].
    """
    masses = np.array([M_K, M_PI, M_PI])
    out = np.empty((0, 3, 4))
    while len(out) < n:
        k = 3 * (n - len(out)) + 100
        big_m = rng.normal(M_D + mass_shift, SIGMA_D, k)
        s12 = rng.uniform((M_K + M_PI) ** 2, (big_m - M_PI) ** 2)
        s23 = rng.uniform((2 * M_PI) ** 2, (big_m - M_K) ** 2)
        s13 = big_m**2 + np.sum(masses**2) - s12 - s23
        e = np.column_stack(
            [
                (big_m**2 + M_K**2 - s23) / (2 * big_m),
                (big_m**2 + M_PI**2 - s13) / (2 * big_m),
                (big_m**2 + M_PI**2 - s12) / (2 * big_m),
            ]
        )
        p = np.sqrt(np.clip(e**2 - masses**2, 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            cos12 = (e[:, 0] * e[:, 1] - 0.5 * (s12 - M_K**2 - M_PI**2)) / (p[:, 0] * p[:, 1])
        ok = np.all(e > masses, axis=1) & (np.abs(cos12) <= 1)

        def bw(s):
            return 1 / ((s - M_KST**2) ** 2 + (M_KST * G_KST) ** 2) * (M_KST * G_KST) ** 2

        weight = (1 - resonance_fraction) + resonance_fraction * 0.5 * (bw(s12) + bw(s13))
        ok &= rng.uniform(0, 1, k) < weight
        big_m, e, p, cos12 = big_m[ok], e[ok], p[ok], cos12[ok]
        sin12 = np.sqrt(1 - cos12**2)
        p1 = np.column_stack([np.zeros_like(cos12), np.zeros_like(cos12), p[:, 0]])
        p2 = np.column_stack([p[:, 1] * sin12, np.zeros_like(cos12), p[:, 1] * cos12])
        p3 = -(p1 + p2)
        rot = _random_rotation(len(big_m), rng)
        daughters = [np.einsum("nij,nj->ni", rot, v) for v in (p1, p2, p3)]
        pt = rng.exponential(5.0, len(big_m)) + 1.0
        eta = rng.uniform(2.0, 4.5, len(big_m))
        phi = rng.uniform(-np.pi, np.pi, len(big_m))
        pvec = np.column_stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)])
        beta = pvec / np.sqrt(np.sum(pvec**2, axis=1) + big_m**2)[:, None]
        cands = np.stack(
            [_boost(np.column_stack([d, e[:, i]]), beta) for i, d in enumerate(daughters)],
            axis=1,
        )
        out = np.concatenate([out, cands])
    return out[:n]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def objects() -> list[str]:
    return list(OBJECTS)


@pytest.fixture(scope="session")
def toy():
    """The toy generator, as a fixture so test modules need not import conftest."""
    return make_toy
