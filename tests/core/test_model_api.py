"""fit / sample / save / load through the public API."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from tiny_settings import TINY_TRAIN, TINY_VAE

import vaeaug
from vaeaug.api import ConstantFeatureWarning
from vaeaug.datasets import KAON_MASS, OBJECTS, PION_MASS
from vaeaug.errors import InputError, ModelFileError
from vaeaug.representations.choice import RepresentationWarning, infer_masses


def _fit(p4, **kw):
    kw.setdefault("config", vaeaug.VAEConfig(**TINY_VAE))
    kw.setdefault("train", vaeaug.TrainConfig(**TINY_TRAIN))
    return vaeaug.fit(p4, objects=OBJECTS, device="cpu", progress=False, **kw)


def test_auto_representation_is_decay_with_inferred_masses(tiny_model):
    rep = tiny_model.representation
    assert rep.name == "decay"
    np.testing.assert_allclose(
        rep.to_dict()["masses"], [KAON_MASS, PION_MASS, PION_MASS], rtol=1e-6
    )
    assert tiny_model.provenance["n_events"] == 2000
    assert len(tiny_model.history["val"]) == len(tiny_model.history["train"]) >= 1


@pytest.mark.outside_support
def test_sample_shapes_physics_and_forms(tiny_model):
    gen = tiny_model.sample(5_000, seed=1)
    assert gen.p4.shape == (5_000, 3, 4) and np.isfinite(gen.p4).all()
    # the decay representation makes daughter masses exact by construction
    m = np.sqrt(gen.p4[..., 3] ** 2 - (gen.p4[..., :3] ** 2).sum(-1))
    np.testing.assert_allclose(m, [[KAON_MASS, PION_MASS, PION_MASS]] * 5000, atol=1e-6)
    arrays = gen.to_numpy()
    assert list(arrays) == tiny_model.layout.branch_names()
    assert all(a.dtype == np.float32 for a in arrays.values())
    events = gen.to_awkward()
    np.testing.assert_allclose(
        np.asarray((events.K1 + events.pi1 + events.pi2).mass), gen.mass, rtol=1e-9
    )


def test_a_sample_larger_than_the_memory_is_refused_up_front(tiny_model):
    """10**12 candidates in one array (96 TB): an InputError naming n, the largest n that
    fits and the streaming alternatives, not numpy's MemoryError traceback."""
    with pytest.raises(InputError, match=r"1,000,000,000,000 candidates .* valid: n <= [\d,]+, "
                                         r"or stream them \(Model.iter_samples"):  # fmt: skip
        tiny_model.sample(10**12)


@pytest.mark.outside_support
def test_same_seed_same_events_whatever_the_chunking(tiny_model):
    # within one random-number block; across blocks: tests/test_generation.py
    a = tiny_model.sample(20_000, seed=11).p4
    b = tiny_model.sample(20_000, seed=11, chunk_size=7_000).p4
    c = np.concatenate(list(tiny_model.iter_samples(20_000, seed=11, chunk_size=4_099)))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a[:1000], tiny_model.sample(1000, seed=12).p4)


@pytest.mark.outside_support
def test_training_is_reproducible_from_the_seed(toy_p4):
    a = _fit(toy_p4[:500], seed=5)
    b = _fit(toy_p4[:500], seed=5)
    np.testing.assert_array_equal(a.sample(100, seed=0).p4, b.sample(100, seed=0).p4)
    assert a.history["val"] == b.history["val"]


@pytest.mark.outside_support
def test_save_load_round_trip(tiny_model, tmp_path):
    path = tmp_path / "m.safetensors"
    tiny_model.save(path)
    loaded = vaeaug.load(path)
    np.testing.assert_array_equal(
        loaded.sample(3000, seed=4).p4, tiny_model.sample(3000, seed=4).p4
    )
    assert loaded.provenance == tiny_model.provenance
    assert loaded.layout == tiny_model.layout
    assert loaded.config == tiny_model.config
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left


def test_model_file_is_safetensors_without_pickle(tiny_model, tmp_path):
    path = tmp_path / "m.safetensors"
    tiny_model.save(path)
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    meta = header.pop("__metadata__")
    assert meta["format"] == "vaeaug-model"
    assert {"vae_config", "representation", "layout", "provenance", "history"} <= set(meta)
    prov = json.loads(meta["provenance"])
    assert {"vaeaug_version", "data_sha256", "seed", "n_events", "source"} <= set(prov)
    # every entry is a raw tensor; the rest of the file is their bytes
    assert all(set(v) == {"dtype", "shape", "data_offsets"} for v in header.values())
    assert 8 + header_len + max(v["data_offsets"][1] for v in header.values()) == len(raw)
    assert b"\x80\x04\x95" not in raw[: 8 + header_len] and not raw.startswith(b"PK")


def test_corrupt_and_foreign_model_files(tiny_model, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        vaeaug.load(tmp_path / "missing.safetensors")
    good = tmp_path / "m.safetensors"
    tiny_model.save(good)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="not a readable model file"):
        vaeaug.load(cut)
    import safetensors.torch

    foreign = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ModelFileError, match="not a vaeaug model"):
        vaeaug.load(foreign)
    newer = tmp_path / "newer.safetensors"
    tensors = safetensors.torch.load_file(str(good))
    with safetensors.safe_open(str(good), "pt") as f:
        meta = dict(f.metadata())
    meta["format_version"] = "99"
    safetensors.torch.save_file(tensors, str(newer), metadata=meta)
    with pytest.raises(ModelFileError, match="newer than this vaeaug"):
        vaeaug.load(newer)


@pytest.mark.outside_support
def test_collider_and_cartesian_representations_train_and_sample(toy_p4):
    for name in ("collider", "cartesian"):
        model = _fit(toy_p4[:600], representation=name)
        assert model.representation.name == name
        # a tiny model on 600 candidates leaves its support: kept here ("reject" would stop)
        gen = model.sample(500, seed=0, support="warn")
        assert gen.p4.shape == (500, 3, 4) and np.isfinite(gen.p4).all()


def test_weights_change_training(toy_p4):
    p4 = toy_p4[:600]
    w = np.where(p4[:, 0, 3] > np.median(p4[:, 0, 3]), 1.0, 0.05)
    a, b = _fit(p4, seed=1), _fit(p4, seed=1, weights=w)
    assert a.history["val"] != b.history["val"]
    with pytest.raises(InputError, match="weights must be"):
        _fit(p4, weights=-w)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p4: _fit(p4[:20]), "too few events"),
        (lambda p4: _fit(p4[:, :2, :3]), r"shape \(N, k, 4\)"),
        (lambda p4: _fit(p4, representation="polar"), "valid: auto, cartesian, collider, decay"),
        (lambda p4: _fit(p4, masses=[0.1, 0.2]), "2 masses given for 3 objects"),
        (
            lambda p4: vaeaug.fit(p4, objects=["a", "b"], progress=False),
            "2 object names given for 3",
        ),
    ],
)
def test_bad_fit_input(toy_p4, call, message):
    with pytest.raises(InputError, match=message):
        call(toy_p4)


def test_varying_masses_are_refused_for_decay_and_auto_falls_back(toy_p4):
    p4 = toy_p4[:600].copy()
    p4[:, 0, 3] *= np.random.default_rng(0).uniform(1.0, 1.2, len(p4))
    with pytest.raises(InputError, match="mass of 'K1' varies"):
        infer_masses(p4, OBJECTS)
    # never silent: the fallback says which representation, why, and what to give
    with (
        pytest.warns(ConstantFeatureWarning),  # the pions' mass features are constant
        pytest.warns(
            RepresentationWarning, match=r"'collider' chosen.*mass of 'K1' varies.*masses="
        ),
    ):
        model = _fit(p4)
    assert model.representation.name == "collider"
    assert "'collider' chosen" in model.provenance["representation_choice"]


def test_fit_accepts_a_mapping_of_branches(toy_p4):
    branches = {
        f"{o}_{c}": toy_p4[:400, j, i].astype("f4")
        for j, o in enumerate(OBJECTS)
        for i, c in enumerate(("px", "py", "pz", "E"))
    }
    model = vaeaug.fit(
        branches,
        config=vaeaug.VAEConfig(**TINY_VAE),
        train=vaeaug.TrainConfig(**TINY_TRAIN),
        progress=False,
    )
    assert model.objects == list(OBJECTS)
