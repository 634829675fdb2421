"""``vaeaug validate`` end to end on ROOT files."""

from __future__ import annotations

import json
import struct

import pytest
from fidelity_check import MAX_AUC
from tiny_settings import TINY_CLI as TINY

from vaeaug.cli import main

#: Tiny test models put many candidates outside the training support, and the warning says
#: so; these tests check other behaviour (the support check's own tests use pytest.warns).
pytestmark = pytest.mark.outside_support


def _png_size(path):
    raw = path.read_bytes()[:24]
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", raw[16:24])


def test_validate_writes_report_plots_histograms_and_summary(toy_root, tmp_path, capsys):
    model, generated = tmp_path / "m.safetensors", tmp_path / "gen.root"
    assert (
        main(
            [
                "augment",
                str(toy_root),
                "-o",
                str(generated),
                "--factor",
                "1",
                "--model-out",
                str(model),
                *TINY,
            ]
        )
        == 0
    )
    out = tmp_path / "report"
    argv = [
        "validate",
        str(toy_root),
        str(generated),
        "--model",
        str(model),
        "--out",
        str(out),
        "--formats",
        "png",
    ]
    assert main(argv) == 0
    assert "C2ST AUC" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_original"] == summary["n_generated"] == 2000
    # the fidelity check that an untrained model fails (tests/fidelity_check.py)
    assert summary["c2st"]["test"]["auc"] < MAX_AUC
    assert (
        summary["memorisation"]["available"] is False
    )  # the toy file is all training data: nothing held out
    report = (out / "report.md").read_text()
    assert "![Parent invariant mass](mass.png)" in report
    for name in (
        "mass.png",
        "dalitz.png",
        "correlations_pearson.png",
        "loss.png",
        "features/m12.png",
    ):
        width, height = _png_size(out / name)
        assert 300 < width < 4000 and 300 < height < 4000, name
    import uproot

    with uproot.open(out / "histograms.root") as f:
        assert len(f.keys()) >= 2 * 12


def test_validate_refuses_writing_into_an_input(toy_root, capsys):
    assert main(["validate", str(toy_root), str(toy_root), "--out", str(toy_root)]) == 2
    assert "never overwrites its input" in capsys.readouterr().err


def test_validate_with_a_model_of_a_jagged_collection(testdata, tmp_path, capsys):
    """The model's layout says what to read: the first two muons of each event."""
    from needs import need_file

    hzz = need_file(testdata / "uproot-HZZ.root")
    model, generated = tmp_path / "mu.safetensors", tmp_path / "mu.root"
    train = ["train", str(hzz), "--collection", "Muon", "--n-objects", "2", "-o", str(model)]
    assert main([*train, *TINY]) == 0
    assert main(["generate", str(model), "-n", "2000", "-o", str(generated), "-q"]) == 0
    out = tmp_path / "report"
    argv = ["validate", str(hzz), str(generated), "--model", str(model), "--out", str(out)]
    assert main([*argv, "--formats", "png"]) == 0
    assert "validated 2000 generated vs 1413 original candidates" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["objects"] == ["Muon0", "Muon1"]
