"""Refinement through its public entry points: vaeaug.refine and the CLI on a real ROOT file."""

from __future__ import annotations

import numpy as np
import pytest
import uproot
from tiny_settings import TINY_CLI as TINY

import vaeaug
from vaeaug.cli import main
from vaeaug.errors import InputError
from vaeaug.io import read_candidates

pytestmark = pytest.mark.outside_support  # tiny models: their support warnings are expected


def test_refine_returns_weighted_candidates_with_a_report(tiny_model, toy_p4):
    out = vaeaug.refine(tiny_model, toy_p4, 3000, seed=4)  # weight mode, the default
    assert out.p4.shape == (3000, 3, 4) and out.layout == tiny_model.layout
    np.testing.assert_allclose(out.weights.sum(), 3000)
    assert out.refine_report.mode == "weight" and out.refine_report.n == 3000
    again = vaeaug.refine(tiny_model, toy_p4, 3000, seed=4)
    np.testing.assert_array_equal(out.p4, again.p4)
    np.testing.assert_array_equal(out.weights, again.weights)
    # the draws are the model's own: weight mode keeps every one, refinement only weights
    rejected = vaeaug.refine(tiny_model, toy_p4, 3000, seed=4, mode="reject")
    assert rejected.weights is None and rejected.refine_report.drawn > 3000


def test_refine_refuses_a_real_sample_of_other_daughters(tiny_model, toy_p4):
    with pytest.raises(InputError, match="3 object names given for 2 objects"):
        vaeaug.refine(tiny_model, toy_p4[:, :2], 100, seed=1)
    with pytest.raises(InputError, match="reject, weight"):
        vaeaug.refine(tiny_model, toy_p4, 100, mode="accept")


@pytest.fixture(scope="module")
def dplus_file(testdata, tmp_path_factory):
    """The first 1,500 candidates of the shared D+ training file, as they are written there."""
    path = tmp_path_factory.mktemp("refine") / "dplus_1500.root"
    with uproot.open(testdata / "dplus_kpipi_train.root") as f:
        arrays = f["signal"].arrays(library="np", entry_stop=1500)
    with uproot.recreate(path) as out:
        out.mktree("signal", {k: v.dtype for k, v in arrays.items()})
        out["signal"].extend(arrays)
    return path


READ = ["--tree", "signal", "--objects", "K1", "pi1", "pi2"]


@pytest.mark.testdata
def test_augment_refine_weight_writes_honest_weights(dplus_file, tmp_path, capsys):
    out = tmp_path / "refined.root"
    assert main(["augment", str(dplus_file), *READ, "-o", str(out), "-n", "3000",
                 "--refine", "weight", "--seed", "2", *TINY]) == 0  # fmt: skip
    assert "refined (weight)" in capsys.readouterr().out
    arrays = uproot.open(out)["signal"].arrays(library="np")
    assert len(arrays["weight"]) == 3000 and "is_generated" not in arrays
    np.testing.assert_allclose(arrays["weight"].sum(dtype=np.float64), 3000, rtol=1e-5)
    assert arrays["weight"].std() > 0  # weights, not a constant


@pytest.mark.testdata
def test_augment_refine_combined_sums_to_the_input_total(dplus_file, tmp_path):
    out = tmp_path / "combined.root"
    assert main(["augment", str(dplus_file), *READ, "-o", str(out), "--factor", "2",
                 "--combined", "--refine", "weight", "--seed", "2", *TINY]) == 0  # fmt: skip
    arrays = uproot.open(out)["signal"].arrays(["is_generated", "weight"], library="np")
    real, gen = arrays["is_generated"] == 0, arrays["is_generated"] == 1
    assert real.sum() == 1500 and gen.sum() == 3000
    # the combined rule: real rows 1/(1+f) each, the generated part W f/(1+f) in all
    np.testing.assert_allclose(arrays["weight"][real], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(arrays["weight"][gen].sum(dtype=np.float64), 1000, rtol=1e-5)
    assert arrays["weight"][gen].std() > 0


@pytest.mark.testdata
def test_generate_refine_with_the_training_file_is_reproducible(dplus_file, tmp_path):
    model = tmp_path / "m.safetensors"
    assert main(["train", str(dplus_file), *READ, "-o", str(model), "--seed", "1", *TINY]) == 0
    outs = [tmp_path / f"g{i}.root" for i in range(2)]
    for out in outs:
        assert main(["generate", str(model), "-n", "2000", "-o", str(out), "--seed", "3",
                     "--refine", "reject", "--refine-with", str(dplus_file), "-q"]) == 0  # fmt: skip
    a, b = (read_candidates(o, tree="signal", objects=["K1", "pi1", "pi2"]) for o in outs)
    assert len(a) == 2000 and a.weights is None
    np.testing.assert_array_equal(a.p4, b.p4)


@pytest.mark.parametrize("extra", [["--refine", "reject"], ["--refine-with", "x.root"]])
def test_generate_refine_needs_both_options(extra, tiny_model, tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    tiny_model.save(model)
    code = main(["generate", str(model), "-n", "10", "-o", str(tmp_path / "g.root"), *extra])
    assert code == 2
    assert "--refine MODE and --refine-with FILE go together" in capsys.readouterr().err
