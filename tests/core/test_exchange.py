"""Identical daughters labelled by decreasing pT: learned exchange-symmetric, generated in order."""

from __future__ import annotations

import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch
from tiny_settings import TINY_TRAIN, TINY_VAE

import vaeaug
import vaeaug.api
from vaeaug.cli import main
from vaeaug.datasets import OBJECTS, dimuon_continuum
from vaeaug.model.symmetry import order_by_pt, pt_ordered_groups, shuffle_within

PION, KAON = 0.13957039, 0.493677


def _pt(p4: np.ndarray) -> np.ndarray:
    return np.hypot(p4[..., 0], p4[..., 1])


def _fit(p4, **kwargs):
    return vaeaug.fit(p4, objects=OBJECTS, config=vaeaug.VAEConfig(**TINY_VAE),
                      train=vaeaug.TrainConfig(**TINY_TRAIN), seed=3, device="cpu",
                      progress=False, **kwargs)  # fmt: skip


def _swap(p4: np.ndarray, a: int, b: int, rows: np.ndarray) -> np.ndarray:
    out = p4.copy()
    out[rows, a], out[rows, b] = p4[rows, b], p4[rows, a]
    return out


@pytest.fixture
def trained_on(monkeypatch) -> list[np.ndarray]:
    """The standardized features (N, D_learned) each ``fit`` of the test hands to training."""
    seen = []
    train_vae = vaeaug.api.train_vae

    def spy(vae, x, *args, **kwargs):
        seen.append(x.copy())
        return train_vae(vae, x, *args, **kwargs)

    monkeypatch.setattr(vaeaug.api, "train_vae", spy)
    return seen


def test_groups_are_equal_mass_daughters_ordered_by_pt_on_every_candidate(toy_p4):
    assert pt_ordered_groups(toy_p4, [KAON, PION, PION]) == [[1, 2]]
    # one candidate out of order: the labels carry something else (a charge), no group
    disordered = _swap(toy_p4, 1, 2, np.array([17]))
    assert pt_ordered_groups(disordered, [KAON, PION, PION]) == []
    # the same ordering, but different mass hypotheses: distinguishable daughters
    assert pt_ordered_groups(toy_p4, [KAON, PION, 0.1057]) == []
    assert pt_ordered_groups(toy_p4, None) == []
    # D0 -> K- pi+ pi+ pi-: the ordered pi+ pair is a group, the pi- that breaks the order
    # is not in it
    rng = np.random.default_rng(0)
    pi_minus = toy_p4[rng.permutation(len(toy_p4)), 2:3]
    four = np.concatenate([toy_p4, pi_minus], axis=1)
    assert pt_ordered_groups(four, [KAON, PION, PION, PION]) == [[1, 2]]
    # three ordered identical daughters are one group
    three = np.concatenate([toy_p4[:, :1], order_by_pt(four[:, 1:].copy(), [[0, 1, 2]])], axis=1)
    assert pt_ordered_groups(three, [KAON, PION, PION, PION]) == [[1, 2, 3]]


def test_order_by_pt_sorts_each_group_stably_on_numpy_and_torch():
    rng = np.random.default_rng(1)
    p4 = rng.normal(size=(500, 5, 4))
    p4[:50, 3] = p4[:50, 1]  # ties keep their order
    groups = [[1, 3, 4], [0, 2]]
    out = order_by_pt(p4.copy(), groups)
    expected = p4.copy()
    for g in groups:
        order = np.argsort(-_pt(p4[:, g]), axis=1, kind="stable")
        expected[:, g] = np.take_along_axis(p4[:, g], order[..., None], axis=1)
    np.testing.assert_array_equal(out, expected)
    on_torch = order_by_pt(torch.as_tensor(p4.copy()), groups)
    np.testing.assert_array_equal(on_torch.numpy(), expected)


def test_shuffle_within_gives_every_order_from_a_seed(toy_p4):
    a = shuffle_within(toy_p4, [[1, 2]], np.random.default_rng(5))
    np.testing.assert_array_equal(a, shuffle_within(toy_p4, [[1, 2]], np.random.default_rng(5)))
    np.testing.assert_array_equal(a[:, 0], toy_p4[:, 0])
    swapped = (a[:, 1] != toy_p4[:, 1]).any(axis=1)
    np.testing.assert_array_equal(a[swapped, 1], toy_p4[swapped, 2])
    assert 0.45 < swapped.mean() < 0.55  # 2,000 fair coins: 4.5 sigma either side


@pytest.mark.outside_support
def test_the_network_learns_shuffled_labels_and_generates_the_input_order(toy_p4, trained_on):
    model = _fit(toy_p4)
    x = trained_on[0]
    assert model.exchange == [[1, 2]]
    # the candidates the network was trained on: the pions in a random order
    learned_p4 = model.representation.from_features(_full_features(model, x))
    pt = _pt(learned_p4)
    assert 0.4 < np.mean(pt[:, 1] < pt[:, 2]) < 0.6
    # decoding them (to_p4, the one decoding path) puts them back in the input's order
    phi_noise = np.zeros((len(x), int(model.phi_uniform)))
    decoded, _ = model.to_p4(np.concatenate([x, phi_noise], axis=1))
    assert np.all(_pt(decoded)[:, 1] >= _pt(decoded)[:, 2])
    # every generated candidate is in the input's order, redraws included
    gen = model.sample(5_000, seed=2).p4
    assert np.all(_pt(gen)[:, 1] >= _pt(gen)[:, 2])

    off = _fit(toy_p4, exchange="off")
    assert off.exchange == []
    with pytest.raises(
        vaeaug.InputError, match="exchange must be one of auto, symmetric, sort, off"
    ):
        _fit(toy_p4, exchange="yes")


def test_sort_learns_the_labels_as_given_and_generates_them_in_order(toy_p4, trained_on):
    sort, off = _fit(toy_p4, exchange="sort"), _fit(toy_p4, exchange="off")
    assert sort.exchange == [[1, 2]] and off.exchange == []
    assert sort.provenance["exchange_mode"] == "sort"
    # the same training as "off": the labels as the input gives them
    np.testing.assert_array_equal(trained_on[0], trained_on[1])
    # the same network, so the same candidates, each put in the input's order
    gen_off = off.sample(5_000, seed=2, support="off").p4
    gen_sort = sort.sample(5_000, seed=2, support="off").p4
    misordered = _pt(gen_off)[:, 1] < _pt(gen_off)[:, 2]
    assert misordered.any()
    np.testing.assert_array_equal(gen_sort, order_by_pt(gen_off.copy(), [[1, 2]]))


@pytest.mark.outside_support
def test_auto_learns_two_body_labels_as_given_and_generates_them_in_order(
    tmp_path, trained_on, capsys
):
    pairs = dimuon_continuum(1_500, seed=4)  # mu1 = the muon of higher pT
    model = vaeaug.fit(pairs, objects=["mu1", "mu2"], config=vaeaug.VAEConfig(**TINY_VAE),
                       train=vaeaug.TrainConfig(**TINY_TRAIN), seed=3, device="cpu",
                       progress=False)  # fmt: skip
    assert model.exchange == [[0, 1]] and model.provenance["exchange_mode"] == "sort"
    # trained on the pairs as labelled (a shuffle would put the softer muon first in half)
    learned_p4 = model.representation.from_features(_full_features(model, trained_on[0]))
    assert np.all(_pt(learned_p4)[:, 0] >= _pt(learned_p4)[:, 1] * (1 - 1e-9))
    gen = model.sample(3_000, seed=1).p4
    assert np.all(_pt(gen)[:, 0] >= _pt(gen)[:, 1])
    # and info says so
    path = tmp_path / "mumu.safetensors"
    model.save(path)
    assert main(["info", str(path)]) == 0
    assert "identical daughters mu1, mu2: learned as labelled, generated in decreasing pT" in (
        capsys.readouterr().out
    )


def _full_features(model, x: np.ndarray) -> np.ndarray:
    """The representation's features (N, D) of the network's standardized training features."""
    full = np.zeros((len(x), model.representation.n_features))
    full[:, model.learned] = model.standardizer.inverse(x)
    if model.phi_uniform:  # the parent azimuth is not learned: any angle decodes
        full[:, 2], full[:, 3] = 1.0, 0.0
    return full


def test_exchange_survives_the_model_file_and_format_2_files_read_without(tiny_model, tmp_path):
    assert tiny_model.exchange == [[1, 2]]
    path = tmp_path / "m.safetensors"
    tiny_model.save(path)
    assert vaeaug.load(path).exchange == [[1, 2]]
    with safetensors.safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    old = tmp_path / "v2.safetensors"
    meta2 = {k: v for k, v in meta.items() if k != "exchange"}
    safetensors.torch.save_file(tensors, str(old), metadata={**meta2, "format_version": "2"})
    assert vaeaug.load(old).exchange == []
    bad = tmp_path / "bad.safetensors"
    safetensors.torch.save_file(tensors, str(bad), metadata={**meta, "exchange": "[[1, 7]]"})
    with pytest.raises(vaeaug.ModelFileError, match=r"'exchange' lists \[\[1, 7\]\]"):
        vaeaug.load(bad)
