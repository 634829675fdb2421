"""The model file: one safetensors file, no pickle anywhere.

Layout of a ``.safetensors`` model file:

* tensors ``vae.<parameter>`` (weights and the latent prior) and
  ``standardizer.{center,scale,constant}``;
* string metadata (JSON values): ``format`` (``"vaeaug-model"``),
  ``format_version``, ``vae_config``, ``n_features``, ``feature_names``,
  ``train_config``, ``representation``, ``layout``, ``provenance``, ``history``.

safetensors holds only raw tensors and a JSON header, so loading a model file
never runs code, and it loads on a CPU-only machine whatever it was trained on.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import safetensors
import safetensors.torch
import torch

from ..errors import ModelFileError
from .atomic import atomic_output
from .layout import Layout

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "OLDEST_READABLE",
    "REQUIRED_KEYS",
    "RepresentationInfo",
    "check_model_meta",
    "check_model_tensors",
    "check_shapes",
    "read_model_file",
    "write_model_file",
]

FORMAT = "vaeaug-model"
#: Bumped when a file written by this version could not be read by an older one.
#: 2: model v2 (flow prior and decoder, support, uniform phi, log-excess and atanh features).
#: 3: ``exchange``, identical daughters generated in the input's pT order (an older reader
#: would return them in the network's random labelling).
FORMAT_VERSION = 3
#: The oldest format this version reads (format 2 files have no ``exchange`` groups).
OLDEST_READABLE = 2
#: Metadata a model cannot be rebuilt without.
REQUIRED_KEYS = ("vae_config", "n_features", "representation", "layout", "learned", "phi_uniform")


def write_model_file(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    metadata: dict,
    *,
    overwrite: bool = True,
) -> None:
    """Write tensors and JSON-serialisable metadata atomically to ``path`` (an existing file
    replaced only with ``overwrite``: :func:`~vaeaug.io.atomic_output`)."""
    meta = {key: json.dumps(value) for key, value in metadata.items()}
    meta["format"] = FORMAT
    meta["format_version"] = str(FORMAT_VERSION)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_output(path, overwrite=overwrite) as tmp:
        try:
            safetensors.torch.save_file(tensors, str(tmp), metadata=meta)
        except safetensors.SafetensorError as err:
            # an I/O failure (full disk, ulimit -f) arrives as text: keep its errno
            code = re.search(r"os error (\d+)", str(err))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from err


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
    raw_version = raw.get("format_version", "")
    if not raw_version.isdigit():
        raise ModelFileError(
            f"'{path}' has an invalid format_version {raw_version!r}; expected a whole number "
            f"(this vaeaug reads format {FORMAT_VERSION})"
        )
    version = int(raw_version)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"'{path}' has model format {version}, newer than this vaeaug reads ({FORMAT_VERSION}); upgrade vaeaug"
        )
    if version < OLDEST_READABLE:
        raise ModelFileError(
            f"'{path}' has model format {version}, written by vaeaug < 0.2 (a Gaussian-mixture "
            f"prior and other features); this vaeaug reads formats {OLDEST_READABLE} to "
            f"{FORMAT_VERSION}. Retrain "
            "the model with this version (vaeaug train ...): the training data's sha256 and "
            "settings are in the old file's JSON header (safetensors metadata)"
        )
    try:
        meta = {k: json.loads(v) for k, v in raw.items() if k not in ("format", "format_version")}
    except json.JSONDecodeError as err:
        raise ModelFileError(f"'{path}' has corrupt metadata: {err}") from err
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelFileError(
            f"'{path}' lacks the metadata {', '.join(repr(k) for k in missing)}; a vaeaug model "
            f"file holds {', '.join(REQUIRED_KEYS)} (write it with Model.save)"
        )
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ModelFileError(
            f"'{path}' has NaN or infinite values in {', '.join(bad[:5])}"
            + (f" and {len(bad) - 5} more tensors" if len(bad) > 5 else "")
            + "; the model would generate NaN: retrain it"
        )
    return tensors, meta


def check_shapes(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                 expected: Mapping[str, tuple[int, ...]], what: str) -> None:  # fmt: skip
    """Refuse tensors that are missing, unexpected or of another shape than ``expected``.

    Raises ModelFileError naming the file, the first bad tensor and both shapes;
    ``what`` says where the expected shapes come from (e.g. "the vae_config").
    """
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    if missing or extra:
        raise ModelFileError(
            f"'{path}' does not match {what}: "
            + "; ".join(
                f"{label} tensors {', '.join(names[:5])}"
                for label, names in (("missing", missing), ("unexpected", extra))
                if names
            )
        )
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != tuple(shape):
            raise ModelFileError(
                f"'{path}': tensor '{name}' has shape {tuple(tensors[name].shape)}, but {what} "
                f"implies {tuple(shape)}"
            )


def check_model_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                        network: Mapping[str, tuple[int, ...]], n_features: int) -> None:  # fmt: skip
    """Every tensor of the file against the shapes its configuration implies.

    Args:
        path: the file, named in the error.
        tensors: the file's tensors, ``vae.<parameter>`` and ``standardizer.*``.
        network: parameter name (without ``vae.``) -> shape, of a network freshly
            built from the file's ``vae_config`` and ``n_features``.
        n_features: the learned features: the standardizer holds one entry of each
            of ``center``, ``scale`` and ``constant`` per feature, every scale > 0.

    Raises:
        ModelFileError: naming the file, the tensor and both shapes, or the bad scale.
    """
    state = {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}
    check_shapes(path, state, network, "the file's vae_config and n_features")
    scaler = {k: v for k, v in tensors.items() if not k.startswith("vae.")}
    check_shapes(path, scaler, {f"standardizer.{k}": (n_features,)
                                for k in ("center", "scale", "constant")},
                 f"n_features = {n_features}")  # fmt: skip
    if not (tensors["standardizer.scale"] > 0).all():
        raise ModelFileError(f"'{path}': the standardizer's scale has entries <= 0")


class RepresentationInfo(Protocol):
    """What the checks read of a representation (:class:`vaeaug.representations.Representation`)."""

    name: str
    n_objects: int

    @property
    def n_features(self) -> int:
        """The number D of features."""
        ...

    def feature_names(self) -> list[str]:
        """The D feature names, in column order."""
        ...


def check_model_meta(path: str | os.PathLike, meta: Mapping, n_features: int,
                     representation: RepresentationInfo, layout: Layout, learned: Sequence[int],
                     phi_uniform: bool, exchange: Sequence[Sequence[int]]) -> None:  # fmt: skip
    """The representation against the learned features and the layout's objects.

    Args:
        path: the file, named in the error.
        meta: the file's metadata (its ``feature_names``, when present, must be the
            representation's).
        n_features: the features the network learns.
        representation, layout: rebuilt from the file.
        learned: the representation's feature indices the network learns: ``n_features``
            distinct indices below the representation's D.
        phi_uniform: the parent azimuth drawn uniformly: needs the decay representation
            with its (cos, sin) phi (features 2, 3) not learned.
        exchange: groups of two or more distinct object indices, each in one group.

    Raises:
        ModelFileError: naming the file, the inconsistency and what would be valid.
    """
    d = representation.n_features
    if (
        len(learned) != n_features
        or len(set(learned)) != len(learned)
        or any(not 0 <= i < d for i in learned)
    ):
        raise ModelFileError(
            f"'{path}': the network learns {n_features} features, but 'learned' lists "
            f"{learned}; valid: {n_features} distinct indices below the {representation.name} "
            f"representation's {d} features"
        )
    names = meta.get("feature_names")
    if names is not None and list(names) != representation.feature_names():
        raise ModelFileError(
            f"'{path}': the network was trained on the features {', '.join(map(str, names))}, "
            f"not those of the {representation.name} representation in the file "
            f"({', '.join(representation.feature_names())})"
        )
    if phi_uniform and (representation.name != "decay" or {2, 3} & set(learned)):
        raise ModelFileError(
            f"'{path}': phi_uniform needs the decay representation with the parent's "
            f"(cos, sin) phi (features 2, 3) left out of 'learned' ({learned})"
        )
    if representation.n_objects != layout.n_objects:
        raise ModelFileError(
            f"'{path}': the layout names {layout.n_objects} objects ({', '.join(layout.objects)}), "
            f"but the {representation.name} representation has {representation.n_objects}"
        )
    flat = [i for g in exchange for i in g]
    if (
        any(len(g) < 2 for g in exchange)
        or len(set(flat)) != len(flat)
        or any(not 0 <= i < layout.n_objects for i in flat)
    ):
        raise ModelFileError(
            f"'{path}': 'exchange' lists {exchange}; valid: groups of two or more distinct "
            f"object indices below {layout.n_objects}, each index in one group"
        )
