"""Analyst paths that ended in a traceback: collections read without --collection, option
values the model cannot take, a representation name refused only after reading."""

from __future__ import annotations

import pytest
import uproot

from vaeaug.cli import main
from vaeaug.errors import InputError
from vaeaug.io import read_candidates

pytestmark = pytest.mark.testdata


@pytest.fixture(scope="module")
def nano_rntuple(testdata, tmp_path_factory):
    names = ["nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "nJet", "Jet_pt",
             "Jet_eta", "Jet_phi", "Jet_mass"]  # fmt: skip
    arrays = uproot.open(testdata / "nanoAOD_2015_CMS_Open_Data_ttbar.root")["Events"].arrays(names)
    path = tmp_path_factory.mktemp("nano") / "nano_rntuple.root"
    with uproot.recreate(path) as f:
        f["Events"] = {n: arrays[n] for n in names}
    return path


@pytest.mark.parametrize(
    ("file", "kwargs", "listed"),
    [
        ("nanoAOD_2015_CMS_Open_Data_ttbar.root", {"tree": "Events"}, "Electron, FatJet"),
        ("nanoAOD_2015_CMS_Open_Data_ttbar.root", {"tree": "Events", "objects": ["Jet"]}, "Jet"),
        ("uproot-HZZ.root", {}, "Electron, Jet, Muon, Photon"),  # NMuon counters
    ],
)
def test_collections_without_collection_name_the_way(testdata, file, kwargs, listed):
    with pytest.raises(InputError, match=f"per-event collections .*{listed}.*--collection"):
        read_candidates(testdata / file, **kwargs)


def test_an_rntuple_of_collections_without_collection_exits_2(nano_rntuple, tmp_path, capsys):
    with pytest.raises(InputError, match=r"collections .*: Jet, Muon\. .*--collection Muon"):
        read_candidates(nano_rntuple)
    assert main(["train", str(nano_rntuple), "-o", str(tmp_path / "m.st"), "-q"]) == 2
    assert "--collection NAME --n-objects K" in capsys.readouterr().err


def test_option_values_the_model_cannot_take_are_refused_before_reading(tmp_path, capsys):
    missing = str(tmp_path / "no_such_file.root")  # never read: the options fail first
    assert main(["train", missing, "-o", str(tmp_path / "m.st"), "--representation", "foo"]) == 2
    err = capsys.readouterr().err
    assert "--representation 'foo' unknown; valid: auto" in err and "does not exist" not in err
    assert main(["train", missing, "-o", str(tmp_path / "m.st"), "--latent-dim", "1"]) == 2
    err = capsys.readouterr().err
    assert "--latent-dim must be an integer >= 2, got 1" in err and "does not exist" not in err
