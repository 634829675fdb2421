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
from model_edits import edited, set_meta
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


def _set_scale(index, value):
    def edit(tensors, meta):
        tensors["standardizer.scale"][index] = value

    return edit


def _tensor(name, change):
    """Edit the tensor ``name`` in place: ``change(t)``."""

    def edit(tensors, meta):
        change(tensors[name])

    return edit


def _swap(i, j):
    def change(t):
        t[[i, j]] = t[[j, i]]

    return change


def _json(key, change):
    """Edit the decoded metadata value of ``key`` in place: ``change(value)``."""

    def edit(tensors, meta):
        value = json.loads(meta[key])
        change(value)
        meta[key] = json.dumps(value)

    return edit


def _masses(masses):
    return _json("representation", lambda rep: rep.update(masses=masses))


def _layout(**changes):
    return _json("layout", lambda layout: layout.update(changes))


def _dtype(dtype):
    return _json("layout", lambda layout: layout["dtypes"].update(K1_px=dtype))


def _bound(side, value, observable=0):
    return _json("support", lambda support: support[side].__setitem__(observable, value))


def _flag_constant(tensors, meta):
    """Feature 0 (parent_log_pt, which varies) flagged constant with the scale 1 a
    constant feature has: only the support's training range tells."""
    tensors["standardizer.constant"][0] = 1
    tensors["standardizer.scale"][0] = 1.0


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
    "phi uniform, feature 2 learned": (set_meta("learned", [0, 1, 2, *range(5, 12)]), PHI),
    "phi uniform, feature 3 learned": (set_meta("learned", [0, 1, 3, *range(5, 12)]), PHI),
    "phi uniform, collider representation, phi not learned": (_collider_keeping_phi_uniform, PHI),
    "learned repeats an index": (set_meta("learned", [0, 0, *range(4, 12)]), LEARNED),
    "learned index beyond the features": (set_meta("learned", [0, 1, *range(5, 13)]), LEARNED),
    "learned index negative": (set_meta("learned", [-1, 1, *range(4, 12)]), LEARNED),
    "learned too short": (set_meta("learned", [0, 1, *range(4, 11)]), LEARNED),
    "exchange group of one": (set_meta("exchange", [[1]]), EXCHANGE),
    "exchange index in two groups": (set_meta("exchange", [[1, 2], [0, 2]]), EXCHANGE),
    "exchange index repeated": (set_meta("exchange", [[1, 1]]), EXCHANGE),
    "exchange index beyond the objects": (set_meta("exchange", [[1, 3]]), EXCHANGE),
    "exchange index negative": (set_meta("exchange", [[-1, 2]]), EXCHANGE),
    # the standardizer against the training ranges in the support (features: parent_log_pt,
    # parent_eta, parent_log_excess, mprime_logit, thetaprime_logit, cos_beta_atanh, ...)
    "scale collapsed: every event alike": (
        _tensor("standardizer.scale", lambda t: t.fill_(1e-9)),
        "scale of feature 'parent_log_pt' is 1e-09, but its training values span",
    ),
    "scale blown up": (
        _tensor("standardizer.scale", lambda t: t.fill_(1e9)),
        "scale of feature 'parent_log_pt' is 1e.09, but",
    ),
    "centers of parent_log_pt and parent_log_excess swapped": (
        _tensor("standardizer.center", _swap(0, 2)),
        "center of feature 'parent_log_excess' is 1.2",
    ),
    "scales of parent_log_pt and parent_log_excess swapped": (
        _tensor("standardizer.scale", _swap(0, 2)),
        "scale of feature 'parent_log_excess' is 0.5",
    ),
    "center of a cosine beyond 1": (
        _tensor("standardizer.center", lambda t: t.__setitem__(-1, 3.0)),
        r"center of feature 'gamma_sin' is 3, outside \[-1, 1\] \(a cosine or sine\)",
    ),
    "varying feature flagged constant": (
        _tensor("standardizer.constant", lambda t: t.__setitem__(0, 1)),
        "marks feature 0 constant but scales it by 0.5",
    ),
    "every feature flagged constant": (
        _tensor("standardizer.constant", lambda t: t.fill_(1)),
        r"marks feature 0 constant .* \(and 9 more features\)",
    ),
    "varying feature flagged constant with scale 1": (
        _flag_constant,
        "marks feature 'parent_log_pt' constant, but its training values span",
    ),
    "constant flag neither 0 nor 1": (
        _tensor("standardizer.constant", lambda t: t.__setitem__(0, 7)),
        "constant flags are .7, 0,",
    ),
    # exchange groups and masses: K1 0.4937 GeV, pi1 and pi2 0.1396 GeV
    "exchange joins the kaon and a pion": (
        set_meta("exchange", [[0, 1]]),
        r"exchange group \[0, 1\] \(K1, pi1\) joins daughters of masses \[0.49",
    ),
    "exchange joins all three": (set_meta("exchange", [[0, 1, 2]]), "joins daughters of masses"),
    "exchange group out of order": (set_meta("exchange", [[2, 1]]), "valid: increasing indices"),
    "kaon and pion masses swapped": (
        _masses([0.13957039, 0.493677, 0.13957039]),
        r"exchange group \[1, 2\] \(pi1, pi2\) joins daughters of masses \[0.493677, 0.13957039\]",
    ),
    "a mass of 1e30 GeV": (
        _masses([1e30, 0.13957039, 0.13957039]),
        "masses must be finite, >= 0 and at most 100000 GeV",
    ),
    "the kaon given the pion mass": (
        _masses([0.13957039] * 3),
        r"mass hypotheses .* give parent masses .* outside the training range of the parent mass",
    ),
    "the pions given the kaon mass": (
        _masses([0.493677] * 3),
        "outside the training range of the parent mass",
    ),
    # phi neither drawn nor learned: every parent at phi = 0
    "phi not uniform, not learned": (
        set_meta("phi_uniform", False),
        r"'learned' is \[0, 1, 4, .*\], but the decay representation with phi_uniform false",
    ),
    "learned features permuted": (
        set_meta("learned", [1, 0, *range(4, 12)]),
        "but the decay representation with phi_uniform true learns",
    ),
    # the support
    "support interval inverted": (_bound("lo", 99.0), r"support interval of 'K1_pt' is \[99"),
    "support bound NaN": (_bound("hi", float("nan"), 1), "support interval of 'K1_eta' is"),
    "support bound infinite": (_bound("hi", float("inf")), r"'K1_pt' is \[.*, inf\]"),
    # the layout: names unique and writable, types numeric
    "branch type bogus": (_dtype("foo"), "layout type 'foo' of branch 'K1_px' is not a numeric"),
    "branch type complex": (_dtype("complex64"), "layout type 'complex64'"),
    "branch type string": (_dtype("<U8"), "layout type '<U8'"),
    "branches used twice": (
        _layout(branches={"pi2": ["pi1_px", "pi1_py", "pi1_pz", "pi1_E"]}),
        "layout branch names pi1_E, pi1_px, pi1_py, pi1_pz are used twice",
    ),
    "object named twice": (_layout(objects=["K1", "pi1", "pi1"]), "repeat a name"),
    "object name with a slash": (
        _layout(objects=["K/1", "pi1", "pi2"]),
        "name 'K/1' is not usable",
    ),
    "object name with a space": (
        _layout(objects=["K 1", "pi1", "pi2"]),
        "name 'K 1' is not usable",
    ),
    "object name empty": (_layout(objects=["", "pi1", "pi2"]), "name '' is not usable"),
    "object name with a newline": (
        _layout(objects=["K\n1", "pi1", "pi2"]),
        r"name 'K\\n1' is not usable",
    ),
    "components bogus": (_layout(components=["a", "b", "c", "d"]), "layout components"),
    "layout kind bogus": (_layout(kind="weird"), "layout kind 'weird' unknown"),
    "layout format bogus": (_layout(format="hdf5"), "layout format 'hdf5' unknown"),
    # per-object labels (charge) written with generated candidates
    "label pattern of the wrong width": (
        _layout(
            labels={"names": ["charge"], "dtypes": ["int32"], "patterns": [[-1, 1]], "counts": [5]}
        ),
        r"layout labels \['charge'\] are inconsistent",
    ),
    "label of a float type": (
        _layout(
            labels={
                "names": ["charge"],
                "dtypes": ["float32"],
                "patterns": [[-1, 1, 1]],
                "counts": [5],
            }
        ),
        "are inconsistent",
    ),
    "label name with a slash": (
        _layout(
            labels={"names": ["q/x"], "dtypes": ["int8"], "patterns": [[-1, 1, 1]], "counts": [5]}
        ),
        "layout label name 'q/x' is not usable",
    ),
}
COLLIDER_CASES = {
    "phi uniform, collider representation": (set_meta("phi_uniform", True), PHI),
}


def test_the_unedited_files_load(decay_file, collider_file):
    assert vaeaug.load(decay_file).learned == [0, 1, *range(4, 12)]
    assert vaeaug.load(collider_file).representation.name == "collider"


@pytest.mark.parametrize("case", [*DECAY_CASES, *COLLIDER_CASES])
def test_load_refuses_the_edited_file(case, decay_file, collider_file, tmp_path):
    source = decay_file if case in DECAY_CASES else collider_file
    edit, message = {**DECAY_CASES, **COLLIDER_CASES}[case]
    path = edited(source, tmp_path / "edited.safetensors", edit)
    with pytest.raises(ModelFileError, match=message) as err:
        vaeaug.load(path)
    assert f"'{path}'" in str(err.value)


def test_a_valid_edit_still_loads(decay_file, tmp_path):
    """The checks refuse wrong values, not edits: a larger positive scale, no exchange
    groups (a format-2 file has none), an integer branch type and a tree name with a
    directory are a valid model."""

    def edit(tensors, meta):
        # still within each feature's training range (a scale is at most its width / 1.349)
        tensors["standardizer.scale"] *= 1.3
        meta["exchange"] = json.dumps([])
        # an integer input branch (written back as float64) and a tree in a directory
        layout = json.loads(meta["layout"])
        layout["dtypes"]["K1_px"] = "int8"
        layout["tree"] = "Tuple/DecayTree"
        meta["layout"] = json.dumps(layout)

    model = vaeaug.load(edited(decay_file, tmp_path / "edited.safetensors", edit))
    assert model.exchange == []
    assert model.layout.output_dtype("K1_px") == "float64"
