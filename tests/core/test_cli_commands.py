"""The vaeaug command line, end to end on ROOT files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import uproot
from tiny_settings import TINY_CLI as TINY

import vaeaug
from vaeaug.cli import main
from vaeaug.errors import InputError
from vaeaug.io import read_candidates
from vaeaug.model.vae import VAEConfig
from vaeaug.noise import Stream, child_seed
from vaeaug.training import TrainConfig

#: Tiny test models put many candidates outside the training support, and the warning says
#: so; these tests check other behaviour (the support check's own tests use pytest.warns).
pytestmark = pytest.mark.outside_support


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
    # numbers at the precision a reader needs (not masses=[0.49367700000000003, ...])
    assert "Kuiper p = " in out and not __import__("re").search(r"\d\.\d{7,}", out)
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
    # the rule shared with Augment(mode="combined"): with unit weights every row, real or
    # generated, weighs 1/(1+factor), and the whole tree sums to the input's 2000
    np.testing.assert_allclose(arrays["weight"][real], 1 / 4, rtol=1e-6)
    np.testing.assert_allclose(arrays["weight"][gen], 1 / 4, rtol=1e-6)
    np.testing.assert_allclose(arrays["weight"].sum(dtype=np.float64), 2000, rtol=1e-6)
    assert model.exists()


def test_augment_draws_its_sample_from_a_sub_stream_of_the_seed(toy_root, tmp_path):
    """The model trains with --seed; its sample comes from child_seed(seed, Stream.GENERATED)."""
    out, model_out = tmp_path / "aug.root", tmp_path / "m.safetensors"
    argv = ["augment", str(toy_root), "-o", str(out), "-n", "3000", "--seed", "5",
            "--model-out", str(model_out), *TINY]  # fmt: skip
    assert main(argv) == 0
    model = vaeaug.load(model_out, device="cpu")
    expected = model.sample(3000, seed=child_seed(5, Stream.GENERATED)).p4
    # written as the input's float32 branches
    np.testing.assert_allclose(read_candidates(out).p4, expected.astype(np.float32), rtol=1e-6)


#: Every model and training option, each with a value other than its default.
MODEL_OPTIONS = ["--latent-dim", "3", "--hidden", "16", "8", "--beta", "0.5", "--prior",
                 "standard", "--epochs", "7", "--batch-size", "32", "--lr", "0.01",
                 "--patience", "4"]  # fmt: skip


@pytest.mark.parametrize("command", ["train", "augment", "trainset", "demo"])
def test_model_options_reach_the_configs(command, toy_root, tmp_path, monkeypatch):
    import vaeaug.api
    import vaeaug.trainsets

    seen = {}

    def record(*args, config=None, train=None, **kwargs):
        seen.update(config=config, train=train)
        raise InputError("recorded")

    monkeypatch.setattr(vaeaug.api, "fit", record)
    monkeypatch.setattr(vaeaug.trainsets, "augment_training_set", record)
    if command == "demo":
        argv = ["demo", "--out", str(tmp_path / "demo"), "--n", "100", "--epochs", "7"]
    else:
        argv = [command, str(toy_root), "-o", str(tmp_path / "out"), *MODEL_OPTIONS]
    if command == "trainset":
        argv += ["--signal-tree", "candidates", "--background-tree", "candidates"]
    assert main([*argv, "-q", "--device", "cpu"]) == 2
    config, train = seen["config"], seen["train"]
    if command == "demo":  # --epochs only; the rest keeps the configs' defaults
        assert config == VAEConfig() and train == TrainConfig(epochs=7)
        return
    assert (config.latent_dim, list(config.hidden), config.beta, config.prior) == (
        3, [16, 8], 0.5, "standard")  # fmt: skip
    assert (train.epochs, train.batch_size, train.learning_rate, train.patience) == (7, 32, 0.01, 4)


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
    # f = n / N generated per real candidate: a real one keeps w/(1+f) of its weight,
    # the generated ones share the rest, W f/(1+f), equally; the tree sums to W
    f = 5000 / len(weights)
    np.testing.assert_allclose(arrays["weight"][real], weights / (1 + f), rtol=1e-6)
    np.testing.assert_allclose(arrays["weight"][~real], weights.sum() * f / (1 + f) / 5000,
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(arrays["weight"].sum(dtype=np.float64), weights.sum(), rtol=1e-6)


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
    import vaeaug.io.write

    real = vaeaug.io.write.RootWriter.write

    def interrupted(self, p4, **extra):
        # Ctrl-C while the second chunk is generated: the first one is in the file
        if self.n_written:
            raise KeyboardInterrupt
        real(self, p4, **extra)

    monkeypatch.setattr(vaeaug.io.write.RootWriter, "write", interrupted)
    out = tmp_path / "gen.root"
    argv = ["generate", str(model_file), "-n", "200000", "--chunk-size", "50000", "-o", str(out),
            "-q", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 130
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
    # #30: a second run does not replace the first one's files without -f
    model = (tmp_path / "demo" / "dplus_model.safetensors").read_bytes()
    assert main(argv) == 2
    assert "already holds dplus_sample.root" in capsys.readouterr().err
    assert (tmp_path / "demo" / "dplus_model.safetensors").read_bytes() == model


def test_demo_judges_on_an_independent_sample(tmp_path, monkeypatch):
    """The demo's C2ST compares with another built-in sample, not the training one."""
    import vaeaug.validation.report
    from vaeaug.datasets import dplus_kpipi

    seen = {}
    monkeypatch.setattr(vaeaug.validation.report, "validate",
                        lambda original, generated, *a, **kw: seen.update(kw, original=original))  # fmt: skip
    argv = ["demo", "-o", str(tmp_path / "demo"), "-n", "600", "--factor", "2",
            "--epochs", "2", "--seed", "4", "-q", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    training = dplus_kpipi(600, seed=4)
    np.testing.assert_array_equal(seen["training_p4"], training)  # for the memorisation check
    assert seen["original"].shape == training.shape
    # no training candidate among the ones judged against
    assert not np.isin(seen["original"][:, 0, 0], training[:, 0, 0]).any()


def test_warnings_are_one_line_each_without_source_lines(toy_root, tmp_path):
    """#31: a warning reaches a CLI user as one 'vaeaug CMD: warning:' line, once, without
    the Python source line it was raised from."""
    out = tmp_path / "more.root"
    done = subprocess.run(
        [sys.executable, "-m", "vaeaug", "augment", str(toy_root), "-o", str(out), "-n", "2000",
         *TINY],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if "warning" in line.lower()]
    assert lines and all(line.startswith("vaeaug augment: warning: ") for line in lines)
    assert len(lines) == len(set(lines))
    assert ".py:" not in done.stderr and "warnings.warn" not in done.stderr


@pytest.mark.parametrize("option", ["--output-tree", "--tree"])
def test_generate_names_its_output_tree_as_trainset_does(model_file, tmp_path, option):
    """--output-tree (trainset's name; --tree, which names the input tree elsewhere, is kept
    as the old spelling)."""
    out = tmp_path / "g.root"
    argv = ["generate", str(model_file), "-n", "100", "-o", str(out), option, "mine", "-q",
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 0
    assert uproot.open(out).keys() == ["mine;1"]
