"""The Pythia decay table writes each decay's tree, branches and acceptance; seconds per run."""

import dataclasses
import importlib.util
import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import uproot
from needs import need_module

# the pythia extra: a skip in a user's clone, a failure in CI (particle and uproot are
# core dependencies)
need_module("pythia8mc")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example():
    return _load("decays_pythia")


def _generate(example, tmp_path_factory, decay, events, seed):
    out = tmp_path_factory.mktemp(decay) / f"{decay}.root"
    argv = ["--decay", decay, "--events", str(events), "--seed", str(seed), "-o", str(out)]
    assert example.main([*argv, "--no-progress"]) == 0
    with uproot.open(out) as f:
        assert [k.split(";")[0] for k in f] == ["signal"]
        tree = f["signal"]
        types = {b.name: b.interpretation.numpy_dtype.newbyteorder("=").name for b in tree.branches}
        return tree.title, types, tree.arrays(library="np")


@pytest.fixture(scope="module")
def d0(example, tmp_path_factory):
    return _generate(example, tmp_path_factory, "d0_k3pi", 400, 3)


@pytest.fixture(scope="module")
def dimuon(example, tmp_path_factory):
    return _generate(example, tmp_path_factory, "dimuon", 1500, 3)


def _mass(a, names):
    p = {
        c: sum(np.asarray(a[f"{n}_{c}"], dtype=np.float64) for n in names)
        for c in "E px py pz".split()
    }
    return np.sqrt(np.maximum(p["E"] ** 2 - p["px"] ** 2 - p["py"] ** 2 - p["pz"] ** 2, 0.0))


def _pt_eta(a, name):
    pt = np.hypot(a[f"{name}_px"], a[f"{name}_py"]).astype(np.float64)
    return pt, np.arcsinh(a[f"{name}_pz"] / pt)


@pytest.mark.parametrize("which", ["d0", "dimuon"])
def test_branches_dtypes_and_title(example, request, which):
    title, types, _ = request.getfixturevalue(which)
    decay = example.DECAYS["d0_k3pi" if which == "d0" else "dimuon"]
    assert list(types.items()) == [(k, v.name) for k, v in decay.branches.items()]
    assert all(types[f"{n}_{c}"] == "float32" for n in decay.names for c in ("px", "py", "pz", "E"))
    for name, mass in decay.masses.items():
        assert f"{name}={mass!r}" in title


@pytest.mark.parametrize("which", ["d0", "dimuon"])
def test_candidates_are_accepted_and_physical(example, request, which):
    _, _, a = request.getfixturevalue(which)
    decay = example.DECAYS["d0_k3pi" if which == "d0" else "dimuon"]
    acc = decay.acceptance
    assert len(a["event"]) > 5, "too few candidates to test anything"
    m = _mass(a, decay.names)
    assert np.all((m > decay.mass_window[0] - 1e-3) & (m < decay.mass_window[1] + 1e-3))
    for name in decay.names:
        m_i = _mass(a, [name])
        e = a[f"{name}_E"].astype(np.float64)
        # float32 storage: E^2 - p^2 loses ~1e-7 E^2 relative
        np.testing.assert_array_less(np.abs(m_i**2 - decay.masses[name] ** 2), 1e-6 * e**2 + 1e-8)
        pt, eta = _pt_eta(a, name)
        # the cut is on generated pT; a common scale factor leaves eta unchanged
        assert pt.min() > acc.pt_min * (1 - 5 * acc.resolution)
        assert np.abs(eta).max() < acc.eta_max + 1e-5
    for cols in decay.groups:
        pts = [_pt_eta(a, decay.names[j])[0] for j in cols]
        for hi, lo in itertools.pairwise(pts):
            assert np.all(hi >= lo)
    assert np.all(np.diff(a["event"]) >= 0)


def test_d0_flavour_and_peak(d0):
    _, _, a = d0
    assert set(np.unique(a["charge"])) <= {-1, 1}
    # the true parent pT is the D0's: the daughters' summed pT, up to the track smearing
    names = ["K", "pi1", "pi2", "pi3"]
    pt = np.hypot(*(sum(a[f"{n}_{c}"].astype(np.float64) for n in names) for c in ("px", "py")))
    ratio = pt / a["parent_pt_true"]
    assert np.median(np.abs(ratio - 1)) < 0.005 and np.all(np.abs(ratio - 1) < 0.15)
    m = _mass(a, names)
    assert abs(np.median(m) - 1.86484) < 0.005


def test_dimuon_pairs(dimuon):
    _, _, a = dimuon
    assert set(np.unique(a["charge"])) <= {-1, 1}
    assert set(np.unique(a["source"])) == {0, 1, 2}
    m = _mass(a, ["mu1", "mu2"])
    # J/psi and Upsilon peaks over a continuum
    assert np.any(np.abs(m - 3.097) < 0.1) and np.any(np.abs(m - 9.46) < 0.2)
    assert np.any(m > 12)


def test_dplus_entry_is_the_dmeson_recipe(example, tmp_path):
    """The table's D+ entry writes the dmeson_pythia signal tree bit for bit."""
    dmeson = _load("dmeson_pythia")
    a, b = tmp_path / "a.root", tmp_path / "b.root"
    common = ["--events", "300", "--seed", "7", "--no-progress"]
    assert dmeson.main([*common, "-o", str(a)]) == 0
    assert example.main([*common, "--decay", "dplus_kpipi", "-o", str(b)]) == 0
    with uproot.open(a) as fa, uproot.open(b) as fb:
        x, y = fa["signal"].arrays(library="np"), fb["signal"].arrays(library="np")
    assert list(x) == list(y)
    assert len(x["event"]) > 0
    for name in x:
        assert x[name].dtype == y[name].dtype
        np.testing.assert_array_equal(x[name], y[name])


def test_table_masses_are_pdg(example):
    from particle import Particle

    for decay in example.DECAYS.values():
        for name, pid in decay.daughters:
            assert decay.masses[name] == pytest.approx(
                Particle.from_pdgid(abs(pid)).mass / 1000, abs=1e-9
            )
            assert decay.acceptance.masses[abs(pid)] == decay.masses[name]


def test_same_species_must_be_adjacent(example):
    """Same-species daughters are ordered by pT among themselves, so they must be adjacent."""
    dplus = example.DECAYS["dplus_kpipi"]
    with pytest.raises(ValueError, match="next to each other"):
        dataclasses.replace(dplus, daughters=(("pi1", 211), ("K1", -321), ("pi2", 211)))


def test_list_prints_the_table(example, capsys):
    assert example.main(["--list"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) == set(example.DECAYS)
    assert table["lambdac"]["masses_GeV"]["p"] == pytest.approx(0.938272, abs=1e-6)


def test_usage_errors(example, tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        example.main(["-o", str(tmp_path / "x.root")])
    assert err.value.code == 2
    assert "--decay" in capsys.readouterr().err
    out = tmp_path / "exists.root"
    out.write_bytes(b"x")
    with pytest.raises(SystemExit) as err:
        example.main(["--decay", "lambdac", "-o", str(out), "--events", "10"])
    assert err.value.code == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.root"]


def test_pair_is_the_two_leading_muons_of_opposite_charge(example):
    """Event 0: the leading mu+ mu- pair is kept; event 1: the two leading muons have
    the same charge, so the event has no candidate (a softer mu+ does not rescue it)."""
    engine = _load("_pythia")
    decay = example.DECAYS["dimuon"]
    pid = np.array([-13, 13, 13, 13, 13, -13, 13])  # -13 is a mu+
    px = np.array([10.0, -5.0, 4.0, 9.0, -8.0, 7.0, 6.0])  # back to back: m > 2 GeV
    batch = SimpleNamespace(
        id=pid,
        event=np.array([0, 0, 0, 1, 1, 1, 2]),
        px=px,
        py=np.zeros(7),
        pz=np.zeros(7),
        status=np.ones(7, dtype=int),
        n_events=3,
    )
    is_track, p4, pt = engine.accept_and_smear(batch, decay.acceptance, np.random.default_rng(0))
    tracks = engine.Tracks(batch, is_track, p4, pt, first_event=100, source=2)
    rows = engine.signal_rows(decay, tracks)
    assert rows["event"].tolist() == [100]
    assert rows["charge"].tolist() == [1]
    assert rows["source"].tolist() == [2]
    assert rows["mu1_px"][0] == pytest.approx(10.0, rel=0.05)
    assert rows["mu2_px"][0] == pytest.approx(-5.0, rel=0.05)
    assert rows["parent_pt_true"][0] == pytest.approx(5.0)
