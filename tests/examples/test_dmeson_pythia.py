"""The Pythia D+ -> K- pi+ pi+ example writes the benchmark's trees and branches."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import uproot
from needs import need_file, need_module, shared_data_folder

need_module("pythia8mc")

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "dmeson_pythia.py"
KAON_MASS, PION_MASS = 0.493677, 0.13957039
EXPECTED = {
    **{f"{p}_{c}": "float32" for p in ("K1", "pi1", "pi2") for c in ("px", "py", "pz", "E")},
    "charge": "int32",
    "parent_pt_true": "float32",
    "event": "int64",
}
N_EVENTS = 300


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("dmeson_pythia", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(example, tmp_path_factory):
    out = tmp_path_factory.mktemp("pythia") / "dplus.root"
    argv = ["--events", str(N_EVENTS), "--seed", "3", "-o", str(out), "--no-progress"]
    assert example.main(argv) == 0
    with uproot.open(out) as f:
        trees = {name: f[name].arrays(library="np") for name in ("signal", "background")}
        types = {
            name: {
                b.name: b.interpretation.numpy_dtype.newbyteorder("=").name
                for b in f[name].branches
            }
            for name in ("signal", "background")
        }
    return out, trees, types


def _mass(e, px, py, pz):
    e, px, py, pz = (np.asarray(x, dtype=np.float64) for x in (e, px, py, pz))
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


@pytest.mark.parametrize("tree", ["signal", "background"])
def test_branches_and_dtypes(generated, tree):
    _, _, types = generated
    assert types[tree] == EXPECTED
    assert list(types[tree]) == list(EXPECTED)


@pytest.mark.parametrize("tree", ["signal", "background"])
def test_candidates_are_physical(generated, tree):
    _, trees, _ = generated
    a = trees[tree]
    assert len(a["event"]) > 0, f"no {tree} candidates in {N_EVENTS} events"
    d = {c: a[f"K1_{c}"] + a[f"pi1_{c}"] + a[f"pi2_{c}"] for c in ("E", "px", "py", "pz")}
    m = _mass(d["E"], d["px"], d["py"], d["pz"])
    assert np.all((m > 1.79 - 1e-4) & (m < 1.95 + 1e-4))
    for name, mass in (("K1", KAON_MASS), ("pi1", PION_MASS), ("pi2", PION_MASS)):
        m_i = _mass(*(a[f"{name}_{c}"] for c in ("E", "px", "py", "pz")))
        np.testing.assert_allclose(m_i, mass, atol=2e-3)
    pt1 = np.hypot(a["pi1_px"], a["pi1_py"])
    pt2 = np.hypot(a["pi2_px"], a["pi2_py"])
    assert np.all(pt1 >= pt2)
    for name in ("K1", "pi1", "pi2"):
        # The acceptance cut is on generated pT; smearing moves it by ~0.5%.
        assert np.all(np.hypot(a[f"{name}_px"], a[f"{name}_py"]) > 0.25 * 0.97)
    assert set(np.unique(a["charge"])) <= {-1, 1}
    assert np.all((a["event"] >= 0) & (a["event"] < N_EVENTS))
    assert np.all(np.diff(a["event"]) >= 0)


def test_signal_is_a_narrow_peak(generated):
    _, trees, _ = generated
    s = trees["signal"]
    d = {c: s[f"K1_{c}"] + s[f"pi1_{c}"] + s[f"pi2_{c}"] for c in ("E", "px", "py", "pz")}
    m = _mass(d["E"], d["px"], d["py"], d["pz"])
    assert abs(np.median(m) - 1.8696) < 0.005
    # the true parent pT is the D+'s: the daughters' summed pT, up to the 0.5% track smearing
    ratio = np.hypot(d["px"], d["py"]) / s["parent_pt_true"]
    assert np.median(np.abs(ratio - 1)) < 0.005 and np.all(np.abs(ratio - 1) < 0.15)


def test_background_parent_pt_is_minus_one(generated):
    _, trees, _ = generated
    assert np.all(trees["background"]["parent_pt_true"] == -1)


def test_background_caps(example, tmp_path):
    out = tmp_path / "capped.root"
    argv = ["--events", "100", "--seed", "4", "-o", str(out), "--no-progress"]
    assert example.main([*argv, "--max-bkg-per-event", "2", "--max-bkg", "25"]) == 0
    with uproot.open(out) as f:
        event = f["background"]["event"].array(library="np")
    assert len(event) <= 25
    assert np.bincount(event).max() <= 2


def test_refuses_to_overwrite(example, generated, capsys):
    out, _, _ = generated
    before = out.stat().st_mtime_ns
    with pytest.raises(SystemExit) as err:
        example.main(["--events", "10", "-o", str(out), "--no-progress"])
    assert err.value.code == 2
    assert "--force" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == before


def test_force_overwrites_and_leaves_no_temp_file(example, tmp_path):
    out = tmp_path / "out.root"
    out.write_bytes(b"not a ROOT file")
    argv = ["--events", "20", "--seed", "5", "-o", str(out), "--no-progress", "--force"]
    assert example.main(argv) == 0
    with uproot.open(out) as f:
        assert {k.split(";")[0] for k in f} == {"signal", "background"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.root"]


@pytest.mark.testdata
def test_matches_benchmark_file_layout(generated):
    """Branch names, order and types are those of the shared benchmark file."""
    path = need_file(shared_data_folder() / "dplus_kpipi_train.root")
    _, _, types = generated
    with uproot.open(path) as f:
        for tree in ("signal", "background"):
            ref = {
                b.name: b.interpretation.numpy_dtype.newbyteorder("=").name
                for b in f[tree].branches
            }
            assert list(types[tree].items()) == list(ref.items())
