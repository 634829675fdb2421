"""Property tests of the 'decay' representation: round trips, physics, independent checks."""

from __future__ import annotations

import numpy as np
import pytest
import vector
from hypothesis import given, settings
from hypothesis import strategies as st
from representation_helpers import (
    D_MASS,
    K_MASS,
    PI_MASS,
    boost_to_lab,
    canonical_features,
    dalitz_momenta,
    momentum_scale,
    quaternion_matrix,
    rotate,
    three_body_decays,
)

from vaeaug.representations import DecayRepresentation, make_representation

KPIPI = (K_MASS, PI_MASS, PI_MASS)
THRESHOLD = sum(KPIPI)
SETTINGS = settings(max_examples=100, deadline=None)

# Column layout of the 3-body features, and of the 2-body ones.
PAIRS3, COSINES3 = [(2, 3), (8, 9), (10, 11)], [7]
PAIRS2, COSINES2 = [(2, 3), (6, 7)], [5]


@pytest.fixture(scope="module")
def dplus() -> DecayRepresentation:
    return make_representation("decay", 3, KPIPI, object_names=["K", "pi1", "pi2"])


def finite(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def angle() -> st.SearchStrategy[float]:
    # Includes both sides of the +-pi cut.
    return st.one_of(finite(-np.pi, np.pi), st.sampled_from([np.pi, -np.pi, np.pi - 1e-12]))


def three_body_features(
    log_pt: tuple[float, float],
    eta: float,
    mass: tuple[float, float],
    logit: float,
    cos_beta: float,
) -> st.SearchStrategy[np.ndarray]:
    """Batches (1 to 6 candidates) of 3-body decay features, angles as exact (cos, sin)."""
    row = st.tuples(
        finite(*log_pt), finite(-eta, eta), angle(), finite(*mass), finite(-logit, logit),
        finite(-logit, logit), finite(-cos_beta, cos_beta), angle(), angle(),
    ).map(
        lambda r: [r[0], r[1], np.cos(r[2]), np.sin(r[2]), r[3], r[4], r[5], r[6],
                   np.cos(r[7]), np.sin(r[7]), np.cos(r[8]), np.sin(r[8])]
    )  # fmt: skip
    return st.lists(row, min_size=1, max_size=6).map(np.array)


REALISTIC = three_body_features((np.log(0.3), np.log(50)), 5.0, (1.80, 1.94), 5.0, 0.99)
# Edges: pt down to 1e-6 GeV, |eta| up to 6.5, mass from 1e-5 GeV above threshold, logits
# up to the clip (|logit| = 16.1 at 1e-7) and beyond, the decay plane along the parent.
EDGES = three_body_features((np.log(1e-6), np.log(50)), 6.5, (THRESHOLD + 1e-5, 2.2), 20.0, 1.0)


@SETTINGS
@given(REALISTIC)
def test_features_round_trip_realistic(dplus: DecayRepresentation, x: np.ndarray) -> None:
    p4 = dplus.from_features(x)
    back = dplus.to_features(p4)
    expected = canonical_features(x, PAIRS3, COSINES3)
    # Float32 precision is the requirement; float64 arithmetic gives far more.
    np.testing.assert_allclose(back[:, :5], expected[:, :5], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(back[:, 5:], expected[:, 5:], rtol=0, atol=1e-8)
    np.testing.assert_allclose(
        dplus.from_features(back), p4, rtol=0, atol=1e-12 * momentum_scale(p4).max()
    )


@SETTINGS
@given(EDGES)
def test_round_trip_at_edges(dplus: DecayRepresentation, x: np.ndarray) -> None:
    # At the edges some features are undefined (alpha at beta = 0, gamma at theta12 = 0) or
    # ill-conditioned, so the statement is on 4-momenta: decode(encode(p4)) == p4.
    p4 = dplus.from_features(x)
    f = dplus.to_features(p4)
    assert np.all(np.isfinite(f))
    assert np.all(np.abs(f[:, 5:7]) <= 16.2)  # logit clip at 1e-7
    # The logit clip at 1e-7 moves points on a Dalitz edge by ~1e-7 of the momentum scale.
    err = np.abs(dplus.from_features(f) - p4) / momentum_scale(p4)
    assert err.max() < 1e-6
    # The parent's lab kinematics stay exact even where the decay angles are not.
    np.testing.assert_allclose(f[:, 4], np.clip(x[:, 4], THRESHOLD + 1e-6, None), rtol=1e-12)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    edge=st.sampled_from(["none", "m12max", "m12min", "theta0", "thetapi", "corner"]),
    log_pt=finite(np.log(1e-6), np.log(50)),
    eta=finite(-6.0, 6.0),
    phi=angle(),
    excess=st.sampled_from([1e-4, 1e-2, 0.5, D_MASS - THRESHOLD, 2.0]),
)
def test_phase_space_p4_round_trip(
    dplus: DecayRepresentation,
    seed: int,
    edge: str,
    log_pt: float,
    eta: float,
    phi: float,
    excess: float,
) -> None:
    # Hand-built decays (independent of the representation), incl. Dalitz-boundary points.
    rng = np.random.default_rng(seed)
    n = 8
    u, t = rng.uniform(size=(2, n))
    if edge == "m12max":
        u[:] = 1.0 - np.array([0, 1e-14, 1e-10, 1e-6, 0, 1e-14, 1e-10, 1e-6])
    elif edge == "m12min":
        u[:] = np.array([0, 1e-14, 1e-10, 1e-6, 0, 1e-14, 1e-10, 1e-6])
    elif edge in ("theta0", "thetapi"):
        t[:] = 0.0 if edge == "theta0" else 1.0
    elif edge == "corner":
        u, t = np.array([0, 0, 1, 1, 0, 0, 1, 1.0]), np.array([0, 1, 0, 1, 0, 1, 0, 1.0])
    m = np.full(n, THRESHOLD + excess)
    rest = rotate(dalitz_momenta(m, KPIPI, u, t), quaternion_matrix(rng.normal(size=(n, 4))))
    p4 = boost_to_lab(rest, m, np.full(n, np.exp(log_pt)), np.full(n, eta), np.full(n, phi))
    back = dplus.from_features(dplus.to_features(p4))
    err = np.abs(back - p4) / momentum_scale(p4)
    assert err.max() < (1e-12 if edge == "none" else 1e-6)  # edges: the logit clip


def test_phase_space_bulk_round_trip(dplus: DecayRepresentation) -> None:
    # 20k flat phase-space D+ decays, pt 0.3-50 GeV, |eta| < 5: float64 precision.
    p4 = three_body_decays(np.random.default_rng(7), 20_000)
    f = dplus.to_features(p4)
    err = np.abs(dplus.from_features(f) - p4) / momentum_scale(p4)
    assert err.max() < 1e-12
    np.testing.assert_allclose(f[:, 4], D_MASS, rtol=1e-12)
    np.testing.assert_allclose(dplus.to_features(dplus.from_features(f)), f, rtol=0, atol=1e-8)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), scale=finite(0.1, 10.0))
def test_junk_decodes_to_exact_masses_and_conserved_momentum(
    dplus: DecayRepresentation, seed: int, scale: float
) -> None:
    x = np.random.default_rng(seed).normal(scale=scale, size=(64, 12))
    p4 = dplus.from_features(x)
    assert p4.shape == (64, 3, 4) and p4.dtype == np.float64
    assert np.all(np.isfinite(p4))
    e2 = p4[..., 3] ** 2
    m2 = e2 - (p4[..., :3] ** 2).sum(-1)
    assert np.all(np.abs(m2 - np.square(KPIPI)) <= 1e-13 * e2 + 1e-15)
    # Daughters sum to the parent the features describe.
    m = np.clip(x[:, 4], THRESHOLD + 1e-6, None)
    pt, eta = np.exp(np.clip(x[:, 0], -30, 30)), np.clip(x[:, 1], -40, 40)
    phi = np.arctan2(x[:, 3], x[:, 2])
    parent = np.stack(
        [
            pt * np.cos(phi),
            pt * np.sin(phi),
            pt * np.sinh(eta),
            np.sqrt((pt * np.cosh(eta)) ** 2 + m**2),
        ],
        axis=-1,
    )
    total = p4.sum(axis=1)
    assert np.all(np.abs(total - parent) <= 1e-12 * parent[:, 3:] + 1e-300)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=12, max_size=12).map(
        lambda r: np.array([r])
    )
)
def test_any_real_input_decodes_to_finite_physical_momenta(
    dplus: DecayRepresentation, x: np.ndarray
) -> None:
    p4 = dplus.from_features(x)
    assert np.all(np.isfinite(p4))
    assert np.all(p4[..., 3] >= np.linalg.norm(p4[..., :3], axis=-1) * (1 - 1e-12))
    assert np.all(np.isfinite(dplus.to_features(p4)))


def test_definitions_against_vector(dplus: DecayRepresentation) -> None:
    """Each feature recomputed from its docstring definition with scikit-hep vector boosts."""
    p4 = three_body_decays(
        np.random.default_rng(11), 5000, log_pt=(np.log(0.3), np.log(20)), eta=(-2.5, 2.5)
    )
    f = dplus.to_features(p4)
    d = [
        vector.array({"px": p[:, 0], "py": p[:, 1], "pz": p[:, 2], "E": p[:, 3]})
        for p in p4.transpose(1, 0, 2)
    ]
    parent, p12 = d[0] + d[1] + d[2], d[0] + d[1]
    np.testing.assert_allclose(f[:, 0], np.log(parent.pt), atol=1e-12)
    np.testing.assert_allclose(f[:, 1], parent.eta, atol=1e-12)
    np.testing.assert_allclose(f[:, 2], np.cos(parent.phi), atol=1e-12)
    np.testing.assert_allclose(f[:, 4], parent.mass, rtol=1e-10)

    m12min, m12max = K_MASS + PI_MASS, parent.mass - PI_MASS
    mprime = np.arccos(2 * (p12.mass - m12min) / (m12max - m12min) - 1) / np.pi
    np.testing.assert_allclose(1 / (1 + np.exp(-f[:, 5])), mprime, atol=1e-8)
    # theta12: angle of daughter 1 and the (12) flight direction, i.e. minus the parent's
    # direction seen in the (12) rest frame (rotation invariant, so the direct boost works).
    k1 = d[0].boostCM_of_p4(p12).to_Vector3D()
    par = parent.boostCM_of_p4(p12).to_Vector3D()
    cos12 = -k1.dot(par) / (k1.mag * par.mag)
    np.testing.assert_allclose(np.cos(np.pi / (1 + np.exp(-f[:, 6]))), cos12, atol=1e-8)

    # Helicity frame: z' = parent direction, x' = (z'_z z' - z)/|...|, y' = z' x x'.
    ez = parent.to_Vector3D().unit()
    zhat = vector.array({"x": np.zeros(len(f)), "y": np.zeros(len(f)), "z": np.ones(len(f))})
    ex = (ez * ez.z - zhat).unit()
    ey = ez.cross(ex)
    n = p12.boostCM_of_p4(parent).to_Vector3D().unit()
    np.testing.assert_allclose(f[:, 7], n.dot(ez), atol=1e-8)
    alpha = np.arctan2(n.dot(ey), n.dot(ex))
    np.testing.assert_allclose(f[:, 8:10], np.stack([np.cos(alpha), np.sin(alpha)], -1), atol=1e-8)
    cb, sb = f[:, 7], np.sqrt(1 - f[:, 7] ** 2)
    e_beta = ex * (cb * np.cos(alpha)) + ey * (cb * np.sin(alpha)) - ez * sb
    e_alpha = ey * np.cos(alpha) - ex * np.sin(alpha)
    q1 = d[0].boostCM_of_p4(parent).to_Vector3D()
    gamma = np.arctan2(q1.dot(e_alpha), q1.dot(e_beta))
    np.testing.assert_allclose(f[:, 10:12], np.stack([np.cos(gamma), np.sin(gamma)], -1), atol=1e-8)


# Two-body decays, e.g. D0 -> K- pi+.

TWO_BODY = st.lists(
    st.tuples(
        finite(np.log(1e-6), np.log(50)), finite(-6, 6), angle(), finite(K_MASS + PI_MASS + 1e-5, 3.0),
        finite(-1, 1), angle(),
    ).map(lambda r: [r[0], r[1], np.cos(r[2]), np.sin(r[2]), r[3], r[4], np.cos(r[5]), np.sin(r[5])]),
    min_size=1,
    max_size=6,
).map(np.array)  # fmt: skip


@SETTINGS
@given(TWO_BODY)
def test_two_body_round_trip(x: np.ndarray) -> None:
    rep = make_representation("decay", 2, [K_MASS, PI_MASS])
    assert rep.feature_names() == [
        "parent_log_pt", "parent_eta", "parent_phi_cos", "parent_phi_sin", "parent_m",
        "cos_theta", "phi_cos", "phi_sin",
    ]  # fmt: skip
    p4 = rep.from_features(x)
    m2 = p4[..., 3] ** 2 - (p4[..., :3] ** 2).sum(-1)
    assert np.all(np.abs(m2 - np.square([K_MASS, PI_MASS])) <= 1e-13 * p4[..., 3] ** 2)
    f = rep.to_features(p4)
    # cos_theta near +-1 resolves theta only to ~sqrt(eps) = 1.5e-8 rad.
    assert np.max(np.abs(rep.from_features(f) - p4) / momentum_scale(p4)) < 1e-7
    np.testing.assert_allclose(f[:, 4], x[:, 4], rtol=1e-12)
    # Helicity angles are well defined unless the decay axis is along z'.
    ok = np.abs(x[:, 5]) < 0.999
    expected = canonical_features(x, PAIRS2, COSINES2)
    np.testing.assert_allclose(f[ok, 5:], expected[ok, 5:], atol=1e-8)


def test_two_body_against_vector() -> None:
    rep = make_representation("decay", 2, [K_MASS, PI_MASS])
    rng = np.random.default_rng(5)
    n = 2000
    a, b = rng.uniform(-np.pi, np.pi, (2, n))
    x = np.stack(
        [
            rng.uniform(-1, 3, n), rng.uniform(-3, 3, n), np.cos(a), np.sin(a),
            rng.uniform(1.8, 1.9, n), rng.uniform(-1, 1, n), np.cos(b), np.sin(b),
        ],
        axis=-1,
    )  # fmt: skip
    p4 = rep.from_features(x)
    d1 = vector.array({"px": p4[:, 0, 0], "py": p4[:, 0, 1], "pz": p4[:, 0, 2], "E": p4[:, 0, 3]})
    d2 = vector.array({"px": p4[:, 1, 0], "py": p4[:, 1, 1], "pz": p4[:, 1, 2], "E": p4[:, 1, 3]})
    parent = d1 + d2
    np.testing.assert_allclose(parent.mass, x[:, 4], rtol=1e-9)
    q = d1.boostCM_of_p4(parent).to_Vector3D()
    ez = parent.to_Vector3D().unit()
    zhat = vector.array({"x": np.zeros(n), "y": np.zeros(n), "z": np.ones(n)})
    ex = (ez * ez.z - zhat).unit()
    np.testing.assert_allclose(q.dot(ez) / q.mag, x[:, 5], atol=1e-8)
    phi = np.arctan2(q.dot(ez.cross(ex)), q.dot(ex))
    np.testing.assert_allclose(np.cos(phi - b), 1, atol=1e-8)


@pytest.mark.parametrize("n_objects", [1, 4, 5])
def test_unsupported_multiplicity_suggests_collider(n_objects: int) -> None:
    with pytest.raises(ValueError, match="collider"):
        make_representation("decay", n_objects, [0.1] * n_objects)


def test_missing_masses_names_alternatives() -> None:
    with pytest.raises(ValueError, match=r"masses.*collider"):
        make_representation("decay", 3)
