"""Tests shared by all representations: contract, cartesian and collider round trips, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from representation_helpers import K_MASS, PI_MASS, momentum_scale, three_body_decays

from vaeaug.representations import (
    REPRESENTATIONS,
    CartesianRepresentation,
    ColliderRepresentation,
    DecayRepresentation,
    Representation,
    make_representation,
    representation_from_dict,
)

KPIPI = [K_MASS, PI_MASS, PI_MASS]
NAMES = ["K", "pi1", "pi2"]
VARIANTS = {
    "cartesian": ("cartesian", 3, None),
    "collider": ("collider", 3, None),
    "collider-masses": ("collider", 3, KPIPI),
    "decay": ("decay", 3, KPIPI),
    "decay-2body": ("decay", 2, KPIPI[:2]),
}


@pytest.fixture(params=list(VARIANTS))
def rep(request: pytest.FixtureRequest) -> Representation:
    name, k, masses = VARIANTS[request.param]
    return make_representation(name, k, masses, object_names=NAMES[:k])


def decays(k: int, n: int = 2000, seed: int = 0) -> np.ndarray:
    p4 = three_body_decays(np.random.default_rng(seed), n)
    if k == 2:  # a D0 -> K pi stand-in: the K and the first pion, rest-frame physics aside
        p4 = p4[:, :2]
    return p4


def test_registry() -> None:
    assert REPRESENTATIONS == ("cartesian", "collider", "decay")


def test_contract(rep: Representation) -> None:
    names = rep.feature_names()
    assert len(names) == rep.n_features == len(set(names))
    p4 = decays(rep.n_objects)
    f = rep.to_features(p4)
    assert f.shape == (len(p4), rep.n_features) and f.dtype == np.float64
    back = rep.from_features(f)
    assert back.shape == p4.shape and back.dtype == np.float64
    # Empty batches work too.
    assert rep.to_features(p4[:0]).shape == (0, rep.n_features)
    assert rep.from_features(f[:0]).shape == (0, rep.n_objects, 4)


def test_p4_round_trip(rep: Representation) -> None:
    p4 = decays(rep.n_objects)
    back = rep.from_features(rep.to_features(p4))
    assert np.max(np.abs(back - p4) / momentum_scale(p4)) < 1e-12


def test_dict_round_trip(rep: Representation) -> None:
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["name"] == rep.name
    again = representation_from_dict(d)
    assert again == rep and type(again) is type(rep)
    assert again.feature_names() == rep.feature_names()
    assert hash(again) == hash(rep)
    p4 = decays(rep.n_objects, n=10)
    np.testing.assert_array_equal(again.to_features(p4), rep.to_features(p4))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1.0, 10.0, 1e3, 1e300]))
def test_junk_decodes_finite(seed: int, scale: float) -> None:
    for name, k, masses in VARIANTS.values():
        rep = make_representation(name, k, masses)
        x = np.random.default_rng(seed).normal(size=(32, rep.n_features)) * scale
        p4 = rep.from_features(x)
        assert np.all(np.isfinite(p4)), name
        # Never space-like.
        assert np.all(p4[..., 3] >= np.linalg.norm(p4[..., :3], axis=-1) * (1 - 1e-12)), name


# Cartesian


def test_cartesian_is_identity_on_physical_input() -> None:
    rep = CartesianRepresentation(3, object_names=NAMES)
    assert rep.feature_names()[:5] == ["K_px", "K_py", "K_pz", "K_E", "pi1_px"]
    p4 = decays(3)
    np.testing.assert_array_equal(rep.to_features(p4), p4.reshape(len(p4), 12))
    np.testing.assert_array_equal(rep.from_features(rep.to_features(p4)), p4)
    # Space-like output is lifted onto the light cone.
    out = rep.from_features(np.array([[3.0, 4.0, 0.0, 1.0] * 3]))
    np.testing.assert_allclose(out[0, :, 3], 5.0)


# Collider


COLLIDER_ROWS = st.lists(
    st.tuples(
        st.floats(np.log(1e-6), np.log(500)),
        st.floats(-6, 6),
        st.one_of(st.floats(-np.pi, np.pi), st.sampled_from([np.pi, -np.pi, np.pi - 1e-12])),
        st.floats(0, 5),
    ),
    min_size=3,
    max_size=3,
)


@settings(max_examples=100, deadline=None)
@given(st.lists(COLLIDER_ROWS, min_size=1, max_size=5))
def test_collider_round_trip(rows: list) -> None:
    a = np.array(rows)  # (N, 3 objects, (log pt, eta, phi, m))
    x = np.stack([a[..., 0], a[..., 1], np.cos(a[..., 2]), np.sin(a[..., 2]), a[..., 3]], -1)
    rep = ColliderRepresentation(3, object_names=NAMES)
    x = x.reshape(len(a), 15)
    p4 = rep.from_features(x)
    f = rep.to_features(p4)
    np.testing.assert_allclose(
        f.reshape(-1, 3, 5)[..., :4], x.reshape(-1, 3, 5)[..., :4], atol=1e-10
    )
    # The mass comes from E^2 - p^2: absolute precision ~ eps E^2 / m.
    e = p4[..., 3]
    m, m_back = x.reshape(-1, 3, 5)[..., 4], f.reshape(-1, 3, 5)[..., 4]
    assert np.all(np.abs(m_back**2 - m**2) <= 1e-13 * e**2 + 1e-300)
    assert np.max(np.abs(rep.from_features(f) - p4) / e[..., None]) < 1e-12


def test_collider_masses_are_fixed() -> None:
    rep = ColliderRepresentation(3, KPIPI, object_names=NAMES)
    assert rep.feature_names()[:5] == ["K_log_pt", "K_eta", "K_phi_cos", "K_phi_sin", "pi1_log_pt"]
    p4 = rep.from_features(np.random.default_rng(1).normal(size=(100, 12)))
    m2 = p4[..., 3] ** 2 - (p4[..., :3] ** 2).sum(-1)
    assert np.all(np.abs(m2 - np.square(KPIPI)) <= 1e-13 * p4[..., 3] ** 2)


def test_collider_mass_clamped_and_phi_zero_pair() -> None:
    rep = ColliderRepresentation(1)
    p4 = rep.from_features(np.array([[0.0, 0.0, 0.0, 0.0, -3.0]]))
    np.testing.assert_allclose(p4[0, 0], [1.0, 0.0, 0.0, 1.0])  # phi = 0, m = 0


# Errors


def test_bad_name_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"cartesian, collider, decay.*close matches: collider"):
        make_representation("colider", 3)


def test_bad_option_lists_valid_options() -> None:
    with pytest.raises(ValueError, match="object_names"):
        make_representation("collider", 3, object_name=["a", "b", "c"])


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("collider", 3, [0.1, 0.2]), {}, "one entry per object"),
        (("collider", 3, [0.1, -0.2, 0.3]), {}, ">= 0"),
        (("collider", 3, "abc"), {}, "numbers in GeV"),
        (("cartesian", 0), {}, "positive integer"),
        (("cartesian", 2), {"object_names": ["a", "a"]}, "distinct"),
        (("cartesian", 2), {"object_names": ["a"]}, "one per object"),
        (("decay", 3, KPIPI), {"parent_name": ""}, "parent_name"),
    ],
)
def test_bad_arguments(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_representation(*args, **kwargs)


def test_bad_dicts() -> None:
    with pytest.raises(ValueError, match="needs a 'name'"):
        representation_from_dict({"n_objects": 3})
    with pytest.raises(ValueError, match="valid choices"):
        representation_from_dict({"name": "spherical", "n_objects": 3})
    with pytest.raises(ValueError, match="valid keys"):
        representation_from_dict({"name": "cartesian", "n_objects": 3, "masses": KPIPI})


def test_bad_shapes_say_what_is_expected() -> None:
    rep = DecayRepresentation(3, KPIPI)
    with pytest.raises(ValueError, match=r"\(N, 3, 4\)"):
        rep.to_features(np.zeros((5, 2, 4)))
    with pytest.raises(ValueError, match="parent_log_pt"):
        rep.from_features(np.zeros((5, 11)))
