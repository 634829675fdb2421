"""Model files that are wrong are refused on load, through ``info`` and ``generate``.

Each case takes a good file, breaks one thing, and checks the commands exit
with 2 and a line naming the file and the problem, and write nothing.
"""

from __future__ import annotations

import json
import resource

import pytest
import safetensors
import torch
from model_edits import edited, set_meta

import vaeaug
from vaeaug.cli import main
from vaeaug.errors import ModelFileError


@pytest.fixture(scope="module")
def good_file(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.safetensors"
    tiny_model.save(path)
    return path


def _nan_weight(tensors, meta):
    tensors["vae.encoder.0.weight"][0, 0] = float("nan")


def _short_standardizer(tensors, meta):
    tensors["standardizer.center"] = tensors["standardizer.center"][:-1].clone()


def _two_object_layout(tensors, meta):
    layout = json.loads(meta["layout"])
    layout["objects"] = layout["objects"][:2]
    meta["layout"] = json.dumps(layout)


def _bad_version(tensors, meta):
    meta["format_version"] = "abc"


def _no_layout(tensors, meta):
    del meta["layout"]


def _wrong_weight_shape(tensors, meta):
    w = tensors["vae.encoder.0.weight"]
    tensors["vae.encoder.0.weight"] = torch.zeros(w.shape[0], w.shape[1] + 1)


def _swapped_representation(tensors, meta):
    # the collider representation with fixed masses has as many features (12)
    # as the three-body decay one: only the feature names tell them apart
    rep = json.loads(meta["representation"])
    meta["representation"] = json.dumps(
        {
            "name": "collider",
            "n_objects": 3,
            "masses": rep["masses"],
            "object_names": rep["object_names"],
        }
    )


def _learned_mismatch(tensors, meta):
    meta["learned"] = json.dumps([0, 1])


def _without(key, field):
    def edit(tensors, meta):
        value = json.loads(meta[key])
        del value[field]
        meta[key] = json.dumps(value)

    return edit


def _superscript_version(tensors, meta):
    meta["format_version"] = "²"  # '²'.isdigit() is True, int('²') fails


def _huge_hidden(tensors, meta):
    config = json.loads(meta["vae_config"])
    config["hidden"] = [60000, 60000]  # 14 GB of weights if the network were built
    meta["vae_config"] = json.dumps(config)


def _provenance_source(tensors, meta):
    provenance = json.loads(meta["provenance"])
    provenance["source"] = "data.root"
    meta["provenance"] = json.dumps(provenance)


BROKEN = {
    "nan weights": (_nan_weight, "NaN or infinite values in vae.encoder.0.weight"),
    "standardizer shape": (_short_standardizer, "'standardizer.center' has shape"),
    "2-object layout": (_two_object_layout, "layout names 2 objects"),
    "format_version abc": (_bad_version, "format_version 'abc'; expected a whole number"),
    "missing layout": (_no_layout, "lacks the metadata 'layout'"),
    "weight shape": (_wrong_weight_shape, "tensor 'encoder.0.weight' has shape"),
    "swapped representation": (_swapped_representation, "not those of the collider"),
    "learned features": (_learned_mismatch, "the network learns 10 features, but 'learned'"),
    # metadata that gave tracebacks (or silently the default activation)
    "vae_config without activation": (
        _without("vae_config", "activation"),
        "metadata 'vae_config' lacks activation",
    ),
    "layout without objects": (
        _without("layout", "objects"),
        "metadata 'layout': a layout needs the keys kind, objects and components",
    ),
    "provenance a list": (set_meta("provenance", [1, 2]), "metadata 'provenance' is list"),
    "provenance a string": (set_meta("provenance", "x"), "metadata 'provenance' is str"),
    "provenance source a string": (_provenance_source, "metadata 'provenance' has a 'source'"),
    "history a string": (set_meta("history", "x"), "metadata 'history' is str"),
    "train_config a list": (set_meta("train_config", [1]), "metadata 'train_config' is list"),
    "train_config a string": (set_meta("train_config", "x"), "metadata 'train_config' is str"),
    "phi_uniform a string": (set_meta("phi_uniform", "false"), "metadata 'phi_uniform' is str"),
    "n_features not an integer": (set_meta("n_features", 10.5), "metadata 'n_features' is float"),
    "format_version superscript": (_superscript_version, "invalid format_version '²'"),
    # sizes before allocation: the file holds ~50,000 values
    "hidden 60000 x 60000": (_huge_hidden, "network parameters, but the file holds"),
}


@pytest.fixture(params=list(BROKEN))
def broken(request, good_file, tmp_path):
    edit, message = BROKEN[request.param]
    return edited(good_file, tmp_path / "broken.safetensors", edit), message


def test_a_good_file_loads(good_file, tiny_model):
    model = vaeaug.load(good_file)
    assert model.representation == tiny_model.representation


def test_load_refuses_a_broken_file(broken):
    path, message = broken
    with pytest.raises(ModelFileError, match=message) as err:
        vaeaug.load(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("command", ["info", "generate"])
def test_commands_exit_2_on_a_broken_file(broken, command, tmp_path, capsys):
    path, message = broken
    out = tmp_path / "gen.root"
    argv = ["info", str(path)]
    if command == "generate":
        argv = ["generate", str(path), "-n", "100", "-o", str(out), "-q", "--device", "cpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vaeaug {command}: error: '{path}'") and err.count("\n") == 1, err
    assert message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.safetensors"]


def test_a_huge_network_is_refused_before_it_is_allocated(good_file, tmp_path):
    """hidden [60000, 60000] in the header of a small file: refused from the sizes alone,
    without the 14 GB the network would take (the peak memory does not grow by 1 GB)."""
    path = edited(good_file, tmp_path / "huge.safetensors", _huge_hidden)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ModelFileError, match=r"hidden .60000, 60000.*the network was not built"):
        vaeaug.load(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 1_000_000


def test_info_json_is_json_only(good_file, tiny_model, capsys):
    assert main(["info", str(good_file), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["provenance"]["data_sha256"] == tiny_model.provenance["data_sha256"]
    assert meta["layout"]["objects"] == ["K1", "pi1", "pi2"]


def test_files_from_before_the_moving_average_read_as_trained_without_it(good_file, tmp_path):
    """A file whose train_config lacks ``ema_epochs`` was trained on the raw weights: its
    provenance must say so, not show today's default."""
    with safetensors.safe_open(str(good_file), framework="pt") as f:
        train_config = json.loads(f.metadata()["train_config"])
    assert train_config["ema_epochs"] == vaeaug.TrainConfig().ema_epochs > 0
    del train_config["ema_epochs"]
    path = edited(good_file, tmp_path / "older.safetensors", set_meta("train_config", train_config))
    assert vaeaug.load(path).train_config.ema_epochs == 0.0
    assert vaeaug.load(good_file).train_config.ema_epochs == vaeaug.TrainConfig().ema_epochs
