"""What vaeaug writes from NanoAOD, coffea reads as NanoAOD (issue #31, item 4).

A NanoAOD-style file of the HZZ sample's muons (float32 pt/eta/phi/mass, int32 charge, the
event ids) as a TTree and as an RNTuple. The CLI's outputs go through
``NanoEventsFactory(schemaclass=NanoAODSchema)`` (the stock schema, which refuses a file
without event ids) to ``events.Muon``, whose ``MuonArray`` requires ``charge``.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
import vector
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory
from tiny_settings import TINY_CLI

from vaeaug.cli import main
from vaeaug.io import Layout, read_candidates, write_candidates
from vaeaug.io.labels import ObjectLabels

pytestmark = [
    pytest.mark.testdata,
    pytest.mark.outside_support,
    # coffea's own: the file holds muons only, NanoAOD's cross-references point elsewhere
    pytest.mark.filterwarnings("ignore:Missing cross-reference index:RuntimeWarning"),
]


def _nanoaod_columns(testdata) -> dict:
    events = uproot.open(testdata / "uproot-HZZ.root")["events"].arrays(
        ["Muon_Px", "Muon_Py", "Muon_Pz", "Muon_E", "Muon_Charge"]
    )
    p4 = vector.zip({"px": events.Muon_Px, "py": events.Muon_Py, "pz": events.Muon_Pz,
                     "E": events.Muon_E})  # fmt: skip
    n = len(events)
    muons = {c: ak.values_astype(getattr(p4, c), np.float32) for c in ("pt", "eta", "phi")}
    muons["mass"] = ak.values_astype(np.abs(p4.mass), np.float32)
    muons["charge"] = ak.values_astype(events.Muon_Charge, np.int32)
    return {
        "run": np.full(n, 7, np.uint32),
        "luminosityBlock": np.full(n, 3, np.uint32),
        "event": np.arange(n, dtype=np.uint64) + 1000,
        "Muon": ak.zip(muons),
    }


@pytest.fixture(scope="module")
def nano_files(testdata, tmp_path_factory) -> dict[str, str]:
    """The HZZ muons NanoAOD-style: {"ttree": path, "rntuple": path}."""
    columns = _nanoaod_columns(testdata)
    folder = tmp_path_factory.mktemp("nanoaod")
    tree, rntuple = folder / "muons_ttree.root", folder / "muons_rntuple.root"
    with uproot.recreate(tree) as f:
        types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in columns.items()}
        f.mktree("Events", types).extend(columns)
    flat = uproot.open(tree)["Events"].arrays()
    with uproot.recreate(rntuple) as f:
        f["Events"] = {name: flat[name] for name in flat.fields}
    return {"ttree": str(tree), "rntuple": str(rntuple)}


@pytest.fixture(scope="module")
def muon_model(nano_files, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "muons.safetensors"
    argv = ["train", nano_files["ttree"], "-o", str(path), "--collection", "Muon",
            "--n-objects", "2", *TINY_CLI]  # fmt: skip
    assert main(argv) == 0
    return str(path)


def _events(path: str):
    return NanoEventsFactory.from_root({path: "Events"}, schemaclass=NanoAODSchema,
                                       mode="eager").events()  # fmt: skip


def _charge_patterns(muons) -> dict[tuple[int, int], int]:
    pairs = ak.to_numpy(muons.charge[ak.num(muons.charge) >= 2][:, :2])
    values, counts = np.unique(pairs, axis=0, return_counts=True)
    return {tuple(int(x) for x in v): int(c) for v, c in zip(values, counts, strict=True)}


@pytest.mark.parametrize("fmt", ["ttree", "rntuple"])
def test_generated_muons_read_back_through_nanoaod_schema(nano_files, muon_model, tmp_path, fmt):
    """generate -> NanoEventsFactory(NanoAODSchema) -> events.Muon: charges (with the training
    sample's frequencies), the input's float32 types, event ids; the same seed gives the same
    charges whatever the chunk size."""
    gen = tmp_path / "gen.root"
    argv = ["generate", muon_model, "-n", "3000", "-o", str(gen), "--format", fmt, "-q",
            "--device", "cpu", "--seed", "4"]  # fmt: skip
    assert main(argv) == 0
    events = _events(str(gen))
    assert len(events) == 3000 and ak.all(ak.num(events.Muon) == 2)
    assert events.Muon.pt.type.content.content.primitive == "float32"
    assert events.Muon.charge.type.content.content.primitive == "int32"
    np.testing.assert_array_equal(ak.to_numpy(events.event), np.arange(3000))
    assert set(ak.to_numpy(events.run)) == {0}  # run 0 marks generated events
    # the charge combinations of the training pairs, at their frequencies
    training = _charge_patterns(_events(nano_files["ttree"]).Muon)
    generated = _charge_patterns(events.Muon)
    assert set(generated) <= set(training)
    n_train = sum(training.values())
    for pattern, count in training.items():
        expected = 3000 * count / n_train
        assert abs(generated.get(pattern, 0) - expected) < 4 * np.sqrt(expected) + 1
    # reproducible per candidate: another chunk size gives the same charges
    again = tmp_path / "again.root"
    assert main([*argv[:5], str(again), *argv[6:], "--chunk-size", "700"]) == 0
    assert ak.all(_events(str(again)).Muon.charge == events.Muon.charge)


@pytest.mark.parametrize("fmt", ["ttree", "rntuple"])
def test_combined_output_reads_as_nanoaod_with_a_plain_generated_flag(nano_files, tmp_path, fmt):
    """augment --combined with a cut: the flag is a plain field (``isGenerated``, not a
    collection ``is``), the originals keep their event ids and charges, the generated ones
    get run 0."""
    out = tmp_path / "combined.root"
    argv = ["augment", nano_files[fmt], "-o", str(out), "--collection", "Muon", "--n-objects",
            "2", "--combined", "--factor", "2", "--cut", "nMuon == 2", *TINY_CLI]  # fmt: skip
    assert main(argv) == 0
    events = _events(str(out))
    assert "isGenerated" in events.fields and "is" not in events.fields
    real = events[events.isGenerated == 0]
    source = _events(nano_files["ttree"])
    selected = source[ak.num(source.Muon) == 2]
    assert len(real) == len(selected) and len(events) == 3 * len(selected)
    np.testing.assert_array_equal(ak.to_numpy(real.event), ak.to_numpy(selected.event))
    assert ak.all(real.Muon.charge == selected.Muon.charge)
    assert set(ak.to_numpy(events.run[events.isGenerated == 1])) == {0}
    # what validate reads back: vaeaug's own output of a collection
    assert len(read_candidates(out, collection="Muon", n_objects=2)) == len(events)


def test_labels_constant_per_object_are_kept_exactly(tmp_path, toy_p4):
    """A flat file's K1_charge = -1, pi_charge = +1 come back exactly on generated rows."""
    layout = Layout.default(["K1", "pi1", "pi2"])
    charges = np.tile(np.array([-1, 1, 1], np.int16), (len(toy_p4), 1))
    layout = Layout(**{**layout.__dict__, "labels": ObjectLabels.from_values({"charge": charges})})
    out = tmp_path / "labelled.root"
    write_candidates(out, toy_p4[:500], layout, seed=3)
    arrays = uproot.open(out)["candidates"].arrays(library="np")
    for obj, q in (("K1", -1), ("pi1", 1), ("pi2", 1)):
        assert arrays[f"{obj}_charge"].dtype == np.int16 and (arrays[f"{obj}_charge"] == q).all()
    table = read_candidates(out)
    assert table.layout.labels.patterns == ((-1, 1, 1),)
    np.testing.assert_array_equal(table.labels["charge"], charges[:500])


def test_a_label_branch_that_is_not_one_integer_per_object_is_left_out(tmp_path, toy_p4):
    """A jagged ``K1_charge`` (or a float one) is not a label: read without it, no traceback."""
    columns = {f"{o}_{c}": toy_p4[:200, j, i].astype("f4")
               for j, o in enumerate(["K1", "pi1", "pi2"])
               for i, c in enumerate(["px", "py", "pz", "E"])}  # fmt: skip
    columns["K1_charge"] = ak.Array([[1, 2]] * 200)
    columns.update(pi1_charge=np.ones(200, "i4"), pi2_charge=np.ones(200, "f4"))
    path = tmp_path / "odd_labels.root"
    with uproot.recreate(path) as f:
        types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in columns.items()}
        f.mktree("candidates", types).extend(columns)
    table = read_candidates(path)
    assert len(table) == 200 and table.layout.labels is None and table.labels is None
