"""CI-sized runs of the benchmarks (``--quick``) through their command-line entry points.

The numbers of a quick run mean nothing (tiny models, a few epochs); these tests check
that both scripts run end to end on the shared data, write JSON and Markdown that agree,
and that the metrics respond to the thing they measure (a Gaussian on raw components is
told apart from real data; the real-vs-real floor is not). The fidelity benchmark also
runs on a small synthetic dimuon pair of ROOT files that the test writes: the generic
path (any objects, any k) end to end.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pt_order_pions_orders_and_keeps_the_candidates():
    common = _load("_common")
    rng = np.random.default_rng(4)
    p4 = rng.normal(size=(500, 3, 4))
    out = common.pt_order_pions(p4)
    pt = np.hypot(out[..., 0], out[..., 1])
    assert (pt[:, 1] >= pt[:, 2]).all()
    np.testing.assert_array_equal(out[:, 0], p4[:, 0])
    # the same two pions per candidate, possibly swapped
    same = np.isclose(out[:, 1], p4[:, 1]).all(-1) | np.isclose(out[:, 1], p4[:, 2]).all(-1)
    assert same.all()
    assert 100 < (~np.isclose(out[:, 1], p4[:, 1]).all(-1)).sum() < 400


def test_canonical_order_sorts_each_group_by_decreasing_pt():
    common = _load("_common")
    rng = np.random.default_rng(5)
    p4 = rng.normal(size=(400, 5, 4))
    out = common.canonical_order(p4, [(1, 2, 3)])
    pt = np.hypot(out[..., 0], out[..., 1])
    assert (np.diff(pt[:, 1:4], axis=1) <= 0).all()
    np.testing.assert_array_equal(out[:, [0, 4]], p4[:, [0, 4]])  # outside the group: kept
    # a permutation of the same three objects in each candidate
    np.testing.assert_allclose(np.sort(out[:, 1:4, 0], axis=1), np.sort(p4[:, 1:4, 0], axis=1))
    np.testing.assert_array_equal(common.canonical_order(p4, [(1, 2)]), common.pt_order_pions(p4))
    np.testing.assert_array_equal(common.canonical_order(p4, []), p4)


def test_parse_identical_checks_the_groups():
    common = _load("_common")
    objects = ["K", "pi1", "pi2", "pi3"]
    assert common.parse_identical(["pi1,pi2,pi3"], objects) == [("pi1", "pi2", "pi3")]
    for bad in (["pi1"], ["pi1,pi9"], ["pi1,pi2", "pi2,pi3"]):
        with pytest.raises(SystemExit):
            common.parse_identical(bad, objects)


def test_support_metrics_count_acceptance_and_threshold():
    common = _load("_common")
    from vaeaug.datasets import dimuon_continuum

    mu = 0.1056583755
    train, ref = dimuon_continuum(2000, seed=1), dimuon_continuum(2000, seed=2)
    gen = ref.copy()
    gen[:100, 1, :2] *= 0.01  # 5%: mu2 far below the pT > 3 GeV acceptance
    # 3%: both muons at rest, so the pair sits at the threshold 2 m_mu
    gen[100:160, :, :3] = 0.0
    gen[100:160, :, 3] = mu
    out = common.support_metrics(gen, train, ref, ["mu1", "mu2"], [mu, mu])
    assert out["outside_acceptance_real"] < 0.01 and out["at_threshold_real"] == 0.0
    assert abs(out["outside_acceptance_gen"] - 0.08) < 0.01
    assert abs(out["at_threshold_gen"] - 0.03) < 1e-9
    assert out["outside_support_gen"] >= out["outside_acceptance_gen"]
    assert np.isnan(
        common.support_metrics(gen, train, ref, ["mu1", "mu2"], None)["at_threshold_gen"]
    )


def test_smear_keeps_masses_and_widens_momenta():
    clf = _load("classifier")
    from vaeaug.datasets import dplus_kpipi

    p4 = dplus_kpipi(300, seed=2)
    out = clf.smear(p4, 4, np.random.default_rng(0))
    assert out.shape == (1200, 3, 4)
    m = np.sqrt(np.maximum(out[..., 3] ** 2 - (out[..., :3] ** 2).sum(-1), 0))
    np.testing.assert_allclose(m[:, 0], clf.KAON_MASS, rtol=1e-6)
    rel = np.linalg.norm(out[:, 0, :3], axis=-1) / np.linalg.norm(
        np.tile(p4, (4, 1, 1))[:, 0, :3], axis=-1
    )
    assert 0.003 < np.std(rel - 1) < 0.007


@pytest.mark.testdata
def test_fidelity_quick_end_to_end(testdata, tmp_path, capsys):
    fidelity = _load("fidelity")
    out = tmp_path / "fid.json"
    peers = ["gaussian", "nsf-decay", "vaeaug"]
    code = fidelity.main(
        ["--quick", "--no-progress", "--data", str(testdata), "--out", str(out), "--peers", *peers]
    )
    assert code == 0
    res = json.loads(out.read_text())
    assert res["dataset"]["name"] == "dplus_kpipi" and res["seeds"] == [1]
    assert res["dataset"]["objects"] == ["K1", "pi1", "pi2"]
    assert res["dataset"]["identical"] == [["pi1", "pi2"]]
    rows = {r["peer"]: r for r in res["rows"]}
    assert list(rows) == peers
    assert all(r["n_train"] == 500 and r["n_generated"] <= 2000 for r in rows.values())
    assert all(r["dataset"] == "dplus_kpipi" and r["seed"] == 1 for r in rows.values())
    # real vs real is indistinguishable, a Gaussian on raw momenta is not
    assert abs(rows["gaussian"]["c2st_floor"] - 0.5) < 0.05
    assert rows["gaussian"]["c2st_auc"] > 0.9
    # the decay representation puts the mass peak in the right place even for tiny models
    assert abs(rows["vaeaug"]["peak_shift_mev"]) < abs(rows["gaussian"]["peak_shift_mev"])
    # a Gaussian on raw momenta puts many pions below the pT > 0.25 GeV acceptance
    assert rows["gaussian"]["outside_acceptance_gen"] > 0.1
    assert all(r["outside_acceptance_real"] < 0.05 for r in rows.values())
    assert all(r["at_threshold_real"] == 0.0 for r in rows.values())
    md = out.with_suffix(".md").read_text()
    assert md.count("\n| dplus_kpipi | 500 | 1 |") == len(peers)
    assert md in capsys.readouterr().out


def _write_pairs(path: Path, p4: np.ndarray) -> None:
    import uproot

    branches = {
        f"{o}_{c}": p4[:, i, j].astype(np.float32)
        for i, o in enumerate(["mu1", "mu2"])
        for j, c in enumerate(["px", "py", "pz", "E"])
    }
    with uproot.recreate(path) as f:
        f.mktree("pairs", {k: np.float32 for k in branches}).extend(branches)


def test_fidelity_quick_generic_two_body_file(tmp_path, capsys):
    """A 2-body decay on a continuum (mu1 mu2, no D+ anywhere), several seeds, the muons
    ordered by pT, masses inferred; the rows and the tables carry the dataset and seed."""
    from vaeaug.datasets import dimuon_continuum

    fidelity = _load("fidelity")
    # mu1 has the higher pT in both files (the identical group's convention)
    _write_pairs(tmp_path / "dimu_train.root", dimuon_continuum(1500, seed=11))
    _write_pairs(tmp_path / "dimu_ref.root", dimuon_continuum(2000, seed=12))
    out = tmp_path / "fid_dimu.json"
    peers = ["gaussian", "nsf-decay", "vaeaug"]
    code = fidelity.main([
        "--quick", "--no-progress", "--data", str(tmp_path / "dimu_train.root"),
        "--reference", str(tmp_path / "dimu_ref.root"), "--tree", "pairs",
        "--objects", "mu1", "mu2", "--identical", "mu1,mu2", "--seeds", "3", "4",
        "--peers", *peers, "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    res = json.loads(out.read_text())
    ds = res["dataset"]
    assert ds["name"] == "dimu" and ds["objects"] == ["mu1", "mu2"] and ds["tree"] == "pairs"
    np.testing.assert_allclose(ds["masses"], [0.10566] * 2, rtol=1e-3)
    assert [(r["seed"], r["peer"]) for r in res["rows"]] == [(s, p) for s in (3, 4) for p in peers]
    for r in res["rows"]:
        assert r["dataset"] == "dimu" and r["n_train"] == 500 and r["n_nonfinite"] == 0
        assert 0.4 < r["c2st_auc"] <= 1.0 and abs(r["c2st_floor"] - 0.5) < 0.06
        for key in ("outside_acceptance", "outside_support", "at_threshold"):
            assert 0.0 <= r[f"{key}_gen"] <= 1.0 and 0.0 <= r[f"{key}_real"] <= 1.0
        assert r["at_threshold_real"] == 0.0 and r["outside_acceptance_real"] < 0.05
        assert np.isfinite(r["peak_mev"]) and np.isfinite(r["width_ratio"])
    gauss = [r for r in res["rows"] if r["peer"] == "gaussian"]
    assert all(r["outside_acceptance_gen"] > 0.05 for r in gauss)  # muons below pT 3 GeV
    assert {(s["peer"], s["n_seeds"]) for s in res["seed_summary"]} == {(p, 2) for p in peers}
    md = out.with_suffix(".md").read_text()
    assert md.count("\n| dimu | 500 | 3 |") == len(peers)
    assert md.count("\n| dimu | 500 | 4 |") == len(peers)
    assert "C2ST AUC over seeds" in md
    assert md in capsys.readouterr().out


def test_fidelity_dataset_options_are_checked(tmp_path):
    fidelity = _load("fidelity")
    from vaeaug.datasets import dimuon_continuum

    train = tmp_path / "t.root"
    _write_pairs(train, dimuon_continuum(100, seed=1))
    base = ["--quick", "--no-progress", "--out", str(tmp_path / "x.json"), "--data", str(train)]
    with pytest.raises(SystemExit, match="--reference"):
        fidelity.main(base)
    with pytest.raises(SystemExit, match="not among the objects"):
        fidelity.main([*base, "--reference", str(train), "--identical", "mu1,K1"])
    with pytest.raises(SystemExit, match="--masses"):
        fidelity.main([*base, "--reference", str(train), "--masses", "0.1"])


@pytest.mark.testdata
def test_classifier_quick_end_to_end(testdata, tmp_path):
    clf = _load("classifier")
    out = tmp_path / "clf.json"
    figures = tmp_path / "figures"
    code = clf.main(
        [
            "--quick",
            "--no-progress",
            "--data",
            str(testdata),
            "--out",
            str(out),
            "--figures",
            str(figures),
        ]
    )
    assert code == 0
    res = json.loads(out.read_text())
    methods = {r["method"] for r in res["summary"]}
    assert methods == {
        "real",
        "vaeaug x5",
        "vaeaug x20",
        "vaeaug x100",
        "smeared x20",
        "plain-vae x20",
    }
    assert len(res["records"]) == 2 * 6 * 2  # reps x training sets x classifiers
    for r in res["summary"]:
        assert r["n_reps"] == 2
        assert 0.0 < r["auc"] <= 1.0
        assert 0.0 <= r["eff"] <= 1.0
        if r["method"] == "real":
            assert r["eff_gain"] == 0.0
            # far better than guessing: the narrow signal mass peak is easy for a tree to
            # learn (the quick MLP stops after 5 epochs, so it is only asked to beat chance)
            assert r["auc"] > (0.8 if r["classifier"] == "gbdt" else 0.6)
    assert sorted(p.name for p in figures.iterdir()) == [
        "classifier_gain.png",
        "classifier_roc.png",
    ]
    assert "gain vs real" in out.with_suffix(".md").read_text()
