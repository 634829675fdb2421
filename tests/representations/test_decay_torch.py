"""Decoding on torch tensors: the same code as numpy, float64, on the tensor's device.

``DecayRepresentation.from_features`` (and the other representations' decoding) runs
on numpy arrays and on torch tensors through the array API. The two must agree to
1e-9 relative, per component and per event, on realistic features (encoded from
generated and real decays) and on random features out to the decoding guards.

Relative differences are taken against ``max(|component|, 1e-5 E)``, ``E`` the event's
summed energy: a float64 decoding (numpy's as well) carries absolute errors of ~1e-16 E,
and a component that is a small difference of large terms (px of the daughters of a
slow parent, obtained from its light-cone components; a coordinate that cancels to ~0 in
a rotation) can have no better relative precision than that. The differences measured
are ~1e-15 E, so the floor leaves the 1e-9 test orders of magnitude of margin and still
fails float32 arithmetic (~1e-7 E).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from needs import need_file
from representation_helpers import K_MASS, MU_MASS, P_MASS, PI_MASS, n_body_decays

from vaeaug.datasets import dimuon_continuum, dplus_kpipi
from vaeaug.errors import InputError
from vaeaug.representations import (
    CartesianRepresentation,
    ColliderRepresentation,
    DecayRepresentation,
)

RTOL = 1e-9
FLOOR = 1e-5

DECAYS = {
    2: (MU_MASS, MU_MASS),
    3: (K_MASS, PI_MASS, PI_MASS),
    4: (K_MASS, PI_MASS, PI_MASS, PI_MASS),  # D0 -> K- pi+ pi+ pi-
    5: (P_MASS, K_MASS, PI_MASS, MU_MASS, MU_MASS),
}


def relative_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Max over events and daughters of |a - b| / max(|a|, 1e-5 E) per component, shape (4,).

    a, b: 4-momenta (N, k, 4) GeV, ``a`` the reference (numpy) decoding; ``E`` (N,) is
    the event's summed energy.
    """
    scale = FLOOR * a[..., 3].sum(axis=1)[:, None, None]  # (N, 1, 1)
    return (np.abs(a - b) / np.maximum(np.abs(a), scale)).max(axis=(0, 1))


def decode_both(rep, x: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """(numpy decoding, torch float64 decoding on the CPU) of features x (N, D)."""
    return rep.from_features(x), rep.from_features(torch.from_numpy(x))


def realistic_features(n_objects: int, n: int, seed: int) -> np.ndarray:
    """Features (n, D) of generated decays: D+ -> K pi pi and the dimuon sample of
    :mod:`vaeaug.datasets` for 2 and 3 bodies, phase space (log pt in [ln 0.01, ln 1000]
    GeV, |eta| < 6) for 4 and 5."""
    rep = DecayRepresentation(n_objects, DECAYS[n_objects])
    if n_objects == 2:
        p4 = dimuon_continuum(n, seed=seed)
    elif n_objects == 3:
        p4 = dplus_kpipi(n, seed=seed)
    else:
        m = 1.86484 if n_objects == 4 else 5.6
        p4 = n_body_decays(np.random.default_rng(seed), n, DECAYS[n_objects], m)
    return rep.to_features(p4)


@pytest.mark.parametrize("n_objects", sorted(DECAYS))
def test_torch_decodes_realistic_features_like_numpy(n_objects: int) -> None:
    rep = DecayRepresentation(n_objects, DECAYS[n_objects])
    x = realistic_features(n_objects, 20_000, seed=n_objects)
    ref, out = decode_both(rep, x)
    assert out.dtype == torch.float64
    assert (relative_difference(ref, out.numpy()) < RTOL).all()


@pytest.mark.parametrize("n_objects", sorted(DECAYS))
@pytest.mark.parametrize("spread", [1.0, 5.0, 40.0])
def test_torch_decodes_random_features_like_numpy(n_objects: int, spread: float) -> None:
    # spread 40 puts most events on the decoding guards (log pt 30, |eta| 40, 1e9 GeV):
    # boosts of gamma ~ 1e17 and Dalitz / split fractions at 1e-17 of their edges
    rep = DecayRepresentation(n_objects, DECAYS[n_objects])
    x = np.random.default_rng(n_objects).normal(size=(20_000, rep.n_features)) * spread
    ref, out = decode_both(rep, x)
    assert np.isfinite(out.numpy()).all()
    assert (relative_difference(ref, out.numpy()) < RTOL).all()


@pytest.mark.testdata
def test_torch_decodes_the_real_dplus_sample_like_numpy(testdata) -> None:
    import vaeaug

    path = need_file(testdata / "dplus_kpipi_train.root")
    table = vaeaug.read_candidates(path, tree="signal", objects=["K1", "pi1", "pi2"])
    rep = DecayRepresentation(3, DECAYS[3])
    ref, out = decode_both(rep, rep.to_features(table.p4))
    assert (relative_difference(ref, out.numpy()) < RTOL).all()


def test_float32_features_are_decoded_in_float64() -> None:
    """The pipeline hands float32 features over; the decoding must not stay in float32.

    Boosted narrow decays: float32 arithmetic would be ~1e-7 off (and far worse in the
    light-cone boost at |eta| ~ 6), float64 arithmetic on the same inputs agrees with
    numpy to ~1e-15.
    """
    rep = DecayRepresentation(3, DECAYS[3])
    p4 = n_body_decays(np.random.default_rng(9), 20_000, DECAYS[3], 1.86966,
                       log_pt=(np.log(1.0), np.log(1e3)), eta=(-6.0, 6.0))  # fmt: skip
    x32 = torch.from_numpy(rep.to_features(p4)).float()
    out = rep.from_features(x32)
    assert out.dtype == torch.float64
    ref = rep.from_features(x32.double().numpy())
    assert (relative_difference(ref, out.numpy()) < RTOL).all()


@pytest.mark.parametrize(
    "rep",
    [ColliderRepresentation(3), ColliderRepresentation(3, DECAYS[3]), CartesianRepresentation(3)],
    ids=["collider", "collider-masses", "cartesian"],
)
def test_other_representations_decode_tensors_like_numpy(rep) -> None:
    x = np.random.default_rng(4).normal(size=(5_000, rep.n_features)) * 3.0
    ref, out = decode_both(rep, x)
    assert out.dtype == torch.float64
    assert (relative_difference(ref, out.numpy()) < RTOL).all()


def test_tensor_input_is_left_alone() -> None:
    rep = CartesianRepresentation(2)
    x = torch.tensor([[1.0, 2.0, 3.0, 0.0, -1.0, 0.0, 0.0, 5.0]], dtype=torch.float64)
    before = x.clone()
    rep.from_features(x)
    assert torch.equal(x, before)


def test_wrong_feature_shape_names_the_expected_columns() -> None:
    rep = DecayRepresentation(3, DECAYS[3])
    with pytest.raises(InputError, match=r"\(N, 12\).*got shape \(5, 11\)"):
        rep.from_features(torch.zeros(5, 11))
