"""#31: a model of other objects applied by Augment is refused, not used silently."""

from __future__ import annotations

import numpy as np
import pytest

import vaeaug
from vaeaug.errors import InputError
from vaeaug.io import read_candidates

pytestmark = [pytest.mark.testdata, pytest.mark.outside_support]


@pytest.fixture(scope="module")
def jets_and_muons(hzz):
    jets = read_candidates(hzz, collection="Jet", n_objects=2)
    muons = read_candidates(hzz, collection="Muon", n_objects=2)
    model = vaeaug.fit(jets, representation="collider", seed=1, device="cpu", progress=False,
                       config=vaeaug.VAEConfig(hidden=(32, 32), latent_dim=4),
                       train=vaeaug.TrainConfig(epochs=3))  # fmt: skip
    return model, jets, muons


def test_a_dijet_model_refuses_muon_pairs(jets_and_muons):
    model, jets, muons = jets_and_muons
    augment = vaeaug.Augment(model, seed=1, device="cpu", support="warn")
    with pytest.raises(InputError, match=r"of the candidates lie outside the model's training "
                       r"support .*check_masses=False"):  # fmt: skip
        augment(muons.to_awkward())
    # its own objects pass, and the check can be switched off
    out = augment(jets.to_awkward())
    assert len(out) == len(jets)
    forced = vaeaug.Augment(model, seed=1, device="cpu", support="warn", check_masses=False)
    assert len(forced(muons.to_awkward())) == len(muons)
    assert np.isfinite(np.asarray(forced.invariant_mass(forced(muons.to_awkward())))).all()
