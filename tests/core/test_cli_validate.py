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


@pytest.fixture(scope="module")
def hzz_muons(testdata, tmp_path_factory):
    """(the HZZ file, a tiny model of its two leading muons, 2,000 candidates it generated)."""
    from needs import need_file

    hzz = need_file(testdata / "uproot-HZZ.root")
    folder = tmp_path_factory.mktemp("hzz_muons")
    model, generated = folder / "mu.safetensors", folder / "mu.root"
    train = ["train", str(hzz), "--collection", "Muon", "--n-objects", "2", "-o", str(model)]
    assert main([*train, *TINY]) == 0
    assert main(["generate", str(model), "-n", "2000", "-o", str(generated), "-q"]) == 0
    return hzz, model, generated


def test_validate_with_a_model_of_a_jagged_collection(hzz_muons, tmp_path, capsys):
    """The model's layout says what to read: the first two muons of each event."""
    hzz, model, generated = hzz_muons
    out = tmp_path / "report"
    argv = ["validate", str(hzz), str(generated), "--model", str(model), "--out", str(out)]
    assert main([*argv, "--formats", "png"]) == 0
    printed = capsys.readouterr().out
    assert "validated 2000 generated vs 1413 original candidates" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["objects"] == ["Muon0", "Muon1"]
    # the peak in GeV, as every other mass vaeaug prints (#31 item 8), at 5 decimals
    peak = summary["mass"]["generated"]["robust_median"]
    assert f"mass peak {peak:.5f} vs " in printed and " GeV -> " in printed


@pytest.fixture
def quick_validate(monkeypatch):
    """``vaeaug validate`` without the per-feature plots and with few bootstrap replicas:
    the tests below check the options and the report, not the metrics' precision."""
    import functools

    from vaeaug.validation import report

    fast = functools.partial(report.validate, feature_plots=False, n_bootstrap=5, n_threads=1)
    monkeypatch.setattr(report, "validate", fast)


def test_validate_reports_the_named_resonances(toy_root, toy_p4, tmp_path, quick_validate):
    from vaeaug.datasets import OBJECTS, dplus_kpipi
    from vaeaug.io import Layout, write_candidates
    from vaeaug.validation.features import parent_mass

    generated = tmp_path / "gen.root"
    write_candidates(generated, dplus_kpipi(2_000, seed=8), Layout.default(OBJECTS))
    out = tmp_path / "report"
    argv = ["validate", str(toy_root), str(generated), "-o", str(out), "--formats", "png",
            "--resonance", "D+=1.86:1.88", "--resonance", "far=5:6"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    d = next(r for r in summary["mass_regions"]["regions"] if r["name"] == "D+")
    m = parent_mass(toy_p4)
    assert d["real_fraction"] == pytest.approx(((m >= 1.86) & (m < 1.88)).mean(), abs=1e-12)
    report = (out / "report.md").read_text()
    assert (
        f"| D+ | 1.8600 – 1.8800 | {d['real_fraction']:.4f} ± {d['real_err']:.4f} "
        f"| {d['generated_fraction']:.4f} ± {d['generated_err']:.4f} "
        f"| {d['ratio']:.3f} ± {d['ratio_err']:.3f} |"
    ) in report
    # nothing near 5-6 GeV: listed as dropped, not compared
    assert [r["name"] for r in summary["mass_regions"]["dropped"]][-1] == "far"
    assert "far (5.0000 – 6.0000 GeV: original 0.0000" in report


@pytest.mark.parametrize("spec", ["Jpsi=3.3", "Jpsi=3.3:2.9", "Jpsi:2.9:3.3"])
def test_validate_refuses_a_malformed_resonance(toy_root, tmp_path, capsys, spec):
    out = tmp_path / "report"
    argv = ["validate", str(toy_root), str(toy_root), "--out", str(out), "--resonance", spec]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--resonance '{spec}' is not NAME=LO:HI" in err and "J/psi=2.9:3.3" in err
    assert not out.exists()  # refused before any work


def test_validate_reads_collections_without_a_model(hzz_muons, tmp_path, capsys, quick_validate):
    """#31: a NanoAOD-style file and vaeaug's own output of it, compared with --collection
    (it used to fail with "cannot reshape array")."""
    hzz, _, generated = hzz_muons
    out = tmp_path / "report"
    argv = ["validate", str(hzz), str(generated), "--collection", "Muon", "--out", str(out),
            "--formats", "png"]  # fmt: skip
    assert main(argv) == 0
    assert "validated 2000 generated vs 1413 original candidates" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["objects"] == ["Muon0", "Muon1"]
    assert main([*argv[:-4], "--out", str(tmp_path / "r2"), "--objects", "Muon0"]) == 2
    assert "do not combine it with --objects" in capsys.readouterr().err


def test_validate_does_not_replace_a_report_without_f(toy_root, tmp_path, capsys, quick_validate):
    """#30: a second validate into the same --out used to overwrite report.md silently."""
    out = tmp_path / "report"
    argv = ["validate", str(toy_root), str(toy_root), "-o", str(out), "--formats", "png"]
    assert main(argv) == 0
    first = (out / "report.md").read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "already holds report.md" in err and "--overwrite (-f)" in err
    assert (out / "report.md").read_bytes() == first
    assert main([*argv, "-f"]) == 0
