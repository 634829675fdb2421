"""RNTuple input and output, and --daughter branch mappings, through read_candidates and the CLI.

The RNTuple is the shared CMS NanoAOD's muon and jet branches, converted by
the test itself (uproot >= 5.7 writes an RNTuple on assignment); the mapped
tree is the HZZ file's leading muon pairs written as ``px1 ... E2`` branches
(the classic CMS Z -> mu mu tuple's naming) with ``mktree``.
"""

from __future__ import annotations

import numpy as np
import pytest
import uproot
from needs import need_file
from tiny_settings import TINY_CLI as TINY

from vaeaug.cli import main
from vaeaug.errors import InputError
from vaeaug.io import Layout, read_candidates, write_candidates

pytestmark = pytest.mark.testdata

NANO_BRANCHES = ["nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge",
                 "nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass"]  # fmt: skip


@pytest.fixture(scope="module")
def nanoaod(testdata):
    return need_file(testdata / "nanoAOD_2015_CMS_Open_Data_ttbar.root")


@pytest.fixture(scope="module")
def nano_rntuple(nanoaod, tmp_path_factory):
    """The NanoAOD's muon and jet branches as an RNTuple 'Events'."""
    arrays = uproot.open(nanoaod)["Events"].arrays(NANO_BRANCHES)
    path = tmp_path_factory.mktemp("rntuple") / "nano_rntuple.root"
    with uproot.recreate(path) as f:
        f["Events"] = {name: arrays[name] for name in NANO_BRANCHES}
    assert uproot.open(path).classnames() == {"Events;1": "ROOT::RNTuple"}
    return path


@pytest.mark.parametrize(("collection", "k"), [("Muon", 1), ("Jet", 2)])
def test_rntuple_reads_like_the_ttree(nanoaod, nano_rntuple, collection, k):
    tree = read_candidates(nanoaod, tree="Events", collection=collection, n_objects=k)
    ntuple = read_candidates(nano_rntuple, collection=collection, n_objects=k)
    assert tree.layout.format == "ttree" and ntuple.layout.format == "rntuple"
    assert ntuple.source["format"] == "rntuple" and len(ntuple) == len(tree) > 30
    np.testing.assert_array_equal(ntuple.p4, tree.p4)


@pytest.mark.parametrize(
    "fmt",
    [
        "ttree",
        "rntuple",  # uproot's RNTuple reader ignores cut=: vaeaug evaluates it itself
    ],
)  # fmt: skip
def test_a_cut_selects_the_same_events_in_both_formats(nanoaod, nano_rntuple, fmt):
    path = nanoaod if fmt == "ttree" else nano_rntuple
    cut = read_candidates(path, tree="Events", collection="Jet", n_objects=2, cut="nJet >= 4",
                          entry_start=20, entry_stop=150)  # fmt: skip
    # the events 20-149 with four jets or more: their two leading jets, in file order
    with uproot.open(nanoaod) as f:
        n_jet = f["Events"]["nJet"].array(library="np")[20:150]
    window = read_candidates(nanoaod, tree="Events", collection="Jet", n_objects=2,
                             entry_start=20, entry_stop=150)  # fmt: skip
    assert len(cut) == (n_jet >= 4).sum() == 32
    np.testing.assert_array_equal(cut.p4, window.p4[n_jet[n_jet >= 2] >= 4])


def test_rntuple_writer_round_trip(nano_rntuple, tmp_path, toy_p4):
    flat = tmp_path / "flat.root"
    write_candidates(flat, toy_p4[:500], Layout.default(["K1", "pi1", "pi2"]), format="rntuple",
                     chunk_size=200)  # fmt: skip
    assert uproot.open(flat).classnames() == {"candidates;1": "ROOT::RNTuple"}
    np.testing.assert_allclose(read_candidates(flat).p4, toy_p4[:500], rtol=1e-6)

    jets = read_candidates(nano_rntuple, collection="Jet", n_objects=2)
    out = tmp_path / "jets.root"
    write_candidates(out, jets.p4, jets.layout, original=jets.p4)  # the input's format
    ntuple = uproot.open(out)["Events"]
    assert type(ntuple).__name__ == "Model_ROOT_3a3a_RNTuple"
    # NanoAOD-style: the event ids NanoAODSchema needs, a flag NanoEvents reads as a field
    assert set(ntuple.keys()) == {"nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "run",
                                  "luminosityBlock", "event", "isGenerated", "weight"}  # fmt: skip
    back = read_candidates(out, collection="Jet", n_objects=2)
    np.testing.assert_allclose(back.p4[: len(jets)], jets.p4, rtol=1e-5, atol=1e-4)
    with pytest.raises(InputError, match="format 'parquet' unknown; valid: ttree, rntuple"):
        write_candidates(tmp_path / "x.root", jets.p4, jets.layout, format="parquet")


@pytest.mark.outside_support
def test_cli_train_generate_augment_on_an_rntuple(nano_rntuple, tmp_path, capsys):
    model, select = tmp_path / "jets.safetensors", ["--collection", "Jet", "--n-objects", "2"]
    # jets have no fixed mass: the collider representation, asked for (auto would warn)
    jets = ["--representation", "collider"]
    assert main(["train", str(nano_rntuple), "-o", str(model), *select, *jets, *TINY]) == 0
    assert main(["info", str(model)]) == 0
    assert "RNTuple Events" in capsys.readouterr().out

    gen = tmp_path / "gen.root"
    assert main(["generate", str(model), "-n", "400", "-o", str(gen), "-q", "--device", "cpu"]) == 0
    assert "(rntuple)" in capsys.readouterr().out
    assert uproot.open(gen).classnames() == {"Events;1": "ROOT::RNTuple"}
    table = read_candidates(gen, collection="Jet", n_objects=2)
    assert len(table) == 400 and np.isfinite(table.p4).all()

    as_tree = tmp_path / "gen_tree.root"
    argv = ["generate", str(model), "-n", "400", "-o", str(as_tree), "-q", "--device", "cpu"]
    assert main([*argv, "--format", "ttree"]) == 0
    assert uproot.open(as_tree).classnames() == {"Events;1": "TTree"}
    np.testing.assert_array_equal(read_candidates(as_tree, collection="Jet", n_objects=2).p4,
                                  table.p4)  # fmt: skip

    aug = tmp_path / "aug.root"
    argv = ["augment", str(nano_rntuple), "-o", str(aug), "--factor", "2", "--combined", *select,
            *jets]  # fmt: skip
    assert main([*argv, *TINY]) == 0
    arrays = uproot.open(aug)["Events"].arrays(["isGenerated", "weight"], library="np")
    assert type(uproot.open(aug)["Events"]).__name__ == "Model_ROOT_3a3a_RNTuple"
    assert (arrays["isGenerated"] == 1).sum() == 2 * (arrays["isGenerated"] == 0).sum()


@pytest.fixture(scope="module")
def mapped_tree(testdata, tmp_path_factory):
    """HZZ leading muon pairs as px1, py1, pz1, E1, Q1, px2, ... (mktree), and their p4."""
    hzz = read_candidates(testdata / "uproot-HZZ.root", collection="Muon", n_objects=2)
    p4 = hzz.p4
    pt, eta, phi = np.hypot(p4[..., 0], p4[..., 1]), np.arcsinh(p4[..., 2] / np.hypot(p4[..., 0], p4[..., 1])), np.arctan2(p4[..., 1], p4[..., 0])  # fmt: skip
    mass = np.sqrt(np.maximum(p4[..., 3] ** 2 - (p4[..., :3] ** 2).sum(-1), 0))
    columns = {}
    for j in (1, 2):
        for name, values in zip(("px", "py", "pz", "E", "pt", "eta", "phi", "M"),
                                (*p4[:, j - 1].T, pt[:, j - 1], eta[:, j - 1], phi[:, j - 1], mass[:, j - 1])):  # fmt: skip
            columns[f"{name}{j}"] = values.astype("f8")
        columns[f"Q{j}"] = np.where(np.arange(len(p4)) % 2, 1, -1).astype("i4") * (-1) ** j
    path = tmp_path_factory.mktemp("mapped") / "zmumu.root"
    with uproot.recreate(path) as f:
        f.mktree("zmumu", {k: v.dtype for k, v in columns.items()}).extend(columns)
    return path, p4


DAUGHTERS = ["--daughter", "mu1=px1,py1,pz1,E1", "--daughter", "mu2=px2,py2,pz2,E2"]


def test_daughters_mapping_reads_cartesian_and_collider_names(mapped_tree):
    path, p4 = mapped_tree
    cart = read_candidates(path, daughters={"mu1": ["px1", "py1", "pz1", "E1"],
                                            "mu2": ["px2", "py2", "pz2", "E2"]})  # fmt: skip
    assert cart.objects == ["mu1", "mu2"] and cart.layout.components == ("px", "py", "pz", "E")
    np.testing.assert_array_equal(cart.p4, p4)
    coll = read_candidates(path, daughters={"mu1": ["pt1", "eta1", "phi1", "M1"],
                                            "mu2": ["pt2", "eta2", "phi2", "M2"]})  # fmt: skip
    assert coll.layout.components == ("pt", "eta", "phi", "mass")
    np.testing.assert_allclose(coll.p4, p4, rtol=1e-6, atol=1e-6)  # E from float32 masses
    # no <object>_<component> names: the automatic detection finds nothing
    with pytest.raises(InputError, match="no 4-momentum branches found"):
        read_candidates(path)


@pytest.mark.outside_support
def test_cli_on_px1_e1_branches(mapped_tree, tmp_path, capsys):
    path = mapped_tree[0]
    model = tmp_path / "zmumu.safetensors"
    decay = ["--representation", "decay", "--masses", "0.10566", "0.10566"]
    assert main(["train", str(path), "-o", str(model), *DAUGHTERS, *decay, *TINY]) == 0
    gen = tmp_path / "gen.root"
    assert (
        main(["generate", str(model), "-n", "3000", "-o", str(gen), "-q", "--device", "cpu"]) == 0
    )
    tree = uproot.open(gen)["zmumu"]
    assert tree.keys() == ["px1", "py1", "pz1", "E1", "px2", "py2", "pz2", "E2"]
    assert {tree[b].interpretation.numpy_dtype.str for b in tree.keys()} == {"<f8"}
    gen_p4 = read_candidates(gen, daughters={"mu1": ["px1", "py1", "pz1", "E1"],
                                             "mu2": ["px2", "py2", "pz2", "E2"]}).p4  # fmt: skip
    # the decay representation keeps the muon mass (up to E^2 - p^2 rounding at high p)
    mass = np.sqrt(np.maximum(gen_p4[..., 3] ** 2 - (gen_p4[..., :3] ** 2).sum(-1), 0))
    assert np.quantile(np.abs(mass - 0.10566), 0.99) < 1e-5

    aug = tmp_path / "aug.root"
    argv = ["augment", str(path), "-o", str(aug), "--factor", "1", "--combined", *DAUGHTERS]
    assert main([*argv, *TINY]) == 0
    assert "augmented 1413 -> 2826 candidates" in capsys.readouterr().out
    assert set(uproot.open(aug)["zmumu"].keys()) == {"px1", "py1", "pz1", "E1", "px2", "py2",
                                                     "pz2", "E2", "is_generated", "weight"}  # fmt: skip

    report = tmp_path / "report"
    argv = ["validate", str(path), str(gen), "--out", str(report), *DAUGHTERS, "--formats", "png"]
    assert main([*argv, "--max-events", "1000"]) == 0
    assert "validated 1000 generated vs 1000 original" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("daughter", "message"),
    [
        ("mu1=px1,py1,pz1", "is not NAME=B1,B2,B3,B4"),
        ("mu1=px1,py1,pz1,E9", "branch 'E9' of daughter 'mu1' not in tree 'zmumu'; close matches: E"),
        ("mu1=Q1,py1,pz1,E1", "cannot tell the coordinates of branches Q1, py1, pz1, E1"),
    ],
)  # fmt: skip
def test_bad_daughter_exits_2(mapped_tree, tmp_path, capsys, daughter, message):
    argv = [
        "train",
        str(mapped_tree[0]),
        "-o",
        str(tmp_path / "m.safetensors"),
        "--daughter",
        daughter,
    ]
    assert main([*argv, "-q"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.outside_support
def test_cli_cut_on_an_rntuple_trains_on_the_selection(nanoaod, nano_rntuple, tmp_path, capsys):
    """The issue's case: a cut on an RNTuple used to be ignored silently (all 140 events with
    two jets trained); the combined output holds exactly the 54 events with four jets."""
    with uproot.open(nanoaod) as f:
        n_jet = f["Events"]["nJet"].array(library="np")
    aug = tmp_path / "aug.root"
    argv = ["augment", str(nano_rntuple), "-o", str(aug), "--factor", "2", "--combined",
            "--collection", "Jet", "--n-objects", "2", "--representation", "collider",
            "--cut", "nJet >= 4"]  # fmt: skip
    assert main([*argv, *TINY]) == 0
    real = uproot.open(aug)["Events"].arrays(["isGenerated"], library="np")["isGenerated"] == 0
    assert real.sum() == (n_jet >= 4).sum() == 54 < (n_jet >= 2).sum()
    assert "augmented 54 ->" in capsys.readouterr().out
