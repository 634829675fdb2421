"""Reading candidates from ROOT and writing them back (vaeaug.io)."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from vaeaug.datasets import OBJECTS
from vaeaug.errors import InputError
from vaeaug.io import (
    Layout,
    NonFiniteWarning,
    RootWriter,
    read_candidates,
    refuse_overwriting_inputs,
    write_candidates,
)


def test_flat_round_trip_keeps_names_types_and_values(toy_root, toy_p4, tmp_path):
    table = read_candidates(toy_root)
    assert table.objects == list(OBJECTS)
    assert table.p4.shape == toy_p4.shape
    np.testing.assert_allclose(table.p4, toy_p4.astype(np.float32), rtol=1e-6)
    out = tmp_path / "copy.root"
    assert write_candidates(out, table.p4, table.layout, chunk_size=700) == len(toy_p4)
    tree = uproot.open(out)["candidates"]
    assert list(tree.keys()) == table.layout.branch_names()
    assert {tree[b].interpretation.numpy_dtype.kind for b in tree.keys()} == {"f"}
    assert tree.num_entries == len(toy_p4)
    np.testing.assert_array_equal(read_candidates(out).p4, table.p4)


def test_selection_by_objects_patterns_range_and_cut(toy_root):
    table = read_candidates(toy_root, objects=["pi2", "K1"])
    assert table.objects == ["pi2", "K1"]
    assert read_candidates(toy_root, branches=["pi*_*"]).objects == ["pi1", "pi2"]
    part = read_candidates(toy_root, entry_start=100, entry_stop=300)
    assert len(part) == 200
    np.testing.assert_array_equal(part.p4, read_candidates(toy_root).p4[100:300])
    cut = read_candidates(toy_root, cut="K1_E > 5")
    full = read_candidates(toy_root).p4
    # exactly the rows that pass, in file order (362 of the 2,000: the cut is not trivial)
    np.testing.assert_array_equal(cut.p4, full[full[:, 0, 3] > 5])
    assert len(cut) not in (0, len(full))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tree": "cands"}, "tree 'cands' not in"),
        ({"objects": ["K2"]}, "close matches: K1"),
        ({"branches": ["K9_*"]}, "matches nothing"),
        ({"cut": "K1_E > 1e9"}, "is empty"),
        ({"collection": "Muon", "n_objects": 2}, "collection 'Muon'"),
        ({"weight": "w"}, "weight branch 'w'"),
    ],
)
def test_bad_selection_names_the_problem(toy_root, kwargs, message):
    with pytest.raises(InputError, match=message):
        read_candidates(toy_root, **kwargs)


def test_missing_or_non_root_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_candidates(tmp_path / "nope.root")
    junk = tmp_path / "junk.root"
    junk.write_text("not root")
    with pytest.raises(InputError, match="not a readable ROOT file"):
        read_candidates(junk)


def test_several_trees_need_a_choice(tmp_path, toy_p4):
    path = tmp_path / "two.root"
    with uproot.recreate(path) as f:
        for name in ("signal", "background"):
            f.mktree(name, {"K1_px": "f4"}).extend({"K1_px": np.zeros(3, "f4")})
        f["ntuple"] = {"K1_px": np.zeros(3, "f4")}  # uproot >= 5.7 writes an RNTuple
    with pytest.raises(
        InputError, match=r"signal \(TTree\), background \(TTree\), ntuple \(RNTuple\)"
    ):
        read_candidates(path)
    with pytest.raises(InputError, match=r"tree 'ntupel' not in .*ntuple \(RNTuple\)"):
        read_candidates(path, tree="ntupel")


def test_non_finite_rows_are_dropped_with_a_warning_or_refused(tmp_path, toy_p4):
    p4 = toy_p4[:50].copy()
    p4[3, 1, 2] = np.nan
    p4[7, 0, 3] = np.inf
    path = tmp_path / "bad.root"
    write_candidates(path, p4, Layout.default(OBJECTS))
    with pytest.warns(NonFiniteWarning, match="dropped 2 of 50"):
        table = read_candidates(path)
    assert len(table) == 48 and table.source["dropped"] == 2
    with pytest.raises(InputError, match="2 of 50"):
        read_candidates(path, strict=True)


def test_jagged_collection_first_k_objects(tmp_path):
    import awkward as ak

    rng = np.random.default_rng(1)
    counts = rng.integers(0, 4, 300)
    n = counts.sum()
    muons = ak.zip({
        "pt": ak.unflatten(rng.uniform(5, 50, n).astype("f4"), counts),
        "eta": ak.unflatten(rng.uniform(-2.4, 2.4, n).astype("f4"), counts),
        "phi": ak.unflatten(rng.uniform(-3, 3, n).astype("f4"), counts),
        "mass": ak.unflatten(np.full(n, 0.10566, "f4"), counts),
    })  # fmt: skip
    path = tmp_path / "nano.root"
    with uproot.recreate(path) as f:
        f.mktree("Events", {"Muon": muons.type}).extend({"Muon": muons})
    table = read_candidates(path, collection="Muon", n_objects=2)
    assert len(table) == (counts >= 2).sum()
    assert table.layout.kind == "jagged" and table.objects == ["Muon0", "Muon1"]
    first_pt = ak.to_numpy(muons.pt[counts >= 2][:, 0])
    np.testing.assert_allclose(np.hypot(table.p4[:, 0, 0], table.p4[:, 0, 1]), first_pt, rtol=1e-5)
    out = tmp_path / "gen.root"
    write_candidates(out, table.p4, table.layout)
    tree = uproot.open(out)["Events"]
    # NanoAOD's event ids (generated: run 0, event = index) come with the collection
    assert set(tree.keys()) == {"nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "run",
                                "luminosityBlock", "event"}  # fmt: skip
    np.testing.assert_array_equal(tree["event"].array(library="np"), np.arange(len(table)))
    np.testing.assert_allclose(
        read_candidates(out, collection="Muon", n_objects=2).p4, table.p4, rtol=1e-5, atol=1e-5
    )


def test_combined_tree_has_flag_and_weight(tmp_path, toy_p4):
    out = tmp_path / "combined.root"
    write_candidates(
        out, toy_p4[:30], Layout.default(OBJECTS), original=toy_p4[:10], generated_weight=1 / 3
    )
    arrays = uproot.open(out)["candidates"].arrays(["is_generated", "weight"], library="np")
    np.testing.assert_array_equal(arrays["is_generated"], [0] * 10 + [1] * 30)
    np.testing.assert_allclose(arrays["weight"].sum(), 20.0, rtol=1e-6)


def test_interrupted_write_leaves_no_file(tmp_path, toy_p4):
    out = tmp_path / "partial.root"

    def chunks():
        yield toy_p4[:100]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_candidates(out, chunks(), Layout.default(OBJECTS))
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_missing_directory_and_input_overwrite(tmp_path, toy_root):
    with (
        pytest.raises(InputError, match="does not exist"),
        RootWriter(tmp_path / "no" / "x.root", Layout.default(OBJECTS)),
    ):
        pass
    with pytest.raises(InputError, match="never overwrites its input"):
        refuse_overwriting_inputs(toy_root, [toy_root])


def test_shared_nanoaod_and_hzz_collections(testdata):
    nano = read_candidates(
        testdata / "nanoAOD_2015_CMS_Open_Data_ttbar.root", collection="Muon", n_objects=2
    )
    assert nano.layout.components == ("pt", "eta", "phi", "mass")
    with uproot.open(testdata / "nanoAOD_2015_CMS_Open_Data_ttbar.root") as f:
        n_muon = f["Events"]["nMuon"].array(library="np")
    assert len(nano) == (n_muon >= 2).sum() == 1  # one event of the 200 has two muons
    masses = np.sqrt(np.maximum(nano.p4[..., 3] ** 2 - (nano.p4[..., :3] ** 2).sum(-1), 0))
    np.testing.assert_allclose(masses, 0.10566, atol=2e-3)
    hzz = read_candidates(testdata / "uproot-HZZ.root", collection="Muon", n_objects=2)
    assert hzz.layout.components == ("Px", "Py", "Pz", "E") and len(hzz) == 1413
