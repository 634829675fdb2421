"""validate() end to end: every file written, PNGs real images, summary complete."""

from __future__ import annotations

import fnmatch
import json

import matplotlib.image as mpimg
import numpy as np
import pytest
import uproot

from vaeaug.io.atomic import part_name
from vaeaug.validation import validate
from vaeaug.validation.c2st import c2st
from vaeaug.validation.features import feature_table, parent_mass


@pytest.fixture(scope="module")
def samples():
    """The report's inputs: original, generated (a 1 MeV mass shift), reference, weights."""
    from conftest import make_toy

    rng = np.random.default_rng(7)
    original = make_toy(2000, rng)
    generated = make_toy(2000, rng, mass_shift=0.001)
    return original, generated, make_toy(10_000, rng), rng.uniform(0.5, 1.5, 2000)


@pytest.fixture(scope="module")
def report(tmp_path_factory, samples):
    original, generated, reference, weights = samples
    out = tmp_path_factory.mktemp("report")
    summary = validate(
        original,
        generated,
        ["K1", "pi1", "pi2"],
        out,
        reference_p4=reference,
        training_p4=original[:1000],
        history={"train": [3.0, 2.0, 1.5, 1.4], "val": [3.1, 2.2, 1.7, 1.6]},
        generated_weights=weights,
        style="LHCb2",
        n_bootstrap=20,
        n_threads=1,
        feature_plots=["m", "K1_pz", "m23"],
        progress=False,
    )
    return out, summary


def test_every_file_is_written(report):
    out, summary = report
    expected = ["summary.json", "report.md", "histograms.root"]
    for stem in ("mass", "mass_log", "dalitz", "loss", "amplification", "correlations_pearson",
                 "features/m"):  # fmt: skip
        expected += [f"{stem}.png", f"{stem}.pdf"]
    for name in expected:
        assert (out / name).is_file(), name
    for path in summary["files"]:
        assert (
            (out.parent / path).exists()
            or (out / path).exists()
            or __import__("os").path.exists(path)
        )
    # the writer's temporary names (io.atomic.part_name): .NAME.part-<pid>
    assert fnmatch.fnmatch(part_name(out / "mass.png").name, ".*.part-*")
    assert not list(out.rglob(".*.part-*")), "temporary files left behind"


def test_pngs_are_real_images(report):
    out, _ = report
    for png in [*out.glob("*.png"), out / "features" / "K1_pz.png"]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = mpimg.imread(png)
        h, w = img.shape[:2]
        assert 400 <= h <= 3000 and 400 <= w <= 4000, (png.name, img.shape)
        assert img.std() > 0.01, f"{png.name} looks blank"


def test_summary_json_has_every_metric(report, samples):
    out, summary = report
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    for key in (
        "one_d",
        "correlations",
        "c2st",
        "mass",
        "amplification",
        "memorisation",
        "floor_table",
        "mass_regions",
    ):
        assert key in on_disk
    assert set(on_disk["one_d"]["m"]) >= {"w1", "w1_norm", "ks_stat", "ks_pvalue", "within_floor"}
    assert on_disk["amplification"]["available"] and on_disk["memorisation"]["available"]
    # the C2ST of the feature tables, with the generated sample's weights and the seed
    original, generated, _, weights = samples
    direct = c2st(feature_table(original, summary["objects"])[1],
                  feature_table(generated, summary["objects"])[1], generated_weights=weights,
                  seed=summary["seed"], n_bootstrap=20, n_threads=1)  # fmt: skip
    assert on_disk["c2st"]["test"] == direct
    assert on_disk["mass"]["original"]["converged"]


def test_root_file_and_markdown(report):
    out, _ = report
    with uproot.open(out / "histograms.root") as f:
        h = f["original/m"]
        assert h.values().sum() > 0
        assert f["generated/dalitz"].values().ndim == 2
    md = (out / "report.md").read_text()
    assert "| C2ST AUC |" in md and "![Parent invariant mass](mass.png)" in md


def test_amplification_and_memorisation_say_not_available(tmp_path, toy, rng, objects):
    p4 = toy(600, rng)
    summary = validate(
        p4,
        toy(600, rng),
        objects,
        tmp_path,
        formats=("png",),
        n_bootstrap=5,
        n_threads=1,
        feature_plots=False,
        progress=False,
    )
    assert summary["amplification"]["available"] is False
    assert summary["memorisation"]["available"] is False
    assert "Not available" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "loss.png").exists()


def test_mass_plot_and_regions_cover_a_tail_beyond_the_fit_window(tmp_path, toy, rng, objects):
    """A real high tail far outside the fit window (median +- 6 half-widths) is drawn in
    the mass histogram and counted in the regions; the generated sample lacks it."""
    original, generated = toy(600, rng), toy(600, rng)
    original[:30] *= 1.2  # scales the parent mass by 1.2: 5% of the original far above the peak
    summary = validate(original, generated, objects, tmp_path, formats=("png",),
                       resonances={"D+": (1.86, 1.88)}, n_bootstrap=5, n_threads=1,
                       feature_plots=False, progress=False)  # fmt: skip
    m = parent_mass(original)
    assert m.max() > summary["mass"]["original"]["window_hi"] + 0.2
    with uproot.open(tmp_path / "histograms.root") as f:
        h = f["original/mass"]
        edges = h.axis().edges()
        assert edges[0] <= m.min() and edges[-1] > m.max()
        assert h.values().sum() == len(m)  # nothing in the under- or overflow
    regions = {r["name"]: r for r in summary["mass_regions"]["regions"]}
    tail = regions["high tail"]
    mg = parent_mass(generated)
    assert tail["real_fraction"] == pytest.approx(np.mean(m >= tail["lo_gev"]), abs=1e-12)
    assert tail["generated_fraction"] == pytest.approx(np.mean(mg >= tail["lo_gev"]), abs=1e-12)
    # the 5% scaled up, and the few beyond 3 half-widths of a Gaussian peak
    assert tail["real_fraction"] >= 30 / 600
    assert tail["real_fraction"] - tail["generated_fraction"] > 4 * tail["real_err"]
    d = regions["D+"]
    assert d["real_fraction"] == pytest.approx(np.mean((m >= 1.86) & (m < 1.88)), abs=1e-12)
    md = (tmp_path / "report.md").read_text()
    assert "## Mass regions" in md and "![Parent invariant mass, log scale](mass_log.png)" in md
    row = (f"| D+ | 1.8600 – 1.8800 | {d['real_fraction']:.4f} ± {d['real_err']:.4f} "
           f"| {d['generated_fraction']:.4f} ± {d['generated_err']:.4f} "
           f"| {d['ratio']:.3f} ± {d['ratio_err']:.3f} |")  # fmt: skip
    assert row in md
    assert f"| high tail | ≥ {tail['lo_gev']:.4f} | {tail['real_fraction']:.4f} ± " in md
    assert (tmp_path / "mass_log.png").is_file()
