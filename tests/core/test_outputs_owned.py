"""#30: what a user owns is not replaced, and what vaeaug prints as JSON is JSON."""

from __future__ import annotations

import json

import pytest

import vaeaug
from vaeaug.cli import main
from vaeaug.errors import InputError


def test_model_save_never_replaces_a_root_file(tiny_model, toy_root, tmp_path):
    data = tmp_path / "data.root"
    data.write_bytes(toy_root.read_bytes())
    with pytest.raises(InputError, match="is a ROOT file; a model file is never written over data"):
        tiny_model.save(data)
    assert data.read_bytes() == toy_root.read_bytes()
    # an earlier model file is replaced, as Python users expect of save()
    path = tmp_path / "m.safetensors"
    tiny_model.save(path)
    tiny_model.save(path)
    assert vaeaug.load(path, device="cpu").objects == tiny_model.objects


def test_info_json_is_strict_json(tiny_model, tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    tiny_model.save(path)
    model = vaeaug.load(path, device="cpu")
    model.history = {**model.history, "score": [float("nan")]}  # a score that never came
    model.save(path)
    assert main(["info", str(path), "--json"]) == 0

    def refuse(token):
        raise AssertionError(f"not JSON: {token}")

    meta = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert meta["history"]["score"] == [None]
