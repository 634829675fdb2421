"""examples/coffea_augment.py runs end to end on the shared HZZ file."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.testdata


def test_example_trains_then_loads_and_plots(example, testdata, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [
        "--data",
        str(testdata),
        "--model",
        "dimuon.safetensors",
        "--epochs",
        "2",
        "--factor",
        "4",
    ]
    assert example.main([*argv, "--plot", "mass.png"]) == 0
    out = capsys.readouterr().out
    assert (
        "trained and saved dimuon.safetensors" in out
        and (tmp_path / "mass.png").stat().st_size > 10_000
    )
    assert example.main(argv) == 0  # the model file exists now: loaded, not retrained
    second = capsys.readouterr().out
    assert "trained" not in second and "iterative: 1340 original candidates" in second


def test_example_reports_missing_data(example, tmp_path, capsys):
    assert example.main(["--data", str(tmp_path)]) == 2
    assert "uproot-HZZ.root not found" in capsys.readouterr().err
