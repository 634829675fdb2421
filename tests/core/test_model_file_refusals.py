"""``vaeaug.load`` refuses a model file whose standardizer, φ setting, learned features or
exchange groups cannot be right, whatever module holds the check.

Each case saves a tiny trained model, edits one tensor or one metadata value of the
file (the format is in :mod:`vaeaug.io.modelfile`) and checks that loading it raises
:class:`~vaeaug.errors.ModelFileError` naming the file and the problem. Every edit
keeps the rest of the file consistent, so that with the check removed the file
would load (``test_the_unedited_files_load``): the refusal comes from that check.
"""

from __future__ import annotations

import json

import pytest
import safetensors
import safetensors.torch
from tiny_settings import TINY_TRAIN, TINY_VAE

import vaeaug
from vaeaug.datasets import OBJECTS
from vaeaug.errors import ModelFileError


@pytest.fixture(scope="module")
def decay_file(tiny_model, tmp_path_factory):
    """The tiny decay model: φ uniform, learned features 0, 1, 4-11, pions 1, 2 exchanged."""
    assert tiny_model.representation.name == "decay" and tiny_model.phi_uniform
    assert tiny_model.learned == [0, 1, *range(4, 12)] and tiny_model.exchange == [[1, 2]]
    path = tmp_path_factory.mktemp("decay") / "decay.safetensors"
    tiny_model.save(path)
    return path


@pytest.fixture(scope="module")
def collider_file(toy_p4, tmp_path_factory):
    """A tiny collider-representation model (φ learned: it has no phi_uniform)."""
    model = vaeaug.fit(
        toy_p4,
        objects=OBJECTS,
        representation="collider",
        config=vaeaug.VAEConfig(**TINY_VAE),
        train=vaeaug.TrainConfig(**{**TINY_TRAIN, "epochs": 1}),
        seed=3,
        device="cpu",
        progress=False,
    )
    assert model.representation.name == "collider" and not model.phi_uniform
    assert model.learned == list(range(12))
    path = tmp_path_factory.mktemp("collider") / "collider.safetensors"
    model.save(path)
    return path


def _edited(source, tmp_path, edit):
    """A copy of the model file ``source`` with ``edit(tensors, metadata)`` applied."""
    with safetensors.safe_open(str(source), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = dict(f.metadata())
    edit(tensors, meta)
    path = tmp_path / "edited.safetensors"
    safetensors.torch.save_file(tensors, str(path), metadata=meta)
    return path


def _set_scale(index, value):
    def edit(tensors, meta):
        tensors["standardizer.scale"][index] = value

    return edit


def _set(key, value):
    def edit(tensors, meta):
        meta[key] = json.dumps(value)

    return edit


def _collider_keeping_phi_uniform(tensors, meta):
    """The decay file (φ uniform, features 2 and 3 not learned) relabelled collider, without
    the optional feature names that would tell the two 12-feature representations apart."""
    rep = json.loads(meta["representation"])
    meta["representation"] = json.dumps(
        {"name": "collider", "n_objects": 3, "masses": rep["masses"],
         "object_names": rep["object_names"]}
    )  # fmt: skip
    del meta["feature_names"]


SCALE = "the standardizer's scale has entries <= 0"
PHI = "phi_uniform needs the decay representation"
LEARNED = "'learned' lists"
EXCHANGE = "'exchange' lists"

DECAY_CASES = {
    "scale zero": (_set_scale(0, 0.0), SCALE),
    "scale negative": (_set_scale(-1, -0.5), SCALE),
    # phi_uniform draws the parent's (cos, sin) φ, features 2 and 3: learning them too
    # would give the network two sources for them
    "phi uniform, feature 2 learned": (_set("learned", [0, 1, 2, *range(5, 12)]), PHI),
    "phi uniform, feature 3 learned": (_set("learned", [0, 1, 3, *range(5, 12)]), PHI),
    "phi uniform, collider representation, phi not learned": (_collider_keeping_phi_uniform, PHI),
    "learned repeats an index": (_set("learned", [0, 0, *range(4, 12)]), LEARNED),
    "learned index beyond the features": (_set("learned", [0, 1, *range(5, 13)]), LEARNED),
    "learned index negative": (_set("learned", [-1, 1, *range(4, 12)]), LEARNED),
    "learned too short": (_set("learned", [0, 1, *range(4, 11)]), LEARNED),
    "exchange group of one": (_set("exchange", [[1]]), EXCHANGE),
    "exchange index in two groups": (_set("exchange", [[1, 2], [0, 2]]), EXCHANGE),
    "exchange index repeated": (_set("exchange", [[1, 1]]), EXCHANGE),
    "exchange index beyond the objects": (_set("exchange", [[1, 3]]), EXCHANGE),
    "exchange index negative": (_set("exchange", [[-1, 2]]), EXCHANGE),
}
COLLIDER_CASES = {
    "phi uniform, collider representation": (_set("phi_uniform", True), PHI),
}


def test_the_unedited_files_load(decay_file, collider_file):
    assert vaeaug.load(decay_file).learned == [0, 1, *range(4, 12)]
    assert vaeaug.load(collider_file).representation.name == "collider"


@pytest.mark.parametrize("case", [*DECAY_CASES, *COLLIDER_CASES])
def test_load_refuses_the_edited_file(case, decay_file, collider_file, tmp_path):
    source = decay_file if case in DECAY_CASES else collider_file
    edit, message = {**DECAY_CASES, **COLLIDER_CASES}[case]
    path = _edited(source, tmp_path, edit)
    with pytest.raises(ModelFileError, match=message) as err:
        vaeaug.load(path)
    assert f"'{path}'" in str(err.value)


def test_a_valid_edit_still_loads(decay_file, tmp_path):
    """The checks refuse wrong values, not edits: a larger positive scale and no exchange
    groups (a format-2 file has none) are a valid model."""

    def edit(tensors, meta):
        tensors["standardizer.scale"] *= 2
        meta["exchange"] = json.dumps([])

    model = vaeaug.load(_edited(decay_file, tmp_path, edit))
    assert model.exchange == []
