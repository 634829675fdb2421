"""vaeaug.augment_training_set and ``vaeaug trainset`` on the shared D+ files.

A few hundred real candidates per class and tiny models: these tests check the
recipe's bookkeeping (labels, flags, counts, weights, seeds, refusals), not the
quality of the generated candidates.
"""

from __future__ import annotations

import numpy as np
import pytest
import uproot
from tiny_settings import TINY_CLI, TINY_TRAIN, TINY_VAE

import vaeaug
from vaeaug.cli import main
from vaeaug.model.support import SupportWarning

#: Tiny test models put many candidates outside the training support, and the warning says
#: so; these tests check other behaviour (the support check's own tests use pytest.warns).
pytestmark = [pytest.mark.testdata, pytest.mark.outside_support]

N_SIG, N_BKG = 200, 300
OBJECTS = ["K1", "pi1", "pi2"]
TINY = {"config": vaeaug.VAEConfig(**TINY_VAE), "train": vaeaug.TrainConfig(**TINY_TRAIN),
        "device": "cpu", "progress": False}  # fmt: skip


@pytest.fixture(scope="module")
def train_file(testdata):
    return testdata / "dplus_kpipi_train.root"


@pytest.fixture(scope="module")
def real(train_file):
    """(signal, background) Candidates: the first N_SIG and N_BKG candidates."""
    sig = vaeaug.read_candidates(train_file, tree="signal", objects=OBJECTS, entry_stop=N_SIG)
    bkg = vaeaug.read_candidates(train_file, tree="background", objects=OBJECTS, entry_stop=N_BKG)
    return sig, bkg


@pytest.fixture(scope="module")
def models(real):
    """Tiny (signal, background) models, fitted once for the tests that only sample."""
    return tuple(vaeaug.fit(t, seed=i, **TINY) for i, t in enumerate(real))


def _augment(real, models, **kwargs):
    sig, bkg = real
    options = {"factor": 3, "seed": 5, "progress": False, "signal_model": models[0],
               "background_model": models[1], **kwargs}  # fmt: skip
    return vaeaug.augment_training_set(sig, bkg, **options)


def _class(ts, label, generated):
    return (ts.label == label) & (ts.is_generated == generated)


def test_labels_flags_and_counts(real, models):
    ts = _augment(real, models, factor=3)
    sig, bkg = real
    assert len(ts) == 4 * (N_SIG + N_BKG)
    assert ts.p4.shape == (len(ts), 3, 4) and ts.objects == tuple(OBJECTS)
    assert ts.label.dtype == np.int8 and ts.is_generated.dtype == bool
    assert ts.counts() == {"signal": {"real": N_SIG, "generated": 3 * N_SIG},
                           "background": {"real": N_BKG, "generated": 3 * N_BKG}}  # fmt: skip
    # the real candidates are the input, untouched; the generated ones are not copies of it
    np.testing.assert_array_equal(ts.p4[_class(ts, 1, False)], sig.p4)
    np.testing.assert_array_equal(ts.p4[_class(ts, 0, False)], bkg.p4)
    gen_sig = ts.p4[_class(ts, 1, True)]
    assert not np.isin(gen_sig[:, 0, 0], sig.p4[:, 0, 0]).any()
    # each class's generated candidates come from that class's model: the signal mass peak
    m = vaeaug.Candidates(gen_sig, sig.layout).mass
    m_bkg = vaeaug.Candidates(ts.p4[_class(ts, 0, True)], bkg.layout).mass
    assert np.mean(np.abs(m - 1.8697) < 0.02) > np.mean(np.abs(m_bkg - 1.8697) < 0.02) + 0.2


def test_weight_rule_keeps_each_class_total(real, models):
    factor = 4
    ts = _augment(real, models, factor=factor)
    for label, n in ((1, N_SIG), (0, N_BKG)):
        np.testing.assert_allclose(ts.weight[_class(ts, label, False)], 1 / (1 + factor))
        np.testing.assert_allclose(ts.weight[_class(ts, label, True)], 1 / (1 + factor))
        np.testing.assert_allclose(ts.weight[ts.label == label].sum(), n)
        parts = ts.part_weights()
        for generated in (False, True):
            np.testing.assert_allclose(parts[_class(ts, label, generated)].sum(), n)
    _, y, w = ts.features("raw", balance=True)
    np.testing.assert_allclose(w[y == 1].sum(), w[y == 0].sum())
    np.testing.assert_allclose(w.sum(), N_SIG + N_BKG)


def test_weight_rule_with_real_weights(real):
    sig, bkg = real
    rng = np.random.default_rng(0)
    w_sig = rng.uniform(0.5, 2.0, N_SIG)
    table = vaeaug.Candidates(sig.p4, sig.layout, w_sig)
    gen = rng.normal(size=(2 * N_SIG, 3, 4))
    ts = vaeaug.TrainingSet.combine(table, bkg, signal_generated=gen)
    np.testing.assert_allclose(ts.weight[_class(ts, 1, False)], w_sig / 3)
    np.testing.assert_allclose(ts.weight[_class(ts, 1, True)], w_sig.sum() / (3 * N_SIG))
    np.testing.assert_allclose(ts.weight[ts.label == 1].sum(), w_sig.sum())
    np.testing.assert_allclose(ts.part_weights()[_class(ts, 1, False)], w_sig)
    # no generated background: the background keeps weight 1
    np.testing.assert_array_equal(ts.weight[ts.label == 0], 1.0)


def test_same_seed_same_set_and_classes_get_distinct_streams(real, models):
    a = _augment(real, models, seed=11)
    b = _augment(real, models, seed=11)
    c = _augment(real, models, seed=12)
    np.testing.assert_array_equal(a.p4, b.p4)
    assert not np.array_equal(a.p4[a.is_generated], c.p4[c.is_generated])
    # one model for both classes still gives two different samples
    same = _augment(real, (models[0], models[0]), seed=11)
    g_sig, g_bkg = same.p4[_class(same, 1, True)], same.p4[_class(same, 0, True)]
    assert not np.isin(g_bkg[:, 0, 0], g_sig[:, 0, 0]).any()


def test_fitting_path_is_reproducible_and_fits_only_the_multiplied_class(real):
    sig, bkg = real
    a = vaeaug.augment_training_set(sig, bkg, factor=1, classes="signal", seed=2, **TINY)
    b = vaeaug.augment_training_set(sig, bkg, factor=1, classes="signal", seed=2, **TINY)
    np.testing.assert_array_equal(a.p4, b.p4)
    assert set(a.info["seeds"]) == {"signal"} and a.info["seeds"]["signal"]["fit"] is not None


def test_classes_signal_leaves_background_real_only(real, models):
    ts = _augment(real, models, classes="signal", factor=2, background_model=None)
    assert ts.counts()["background"] == {"real": N_BKG, "generated": 0}
    assert ts.counts()["signal"] == {"real": N_SIG, "generated": 2 * N_SIG}
    np.testing.assert_array_equal(ts.weight[ts.label == 0], 1.0)
    np.testing.assert_array_equal(ts.p4[ts.label == 0], real[1].p4)


def test_inputs_as_arrays_read_and_built_candidates_agree(real, models):
    sig, bkg = real
    common = {"factor": 1, "seed": 3, "progress": False, "signal_model": models[0],
              "background_model": models[1]}  # fmt: skip
    from_read = vaeaug.augment_training_set(sig, bkg, **common)
    from_arrays = vaeaug.augment_training_set(sig.p4, bkg.p4, objects=OBJECTS, **common)
    from_cands = vaeaug.augment_training_set(
        vaeaug.Candidates(sig.p4, sig.layout), vaeaug.Candidates(bkg.p4, bkg.layout), **common
    )
    for other in (from_arrays, from_cands):
        np.testing.assert_array_equal(other.p4, from_read.p4)
        np.testing.assert_array_equal(other.weight, from_read.weight)


def test_features_for_a_classifier(real, models):
    ts = _augment(real, models, factor=1)
    x, y, w = ts.to_numpy()
    np.testing.assert_array_equal(x, ts.p4.reshape(len(ts), 12))
    np.testing.assert_array_equal(y, ts.label)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(w, ts.weight)
    xp, _, _ = ts.features("physics", dtype=np.float32)
    assert xp.dtype == np.float32 and xp.shape == (len(ts), 12)
    names = ts.feature_names("physics")
    assert names[:4] == ["m", "m12", "m13", "m23"]
    np.testing.assert_allclose(xp[y == 1, 0].mean(), 1.87, atol=0.01)  # the D+ mass, GeV
    with pytest.raises(vaeaug.InputError, match="raw, physics, all"):
        ts.features("dalitz")


def test_identical_daughters_are_put_in_the_inputs_order(real, models):
    # the models found the convention in their training data and generate it themselves
    assert models[0].exchange == [[1, 2]]
    assert (
        _augment(real, models, identical=[("pi1", "pi2")]).info["per_class"]["signal"]["reordered"]
        == 0
    )
    # a tiny model that learned the labels as they are does not respect it: reordered here
    labelled = vaeaug.fit(real[0], seed=0, exchange="off", **TINY)
    ts = _augment(real, (labelled, models[1]), identical=[("pi1", "pi2")])
    pt = np.hypot(ts.p4[..., 0], ts.p4[..., 1])
    assert (pt[:, 1] >= pt[:, 2]).all()
    # the count is of the model's candidates with the softer pion first, each one swapped
    raw = labelled.sample(3 * N_SIG, seed=ts.info["seeds"]["signal"]["sample"]).p4
    raw_pt = np.hypot(raw[..., 0], raw[..., 1])
    softer_first = raw_pt[:, 1] < raw_pt[:, 2]
    assert softer_first.sum() > 0  # the count below is not vacuous
    assert ts.info["per_class"]["signal"]["reordered"] == softer_first.sum()
    np.testing.assert_array_equal(ts.p4[_class(ts, 1, True)],
                                  np.where(softer_first[:, None, None], raw[:, [0, 2, 1]], raw))  # fmt: skip
    swapped = real[0].p4[:, [0, 2, 1]]
    with pytest.raises(vaeaug.InputError, match="not ordered by decreasing pT"):
        _augment((swapped, real[1].p4), models, objects=OBJECTS, identical=[("pi1", "pi2")])
    with pytest.raises(vaeaug.InputError, match="unknown: pi3"):
        _augment(real, models, identical=[("pi1", "pi3")])


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"factor": 0}, "integer >= 1"),
        ({"factor": 2.5}, "integer >= 1"),
        ({"classes": "bkg"}, "both, signal, background"),
        ({"weights": np.ones(N_SIG)}, "both classes"),
    ],
)
def test_bad_options_are_refused(real, models, options, match):
    with pytest.raises(vaeaug.InputError, match=match):
        _augment(real, models, **options)


def test_mismatched_objects_are_refused(real, models):
    sig, bkg = real
    two = vaeaug.read_candidates(
        sig.source["file"], tree="background", objects=["K1", "pi1"], entry_stop=50
    )
    with pytest.raises(vaeaug.InputError, match="same daughters"):
        vaeaug.augment_training_set(sig, two, signal_model=models[0], progress=False)
    with pytest.raises(vaeaug.InputError, match=r"objects=.* given, but the signal"):
        vaeaug.augment_training_set(sig, bkg, objects=["a", "b", "c"], progress=False)
    with pytest.raises(vaeaug.InputError, match="signal_model generates"):
        vaeaug.augment_training_set(sig.p4, bkg.p4, objects=["K", "pa", "pb"],
                                    signal_model=models[0], progress=False)  # fmt: skip


def _tree(path):
    return uproot.open(path)["trainset"].arrays(library="np")


def test_cli_writes_the_same_set_as_the_api(real, models, train_file, tmp_path, capsys):
    for name, model in zip(("sig", "bkg"), models):
        model.save(tmp_path / f"{name}.safetensors")
    out = tmp_path / "ts.root"
    argv = ["trainset", str(train_file), "--entry-stop", str(N_SIG), "--factor", "2",
            "--signal-model", str(tmp_path / "sig.safetensors"), "--background-model",
            str(tmp_path / "bkg.safetensors"), "--identical", "pi1,pi2", "--seed", "4",
            "-o", str(out), *TINY_CLI]  # fmt: skip
    assert main(argv) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"signal {N_SIG} real + {2 * N_SIG} generated" in summary and str(out) in summary
    t = _tree(out)
    assert set(t) == {f"{o}_{c}" for o in OBJECTS for c in ("px", "py", "pz", "E")} | {
        "label", "is_generated", "weight"}  # fmt: skip
    assert t["label"].dtype == np.int8 and t["weight"].dtype == np.float64
    bkg = vaeaug.read_candidates(train_file, tree="background", objects=OBJECTS,
                                 entry_stop=N_SIG)  # fmt: skip
    api = vaeaug.augment_training_set(real[0], bkg, factor=2, seed=4, signal_model=models[0],
                                      background_model=models[1], identical=[("pi1", "pi2")],
                                      progress=False)  # fmt: skip
    np.testing.assert_array_equal(t["label"], api.label)
    np.testing.assert_array_equal(t["is_generated"], api.is_generated)
    np.testing.assert_array_equal(t["weight"], api.weight)
    np.testing.assert_allclose(t["pi2_px"], api.p4[:, 2, 0], rtol=1e-6)  # float32 branches
    for label in (0, 1):
        np.testing.assert_allclose(t["weight"][t["label"] == label].sum(), N_SIG)


def test_cli_fits_one_model_per_multiplied_class(train_file, tmp_path, capsys):
    out = tmp_path / "ts.root"
    argv = ["trainset", str(train_file), "--entry-stop", "150", "--factor", "1",
            "--classes", "background", "-o", str(out), *TINY_CLI]  # fmt: skip
    assert main(argv) == 0
    assert "signal 150 real + 0 generated, background 150 real + 150 generated" in (
        capsys.readouterr().out
    )
    t = _tree(out)
    assert ((t["label"] == 1) & (t["is_generated"] == 1)).sum() == 0
    assert ((t["label"] == 0) & (t["is_generated"] == 1)).sum() == 150


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--factor", "0"], "--factor must be an integer >= 1"),
        (["--background-tree", "nope"], "tree 'nope' not in"),
        (["--identical", "pi1,pi9"], "unknown: pi9"),
    ],
)
def test_cli_refuses_bad_options_and_leaves_no_file(train_file, tmp_path, capsys, extra, match):
    out = tmp_path / "ts.root"
    argv = ["trainset", str(train_file), "--entry-stop", "100", "-o", str(out), *extra,
            *TINY_CLI]  # fmt: skip
    assert main(argv) == 2
    assert match in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.outside_support
def test_cli_takes_the_read_options_of_the_other_commands(train_file, tmp_path, capsys):
    """--cut, --weight, --format, --support (issue #31 item 8): the selection and weights
    reach both classes, the format the output."""
    out = tmp_path / "ts.root"
    argv = ["trainset", str(train_file), "--entry-stop", "800", "--factor", "1",
            "--cut", "K1_E > 2", "--weight", "pi1_E", "--format", "rntuple",
            "--support", "warn", "-o", str(out), *TINY_CLI]  # fmt: skip
    with pytest.warns(SupportWarning):
        assert main(argv) == 0
    assert uproot.open(out).classnames() == {"trainset;1": "ROOT::RNTuple"}
    t = _tree(out)
    for label, tree in ((1, "signal"), (0, "background")):
        real = uproot.open(train_file)[tree].arrays(["K1_E", "pi1_E"], library="np",
                                                    entry_stop=800)  # fmt: skip
        selected = real["K1_E"] > 2
        in_class = t["label"] == label
        assert (in_class & (t["is_generated"] == 0)).sum() == selected.sum() < 800
        # each class weighs its (weighted) real total
        np.testing.assert_allclose(t["weight"][in_class].sum(),
                                   real["pi1_E"][selected].sum(dtype=np.float64), rtol=1e-9)  # fmt: skip
