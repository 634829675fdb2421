"""vaeaug.candidates: explicit candidates from a collection; position fields are never momenta."""

from __future__ import annotations

import awkward as ak
import dask_awkward as dak
import numpy as np
import pytest
import uproot
import vector

import vaeaug
from vaeaug import InputError
from vaeaug.integrations.awkward import candidate_p4

BEHAVIOR = vector.backends.awkward.behavior


@pytest.fixture(scope="module")
def muons():
    """Three events: (+, -, -, +) muons, one muon, none; pt not in order."""
    return ak.zip(
        {"pt": [[10.0, 40.0, 20.0, 30.0], [50.0], []], "eta": [[0.1, 0.2, 0.3, 0.4], [0.0], []],
         "phi": [[0.0, 1.0, 2.0, 3.0], [0.5], []], "mass": [[0.1057] * 4, [0.1057], []],
         "charge": [[1, -1, -1, 1], [1], []]},
        with_name="Momentum4D", behavior=BEHAVIOR,
    )  # fmt: skip


def _pts(pairs, names=("Muon0", "Muon1")):
    return [[tuple(float(c[n].pt) for n in names) for c in event] for event in pairs]


def test_opposite_sign_pairs_sorted_by_pt(muons):
    pairs = vaeaug.candidates(muons, n=2, charge="opposite", fields=["Muon0", "Muon1"])
    # sorted: 40-, 30+, 20-, 10+; opposite-sign pairs in combination order, leading first
    assert _pts(pairs) == [[(40.0, 30.0), (40.0, 10.0), (30.0, 20.0), (20.0, 10.0)], [], []]
    assert ak.all(pairs.Muon0.charge * pairs.Muon1.charge < 0)


def test_same_sign_total_charge_and_no_selection(muons):
    same = vaeaug.candidates(muons, n=2, charge="same", fields=["Muon0", "Muon1"])
    assert _pts(same) == [[(40.0, 20.0), (30.0, 10.0)], [], []]
    names = ("a", "b", "c")
    plus = vaeaug.candidates(muons, n=3, charge=1, fields=names)
    assert _pts(plus, names) == [[(40.0, 30.0, 10.0), (30.0, 20.0, 10.0)], [], []]
    every = vaeaug.candidates(muons, n=2, charge=None, sort_by=None, fields=["Muon0", "Muon1"])
    assert ak.num(every).tolist() == [6, 0, 0] and _pts(every)[0][0] == (10.0, 40.0)


def test_default_names_follow_the_collection():
    coffea_like = ak.Array(
        ak.with_parameter(ak.zip({"pt": [[3.0, 4.0]], "eta": [[0.0, 0.0]], "phi": [[0.0, 1.0]],
                                  "mass": [[0.1, 0.1]]}), "collection_name", "Electron")
    )  # fmt: skip
    assert vaeaug.candidates(coffea_like, charge=None).fields == ["Electron0", "Electron1"]
    plain = ak.zip({"px": [[1.0, 2.0]], "py": [[0.0, 1.0]], "pz": [[0.0, 0.0]], "E": [[3.0, 3.0]]},
                   with_name="Momentum4D", behavior=BEHAVIOR)  # fmt: skip
    assert vaeaug.candidates(plain, charge=None).fields == ["p0", "p1"]


def test_dask_awkward_gives_the_same_candidates(muons):
    lazy = vaeaug.candidates(dak.from_awkward(muons, npartitions=2), n=2, charge="opposite",
                             fields=["Muon0", "Muon1"])  # fmt: skip
    assert isinstance(lazy, dak.Array)
    assert _pts(lazy.compute(scheduler="sync")) == _pts(
        vaeaug.candidates(muons, n=2, charge="opposite", fields=["Muon0", "Muon1"])
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n": 0}, "n must be an integer >= 1"), ({"n": 3, "charge": "opposite"}, "needs an even n"),
     ({"charge": "neutral"}, "charge 'neutral' unknown; valid: 'opposite', 'same'"),
     ({"sort_by": "energy_x"}, "sort_by='energy_x' is neither a field nor a property"),
     ({"fields": ["a"]}, r"fields must be 2 distinct daughter names, got \['a'\]")],
)  # fmt: skip
def test_bad_builder_arguments(muons, kwargs, match):
    with pytest.raises(InputError, match=match):
        vaeaug.candidates(muons, **kwargs)


def test_builder_needs_charges_and_a_collection(muons):
    neutral = ak.zip({c: muons[c] for c in ("pt", "eta", "phi", "mass")})
    with pytest.raises(InputError, match=r"needs a 'charge' field.*charge=None"):
        vaeaug.candidates(neutral, charge="opposite")
    with pytest.raises(InputError, match=r"jagged collection of records \(N \* var \* \{...\}\)"):
        vaeaug.candidates(ak.flatten(muons))


def test_a_collection_given_to_augment_names_the_builder(toy_model, muons):
    with pytest.raises(
        InputError, match=r"is ambiguous; build candidates explicitly, e\.g\. vaeaug\.candidates\("
    ):
        vaeaug.Augment(toy_model[1])(muons)  # fmt: skip


def test_position_fields_are_never_read_as_momentum():
    vertices = ak.zip({"x": [[0.1, 0.2]], "y": [[0.0, 0.1]], "z": [[1.0, 2.0]], "mass": [[1.8, 1.9]],
                       "charge": [[1, -1]]})  # fmt: skip
    with pytest.raises(InputError, match="position fields x, y, z but no momentum"):
        vaeaug.candidates(vertices, n=2, charge=None)
    pairs = ak.zip({"v1": vertices[:, 0], "v2": vertices[:, 1]})
    with pytest.raises(InputError, match=r"candidates\.v1 has position fields x, y, z"):
        candidate_p4(pairs)
    with pytest.raises(InputError, match=r"candidates\.v1 has position fields x, y, z"):
        candidate_p4(pairs, objects=["v1", "v2"])
    # a Lorentz vector's x, y, z, t are momentum components
    lorentz = ak.zip({"x": [1.0], "y": [0.0], "z": [0.0], "t": [2.0]}, with_name="Momentum4D",
                     behavior=BEHAVIOR)  # fmt: skip
    np.testing.assert_array_equal(candidate_p4(ak.zip({"a": lorentz})).p4, [[[1.0, 0.0, 0.0, 2.0]]])


@pytest.mark.testdata
@pytest.mark.filterwarnings("ignore:Missing cross-reference (index|target):RuntimeWarning")
@pytest.mark.filterwarnings("ignore:Branch .* already exists:RuntimeWarning")
def test_nanoaod_secondary_vertices_use_pt_eta_phi_mass(testdata):
    """A NanoAOD SV has x, y, z (a position) and pt, eta, phi, mass (its tracks' momentum)."""
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    path = testdata / "nanoAOD_2015_CMS_Open_Data_ttbar.root"
    sv = NanoEventsFactory.from_root({str(path): "Events"}, schemaclass=NanoAODSchema,
                                     mode="virtual").events().SV  # fmt: skip
    assert {"x", "y", "z", "pt", "eta", "phi", "mass"} <= set(sv.fields)
    got = candidate_p4(ak.zip({"sv": ak.flatten(sv)}, depth_limit=1)).p4[:, 0]
    flat = uproot.open(path)["Events"].arrays(["SV_pt", "SV_eta", "SV_phi", "SV_mass"])
    v = vector.array({k: ak.to_numpy(ak.flatten(flat[f"SV_{k}"])).astype(np.float64)
                      for k in ("pt", "eta", "phi", "mass")})  # fmt: skip
    assert len(got) > 30
    np.testing.assert_allclose(got, np.stack([v.px, v.py, v.pz, v.E], -1), rtol=1e-9)
    assert not np.allclose(got[:, 2], ak.to_numpy(ak.flatten(sv.z)))
