"""Ensembles (issue #32): bootstrap members, one model file, member tags, the band."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import safetensors
import torch
from tiny_settings import TINY_TRAIN, TINY_VAE

import vaeaug
from vaeaug.datasets import OBJECTS
from vaeaug.errors import ModelFileError


@pytest.fixture(scope="module")
def ensemble(toy_p4):
    """Three tiny members on bootstrap replicas of 1,000 toy candidates."""
    return vaeaug.fit(toy_p4[:1000], objects=OBJECTS, config=vaeaug.VAEConfig(**TINY_VAE),
                      train=vaeaug.TrainConfig(**TINY_TRAIN), device="cpu", progress=False,
                      seed=3, ensemble=3)  # fmt: skip


@pytest.fixture(scope="module")
def ensemble_file(ensemble, tmp_path_factory):
    path = tmp_path_factory.mktemp("ens") / "ens.safetensors"
    ensemble.save(path)
    return path


def _weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.vae.parameters()])


def test_members_are_trained_on_different_replicas(ensemble, toy_p4):
    assert isinstance(ensemble, vaeaug.Ensemble) and len(ensemble) == 3
    replicas = {m.provenance["ensemble"]["replica_sha256"] for m in ensemble.members}
    assert len(replicas) == 3  # three different bootstrap replicas
    # each member trains on the candidates its replica drew (about 63%)
    assert all(600 < m.provenance["n_events"] < 660 for m in ensemble.members)
    w = [_weights(m) for m in ensemble.members]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])


def test_a_replica_is_the_bootstrap_counts_as_weights(toy_p4, monkeypatch):
    """What fit sees: the candidates drawn at least once (each once: no copy on both sides
    of the training/validation split), weighted by their counts of N draws."""
    seen = []

    def record(table, **kw):
        seen.append(table)
        raise StopIteration

    monkeypatch.setattr(vaeaug.api, "fit", record)
    with pytest.raises(StopIteration):
        vaeaug.api._fit_ensemble(vaeaug.api.as_candidates(toy_p4, OBJECTS), 3, 0)
    (table,) = seen
    w = table.weights
    assert w.sum() == len(toy_p4) and (w == np.round(w)).all() and (w >= 1).all()
    assert 0.59 < len(w) / len(toy_p4) < 0.67  # 1 - 1/e of the candidates drawn
    assert len(np.unique(table.p4[:, 0, 0])) == len(table)


def test_fit_without_ensemble_returns_one_model(tiny_model):
    assert isinstance(tiny_model, vaeaug.Model)


def test_ensemble_size_is_checked(toy_p4):
    with pytest.raises(vaeaug.InputError, match="ensemble must be an integer from 2"):
        vaeaug.fit(toy_p4[:100], objects=OBJECTS, ensemble=1, progress=False)


@pytest.mark.outside_support
def test_sample_tags_members_evenly_and_is_reproducible(ensemble):
    a = ensemble.sample(1000, seed=5)
    b = ensemble.sample(1000, seed=5)
    c = ensemble.sample(1000, seed=6)
    assert a.member.dtype == np.int16 and a.member.shape == (1000,)
    assert np.bincount(a.member).tolist() == [334, 333, 333]
    np.testing.assert_array_equal(a.p4, b.p4)
    assert not np.array_equal(a.p4, c.p4)
    # each member's share is that member's own sample
    parts = ensemble.member_samples([334, 333, 333], seed=5)
    np.testing.assert_array_equal(a.p4[a.member == 1], parts[1].p4)
    assert "member" in a.to_awkward().fields


@pytest.mark.outside_support
def test_save_load_round_trip_gives_identical_samples(ensemble, ensemble_file):
    loaded = vaeaug.load(ensemble_file, device="cpu")
    assert isinstance(loaded, vaeaug.Ensemble) and len(loaded) == 3
    np.testing.assert_array_equal(loaded.sample(600, seed=2).p4, ensemble.sample(600, seed=2).p4)


def test_the_file_is_one_safetensors_file_without_pickle(ensemble_file):
    raw = ensemble_file.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__")
    assert meta["format_version"] == "4" and json.loads(meta["ensemble"]) == 3
    assert {k.split(".")[0] for k in header} == {"member0", "member1", "member2"}
    assert {"vae_config", "layout", "provenance"} <= set(json.loads(meta["member2"]))
    assert b"\x80\x04" not in raw[: 8 + n] and b"pickle" not in raw  # no pickle protocol
    assert all(v["dtype"] in ("F32", "F64", "I64", "BOOL", "U8") for v in header.values())


def _rewrite(src, dst, edit_tensors=None, edit_meta=None):
    with safetensors.safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        edit_meta(meta)
    safetensors.torch.save_file(tensors, str(dst), metadata=meta)
    return dst


def test_a_member_tensor_missing_is_refused(ensemble_file, tmp_path):
    bad = _rewrite(ensemble_file, tmp_path / "bad.safetensors",
                   edit_tensors=lambda t: t.pop("member1.standardizer.scale"))  # fmt: skip
    with pytest.raises(ModelFileError, match=r"member '1'.*missing tensors standardizer.scale"):
        vaeaug.load(bad)
    bad = _rewrite(ensemble_file, tmp_path / "bad2.safetensors",
                   edit_tensors=lambda t: t.pop(next(k for k in t if k.startswith("member2.vae."))))  # fmt: skip
    with pytest.raises(ModelFileError, match=r"member '2'.*missing tensors"):
        vaeaug.load(bad)


def test_a_member_metadata_missing_or_stray_tensors_are_refused(ensemble_file, tmp_path):
    bad = _rewrite(ensemble_file, tmp_path / "bad.safetensors",
                   edit_meta=lambda m: m.pop("member2"))  # fmt: skip
    with pytest.raises(ModelFileError, match="without the metadata object 'member2'"):
        vaeaug.load(bad)
    bad = _rewrite(ensemble_file, tmp_path / "bad2.safetensors",
                   edit_tensors=lambda t: t.update({"member3.vae.x": torch.zeros(1)}))  # fmt: skip
    with pytest.raises(ModelFileError, match="belong to no member"):
        vaeaug.load(bad)
    # a single-model file claiming format 4 is refused as newer
    bad = _rewrite(ensemble_file, tmp_path / "bad3.safetensors",
                   edit_meta=lambda m: m.pop("ensemble"))  # fmt: skip
    with pytest.raises(ModelFileError, match="newer than this vaeaug reads"):
        vaeaug.load(bad)


@pytest.fixture(scope="module")
def cli_ensemble(toy_root, tmp_path_factory):
    """``train --ensemble 2`` on the toy file, and 1,200 candidates it generated."""
    from tiny_settings import TINY_CLI

    from vaeaug.cli import main

    folder = tmp_path_factory.mktemp("cli_ens")
    model, generated = folder / "ens.safetensors", folder / "gen.root"
    assert main(["train", str(toy_root), "-o", str(model), "--ensemble", "2", *TINY_CLI]) == 0
    assert main(["generate", str(model), "-n", "1200", "-o", str(generated), "-q"]) == 0
    return model, generated


@pytest.mark.outside_support
def test_generate_writes_the_member_branch_and_info_says_ensemble(cli_ensemble, capsys):
    import uproot

    from vaeaug.cli import main

    model, generated = cli_ensemble
    with uproot.open(generated) as f:
        tree = f["candidates"]
        member = tree["member"].array(library="np")
        k1 = tree["K1_px"].array(library="np")
    assert member.dtype == np.int16 and np.bincount(member).tolist() == [600, 600]
    # the same events as Ensemble.sample with the command's seed (0)
    ens = vaeaug.load(model, device="cpu")
    np.testing.assert_allclose(k1, ens.sample(1200, seed=0).p4[:, 0, 0], rtol=1e-6)
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2 members on bootstrap replicas of 2000 candidates" in out
    assert "K1, pi1, pi2" in out
    assert "out-of-bag check: " in out


def test_info_states_the_shared_error():
    from vaeaug.cli import _out_of_bag_line

    assert "members' spread alone" in _out_of_bag_line(None)
    assert "no error shared" in _out_of_bag_line({"shared_variance": 0.0, "n_shared": None})
    line = _out_of_bag_line({"shared_variance": 4e-4, "n_shared": 2500.0})
    assert "0.0004 x p(1-p)" in line and "real sample of 2500 candidates" in line


@pytest.mark.outside_support
def test_refine_of_an_ensemble_is_refused(cli_ensemble, toy_root, tmp_path, capsys):
    from vaeaug.cli import main

    model, _ = cli_ensemble
    argv = ["generate", str(model), "-n", "10", "-o", str(tmp_path / "r.root"), "--refine",
            "weight", "--refine-with", str(toy_root)]  # fmt: skip
    assert main(argv) == 2
    assert "is an ensemble of 2 members" in capsys.readouterr().err


def test_the_band_is_the_spread_between_members_not_their_sampling_noise():
    from vaeaug.validation.bands import band_metrics, model_band

    rng = np.random.default_rng(1)
    edges = np.linspace(-3, 3, 31)
    same = [rng.normal(0, 1, 20_000) for _ in range(5)]
    shifted = [rng.normal(0.05 * i, 1, 20_000) for i in range(5)]
    # the sampling noise of one member's fraction in a central bin: sqrt(p / n) ~ 0.0017
    noise = np.sqrt(0.04 / 20_000)
    assert np.median(model_band(same, edges)) < 0.3 * noise
    assert np.median(model_band(shifted, edges)) > noise
    # members that disagree widen the error: the combined χ² is the smaller one
    real, gen = rng.normal(0.1, 1, 5_000), np.concatenate(shifted)
    m = band_metrics(real, gen, shifted, edges)
    assert m["chi2_stat_model"] < m["chi2_stat"] and m["ndf"] == 30
    assert m["coverage"] > band_metrics(real, gen, same, edges)["coverage"]


@pytest.mark.outside_support
def test_validate_with_an_ensemble_draws_the_band_and_the_combined_chi2(
    cli_ensemble, toy_root, tmp_path, capsys
):
    import uproot

    from vaeaug.cli import main

    model, generated = cli_ensemble
    out = tmp_path / "report"
    argv = ["validate", str(toy_root), str(generated), "--model", str(model), "--out", str(out),
            "--formats", "png"]  # fmt: skip
    assert main(argv) == 0
    assert "ensemble of 2: χ²" in capsys.readouterr().out
    e = json.loads((out / "summary.json").read_text())["ensemble"]
    assert e["members"] == 2 and e["n_each"] == [600, 600]  # split by the member branch
    assert 0 < e["chi2_stat_model"] < e["chi2_stat"] and e["ndf"] > 100
    assert set(e["features"]) == set(json.loads((out / "summary.json").read_text())["features"])
    report = (out / "report.md").read_text()
    assert "Model uncertainty: ensemble of 2 members" in report
    assert "Amplification forecast from the band" in report
    # the band holds the error the members share, measured out of bag when they were trained
    assert e["shared_variance"] == vaeaug.load(model).out_of_bag["shared_variance"] is not None
    assert "measured at training time on their out-of-bag candidates" in report
    assert e["forecast"]["n_equivalent"] > 0 and e["forecast"]["amplification"] > 0
    with uproot.open(out / "histograms.root") as f:
        band = f["model_band/parent_pt"].values()
    assert band.shape == (50,) and (band > 0).any()


@pytest.mark.outside_support
def test_validate_of_an_ensemble_file_without_the_check_says_the_band_is_the_spread_alone(
    cli_ensemble, toy_root, tmp_path, capsys
):
    """A file written before the out-of-bag check: the band is the spread alone, and the
    report says the shared error is not in it."""
    from model_edits import edited

    from vaeaug.cli import main

    model, generated = cli_ensemble
    old = edited(model, tmp_path / "old.safetensors", lambda t, meta: meta.pop("out_of_bag"))
    assert vaeaug.load(old).out_of_bag is None and vaeaug.load(old).shared_variance == 0.0
    out = tmp_path / "report"
    argv = ["validate", str(toy_root), str(generated), "--model", str(old), "--out", str(out),
            "--formats", "png", "--max-events", "600"]  # fmt: skip
    assert main(argv) == 0
    e = json.loads((out / "summary.json").read_text())["ensemble"]
    assert e["shared_variance"] is None and "not in the band" in e["band_definition"]
    assert "no out-of-bag measurement" in (out / "report.md").read_text()
    assert main(["info", str(old)]) == 0
    assert "out-of-bag check: none" in capsys.readouterr().out


def test_the_feature_plot_shades_the_band(toy_p4):
    import matplotlib

    matplotlib.use("Agg")
    from vaeaug.validation import plots

    x, y = toy_p4[:1000, 0, 0], toy_p4[1000:, 0, 0]
    edges = plots.common_edges(x, y, bins=20)
    ho, hg = plots.comparison_histograms(x, y, edges, name="px", label="px [GeV]")
    fig = plots.plot_feature(ho, hg, band=np.full(20, 0.01))
    labels = [a.get_label() for a in fig.axes[0].get_children()]
    assert "Model unc. (ensemble)" in labels
    fig = plots.plot_feature(ho, hg)
    assert "Model unc. (ensemble)" not in [a.get_label() for a in fig.axes[0].get_children()]


def test_the_forecast_is_the_real_sample_size_of_the_members_spread():
    """Members that each reproduce a bootstrap replica of n real candidates (smeared): their
    spread is that of a real sample of n, and so is the forecast; members without spread
    forecast far more."""
    from vaeaug.validation.bands import amplification_forecast

    rng = np.random.default_rng(2)
    n, k, m_each = 2_000, 10, 40_000
    truth = rng.normal(0, 1, (1_000_000, 2))
    real = truth[:n]
    replicas = [real[rng.integers(0, n, n)] for _ in range(k)]
    members = [r[rng.integers(0, n, m_each)] + rng.normal(0, 0.05, (m_each, 2)) for r in replicas]
    f = amplification_forecast(np.concatenate(members), members, n)
    assert 0.5 < f["amplification"] < 2.0  # about the real sample's worth
    # identical members: no model spread, the generated statistics alone set it
    same = [truth[i * m_each : (i + 1) * m_each] for i in range(k)]
    g = amplification_forecast(np.concatenate(same), same, n)
    assert g["amplification"] > 5 * f["amplification"]


def test_augment_refuses_an_ensemble_file(ensemble_file):
    from needs import need_module

    need_module("coffea")
    with pytest.raises(vaeaug.InputError, match=r"Augment draws from one model; .* ensemble of 3"):
        vaeaug.Augment(str(ensemble_file), factor=2)


def test_bad_sizes_and_seeds_are_refused_before_sampling(ensemble):
    with pytest.raises(vaeaug.InputError, match="seed must be an integer >= 0"):
        ensemble.sample(10, seed=-1)
    with pytest.raises(vaeaug.InputError, match="number of candidates must be an integer >= 0"):
        ensemble.member_samples([5, -1, 5])


def test_one_support_warning_for_the_whole_ensemble(ensemble, ensemble_file, tmp_path):
    """Tiny members put many candidates outside their support: one SupportWarning for the
    ensemble's sample (its counts summed over the members), not one per member."""
    import warnings

    from vaeaug.cli import main
    from vaeaug.model.support import SupportWarning

    for run in (lambda: ensemble.sample(3000, seed=2),
                lambda: main(["generate", str(ensemble_file), "-n", "3000", "-o",
                              str(tmp_path / "g.root"), "-q", "--device", "cpu"])):  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
        support = [w for w in caught if issubclass(w.category, SupportWarning)]
        assert len(support) == 1


class _Member:
    """A stand-in member: samples rows of a fixed pool (a model that is that pool)."""

    def __init__(self, pool: np.ndarray) -> None:
        self.pool = pool
        self.exchange = [[1, 2]]
        self.objects = list(OBJECTS)

    def sample(self, n: int, seed: int, warn: bool = True):
        rows = np.random.default_rng(seed).integers(0, len(self.pool), n)
        return vaeaug.Candidates(self.pool[rows], vaeaug.io.Layout.default(OBJECTS))


def _expected_shared(table_p4, truth, biased, n_quantiles=20):
    """b² / p(1 − p), mean over every bin and feature: the bias between two large samples."""
    from vaeaug.binning import fractions, quantile_edges
    from vaeaug.kinematics import feature_table
    from vaeaug.model.symmetry import order_by_pt

    def features(p4):
        return feature_table(order_by_pt(p4.copy(), [[1, 2]]), list(OBJECTS))[1]

    real, t, b = features(table_p4), features(truth), features(biased)
    d2, pq = [], []
    for f in range(real.shape[1]):
        edges = quantile_edges(real[:, f], n_quantiles)
        pt, pb = fractions(t[:, f], edges)[0], fractions(b[:, f], edges)[0]
        d2.append((pb - pt) ** 2)
        pq.append(pt * (1 - pt))
    return np.concatenate(d2).mean() / np.concatenate(pq).mean()


def test_the_out_of_bag_check_measures_the_error_every_member_shares():
    """Members that are the truth (no bias, no spread) measure a shared error consistent
    with 0; members that all scale every momentum by 0.5% measure the bias that gives,
    within 25%. Without subtracting the out-of-bag rows' own statistical error, the first
    would read about 1 / n_out_of_bag (about 3e-3 here), far above its error."""
    from vaeaug.datasets import dplus_kpipi
    from vaeaug.ensemble import out_of_bag_check

    truth = dplus_kpipi(200_000, seed=11)
    table = vaeaug.io.Candidates(dplus_kpipi(1_000, seed=12), vaeaug.io.Layout.default(OBJECTS))
    rng = np.random.default_rng(0)
    in_bag = [np.bincount(rng.integers(0, 1000, 1000), minlength=1000) > 0 for _ in range(5)]
    right = out_of_bag_check([_Member(truth)] * 5, table, in_bag, seed=1)
    assert right["members_checked"] == 5 and 300 < right["n_out_of_bag"] < 440
    assert right["shared_variance"] < 2 * right["shared_variance_err"]
    assert right["spread_variance"] < 1e-4  # one pool: no spread between members
    biased = truth * 1.005
    wrong = out_of_bag_check([_Member(biased)] * 5, table, in_bag, seed=1)
    expected = _expected_shared(table.p4, truth, biased)
    assert expected > 8 * right["shared_variance_err"]  # a bias the check can see
    assert wrong["shared_variance"] == pytest.approx(expected, rel=0.25)
    assert wrong["n_shared"] == pytest.approx(1 / wrong["shared_variance"])


def test_the_band_adds_the_shared_error_to_the_spread():
    from vaeaug.binning import fractions
    from vaeaug.validation.bands import amplification_forecast, band_metrics, model_band

    rng = np.random.default_rng(3)
    edges = np.linspace(-3, 3, 31)
    members = [rng.normal(0.02 * i, 1, 20_000) for i in range(4)]
    spread = model_band(members, edges)
    p = fractions(np.concatenate(members), edges)[0]
    with_shared = model_band(members, edges, shared_variance=2e-3)
    np.testing.assert_allclose(with_shared**2, spread**2 + 2e-3 * p * (1 - p))
    real = rng.normal(0.3, 1, 5_000)  # a bias the spread alone does not cover
    gen = np.concatenate(members)
    alone = band_metrics(real, gen, members, edges)
    both = band_metrics(real, gen, members, edges, shared_variance=2e-3)
    assert (
        both["coverage"] > alone["coverage"] and both["chi2_stat_model"] < alone["chi2_stat_model"]
    )
    # the forecast cannot exceed the real-sample size of the shared error, 1 / 2e-3
    many = [m[:, None] for m in members]
    assert (
        amplification_forecast(gen[:, None], many, 100, shared_variance=2e-3)["n_equivalent"] < 500
    )
    assert amplification_forecast(gen[:, None], many, 100)["n_equivalent"] > 500


def test_the_out_of_bag_check_travels_in_the_model_file(ensemble, ensemble_file):
    oob = ensemble.out_of_bag
    assert oob["members_checked"] == 3 and oob["n_each"] == 10_000
    assert np.isfinite(oob["shared_variance"]) and oob["shared_variance"] >= 0
    assert vaeaug.load(ensemble_file).out_of_bag == oob


@pytest.mark.parametrize("value", [-0.1, "0.1", float("nan")])
def test_a_bad_out_of_bag_value_is_refused(ensemble_file, tmp_path, value):
    from model_edits import edited, set_meta

    bad = edited(ensemble_file, tmp_path / "bad.safetensors",
                 set_meta("out_of_bag", {"shared_variance": value}))  # fmt: skip
    with pytest.raises(ModelFileError, match=r"shared_variance .*valid: a finite number >= 0"):
        vaeaug.load(bad)
