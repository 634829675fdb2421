"""Model v2: training support and acceptance, uniform parent azimuth, n-body decays, old files."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import safetensors
import safetensors.torch
from tiny_settings import TINY_TRAIN, TINY_VAE

import vaeaug
from vaeaug.datasets import OBJECTS
from vaeaug.errors import ModelFileError
from vaeaug.model.support import Support, SupportReport, SupportWarning, observables
from vaeaug.model.symmetry import kuiper_uniform_pvalue
from vaeaug.representations import make_representation


def _fit(p4, objects, **kwargs):
    return vaeaug.fit(p4, objects=objects, config=vaeaug.VAEConfig(**TINY_VAE),
                      train=vaeaug.TrainConfig(**TINY_TRAIN), seed=3, device="cpu",
                      progress=False, **kwargs)  # fmt: skip


def _sample(model, n: int, **kwargs):
    """``model.sample`` of a tiny test model. Trained for a few epochs, it leaks out of the
    training support more than a real sample would, and says so with a SupportWarning;
    that warning is the subject of other tests, not of those that call this."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupportWarning)
        return model.sample(n, **kwargs)


def _pt_eta(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each daughter's pT (GeV) and eta, each (N, k), from ``p4`` (N, k, 4)."""
    pt = np.hypot(p4[..., 0], p4[..., 1])
    return pt, np.arcsinh(p4[..., 2] / pt)


def _bounds(model) -> dict[str, tuple[float, float]]:
    """The model's support intervals by observable name."""
    return dict(zip(model.support.names, zip(model.support.lo, model.support.hi)))


def _acceptance_violations(p4: np.ndarray) -> np.ndarray:
    """Daughters outside the built-in sample's tracker acceptance (pT > 0.25 GeV, |eta| < 2.5)."""
    pt, eta = _pt_eta(p4)
    return ((pt < 0.25) | (np.abs(eta) > 2.5)).any(axis=1)


def test_support_learns_the_acceptance_from_the_data(tiny_model, toy_p4):
    support = tiny_model.support
    bounds = _bounds(tiny_model)
    pt, eta = _pt_eta(toy_p4)
    for i, obj in enumerate(OBJECTS):
        # a cut is an edge of high density: the margin is a few MeV, not a tail's width
        lo, hi = bounds[f"{obj}_pt"]
        assert pt[:, i].min() - 0.01 < lo <= pt[:, i].min() and hi >= pt[:, i].max()
        lo, hi = bounds[f"{obj}_eta"]
        assert -2.51 < lo <= eta[:, i].min() and eta[:, i].max() <= hi < 2.51
    values = tiny_model.support_values(toy_p4, tiny_model.representation.to_features(toy_p4))
    assert support.inside(values).mean() > 0.99
    # the stored real-vs-real rate is the share of one random half of the training sample
    # outside the bounds of the other half: recomputed here on 50 other splits, with the
    # margin written out (the mean spacing of the 10 outermost values), it agrees within
    # 3 binomial sigma of one half (the estimator itself:
    # test_support_rate_is_the_share_of_a_second_real_sample_outside)
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(50):
        order = rng.permutation(len(values))
        first, second = np.sort(values[order[:1000]], axis=0), values[order[1000:2000]]
        lo = first[0] - (first[10] - first[0]) / 10
        hi = first[-1] + (first[-1] - first[-11]) / 10
        rates.append(np.mean(((second < lo) | (second > hi)).any(axis=1)))
    rate = np.mean(rates)
    assert abs(support.expected_rate - rate) < 3 * np.sqrt(rate * (1 - rate) / 1000)


def test_reject_keeps_every_candidate_inside_the_acceptance(tiny_model):
    kept = tiny_model.sample(20_000, seed=5, support="off").p4
    # the tiny model leaks out of the acceptance, so the check below is not vacuous
    assert _acceptance_violations(kept).mean() > 0.02
    with pytest.warns(SupportWarning, match="fell outside the training support"):
        warned = tiny_model.sample(20_000, seed=5, support="warn")
    np.testing.assert_array_equal(warned.p4, kept)
    rejected = _sample(tiny_model, 20_000, seed=5)  # the default is "reject"
    # only the candidates outside were redrawn: the others are the same events
    redrawn = ~np.isclose(rejected.p4, kept).all(axis=(1, 2))
    assert redrawn.mean() > 0.02  # the tiny model leaks: the counts below are not vacuous
    # the report counts the first draws outside, whether kept ("warn") or redrawn
    assert warned.support_report.outside == rejected.support_report.outside == redrawn.sum()
    assert warned.support_report.outside_fraction == redrawn.sum() / 20_000
    # only the margins (a few MeV, a few 0.001 in eta: what a second real sample would
    # exceed) remain, ten times fewer than without the check
    assert _acceptance_violations(rejected.p4).mean() < 0.1 * _acceptance_violations(kept).mean()
    assert rejected.support_report.unresolved == 0


def test_the_report_names_the_edges_crossed_most_often(tiny_model):
    report = _sample(tiny_model, 20_000, seed=5, support="warn").support_report
    kept = tiny_model.sample(20_000, seed=5, support="off").p4
    # counted independently, for each daughter: pT below its bound, |eta| beyond its bounds
    bounds = _bounds(tiny_model)
    pt, eta = _pt_eta(kept)
    for i, obj in enumerate(OBJECTS):
        lo, hi = bounds[f"{obj}_pt"]
        assert report.edges.get(f"{obj}_pt < {lo:.4g}", 0) == np.count_nonzero(pt[:, i] < lo)
        lo, hi = bounds[f"{obj}_eta"]
        assert report.edges.get(f"{obj}_eta > {hi:.4g}", 0) == np.count_nonzero(eta[:, i] > hi)
    # the warning names the three edges crossed most often, with their shares
    top = sorted(report.edges.items(), key=lambda item: -item[1])[:3]
    assert all(count > 0 for _, count in top)
    words = report.summary()
    assert words.endswith(", ".join(f"{e} ({c / 20_000:.1%})" for e, c in top))
    # reports of blocks add up, edge by edge
    total = type(report)()
    for block in (report, report):
        total.add(block)
    assert total.edges == {e: 2 * c for e, c in report.edges.items()}


def test_redraws_outside_the_support_are_keyed_per_candidate(tiny_model):
    """Given noise and one key per candidate (as the coffea step supplies them), the
    candidates outside the support are redrawn from their keys' streams alone."""
    from vaeaug.noise import index_keys, keyed_normals

    keys = index_keys(2, np.arange(2_000))
    eps = keyed_normals(keys, tiny_model.noise_width)

    def decode(rows, mode="reject"):
        p4, features = tiny_model.p4_from_noise(eps[rows])
        return p4, tiny_model.enforce_support(p4, features, keys[rows], mode)

    off, report_off = decode(slice(None), "warn")
    on, report = decode(slice(None))
    assert report_off.outside == report.outside > 0
    assert _acceptance_violations(on).mean() < 0.1 * _acceptance_violations(off).mean()
    # redraws are keyed per candidate: any subset gives the same events
    part, _ = decode(slice(1, None, 3))
    np.testing.assert_array_equal(part, on[1::3])


def test_support_and_choices_survive_the_model_file(tiny_model, tmp_path):
    path = tmp_path / "m.safetensors"
    tiny_model.save(path)
    loaded = vaeaug.load(path)
    np.testing.assert_array_equal(loaded.support.lo, tiny_model.support.lo)
    np.testing.assert_array_equal(loaded.support.hi, tiny_model.support.hi)
    assert loaded.phi_uniform == tiny_model.phi_uniform and loaded.learned == tiny_model.learned
    np.testing.assert_array_equal(
        _sample(loaded, 3_000, seed=1).p4, _sample(tiny_model, 3_000, seed=1).p4
    )


def test_model_files_of_format_1_are_refused_with_a_way_forward(tiny_model, tmp_path):
    path = tmp_path / "m.safetensors"
    tiny_model.save(path)
    with safetensors.safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    old = tmp_path / "old.safetensors"
    safetensors.torch.save_file(tensors, str(old), metadata={**meta, "format_version": "1"})
    with pytest.raises(ModelFileError, match=r"model format 1.*Retrain"):
        vaeaug.load(old)
    bad = tmp_path / "bad.safetensors"
    safetensors.torch.save_file(tensors, str(bad), metadata={**meta, "format_version": "abc"})
    with pytest.raises(ModelFileError, match="invalid format_version 'abc'"):
        vaeaug.load(bad)


def test_kuiper_test_tells_uniform_from_modulated_angles():
    rng = np.random.default_rng(0)
    # p-values of uniform samples are uniform themselves
    p = [kuiper_uniform_pvalue(rng.uniform(-np.pi, np.pi, 1_000)) for _ in range(200)]
    assert 0.005 < np.mean(np.array(p) < 0.05) < 0.1
    # a sector of 1 rad with 30% lower efficiency (a detector's weak sector) is detected
    phi = rng.uniform(-np.pi, np.pi, 60_000)
    keep = rng.uniform(size=phi.size) < 1 - 0.3 * (np.abs(phi) < 0.5)
    assert kuiper_uniform_pvalue(phi[keep][:20_000]) < 1e-3


def _rotate(p4: np.ndarray, angle: np.ndarray) -> np.ndarray:
    out = p4.copy()
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    out[..., 0], out[..., 1] = c * p4[..., 0] - s * p4[..., 1], s * p4[..., 0] + c * p4[..., 1]
    return out


def test_parent_phi_is_drawn_uniformly_only_when_the_data_allow(toy_p4):
    model = _fit(toy_p4, OBJECTS)
    assert model.phi_uniform and 2 not in model.learned and 3 not in model.learned
    assert model.provenance["phi_kuiper_pvalue"] > 0.01
    gen = _sample(model, 20_000, seed=1).p4.sum(axis=1)
    assert kuiper_uniform_pvalue(np.arctan2(gen[:, 1], gen[:, 0])) > 1e-3

    # all parents rotated into one half-plane: phi carries information, so it is learned
    phi = np.arctan2(toy_p4.sum(1)[:, 1], toy_p4.sum(1)[:, 0])
    folded = _rotate(toy_p4, np.abs(phi) - phi)  # phi -> |phi|
    model = _fit(folded, OBJECTS)
    assert not model.phi_uniform and model.learned == list(range(12))
    forced = _fit(folded, OBJECTS, phi="uniform")
    assert forced.phi_uniform
    with pytest.raises(vaeaug.InputError, match="phi must be one of auto, uniform, learn"):
        _fit(toy_p4, OBJECTS, phi="sometimes")


def _n_body_sample(n_bodies: int, masses: list[float], n: int, seed: int) -> np.ndarray:
    """Physical n-body decays of a parent with a narrow peak, decoded from random features."""
    rep = make_representation("decay", n_bodies, masses=masses)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rep.n_features))
    x[:, 0] = np.log(rng.gamma(2.0, 2.0, n) + 0.5)
    x[:, 1] = rng.uniform(-2, 2, n)
    x[:, 4] = np.log(1.8646 - sum(masses) + rng.normal(0, 0.004, n))
    return rep.from_features(x)


def test_auto_uses_the_decay_representation_for_four_bodies():
    masses = [0.493677, 0.13957039, 0.13957039, 0.13957039]
    p4 = _n_body_sample(4, masses, 3_000, seed=1)
    model = _fit(p4, ["K", "pi1", "pi2", "pi3"])
    assert model.representation.name == "decay" and model.representation.n_objects == 4
    assert "4-body decay" in model.provenance["representation_choice"]
    gen = _sample(model, 5_000, seed=2).p4
    m = np.sqrt(np.maximum(gen[..., 3] ** 2 - (gen[..., :3] ** 2).sum(-1), 0))
    np.testing.assert_allclose(m, np.broadcast_to(masses, m.shape), atol=1e-9)
    # the parent mass stays inside the training support: no 4-momentum leaks
    names, obs = observables(gen, model.objects)
    mass = obs[:, names.index("parent_mass")]
    lo, hi = (
        b[model.support.names.index("parent_mass")] for b in (model.support.lo, model.support.hi)
    )
    assert lo <= mass.min() and mass.max() <= hi


def test_no_pile_up_at_threshold_on_a_broad_continuum():
    """A dimuon continuum reaching down to 2 m_mu: nothing is clamped onto the threshold."""
    mu = 0.1056583755
    rep = make_representation("decay", 2, masses=[mu, mu])
    rng = np.random.default_rng(4)
    n = 3_000
    x = np.column_stack([
        np.log(rng.gamma(2.0, 3.0, n) + 1.0), rng.uniform(-2.4, 2.4, n),
        *(lambda a: (np.cos(a), np.sin(a)))(rng.uniform(-np.pi, np.pi, n)),
        np.log(rng.exponential(0.5, n) + 1e-3), rng.normal(size=n), *rng.normal(size=(n, 2)).T,
    ])  # fmt: skip
    p4 = rep.from_features(x)
    model = _fit(p4, ["mu1", "mu2"])
    gen = model.sample(20_000, seed=1, support="off").p4.sum(axis=1)
    m = np.sqrt(np.maximum(gen[:, 3] ** 2 - (gen[:, :3] ** 2).sum(-1), 0))
    assert (m > 2 * mu).all()
    assert np.mean(m < 2 * mu + 1e-4) == 0.0  # real: none within 1e-4 GeV of the threshold
    # and the region just above threshold is reached, not emptied by a guard
    real_m = np.sqrt(np.maximum(p4.sum(1)[:, 3] ** 2 - (p4.sum(1)[:, :3] ** 2).sum(-1), 0))
    assert np.quantile(m - 2 * mu, 0.001) < np.quantile(real_m - 2 * mu, 0.01)


def test_support_json_round_trip():
    s = Support(["a", "b"], np.array([0.0, -1.0]), np.array([1.0, 1e300]), 0.01)
    t = Support.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(t.lo, s.lo)
    np.testing.assert_array_equal(t.hi, s.hi)
    assert t.inside(np.array([[0.5, 0.0], [1.5, 0.0], [np.nan, 0.0]])).tolist() == [
        True,
        False,
        False,
    ]


def test_support_rate_is_the_share_of_a_second_real_sample_outside():
    """Support.expected_rate is what it says: the share of a second real sample outside the
    bounds of a first. It is measured on halves, so the direct measurement uses halves."""
    rng = np.random.default_rng(11)
    names = ["a", "b", "c"]
    fitted = [Support.fit(rng.standard_normal((2_000, 3)), names, seed=i).expected_rate
              for i in range(30)]  # fmt: skip
    direct = []
    for _ in range(120):
        first = Support.fit(rng.standard_normal((1_000, 3)), names)
        direct.append(np.mean(~first.inside(rng.standard_normal((1_000, 3)))))
    se = np.hypot(np.std(fitted, ddof=1) / np.sqrt(len(fitted)),
                  np.std(direct, ddof=1) / np.sqrt(len(direct)))  # fmt: skip
    assert abs(np.mean(fitted) - np.mean(direct)) < 4 * se
    assert np.mean(direct) > 6 * se  # a rate of zero would fail the line above


def test_the_report_judges_the_outside_share_against_the_real_vs_real_rate(tiny_model):
    # 2% outside of 10,000 is no excess where real samples leave 2% outside, but is one
    # where they leave none
    assert not SupportReport(n=10_000, outside=200, expected_rate=0.02).excess()
    assert SupportReport(n=10_000, outside=200, expected_rate=0.0).excess()
    assert (
        "real vs real: 2.00%" in SupportReport(n=10_000, outside=200, expected_rate=0.02).summary()
    )
    # the report of a sample carries the model's rate
    report = tiny_model.sample(2_000, seed=5, support="off").support_report
    assert report.expected_rate == tiny_model.support.expected_rate > 0
