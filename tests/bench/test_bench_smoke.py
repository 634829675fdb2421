"""CI-sized runs of the benchmarks (``--quick``) through their command-line entry points.

The numbers of a quick run mean nothing (tiny models, a few epochs); these tests check
that both scripts run end to end on the shared data, write JSON and Markdown that agree,
and that the metrics respond to the thing they measure (a Gaussian on raw components is
told apart from real data; the real-vs-real floor is not).
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
    need_module("zuko")  # the nsf-decay peer; CI installs the bench extra
    fidelity = _load("fidelity")
    out = tmp_path / "fid.json"
    peers = ["gaussian", "nsf-decay", "vaeaug"]
    code = fidelity.main(
        ["--quick", "--no-progress", "--data", str(testdata), "--out", str(out), "--peers", *peers]
    )
    assert code == 0
    res = json.loads(out.read_text())
    rows = {r["peer"]: r for r in res["rows"]}
    assert list(rows) == peers
    assert all(r["n_train"] == 500 and r["n_generated"] <= 2000 for r in rows.values())
    # real vs real is indistinguishable, a Gaussian on raw momenta is not
    assert abs(rows["gaussian"]["c2st_floor"] - 0.5) < 0.05
    assert rows["gaussian"]["c2st_auc"] > 0.9
    # the decay representation puts the mass peak in the right place even for tiny models
    assert abs(rows["vaeaug"]["peak_shift_mev"]) < abs(rows["gaussian"]["peak_shift_mev"])
    md = out.with_suffix(".md").read_text()
    assert md.count("\n| 500 |") == len(peers)
    assert md in capsys.readouterr().out


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
