"""One invariant mass: vaeaug.kinematics.invariant_mass and its torch twin."""

from __future__ import annotations

import numpy as np
import torch

from vaeaug.kinematics import invariant_mass, invariant_mass_torch
from vaeaug.validation.features import parent_mass


def test_invariant_mass_of_a_known_decay_at_rest_and_boosted():
    # two 1 GeV photons back to back: m = 2 GeV; boosted along z by beta = 0.6: still 2 GeV
    at_rest = np.array([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, -1.0, 1.0]]])
    gamma, beta = 1.25, 0.6
    boosted = at_rest.copy()
    boosted[..., 2] = gamma * (at_rest[..., 2] + beta * at_rest[..., 3])
    boosted[..., 3] = gamma * (at_rest[..., 3] + beta * at_rest[..., 2])
    np.testing.assert_allclose(invariant_mass(np.concatenate([at_rest, boosted])), [2.0, 2.0])


def test_a_spacelike_sum_has_a_negative_mass():
    # |p| = 5, E = 3: m^2 = -16, m = -4 (scikit-hep's vector convention), not 0 or NaN
    p4 = np.array([[[3.0, 0.0, 4.0, 2.0], [0.0, 0.0, 0.0, 1.0]]])
    assert invariant_mass(p4).tolist() == [-4.0]
    assert invariant_mass_torch(torch.as_tensor(p4)).tolist() == [-4.0]


def test_the_torch_twin_agrees_with_numpy_and_the_validation_mass(toy, rng):
    p4 = toy(2_000, rng)
    p4[:5, 0, 3] = 0.0  # a few unphysical candidates: the sign convention is compared too
    m = invariant_mass(p4)
    assert (m[:5] < 0).any() and (m[5:] > 0).all()
    np.testing.assert_allclose(invariant_mass_torch(torch.as_tensor(p4)).numpy(), m, rtol=1e-12)
    np.testing.assert_array_equal(parent_mass(p4), m)
    single = invariant_mass_torch(torch.as_tensor(p4, dtype=torch.float32))
    assert single.dtype == torch.float32 and single.shape == (2_000,)


def test_the_torch_twin_has_gradients():
    p4 = torch.tensor([[[1.0, 0.5, 2.0, 3.0], [-0.5, 0.2, 1.0, 2.0]]], dtype=torch.float64,
                      requires_grad=True)  # fmt: skip
    m = invariant_mass_torch(p4)
    m.sum().backward()
    total = p4.detach().sum(1)[0]
    # dm/dE = E / m, dm/dp = -p / m, the same for each daughter
    expected = torch.cat([-total[:3], total[3:]]) / m.detach()
    torch.testing.assert_close(p4.grad[0, 0], expected)
    torch.testing.assert_close(p4.grad[0, 1], expected)
