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
from needs import need_module

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
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


def test_resonance_fractions_count_the_mass_window():
    common = _load("_common")
    from vaeaug.datasets import dimuon_continuum
    from vaeaug.validation.features import parent_mass

    train, ref = dimuon_continuum(4000, seed=1), dimuon_continuum(4000, seed=2)
    m0 = common.resonance_mass("J/psi(1S)")
    assert abs(m0 - 3.0969) < 1e-3
    in_window = np.abs(parent_mass(ref) - m0) < 0.03 * m0
    assert 0.05 < in_window.mean() < 0.9  # the built-in sample has a J/psi-like peak
    gen = np.concatenate([ref[~in_window], ref[~in_window][: in_window.sum() // 2]])
    out = common.resonance_fractions(gen, train, ref, ["J/psi(1S)"])["J/psi(1S)"]
    assert out["frac_ref"] == in_window.mean()
    assert out["frac_gen"] == 0.0 and out["ratio_gen"] == 0.0
    assert abs(out["ratio_train"] - 1.0) < 0.15
    # pairs at rest at 2% and 4% from the peak: only the first are within the 3% window
    mu = 0.1056583755
    mass = m0 * np.array([1.02, 0.98, 1.04, 0.96])
    p = np.sqrt((mass / 2) ** 2 - mu**2)
    pairs = np.zeros((4, 2, 4))
    pairs[:, 0, 2], pairs[:, 1, 2] = p, -p
    pairs[..., 3] = (mass / 2)[:, None]
    at_rest = common.resonance_fractions(pairs, pairs, pairs, ["J/psi(1S)"])["J/psi(1S)"]
    assert at_rest["frac_gen"] == 0.5 and at_rest["ratio_gen"] == 1.0
    # a window given by its bounds: below 1.03 m0 holds three of the four pairs
    below = common.resonance_fractions(pairs[:1], pairs, pairs, [("low", 0.0, 1.03 * m0)])["low"]
    assert below["frac_ref"] == 0.75 and below["frac_gen"] == 1.0
    assert below["ratio_train"] == 1.0 and below["frac_ref_err"] == np.sqrt(0.75 * 0.25 / 4)
    with pytest.raises(SystemExit, match="not one particle name"):
        common.resonance_mass("Jpsi")


def test_infer_masses_allows_float32_rounding_only():
    common = _load("_common")
    from vaeaug.datasets import dimuon_continuum
    from vaeaug.errors import InputError

    p4 = dimuon_continuum(2000, seed=3)
    stored = p4.astype(np.float32).astype(np.float64)  # as read from a float32 branch
    np.testing.assert_allclose(common.infer_masses(stored, ["mu1", "mu2"]), 0.1056584, rtol=1e-4)
    smeared = p4.copy()
    smeared[..., 3] *= 1 + 0.01 * np.random.default_rng(0).random((len(p4), 2))
    with pytest.raises(InputError, match="mu1"):
        common.infer_masses(smeared.astype(np.float32).astype(np.float64), ["mu1", "mu2"])


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


@pytest.mark.outside_support
@pytest.mark.testdata
def test_fidelity_quick_end_to_end(testdata, tmp_path, capsys, monkeypatch):
    need_module("zuko")  # the nsf-decay peer; CI installs the bench extra
    import vaeaug

    fidelity = _load("fidelity")
    # the support reports of the samples drawn, to compare with what the record says
    reports, sample = [], vaeaug.Model.sample

    def recording_sample(self, *args, **kwargs):
        out = sample(self, *args, **kwargs)
        reports.append(out.support_report)
        return out

    monkeypatch.setattr(vaeaug.Model, "sample", recording_sample)
    out = tmp_path / "fidelity" / "latest.json"
    peers = ["gaussian", "nsf-decay", "vaeaug"]
    argv = ["--quick", "--no-progress", "--data", str(testdata), "--results", str(tmp_path)]
    code = fidelity.main([*argv, "--peers", *peers])
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
    # the vaeaug peer's sample is the last one drawn: its guard's counts, as fractions
    report = reports[-1]
    assert report.n == 2000 and report.outside > 0  # a quick model leaks: not vacuous
    assert rows["vaeaug"]["support_redrawn"] == report.outside / report.n
    assert rows["vaeaug"]["support_unresolved"] == report.unresolved
    md = capsys.readouterr().out  # the table is printed; the record is JSON
    assert md.count("\n| dplus_kpipi | 500 | 1 |") == len(peers)
    assert res["provenance"]["command"].startswith("python bench/fidelity.py --quick")
    assert len((out.parent / "history.jsonl").read_text().splitlines()) == 1


def _write_pairs(path: Path, p4: np.ndarray) -> None:
    import uproot

    branches = {
        f"{o}_{c}": p4[:, i, j].astype(np.float32)
        for i, o in enumerate(["mu1", "mu2"])
        for j, c in enumerate(["px", "py", "pz", "E"])
    }
    with uproot.recreate(path) as f:
        f.mktree("pairs", {k: np.float32 for k in branches}).extend(branches)


def _outside_fractions(p4, training, threshold):
    """(outside acceptance, outside support, at threshold) of ``p4`` (N, 2, 4), written out:
    bounds of each daughter's pT and eta and of the pair's pT, eta and mass from
    ``training``, widened by the mean spacing of the 10 outermost values."""

    def columns(q):
        pair = q.sum(axis=1)
        pt, pair_pt = np.hypot(q[..., 0], q[..., 1]), np.hypot(pair[:, 0], pair[:, 1])
        mass = np.sqrt(np.maximum(pair[:, 3] ** 2 - (pair[:, :3] ** 2).sum(-1), 0))
        return np.column_stack([pt, np.arcsinh(q[..., 2] / pt), pair_pt,
                                np.arcsinh(pair[:, 2] / pair_pt), mass])  # fmt: skip

    t = np.sort(columns(training), axis=0)
    lo, hi = t[0] - (t[10] - t[0]) / 10, t[-1] + (t[-1] - t[-11]) / 10
    values = columns(p4)
    out = (values < lo) | (values > hi)
    return (
        out[:, :4].any(1).mean(),
        out.any(1).mean(),
        np.mean(np.abs(values[:, 6] - threshold) < 1e-4),
    )


@pytest.mark.outside_support
def test_fidelity_quick_generic_two_body_file(tmp_path, capsys, monkeypatch):
    """A 2-body decay on a continuum (mu1 mu2, no D+ anywhere), several seeds, the muons
    ordered by pT, masses inferred; the rows and the tables carry the dataset and seed."""
    from vaeaug.datasets import dimuon_continuum
    from vaeaug.validation import c2st, feature_table

    fidelity = _load("fidelity")
    # the samples each row judges, to recompute its figures here
    judged, metrics = [], fidelity.fidelity_metrics

    def recording_metrics(generated, training, reference, same, **kwargs):
        judged.append((generated, training, reference, same, kwargs))
        return metrics(generated, training, reference, same, **kwargs)

    monkeypatch.setattr(fidelity, "fidelity_metrics", recording_metrics)
    # mu1 has the higher pT in both files (the identical group's convention)
    _write_pairs(tmp_path / "dimu_train.root", dimuon_continuum(1500, seed=11))
    _write_pairs(tmp_path / "dimu_ref.root", dimuon_continuum(2000, seed=12))
    out = tmp_path / "fidelity" / "latest.json"
    peers = ["gaussian", "nsf-decay", "vaeaug"]
    code = fidelity.main([
        "--quick", "--no-progress", "--data", str(tmp_path / "dimu_train.root"),
        "--reference", str(tmp_path / "dimu_ref.root"), "--tree", "pairs",
        "--objects", "mu1", "mu2", "--identical", "mu1,mu2", "--seeds", "3", "4",
        "--peers", *peers, "--resonances", "J/psi(1S)", "--results", str(tmp_path),
    ])  # fmt: skip
    assert code == 0
    res = json.loads(out.read_text())
    assert all(set(r["resonances"]) == {"J/psi(1S)"} for r in res["rows"])
    ds = res["dataset"]
    assert ds["name"] == "dimu" and ds["objects"] == ["mu1", "mu2"] and ds["tree"] == "pairs"
    np.testing.assert_allclose(ds["masses"], [0.10566] * 2, rtol=1e-3)
    assert [(r["seed"], r["peer"]) for r in res["rows"]] == [(s, p) for s in (3, 4) for p in peers]
    assert len(judged) == len(res["rows"])
    for r, (generated, training, reference, same, kwargs) in zip(res["rows"], judged):
        assert r["dataset"] == "dimu" and r["n_train"] == 500 and r["n_nonfinite"] == 0
        # the C2ST of the reference against the generated sample, and against a real one
        table = {k: feature_table(q, ["mu1", "mu2"])[1]
                 for k, q in (("ref", reference), ("gen", generated), ("same", same))}  # fmt: skip
        options = {"seed": r["seed"], "n_bootstrap": 10, "max_events": 40_000, "n_threads": 1}
        assert r["c2st_auc"] == c2st(table["ref"], table["gen"], **options)["auc"]
        assert r["c2st_floor"] == c2st(table["ref"], table["same"], **options)["auc"]
        assert abs(r["c2st_floor"] - 0.5) < 0.06
        threshold = sum(kwargs["masses"])
        for key, p4 in (("gen", generated), ("real", reference)):
            expected = _outside_fractions(p4, training, threshold)
            got = [
                r[f"{k}_{key}"] for k in ("outside_acceptance", "outside_support", "at_threshold")
            ]
            assert got == pytest.approx(expected, abs=1e-12), key
        assert r["at_threshold_real"] == 0.0 and r["outside_acceptance_real"] < 0.05
        assert np.isfinite(r["peak_mev"]) and np.isfinite(r["width_ratio"])
    gauss = [r for r in res["rows"] if r["peer"] == "gaussian"]
    assert all(r["outside_acceptance_gen"] > 0.05 for r in gauss)  # muons below pT 3 GeV
    assert {(s["peer"], s["n_seeds"]) for s in res["seed_summary"]} == {(p, 2) for p in peers}
    md = capsys.readouterr().out  # the table is printed; the record is JSON
    # one row per peer in the main table and in the resonance table
    assert md.count("\n| dimu | 500 | 3 |") == 2 * len(peers)
    assert md.count("\n| dimu | 500 | 4 |") == 2 * len(peers)
    assert "C2ST AUC over seeds" in md and "Narrow resonances" in md


def test_fidelity_dataset_options_are_checked(tmp_path):
    fidelity = _load("fidelity")
    from vaeaug.datasets import dimuon_continuum

    train = tmp_path / "t.root"
    _write_pairs(train, dimuon_continuum(100, seed=1))
    base = ["--quick", "--no-progress", "--results", str(tmp_path), "--data", str(train)]
    with pytest.raises(SystemExit, match="--reference"):
        fidelity.main(base)
    with pytest.raises(SystemExit, match="not among the objects"):
        fidelity.main([*base, "--reference", str(train), "--identical", "mu1,K1"])
    with pytest.raises(SystemExit, match="--masses"):
        fidelity.main([*base, "--reference", str(train), "--masses", "0.1"])


def test_classifier_evaluate_reads_the_working_points():
    clf = _load("classifier")
    bkg = np.linspace(0.0, 1.0, 100_001)
    # signal at 0.995: above the 1% background threshold (0.99), below the 0.1% one (0.999)
    res = clf.evaluate(np.full(1000, 0.995), bkg)
    assert res["eff_1pct"] == 1.0 and res["eff_0p1pct"] == 0.0
    assert res["auc"] == pytest.approx(0.995, abs=1e-4)
    grid = clf.ROC_GRID
    assert (res["roc_tpr"][grid > 0.0051] == 1.0).all() and (
        res["roc_tpr"][grid < 0.0049] == 0
    ).all()


def _records(gains: dict[str, list[float]]) -> list[dict]:
    """Synthetic records: eff_1pct = 0.3 + the method's gain in each subset."""
    base = {"n_sig": 250, "classifier": "gbdt", "features": "raw", "auc": 0.9,
            "eff_0p1pct": 0.1, "roc_tpr": np.zeros(3)}  # fmt: skip
    return [{**base, "method": m, "rep": rep, "eff_1pct": 0.3 + g}
            for m, gs in gains.items() for rep, g in enumerate(gs)]  # fmt: skip


def test_classifier_summary_pairs_gains_and_measures_the_gap_to_the_oracle():
    clf = _load("classifier")
    oracle = [0.10, 0.12, 0.08, 0.10]
    records = _records({"real": [0.0] * 4, "both x5": [g / 2 for g in oracle],
                        "oracle x5": oracle})  # fmt: skip
    rows = {r["method"]: r for r in clf.summarise(records)}
    assert rows["real"]["eff_1pct_gain"] == 0.0
    assert rows["oracle x5"]["eff_1pct_gain"] == pytest.approx(0.1)
    assert rows["both x5"]["eff_1pct_gap_closed"] == pytest.approx(0.5)
    assert rows["both x5"]["eff_1pct_gap_closed_err"] == pytest.approx(0.0, abs=1e-9)
    assert "eff_1pct_gap_closed" not in rows["oracle x5"]
    # pieces merge; a later run's record replaces an earlier one with the same key
    first = {"factors": [5], "records": records}
    redo = {"factors": [20], "records": _records({"both x5": [0.2]})}
    merged = clf.merge([first, redo])
    assert len(merged["records"]) == len(records) and merged["factors"] == [5, 20]
    both = [r for r in merged["records"] if r["method"] == "both x5"]
    assert sorted(r["eff_1pct"] for r in both)[-1] == pytest.approx(0.5)


@pytest.mark.outside_support
@pytest.mark.testdata
def test_classifier_quick_end_to_end(testdata, tmp_path, capsys):
    clf = _load("classifier")
    out = tmp_path / "classifier" / "latest.json"
    figures = tmp_path / "figures"
    argv = ["--quick", "--no-progress", "--data", str(testdata), "--results", str(tmp_path),
            "--figures", str(figures)]  # fmt: skip
    assert clf.main(argv) == 0
    res = json.loads(out.read_text())
    sets = ["real", "signal x5", "both x5", "smeared x5", "oracle x5"]
    assert list(dict.fromkeys(r["method"] for r in res["summary"])) == sets
    assert len(res["records"]) == 2 * len(sets) * 2 * 2  # subsets x sets x classifiers x features
    n_train = {r["method"]: r["n_train"] for r in res["records"]}
    assert n_train["both x5"] == {"signal": {"real": 100, "generated": 500},
                                  "background": {"real": 300, "generated": 1500}}  # fmt: skip
    assert n_train["signal x5"]["background"] == {"real": 300, "generated": 0}
    assert n_train["oracle x5"] == n_train["smeared x5"] == n_train["both x5"]
    for r in res["summary"]:
        assert r["n_reps"] == 2
        # each summary figure is the mean over the two subsets' records
        mine = [x for x in res["records"] if all(x[k] == r[k] for k in
                ("method", "classifier", "features", "n_sig"))]  # fmt: skip
        assert len(mine) == 2
        for metric in ("auc", "eff_1pct", "eff_0p1pct"):
            assert r[metric] == pytest.approx(np.mean([x[metric] for x in mine]), rel=1e-12)
        # a tighter background working point keeps fewer signal candidates
        assert all(x["eff_0p1pct"] <= x["eff_1pct"] for x in mine)
        if r["method"] == "real":
            assert r["eff_1pct_gain"] == 0.0
            # far better than guessing: the narrow signal mass peak is easy for a tree on
            # the physics features (the quick MLP stops after 5 epochs: only beat chance)
            good = r["classifier"] == "gbdt" and r["features"] == "physics"
            assert r["auc"] > (0.9 if good else 0.6)
        if r["method"] in ("signal x5", "both x5", "smeared x5"):
            assert "eff_1pct_gap_closed" in r and "eff_0p1pct_gap_closed" in r
    assert sorted(p.name for p in figures.iterdir()) == [
        "classifier_factor.png",
        "classifier_gain.png",
        "classifier_roc.png",
    ]
    md = capsys.readouterr().out  # the tables are printed; the record is JSON
    assert md.count("| 100 | 2 | both x5 |") == 4 and "gap closed" in md
    assert not (out.parent / "partial.json").exists()


def test_real_pairs_splits_the_hzz_muon_pairs_by_event(testdata, tmp_path):
    import uproot

    real_pairs = _load("real_pairs")
    p4, event = real_pairs.pairs(testdata / "uproot-HZZ.root", "Muon")
    assert p4.shape == (len(event), 2, 4)
    pt = np.hypot(p4[..., 0], p4[..., 1])
    assert (pt[:, 0] >= pt[:, 1]).all()  # the leading muon first
    assert real_pairs.main(["--data", str(testdata), "--out-dir", str(tmp_path)]) == 0
    train = uproot.open(tmp_path / "hzz_mumu_train.root")["signal"].arrays(library="np")
    ref = uproot.open(tmp_path / "hzz_mumu_reference.root")["signal"].arrays(library="np")
    assert (train["event"] % 2 == 0).all() and (ref["event"] % 2 == 1).all()
    assert len(train["l1_px"]) + len(ref["l1_px"]) == len(event)
    np.testing.assert_allclose(np.sort(train["l2_E"]), np.sort(p4[event % 2 == 0, 1, 3]),
                               rtol=1e-6)  # fmt: skip


def test_latent_prior_judges_three_latent_sources(tmp_path, capsys):
    latent_prior = _load("latent_prior")
    out = tmp_path / "latent_prior" / "latest.json"
    assert latent_prior.main(["--datasets", "dimuon-builtin", "--size", "400", "--val", "400",
                              "--epochs", "2", "--results", str(tmp_path)]) == 0  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert [r["z_from"] for r in rows] == ["prior", "posterior", "refit"]
    assert all(np.isfinite([r["c2st_auc"], r["outside_gen"]]).all() for r in rows)
    assert rows[2]["epochs"] >= 1 and np.isfinite(rows[2]["best_nll"])
    assert capsys.readouterr().out.count("| dimuon-builtin |") == 3


def test_model_selection_summary_gives_the_rule_figures(tmp_path):
    ms = _load("model_selection")

    def row(dataset, seed, variant, auc):
        return {"dataset": dataset, "n_train": 10_000, "seed": seed, "variant": variant,
                "c2st_auc": auc, "c2st_err": 0.005, "outside_gen": 0.0, "outside_real": 0.001,
                "gen_outside_support": 0.1, "epochs": 10, "best_epoch": 5, "fit_s": 1.0}  # fmt: skip

    files = []
    for name, rows in {"a": [row("mumu", 1, "default", 0.63), row("mumu", 2, "default", 0.61),
                             row("mumu", 1, "x", 0.60), row("mumu", 2, "x", 0.66)],
                       "b": [row("dplus", 1, "default", 0.60), row("dplus", 1, "x", 0.57)]}.items():  # fmt: skip
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps({"rows": rows}))
    out = tmp_path / "summary" / "latest.json"
    summary = ["--summary", "summary", "--results", str(tmp_path)]
    assert ms.main(["--from-json", *map(str, files), *summary]) == 0
    x = json.loads(out.read_text())["variants"]["x"]
    assert x["rows"] == 3 and x["mean"] == pytest.approx((0.60 + 0.66 + 0.57) / 3)
    assert x["datasets"] == pytest.approx({"mumu": 0.63, "dplus": 0.57})
    # the mean over rows, and each dataset's mean over its seeds, against the default's
    assert x["vs_default"]["mean_difference"] == pytest.approx(0.61 - (0.63 + 0.61 + 0.60) / 3)
    assert x["vs_default"]["worst_dataset_difference"] == pytest.approx(0.63 - 0.62)
    # --variants keeps only the named variants' rows
    assert ms.main(["--from-json", *map(str, files), *summary,
                    "--variants", "default"]) == 0  # fmt: skip
    assert set(json.loads(out.read_text())["variants"]) == {"default"}
    # --rename: earlier rounds' rows of the previous default compared with the new one; a
    # dataset judged at two sizes counts once per size
    small = tmp_path / "c.json"
    small.write_text(json.dumps({"rows": [{**row("dplus", 1, "old", 0.70), "n_train": 1_000},
                                          {**row("dplus", 1, "new", 0.64), "n_train": 1_000}]}))  # fmt: skip
    assert ms.main(["--from-json", str(files[1]), str(small), *summary,
                    "--rename", "x:new", "default:old"]) == 0  # fmt: skip
    new = json.loads(out.read_text())["variants"]["new"]
    assert new["datasets"] == pytest.approx({"dplus 10000": 0.57, "dplus 1000": 0.64})


def test_model_selection_sorted_score_uses_rows_sorted_by_construction():
    ms = _load("model_selection")
    base = {"dataset": "mumu", "n_train": 1_000, "seed": 1, "c2st_auc": 0.62}
    measured = {**base, "variant": "exchange=sort", "exchange": [[0, 1]], "c2st_auc_sorted": 0.58}
    symmetric = {**base, "variant": "default", "exchange": [[0, 1]]}  # generated sorted
    summary = ms.summarize([measured, symmetric], "c2st_auc_sorted")
    assert summary["exchange=sort"]["mean"] == pytest.approx(0.58)
    assert summary["default"]["mean"] == pytest.approx(0.62)
    assert summary["exchange=sort"]["vs_default"]["mean_difference"] == pytest.approx(-0.04)
    # a model that left the labels alone has no sorted figure unless it was measured
    with pytest.raises(ValueError, match="rerun it with --sorted-c2st"):
        ms.summarize([{**base, "variant": "exchange=off", "exchange": []}], "c2st_auc_sorted")


def test_sampling_cost_reports_every_model_and_both_splines(testdata, tmp_path, capsys):
    """bench/sampling_cost.py end to end, small: here the "v1" is this checkout's src/."""
    sc = _load("sampling_cost")
    src = BENCH.parent / "src"
    out = tmp_path / "sampling_cost" / "latest.json"
    assert sc.main(["--v1-src", str(src), "--n", "2000", "--repeats", "1", "--train-n", "1000",
                    "--data", str(testdata), "--results", str(tmp_path)]) == 0  # fmt: skip
    res = json.loads(out.read_text())
    expected = {"v1", "v2 (support off)", "v2 (support reject)", "v2, zuko spline (support off)",
                "v2, zuko inverse (support off)", "v2-gaussian (support off)",
                "v2-autoregressive (support off)"}  # fmt: skip
    assert set(res["best_rate"]) == expected and all(r > 0 for r in res["best_rate"].values())
    assert res["ratio_to_v1"]["v1"] == 1.0
    # the zuko-spline row is the v2 model itself, with only the spline class swapped
    assert res["parameters"]["v2, zuko spline"] == res["parameters"]["v2"]
    assert set(res["splines"]["v2"]) == {"RationalQuadraticSpline"}
    assert res["splines"]["v2, zuko spline"] == ["MonotonicRQSTransform"] * len(
        res["splines"]["v2"]
    )
    assert res["splines"]["v2-gaussian"] == ["RationalQuadraticSpline"] * 4  # its prior's layers
    assert set(res["train_seconds"]) == {"v2", "v2, zuko spline"}
    assert (
        res["sampling_speedup_of_vaeaug_spline"] > 0 and res["train_speedup_of_vaeaug_spline"] > 0
    )
    assert res["sampling_speedup_of_pass_by_pass_inverse"] == pytest.approx(
        res["best_rate"]["v2 (support off)"] / res["best_rate"]["v2, zuko inverse (support off)"]
    )


def test_model_selection_dataset_spec_takes_the_daughter_masses(testdata):
    ms = _load("model_selection")
    path = testdata / "dplus_kpipi_train.root"
    name, p4, objects, masses = ms.load_dataset(
        f"kpp={path}:signal:K1,pi1,pi2:0.4937,0.1396,0.1396", None
    )
    assert (name, objects, masses) == ("kpp", ["K1", "pi1", "pi2"], [0.4937, 0.1396, 0.1396])
    assert p4.shape[1:] == (3, 4)
    assert ms.load_dataset(f"kpp={path}:signal:K1,pi1,pi2", None)[3] is None  # inferred in fit


def test_model_selection_judge_counts_misordered_identical_daughters():
    """A generated candidate with the softer pion first is counted, and the sorted C2ST
    compares the samples as the judged benchmark does (both sorted)."""
    ms = _load("model_selection")
    from vaeaug.datasets import OBJECTS, dplus_kpipi

    real, gen = np.asarray(dplus_kpipi(2_000, seed=1)), np.asarray(dplus_kpipi(2_000, seed=2))
    swapped = gen.copy()
    rows = np.arange(0, 2_000, 4)
    swapped[rows, 1], swapped[rows, 2] = gen[rows, 2], gen[rows, 1]
    out = ms.judge(swapped, real, real, list(OBJECTS), seed=0, groups=[[1, 2]], sorted_c2st=True)
    assert out["misordered"] == 0.25
    # once sorted, the swap is gone: the same C2ST as the unswapped sample's
    plain = ms.judge(gen, real, real, list(OBJECTS), seed=0, groups=[[1, 2]], sorted_c2st=True)
    assert plain["misordered"] == 0.0
    assert out["c2st_auc_sorted"] == plain["c2st_auc_sorted"] == plain["c2st_auc"]
    assert out["c2st_auc"] > plain["c2st_auc"]  # unsorted, the softer-first quarter shows


def test_ensemble_bench_checks_on_training_rows_and_times_the_out_of_bag_check(
    testdata, tmp_path, capsys, monkeypatch
):
    """bench/ensemble.py end to end on training data (``--compare train-rest``): the band
    with the members' out-of-bag shared error never covers fewer bins than their spread
    alone, the forecast is judged against the holdout, the check's cost is recorded."""
    import vaeaug.api
    import vaeaug.ensemble

    monkeypatch.setenv("VAEAUG_TESTDATA", str(testdata))
    ens = _load("ensemble")
    # a shared error that two-epoch members cannot be relied on to show: set it
    check = vaeaug.ensemble.out_of_bag_check

    def with_shared(*args, **kwargs):
        return {**check(*args, **kwargs), "shared_variance": 0.01}

    monkeypatch.setattr(vaeaug.api, "out_of_bag_check", with_shared)
    monkeypatch.setattr(vaeaug.ensemble, "out_of_bag_check", with_shared)
    argv = ["--n", "300", "--members", "2", "--epochs", "2", "--generated", "3000",
            "--compare", "train-rest", "--results", str(tmp_path)]  # fmt: skip
    res = ens.main(argv)
    recorded = json.loads((tmp_path / "ensemble_coverage" / "latest.json").read_text())
    assert recorded["summary"] == res["summary"] and recorded["benchmark"] == "ensemble_coverage"
    s = res["summary"]
    assert res["settings"]["compare"] == "train-rest"
    assert s["shared_variance"] == res["out_of_bag"]["shared_variance"] == 0.01
    assert s["coverage"] >= s["coverage_spread_only"]
    for f in res["features"].values():
        assert f["coverage"] >= f["coverage_spread_only"]
        assert f["chi2_stat_model"] < f["chi2_stat_model_spread_only"]
    assert 0 < s["out_of_bag_cpu_seconds"] < s["train_cpu_seconds_ensemble"]
    assert s["forecast_over_holdout"] == pytest.approx(
        s["forecast_amplification"] / s["holdout_amplification"]
    )
    assert "coverage" in capsys.readouterr().out


def test_the_flow_peer_takes_the_posterior_step_from_each_source():
    """The spline-flow peer's partners (bench/posterior.py --generator nsf): width 0 gives the
    source back (the flow's exact base point), width 1 an unrelated draw, partners come in
    source order, and one outside the guard's test steps again from its source."""
    from vaeaug.datasets import OBJECTS, dplus_kpipi
    from vaeaug.training import TrainConfig

    fair = _load("fair")
    p4 = dplus_kpipi(600, seed=3)
    peer = fair.FlowPeer(OBJECTS, [0.49368, 0.13957, 0.13957],
                         fair.FlowConfig(transforms=1, hidden=8))  # fmt: skip
    peer.fit(p4, seed=1, train=TrainConfig(epochs=2))
    src = p4[:200]
    everywhere = lambda q: np.ones(len(q), dtype=bool)  # noqa: E731
    same = peer.partners(src, 2, seed=4, width=0.0, inside=everywhere)
    np.testing.assert_allclose(same, np.repeat(src, 2, axis=0), rtol=1e-3, atol=1e-3)
    pt = lambda q: np.hypot(q[:, 0, 0], q[:, 0, 1])  # noqa: E731
    far = peer.partners(src, 2, seed=4, width=1.0, inside=everywhere)
    assert abs(np.corrcoef(np.repeat(pt(src), 2), pt(far))[0, 1]) < 0.2
    near = peer.partners(src, 2, seed=4, width=0.3, inside=everywhere)
    assert np.corrcoef(np.repeat(pt(src), 2), pt(near))[0, 1] > 0.6
    # the guard refuses partners with a kaon pT above the sources' median: they step again
    # from their source, so the partners of sources below the cut end up below it
    cut = np.median(pt(src))
    guarded = peer.partners(src, 2, seed=4, width=0.3, inside=lambda q: pt(q) < cut)
    below = np.repeat(pt(src) < cut, 2)
    assert (pt(guarded[below]) < cut).all() and not (pt(near[below]) < cut).all()
    low = np.repeat(pt(src) < 0.5 * cut, 2)  # sources far inside: the first step is kept
    np.testing.assert_array_equal(guarded[low & (pt(near) < cut)], near[low & (pt(near) < cut)])
