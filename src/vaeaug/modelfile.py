"""The model file: one safetensors file, no pickle anywhere.

Layout of a ``.safetensors`` model file:

* tensors ``vae.<parameter>`` (weights and the latent prior) and
  ``standardizer.{center,scale,constant}``;
* string metadata (JSON values): ``format`` (``"vaeaug-model"``),
  ``format_version``, ``vae_config``, ``train_config``, ``representation``,
  ``layout``, ``provenance``, ``history``.

safetensors holds only raw tensors and a JSON header, so loading a model file
never runs code, and it loads on a CPU-only machine whatever it was trained on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from .errors import ModelFileError
from .io.atomic import atomic_output

__all__ = ["FORMAT", "FORMAT_VERSION", "read_model_file", "write_model_file"]

FORMAT = "vaeaug-model"
#: Bumped when a file written by this version could not be read by an older one.
#: 2: model v2 (flow prior, support, uniform phi, log-excess mass and atanh features).
FORMAT_VERSION = 2


def write_model_file(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict
) -> None:
    """Write tensors and JSON-serialisable metadata atomically to ``path``."""
    meta = {key: json.dumps(value) for key, value in metadata.items()}
    meta["format"] = FORMAT
    meta["format_version"] = str(FORMAT_VERSION)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_output(path) as tmp:
        safetensors.torch.save_file(tensors, str(tmp), metadata=meta)


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a model file: (tensors on the CPU, decoded metadata).

    Raises:
        ModelFileError: missing, not a safetensors file, not a vaeaug model,
            or written by a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file '{path}' does not exist")
    try:
        with safetensors.safe_open(str(path), framework="pt", device="cpu") as f:
            raw = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise ModelFileError(
            f"'{path}' is not a readable model file (corrupt or not safetensors: {err})"
        ) from err
    if raw.get("format") != FORMAT:
        raise ModelFileError(
            f"'{path}' is a safetensors file but not a vaeaug model (format {raw.get('format')!r})"
        )
    try:
        version = int(raw.get("format_version", "0"))
    except ValueError:
        raise ModelFileError(
            f"'{path}' has an invalid format_version {raw.get('format_version')!r} (an integer "
            f"from 1 to {FORMAT_VERSION} is valid)"
        ) from None
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"'{path}' has model format {version}, newer than this vaeaug reads ({FORMAT_VERSION}); upgrade vaeaug"
        )
    if version < FORMAT_VERSION:
        raise ModelFileError(
            f"'{path}' has model format {version}, written by vaeaug < 0.2 (a Gaussian-mixture "
            f"prior and other features); this vaeaug reads format {FORMAT_VERSION} only. Retrain "
            "the model with this version (vaeaug train ...): the training data's sha256 and "
            "settings are in the old file's header (vaeaug info --json shows them)"
        )
    try:
        meta = {k: json.loads(v) for k, v in raw.items() if k not in ("format", "format_version")}
    except json.JSONDecodeError as err:
        raise ModelFileError(f"'{path}' has corrupt metadata: {err}") from err
    return tensors, meta
