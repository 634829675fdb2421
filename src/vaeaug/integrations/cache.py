"""Models shipped to workers as file bytes, and loaded at most once per worker process.

A model travels to coffea and Dask workers as the bytes of its safetensors file
(no pickled torch object). Each process keeps the models it has loaded in a
cache keyed by (sha256 of the bytes, device), so that every chunk, and every
unpickled copy of the object that carries the bytes, shares one loaded model.
"""

from __future__ import annotations

import collections
import hashlib
import os
import tempfile
import threading
from pathlib import Path

import torch

from ..api import Model, load
from ..errors import InputError
from ..training import choose_device

__all__ = ["cached_model", "model_file_bytes", "model_load_count", "peek", "remember", "sha256_of"]

# One model per (sha256 of its file, device) and process.
_MODELS: dict[tuple[str, str], Model] = {}
_LOADS: collections.Counter = collections.Counter()
_LOCK = threading.Lock()


def model_file_bytes(model: Model | str | os.PathLike, who: str = "Augment") -> bytes:
    """The bytes of the model's file (written to a temporary file for a Model).

    ``who`` names the caller in the error for anything that is neither.
    """
    if isinstance(model, Model):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.safetensors"
            model.save(path)
            return path.read_bytes()
    if not isinstance(model, str | os.PathLike):
        raise InputError(
            f"{who} needs a vaeaug.Model or a model file path, got {type(model).__name__}"
        )
    try:
        return Path(model).read_bytes()
    except OSError:
        load(model, device="cpu")  # raises ModelFileError, naming the file
        raise


def sha256_of(data: bytes) -> str:
    """The hex sha256 of a model file's bytes: the cache key."""
    return hashlib.sha256(data).hexdigest()


def _from_bytes(data: bytes, device: str | torch.device) -> Model:
    # safetensors' metadata is only read from a file, so go through a private temporary one
    fd, name = tempfile.mkstemp(suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return load(name, device=device)
    finally:
        os.unlink(name)


def remember(sha256: str, model: Model) -> None:
    """Count a load of the model ``sha256`` in this process and cache it on its device."""
    with _LOCK:
        _LOADS[sha256] += 1
        _MODELS[(sha256, str(model.device))] = model


def peek(sha256: str, device: str = "cpu") -> Model | None:
    """The cached model ``sha256`` on ``device``, or None (loads nothing)."""
    with _LOCK:
        return _MODELS.get((sha256, device))


def cached_model(data: bytes, sha256: str, device: str | torch.device) -> Model:
    """The model of file bytes ``data`` on ``device``, loaded at most once per process."""
    dev = str(choose_device(device))
    with _LOCK:  # held while loading: two threads never load the same model twice
        model = _MODELS.get((sha256, dev))
        if model is None:
            model = _from_bytes(data, dev)
            _LOADS[sha256] += 1
            _MODELS[(sha256, str(model.device))] = model
    return model


def model_load_count(sha256: str) -> int:
    """How many times this process has loaded the model file with this sha256.

    ``Augment`` loads a model once per process and device (1 on a CPU worker),
    whatever the number of chunks; ``Augment.model_sha256`` gives the hash.
    """
    return _LOADS[sha256]
