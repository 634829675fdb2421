"""The vaeaug command line, end to end on ROOT files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import uproot
from tiny_settings import TINY_CLI as TINY

from vaeaug.cli import main
from vaeaug.io import read_candidates
from vaeaug.kinematics import invariant_mass


@pytest.fixture(scope="module")
def model_file(toy_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "toy.safetensors"
    assert main(["train", str(toy_root), "-o", str(out), "--seed", "1", *TINY]) == 0
    return out


def test_train_writes_a_model_and_info_describes_it(model_file, capsys):
    assert main(["info", str(model_file)]) == 0
    out = capsys.readouterr().out
    assert "decay" in out and "K1, pi1, pi2" in out and "2000 events" in out
    # the toy file labels its pions by decreasing pT: found, and said
    assert "identical daughters pi1, pi2: learned exchange-symmetric" in out
    assert main(["info", str(model_file), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)  # JSON only: no summary line after it
    assert len(meta["provenance"]["data_sha256"]) == 64
    assert meta["provenance"]["n_events"] == 2000


def test_train_exchange_off_learns_the_labels_as_they_are(toy_root, tmp_path, capsys):
    out = tmp_path / "labelled.safetensors"
    assert main(["train", str(toy_root), "-o", str(out), "--seed", "1", "--exchange", "off",
                 *TINY]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["exchange"] == [] and meta["provenance"]["exchange_choice"] == "off"


def test_generate_writes_the_input_branches(model_file, toy_root, tmp_path, capsys):
    out = tmp_path / "gen.root"
    assert (
        main(
            [
                "generate",
                str(model_file),
                "-n",
                "5000",
                "-o",
                str(out),
                "--seed",
                "3",
                "-q",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert "generated 5000 candidates" in capsys.readouterr().out
    tree = uproot.open(out)["candidates"]
    original = uproot.open(toy_root)["candidates"]
    assert tree.keys() == original.keys()
    assert tree.num_entries == 5000
    assert {b: tree[b].interpretation.numpy_dtype for b in tree.keys()} == {
        b: original[b].interpretation.numpy_dtype for b in original.keys()
    }
    arrays = tree.arrays(library="np")
    assert all(np.isfinite(a).all() for a in arrays.values())
    # generated in the input's labelling: pi1 is the harder pion, as in the toy file
    assert np.all(np.hypot(arrays["pi1_px"], arrays["pi1_py"])
                  >= np.hypot(arrays["pi2_px"], arrays["pi2_py"]))  # fmt: skip
    again = tmp_path / "again.root"
    main(
        [
            "generate",
            str(model_file),
            "-n",
            "5000",
            "-o",
            str(again),
            "--seed",
            "3",
            "-q",
            "--device",
            "cpu",
        ]
    )
    np.testing.assert_array_equal(read_candidates(again).p4, read_candidates(out).p4)


def test_augment_combined_tree(toy_root, tmp_path):
    out, model = tmp_path / "aug.root", tmp_path / "m.safetensors"
    args = [
        "augment",
        str(toy_root),
        "-o",
        str(out),
        "--factor",
        "3",
        "--combined",
        "--model-out",
        str(model),
        *TINY,
    ]
    assert main(args) == 0
    arrays = uproot.open(out)["candidates"].arrays(["is_generated", "weight"], library="np")
    real, gen = arrays["is_generated"] == 0, arrays["is_generated"] == 1
    assert real.sum() == 2000 and gen.sum() == 6000 and real[:2000].all()
    # the rule shared with Augment(mode="combined"): originals keep their weight,
    # the generated ones share it (1/factor each); each part sums to the input's 2000
    np.testing.assert_array_equal(arrays["weight"][real], 1.0)
    np.testing.assert_allclose(arrays["weight"][gen], 1 / 3, rtol=1e-6)
    assert model.exists()


def test_augment_combined_keeps_the_input_weights(tmp_path, toy_p4):
    weights = np.linspace(0.5, 1.5, len(toy_p4))
    source = tmp_path / "weighted.root"
    columns = {f"{o}_{c}": toy_p4[:, j, i].astype("f4") for j, o in enumerate(["K1", "pi1", "pi2"])
               for i, c in enumerate(["px", "py", "pz", "E"])}  # fmt: skip
    columns["w"] = weights
    with uproot.recreate(source) as f:
        f.mktree("candidates", {k: v.dtype for k, v in columns.items()}).extend(columns)
    out = tmp_path / "aug.root"
    argv = ["augment", str(source), "-o", str(out), "--weight", "w", "-n", "5000", "--combined"]
    assert main([*argv, *TINY]) == 0
    arrays = uproot.open(out)["candidates"].arrays(["is_generated", "weight"], library="np")
    real = arrays["is_generated"] == 0
    np.testing.assert_allclose(arrays["weight"][real], weights, rtol=1e-6)
    np.testing.assert_allclose(arrays["weight"][~real], weights.sum() / 5000, rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "{missing}", "-o", "{tmp}/m.safetensors"], "does not exist"),
        (["train", "{toy}", "-o", "{toy}"], "never overwrites its input"),
        (["train", "{toy}", "-o", "{tmp}/m.safetensors", "--objects", "K2"], "close matches: K1"),
        (
            ["train", "{toy}", "-o", "{tmp}/m.safetensors", "--device", "cuda:7"],
            "CUDA is not available|not valid",
        ),
        (["generate", "{toy}", "-n", "10", "-o", "{tmp}/g.root"], "not a readable model file"),
        (["augment", "{toy}", "-o", "{tmp}/a.root", "--representation", "polar"], "valid: auto"),
        (["info", "{tmp}/none.safetensors"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args, message, toy_root, tmp_path, capsys):
    argv = [a.format(missing=tmp_path / "missing.root", tmp=tmp_path, toy=toy_root) for a in args]
    assert main([*argv, "-q"] if argv[0] in ("train", "augment") else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vaeaug {argv[0]}: error:")
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "m.safetensors").exists() and not (tmp_path / "g.root").exists()


def test_interrupted_generate_leaves_no_file(model_file, tmp_path, monkeypatch):
    import vaeaug.api

    real = vaeaug.api.Model.iter_samples

    def interrupted(self, n, **kw):
        it = real(self, n, **kw)
        yield next(it)
        raise KeyboardInterrupt

    monkeypatch.setattr(vaeaug.api.Model, "iter_samples", interrupted)
    out = tmp_path / "gen.root"
    assert (
        main(["generate", str(model_file), "-n", "200000", "-o", str(out), "-q", "--device", "cpu"])
        == 130
    )
    assert list(tmp_path.iterdir()) == []


def test_every_command_has_help(capsys):
    for command in ("train", "generate", "augment", "info", "validate", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: vaeaug {command}" in capsys.readouterr().out
    # the module entry point, as the console script uses it
    result = subprocess.run(
        [sys.executable, "-m", "vaeaug", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout.startswith("vaeaug ")


def test_demo_runs_the_whole_chain(tmp_path, capsys):
    argv = [
        "demo",
        "--out",
        str(tmp_path / "demo"),
        "--n",
        "600",
        "--factor",
        "2",
        "--epochs",
        "4",
        "--no-validate",
        "-q",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    names = {p.name for p in (tmp_path / "demo").iterdir()}
    assert {"dplus_sample.root", "dplus_model.safetensors", "dplus_generated.root"} <= names
    assert uproot.open(tmp_path / "demo" / "dplus_generated.root")["candidates"].num_entries == 1200
    assert "parent mass (MeV)" in capsys.readouterr().out


def test_shared_dplus_file_multiplied_tenfold(testdata, tmp_path):
    """The foundation issue's acceptance test on the real Pythia sample."""
    source = testdata / "dplus_kpipi_train.root"
    out = tmp_path / "gen.root"
    argv = ["augment", str(source), "--tree", "signal", "--objects", "K1", "pi1", "pi2", "--entry-stop", "5000",
            "--factor", "10", "-o", str(out), "--latent-dim", "8", "--hidden", "64", "64", "--epochs", "20",
            "--patience", "5", "--device", "cpu", "-q", "--seed", "2"]  # fmt: skip
    assert main(argv) == 0
    original = read_candidates(source, tree="signal", objects=["K1", "pi1", "pi2"], entry_stop=5000)
    tree = uproot.open(out)["signal"]
    assert set(tree.keys()) == {
        f"{o}_{c}" for o in ("K1", "pi1", "pi2") for c in ("px", "py", "pz", "E")
    }
    assert tree.num_entries == 50_000
    generated = read_candidates(out, tree="signal")
    assert np.isfinite(generated.p4).all()
    shift_mev = 1e3 * abs(
        np.median(invariant_mass(generated.p4)) - np.median(invariant_mass(original.p4))
    )
    assert shift_mev < 2.0


def test_demo_judges_on_an_independent_sample(tmp_path, monkeypatch):
    """The demo's C2ST compares with another built-in sample, not the training one."""
    import vaeaug.validation.report
    from vaeaug.datasets import dplus_kpipi

    seen = {}
    monkeypatch.setattr(vaeaug.validation.report, "validate",
                        lambda original, generated, *a, **kw: seen.update(kw, original=original))  # fmt: skip
    argv = ["demo", "--out", str(tmp_path / "demo"), "--n", "600", "--factor", "2",
            "--epochs", "2", "--seed", "4", "-q", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    training = dplus_kpipi(600, seed=4)
    np.testing.assert_array_equal(seen["training_p4"], training)  # for the memorisation check
    assert seen["original"].shape == training.shape
    # no training candidate among the ones judged against
    assert not np.isin(seen["original"][:, 0, 0], training[:, 0, 0]).any()
