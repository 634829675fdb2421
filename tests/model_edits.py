"""Edited copies of a model file, for the tests of what loading one refuses."""

from __future__ import annotations

import json

import safetensors
import safetensors.torch


def edited(source, path, edit):
    """Write to ``path`` a copy of the model file ``source`` with ``edit(tensors, metadata)``
    applied (the metadata as the file stores it: JSON strings); returns ``path``."""
    with safetensors.safe_open(str(source), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = dict(f.metadata())
    edit(tensors, meta)
    safetensors.torch.save_file(tensors, str(path), metadata=meta)
    return path


def set_meta(key, value):
    """An edit that sets the metadata ``key`` to the JSON of ``value``."""

    def edit(tensors, meta):
        meta[key] = json.dumps(value)

    return edit
