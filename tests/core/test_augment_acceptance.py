"""The foundation issue's acceptance test: ``vaeaug augment`` multiplies the shared Pythia
D+ sample tenfold, and the generated candidates pass the C2ST fidelity check.

The check compares them with the independent reference file, which an untrained model
fails (a median-mass check does not: the standardizer centres each feature on the
training sample, so an untrained decoder's mass median lands within 2 MeV too).
"""

from __future__ import annotations

import numpy as np
import pytest
import uproot
from fidelity_check import MAX_AUC_SHARED_DPLUS, c2st_auc, reinitialised
from needs import need_file

import vaeaug
from vaeaug.cli import main
from vaeaug.io import read_candidates

OBJECTS = ["K1", "pi1", "pi2"]
N_TRAIN, FACTOR, N_REFERENCE = 5_000, 10, 10_000

pytestmark = [pytest.mark.testdata, pytest.mark.slow, pytest.mark.outside_support]


@pytest.fixture(scope="module")
def reference(testdata) -> np.ndarray:
    """The first candidates of the independent reference run, (N_REFERENCE, 3, 4) GeV."""
    path = need_file(testdata / "dplus_kpipi_reference.root")
    return read_candidates(path, tree="signal", objects=OBJECTS, entry_stop=N_REFERENCE).p4


@pytest.fixture(scope="module")
def augmented(testdata, tmp_path_factory):
    """``vaeaug augment`` on the first 5,000 training candidates: (output file, model file)."""
    source = need_file(testdata / "dplus_kpipi_train.root")
    folder = tmp_path_factory.mktemp("augment")
    out, model = folder / "gen.root", folder / "model.safetensors"
    argv = ["augment", str(source), "--tree", "signal", "--objects", *OBJECTS, "--entry-stop",
            str(N_TRAIN), "--factor", str(FACTOR), "-o", str(out), "--model-out", str(model),
            "--latent-dim", "8", "--hidden", "64", "64", "--epochs", "20", "--patience", "5",
            "--device", "cpu", "-q", "--seed", "2"]  # fmt: skip
    assert main(argv) == 0
    return out, model


def test_the_output_has_the_input_branches_and_ten_times_its_candidates(augmented):
    out, _ = augmented
    tree = uproot.open(out)["signal"]
    assert set(tree.keys()) == {f"{o}_{c}" for o in OBJECTS for c in ("px", "py", "pz", "E")}
    assert tree.num_entries == FACTOR * N_TRAIN
    assert np.isfinite(read_candidates(out, tree="signal").p4).all()


def test_the_generated_candidates_pass_the_fidelity_check(augmented, reference):
    generated = read_candidates(augmented[0], tree="signal").p4
    assert c2st_auc(generated, reference) < MAX_AUC_SHARED_DPLUS


def test_the_same_model_untrained_fails_it(augmented, reference):
    untrained = reinitialised(vaeaug.load(augmented[1]))
    generated = untrained.sample(FACTOR * N_TRAIN, seed=3).p4
    assert c2st_auc(generated, reference) > MAX_AUC_SHARED_DPLUS
