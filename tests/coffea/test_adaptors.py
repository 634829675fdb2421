"""awkward/vector records <-> (N, k, 4) 4-momenta."""

from __future__ import annotations

import pickle
import subprocess
import sys

import awkward as ak
import numpy as np
import pytest
import vector

from vaeaug import InputError
from vaeaug.integrations.awkward import (
    candidate_p4,
    coordinate_fields,
    from_awkward,
    p4_of_vectors,
    to_awkward,
)

BEHAVIOR = vector.backends.awkward.behavior


def _p4(n: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 3, size=(n, k, 3))
    m = rng.uniform(0.1, 0.5, size=(n, k, 1))
    return np.concatenate([p, np.sqrt((p**2).sum(-1, keepdims=True) + m**2)], -1)


@pytest.mark.parametrize(
    "coords",
    [("px", "py", "pz", "E"), ("pt", "eta", "phi", "mass"), ("pt", "eta", "phi", "E"), ("x", "y", "z", "t"),
     ("Px", "Py", "Pz", "E"), ("rho", "phi", "theta", "tau")],
)  # fmt: skip
def test_any_coordinate_system_gives_cartesian_p4(coords):
    p4 = _p4(50, 1)[:, 0]
    v = vector.array({"px": p4[:, 0], "py": p4[:, 1], "pz": p4[:, 2], "E": p4[:, 3]})
    names = {"Px": "px", "Py": "py", "Pz": "pz"}
    values = {c: getattr(v, names.get(c, c)) for c in coords}
    named = coords[0] != "Px"  # vector has no Px: such a record is plain branches
    rec = ak.zip(values, with_name="Momentum4D" if named else None, behavior=BEHAVIOR)
    assert set(coordinate_fields(ak.fields(rec), lorentz=named)) == set(coords)
    np.testing.assert_allclose(p4_of_vectors(rec), p4, rtol=1e-9, atol=1e-9)


def test_round_trip_flat_and_per_event():
    p4 = _p4(10, 3)
    flat = to_awkward(p4, ("K1", "pi1", "pi2"), weight=np.full(10, 0.5))
    assert flat.fields == ["K1", "pi1", "pi2", "weight"]
    back, source = from_awkward(flat, n_objects=3)
    np.testing.assert_array_equal(back.p4, p4)
    assert source.counts is None and back.objects == ["K1", "pi1", "pi2"]
    np.testing.assert_array_equal(candidate_p4(flat).p4, p4)

    nested = to_awkward(p4, ("K1", "pi1", "pi2"), counts=[4, 0, 6])
    assert ak.num(nested).tolist() == [4, 0, 6]
    back, source = from_awkward(nested, n_objects=3)
    np.testing.assert_array_equal(back.p4, p4)
    assert source.counts.tolist() == [4, 0, 6] and source.nested


def test_combinations_of_nanoaod_like_records():
    muons = ak.zip(
        {"pt": [[30.0, 20.0, 10.0], [40.0], []], "eta": [[0.1, -0.5, 1.0], [2.0], []],
         "phi": [[0.0, 3.0, -1.0], [1.0], []], "mass": [[0.1057] * 3, [0.1057], []],
         "charge": [[1, -1, -1], [1], []]},
        with_name="Momentum4D", behavior=BEHAVIOR,
    )  # fmt: skip
    pairs = ak.combinations(muons, 2, fields=["mu1", "mu2"])
    got, source = from_awkward(pairs, n_objects=2)
    assert source.counts.tolist() == [3, 0, 0] and got.p4.shape == (3, 2, 4)
    expect = (pairs.mu1 + pairs.mu2).mass[0].to_list()
    np.testing.assert_allclose(
        np.sqrt(got.p4.sum(1)[:, 3] ** 2 - (got.p4.sum(1)[:, :3] ** 2).sum(-1)), expect, rtol=1e-9
    )


def test_a_bare_collection_is_refused_naming_the_builder():
    muons = ak.zip({"pt": [[30.0, 20.0, 10.0], [40.0], [5.0, 6.0]], "eta": [[0.0] * 3, [0.0], [0.0] * 2],
                    "phi": [[0.0] * 3, [0.0], [0.0] * 2], "mass": [[0.1] * 3, [0.1], [0.1] * 2]})  # fmt: skip
    with pytest.raises(InputError, match=r"events\.Muon is a collection .* vaeaug\.candidates\("):
        candidate_p4(muons, n_objects=2, where="events.Muon")


def test_vector_behavior_works_in_a_fresh_process():
    """The behavior travels with the array (plain pickle, as coffea executors use): no vector.register_awkward()."""
    arr = to_awkward(_p4(5, 2), ("a", "b"))
    code = (
        "import pickle, sys; arr = pickle.loads(sys.stdin.buffer.read()); "
        "print(round(float((arr.a + arr.b).mass[0]), 6), round(float(arr.a.deltaR(arr.b)[0]), 6))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=pickle.dumps(arr), capture_output=True, check=True
    )
    mass, dr = map(float, out.stdout.split())
    assert mass == pytest.approx(float((arr.a + arr.b).mass[0]), abs=1e-6)
    assert dr == pytest.approx(float(arr.a.deltaR(arr.b)[0]), abs=1e-6)


def test_typetracer_touches_only_the_coordinates_and_the_charge():
    arr = ak.zip({"a": ak.zip({"pt": [1.0], "eta": [0.0], "phi": [0.0], "mass": [0.1], "iso": [0.0]}),
                  "b": ak.zip({"px": [1.0], "py": [0.0], "pz": [0.0], "E": [2.0], "charge": [1]})},
                 depth_limit=1)  # fmt: skip
    tt, report = ak.typetracer.typetracer_with_report(arr.layout.form_with_key())
    got, source = from_awkward(ak.Array(tt), n_objects=2)
    assert source.is_typetracer and got.p4.shape == (0, 2, 4)
    form = arr.layout.form_with_key()
    names = {
        form.content(f).content(c).form_key: f"{f}.{c}"
        for f in ("a", "b")
        for c in form.content(f).fields
    }
    # the charge is carried to the generated daughters; the isolation is not read
    assert {names[k] for k in report.data_touched if k in names} == {
        "a.pt", "a.eta", "a.phi", "a.mass", "b.px", "b.py", "b.pz", "b.E", "b.charge"}  # fmt: skip
    assert source.dropped == ("iso",) and source.carried["b"]["charge"].dtype == np.int64


@pytest.mark.parametrize(
    ("candidates", "kwargs", "match"),
    [
        (ak.Array([{"a": {"pt": 1.0, "eta": 0.0}}]), {}, "no 4-vector daughters"),
        (
            ak.Array([{"a": {"px": 1.0, "py": 1.0, "pz": 1.0, "E": 2.0}}]),
            {"n_objects": 2},
            "trained on 2 objects",
        ),
        (
            ak.Array([{"a": {"px": 1.0, "py": 1.0, "pz": 1.0, "E": 2.0}}]),
            {"objects": ["K1"]},
            r"no field\(s\) \['K1'\]",
        ),
        (
            ak.Array([{"a": {"px": 1.0, "py": 1.0, "pz": None, "E": 2.0}}]),
            {},
            r"a\.pz has 1 missing \(None\)",
        ),
        (ak.Array([1.0, 2.0]), {}, "must be records"),
        (np.zeros((3, 2, 4)), {}, "must be an awkward Array"),
    ],
)
def test_bad_input_is_named(candidates, kwargs, match):
    with pytest.raises(InputError, match=match):
        candidate_p4(candidates, **kwargs)


def test_option_type_without_none_is_accepted():
    arr = ak.Array([{"a": {"px": 1.0, "py": 1.0, "pz": 1.0, "E": 2.0}}, None])[:1]
    np.testing.assert_array_equal(candidate_p4(arr).p4, [[[1.0, 1.0, 1.0, 2.0]]])
