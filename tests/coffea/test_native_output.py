"""Augment on coffea NanoEvents: generated muons are coffea Muons that downstream code can use.

The input is the CMS HZZ tutorial's muons written in NanoAOD layout
(``nMuon``, ``Muon_pt/eta/phi/mass/charge/iso``) as an RNTuple, opened with
coffea's NanoEvents; candidates are opposite-sign pairs from
``vaeaug.candidates``; the model is the session's dimuon model.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import awkward as ak
import hist
import numpy as np
import pytest
import uproot
import vector
from coffea.nanoevents import NanoEventsFactory

import vaeaug
import vaeaug.integrations.coffea
from vaeaug.integrations.coffea import DroppedFieldsWarning, PartialNanoAODSchema

pytestmark = pytest.mark.testdata

FACTOR = 3


@pytest.fixture(scope="module")
def events(hzz, tmp_path_factory):
    """HZZ muons as NanoAOD branches in an RNTuple, read as coffea NanoEvents (virtual)."""
    arrays = uproot.open(hzz)["events"].arrays(["Muon_Px", "Muon_Py", "Muon_Pz", "Muon_E",
                                                "Muon_Charge", "Muon_Iso"])  # fmt: skip
    p4 = vector.zip({"px": arrays.Muon_Px, "py": arrays.Muon_Py, "pz": arrays.Muon_Pz,
                     "E": arrays.Muon_E})  # fmt: skip
    columns = {"nMuon": ak.num(arrays.Muon_Px).to_numpy().astype(np.int32),
               "Muon_pt": p4.pt, "Muon_eta": p4.eta, "Muon_phi": p4.phi,
               "Muon_mass": ak.full_like(p4.pt, 0.10566), "Muon_charge": arrays.Muon_Charge,
               "Muon_iso": arrays.Muon_Iso}  # fmt: skip
    path = tmp_path_factory.mktemp("nano") / "hzz_nanoaod_muons.root"
    with uproot.recreate(path) as f:
        f["Events"] = columns
    return NanoEventsFactory.from_root(
        {str(path): "Events"}, schemaclass=PartialNanoAODSchema, mode="virtual"
    ).events()


@pytest.fixture(scope="module")
def pairs(events):
    return vaeaug.candidates(events.Muon, n=2, charge="opposite", fields=["mu1", "mu2"])


@pytest.fixture(scope="module")
def generated(dimuon_model_file, pairs):
    aug = vaeaug.Augment(dimuon_model_file, factor=FACTOR, seed=3, device="cpu")
    vaeaug.integrations.coffea._WARNED.clear()  # the warning is once per process: start afresh
    with pytest.warns(DroppedFieldsWarning, match="not the input fields iso") as first:
        gen = aug(pairs)
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        aug(pairs[:100])
    dropped = [w for w in first if w.category is DroppedFieldsWarning]
    assert len(dropped) == 1 and not [w for w in again if w.category is DroppedFieldsWarning]
    return aug, gen


def test_daughters_are_coffea_muons_with_the_input_names_and_charges(pairs, generated):
    aug, gen = generated
    assert gen.fields == ["mu1", "mu2", "weight", "is_generated"] and ak.all(gen.is_generated)
    assert aug.dropped_fields == ("iso",)
    for name in ("mu1", "mu2"):
        daughters = gen[name]
        assert type(daughters).__name__ == "MuonArray"  # coffea's class, from its behavior
        assert set(daughters.fields) == {"pt", "eta", "phi", "mass", "charge"}
        np.testing.assert_array_equal(ak.flatten(daughters.charge),
                                      np.repeat(ak.flatten(pairs[name].charge), FACTOR))  # fmt: skip
    assert ak.all(gen.mu1.charge * gen.mu2.charge == -1)  # opposite sign, carried
    assert ak.sum(gen.weight) == pytest.approx(ak.sum(ak.num(pairs)))
    # the decay representation keeps the muon mass (up to E^2 - p^2 rounding at high p)
    assert np.quantile(np.abs(ak.flatten(gen.mu1.mass) - 0.1056584), 0.99) < 1e-5


def test_generated_muons_work_in_downstream_code(events, pairs, generated):
    _, gen = generated
    gen_mu, real_mu = ak.flatten(gen.mu1)[:500], ak.flatten(events.Muon)[:500]
    total = gen_mu + real_mu  # coffea's LorentzVector addition
    v1 = vector.zip({"pt": gen_mu.pt, "eta": gen_mu.eta, "phi": gen_mu.phi, "mass": gen_mu.mass})
    v2 = vector.zip({"pt": real_mu.pt, "eta": real_mu.eta, "phi": real_mu.phi, "mass": real_mu.mass})  # fmt: skip
    np.testing.assert_allclose(total.mass, (v1 + v2).mass, rtol=1e-4)
    np.testing.assert_allclose(gen_mu.delta_r(real_mu), v1.deltaR(v2), rtol=1e-4, atol=1e-6)

    h = hist.Hist(hist.axis.Regular(60, 60, 120, name="mass"), hist.axis.StrCategory([], name="kind", growth=True),
                  storage=hist.storage.Weight())  # fmt: skip
    h.fill(mass=ak.flatten((pairs.mu1 + pairs.mu2).mass), kind="real")
    h.fill(
        mass=ak.flatten((gen.mu1 + gen.mu2).mass), kind="generated", weight=ak.flatten(gen.weight)
    )
    real, fake = h[:, "real"].values(flow=True), h[:, "generated"].values(flow=True)
    assert h[:, "real"].values().sum() > 1000  # the Z window is populated
    # the same normalisation: the generated weights sum to the real count
    assert fake.sum() == pytest.approx(real.sum(), rel=1e-9)


def test_output_pickles_and_works_in_a_fresh_process(generated):
    _, gen = generated
    code = (
        "import pickle, sys; g = pickle.loads(sys.stdin.buffer.read()); "
        "print(type(g.mu1).__name__, round(float((g.mu1 + g.mu2).mass[0][0]), 5), "
        "round(float(g.mu1.delta_r(g.mu2)[0][0]), 5))"
    )
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(gen[:5]),
                         capture_output=True, check=True)  # fmt: skip
    name, mass, dr = out.stdout.split()
    assert name == b"MuonArray"
    assert float(mass) == pytest.approx(float((gen.mu1 + gen.mu2).mass[0][0]), abs=1e-5)
    assert float(dr) == pytest.approx(float(gen.mu1.delta_r(gen.mu2)[0][0]), abs=1e-5)


def test_combined_mode_keeps_the_inputs_as_muons(dimuon_model_file, pairs):
    aug = vaeaug.Augment(dimuon_model_file, factor=2, seed=3, device="cpu", mode="combined")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DroppedFieldsWarning)
        out = aug(pairs[:200])
    flat, inputs = ak.flatten(out), ak.flatten(pairs[:200])
    originals = flat[~flat.is_generated]
    np.testing.assert_allclose(originals.mu1.pt, inputs.mu1.pt, rtol=1e-6)
    np.testing.assert_array_equal(originals.mu2.charge, inputs.mu2.charge)
    assert type(out.mu2).__name__ == "MuonArray"


def test_plain_awkward_input_still_gives_vector_momenta(dimuon_model_file, pairs):
    plain = ak.zip({name: ak.zip({c: pairs[name][c] for c in ("pt", "eta", "phi", "mass", "charge")},
                                 with_name="Momentum4D", behavior=vector.backends.awkward.behavior)
                    for name in ("mu1", "mu2")}, depth_limit=2)  # fmt: skip
    gen = vaeaug.Augment(dimuon_model_file, factor=1, seed=3, device="cpu")(plain[:50])
    assert ak.parameters(ak.flatten(gen.mu1)).get("__record__") == "Momentum4D"
    assert gen.mu1.fields == ["px", "py", "pz", "E", "charge"]
