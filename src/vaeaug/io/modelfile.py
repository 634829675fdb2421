"""The model file: one safetensors file, no pickle anywhere.

Layout of a ``.safetensors`` model file:

* tensors ``vae.<parameter>`` (weights and the latent prior) and
  ``standardizer.{center,scale,constant}``;
* string metadata (JSON values): ``format`` (``"vaeaug-model"``),
  ``format_version``, ``vae_config``, ``n_features``, ``feature_names``,
  ``train_config``, ``representation``, ``layout``, ``provenance``, ``history``.

An *ensemble* file (:class:`vaeaug.ensemble.Ensemble`, ``fit(..., ensemble=K)``) is one
safetensors file too: member ``i``'s tensors are prefixed ``member<i>.`` (``member0.vae.*``,
``member0.standardizer.*``), the metadata ``ensemble`` holds K and ``member<i>`` holds that
member's metadata object, exactly what a single model file holds as separate keys (each
member is checked as a single model is). It carries ``format_version``
``ENSEMBLE_FORMAT_VERSION`` (4), so a vaeaug that reads only single models (formats 2-3)
refuses it as "newer than this vaeaug reads" instead of misreading it; single model files
keep ``FORMAT_VERSION`` 3, and a format-4 file without ``ensemble`` is refused. The
metadata ``out_of_bag`` holds the ensemble's out-of-bag check (absent in files written
before it, whose validation band is then the members' spread alone).

safetensors holds only raw tensors and a JSON header, so loading a model file
never runs code, and it loads on a CPU-only machine whatever it was trained on.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import safetensors
import safetensors.torch
import torch

from ..errors import ModelFileError
from ..model.symmetry import MASS_RTOL
from .atomic import atomic_output
from .layout import Layout

__all__ = [
    "ENSEMBLE_FORMAT_VERSION",
    "FORMAT",
    "FORMAT_VERSION",
    "META_TYPES",
    "OLDEST_READABLE",
    "REQUIRED_KEYS",
    "VAE_CONFIG_FIELDS",
    "RepresentationInfo",
    "SupportInfo",
    "check_meta_types",
    "check_model_meta",
    "check_model_ranges",
    "check_model_tensors",
    "check_network_size",
    "check_shapes",
    "check_standardizer",
    "member_parts",
    "read_model_file",
    "write_model_file",
]

FORMAT = "vaeaug-model"
#: Bumped when a file written by this version could not be read by an older one.
#: 2: model v2 (flow prior and decoder, support, uniform phi, log-excess and atanh features).
#: 3: ``exchange``, identical daughters generated in the input's pT order (an older reader
#: would return them in the network's random labelling).
FORMAT_VERSION = 3
#: The format of an ensemble file (K models in one file): never a single model's.
ENSEMBLE_FORMAT_VERSION = 4
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
    format_version: int = FORMAT_VERSION,
) -> None:
    """Write tensors and JSON-serialisable metadata atomically to ``path`` (an existing file
    replaced only with ``overwrite``: :func:`~vaeaug.io.atomic_output`); ``format_version``:
    ``ENSEMBLE_FORMAT_VERSION`` for an ensemble file."""
    meta = {key: json.dumps(value) for key, value in metadata.items()}
    meta["format"] = FORMAT
    meta["format_version"] = str(format_version)
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

    Of an ensemble file, the metadata holds ``ensemble`` (K) and ``members``: K metadata
    objects, each checked as a single model's (:func:`member_parts` splits the tensors).

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
    # ASCII digits only: str.isdigit() also accepts '²', which int() refuses
    if not (raw_version.isascii() and raw_version.isdigit()):
        raise ModelFileError(
            f"'{path}' has an invalid format_version {raw_version!r}; expected a whole number "
            f"(this vaeaug reads format {FORMAT_VERSION})"
        )
    version = int(raw_version)
    if version > ENSEMBLE_FORMAT_VERSION or (version > FORMAT_VERSION and "ensemble" not in raw):
        raise ModelFileError(
            f"'{path}' has model format {version}, newer than this vaeaug reads ({FORMAT_VERSION}; {ENSEMBLE_FORMAT_VERSION} for an "
            "ensemble file with its 'ensemble' metadata); upgrade vaeaug"
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
    if "ensemble" in meta:
        meta = _ensemble_meta(path, meta, version, tensors)
    else:
        _check_required(path, meta)
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ModelFileError(
            f"'{path}' has NaN or infinite values in {', '.join(bad[:5])}"
            + (f" and {len(bad) - 5} more tensors" if len(bad) > 5 else "")
            + "; the model would generate NaN: retrain it"
        )
    return tensors, meta


def _check_required(path, meta: Mapping) -> None:
    """One model's metadata: every key of ``REQUIRED_KEYS``, each of its JSON type."""
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelFileError(
            f"'{path}' lacks the metadata {', '.join(repr(k) for k in missing)}; a vaeaug model "
            f"file holds {', '.join(REQUIRED_KEYS)} (write it with Model.save)"
        )
    check_meta_types(path, meta)


def _ensemble_meta(path, meta: dict, version: int, tensors: Mapping) -> dict:
    """An ensemble file's metadata: ``{"ensemble": K, "members": [meta_0, ...]}``, each
    member's checked as a single model's, every tensor under one member's prefix."""
    k = meta["ensemble"]
    if not (_integer(k) and 2 <= k <= 1000):
        raise ModelFileError(
            f"'{path}': metadata 'ensemble' is {_abbreviated(k)}; valid: the number of members, "
            "an integer from 2 to 1000"
        )
    if version != ENSEMBLE_FORMAT_VERSION:
        raise ModelFileError(
            f"'{path}': an ensemble of {k} members in model format {version}; ensemble files "
            f"have format {ENSEMBLE_FORMAT_VERSION}"
        )
    members = []
    for i in range(k):
        member = meta.get(f"member{i}")
        if not isinstance(member, dict):
            raise ModelFileError(
                f"'{path}': ensemble of {k} members without the metadata object 'member{i}' "
                f"(found {_abbreviated(member)})"
            )
        _check_required(f"{path}' member '{i}", member)
        members.append(member)
    owner = [re.fullmatch(r"member(0|[1-9]\d*)\..+", n) for n in tensors]
    stray = [n for n, m in zip(tensors, owner) if m is None or int(m.group(1)) >= k]
    if stray:
        raise ModelFileError(
            f"'{path}': tensors {', '.join(stray[:5])} belong to no member of the ensemble of "
            f"{k} (valid: member0. ... member{k - 1}. prefixes)"
        )
    return {"ensemble": k, "members": members, "out_of_bag": _out_of_bag(path, meta)}


def _out_of_bag(path, meta: Mapping) -> dict | None:
    """An ensemble's out-of-bag check (:func:`vaeaug.ensemble.out_of_bag_check`), or None
    in a file written before it: ``shared_variance`` a finite number >= 0 or null."""
    oob = meta.get("out_of_bag")
    if oob is None:
        return None
    shared = oob.get("shared_variance", "missing") if isinstance(oob, dict) else "missing"
    if not (shared is None or (_number(shared) and math.isfinite(shared) and shared >= 0)):
        raise ModelFileError(
            f"'{path}': metadata 'out_of_bag' has shared_variance {_abbreviated(shared)}; "
            "valid: a finite number >= 0, or null (no out-of-bag candidates)"
        )
    return oob


def member_parts(tensors: Mapping[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    """Member ``i``'s tensors of an ensemble file, without their ``member<i>.`` prefix."""
    prefix = f"member{i}."
    return {n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)}


def _integer(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _integer_list(v: object) -> bool:
    return isinstance(v, list) and all(_integer(i) for i in v)


def _history(v: object) -> bool:
    """Per-epoch lists of numbers (NaN and None allowed) and single numbers (best_epoch)."""

    def entry(x):
        return x is None or _number(x)

    return isinstance(v, dict) and all(
        entry(x) or (isinstance(x, list) and all(entry(y) for y in x)) for x in v.values()
    )


#: Metadata key -> (test of its decoded JSON value, the valid values in words). Keys not
#: in a file (the optional ones) are not tested.
META_TYPES = {
    "vae_config": (lambda v: isinstance(v, dict), "a JSON object (the VAEConfig fields)"),
    "n_features": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "representation": (lambda v: isinstance(v, dict), "a JSON object with a 'name'"),
    "layout": (lambda v: isinstance(v, dict), "a JSON object (kind, objects, components, ...)"),
    "learned": (_integer_list, "a list of feature indices"),
    "phi_uniform": (lambda v: isinstance(v, bool), "true or false"),
    "exchange": (
        lambda v: isinstance(v, list) and all(_integer_list(g) for g in v),
        "a list of lists of object indices",
    ),
    "support": (lambda v: v is None or isinstance(v, dict), "null or a JSON object"),
    "feature_names": (
        lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
        "a list of feature names",
    ),
    "train_config": (lambda v: isinstance(v, dict), "a JSON object (the TrainConfig fields)"),
    "provenance": (lambda v: isinstance(v, dict), "a JSON object"),
    "history": (_history, "a JSON object of numbers and lists of numbers"),
}
#: The vae_config fields every model file since format 2 records. Fields added later
#: (decoder_passes, prior_flow, decoder_flow) take VAEConfig's defaults; one of these
#: missing would silently change the network (an activation) or its shapes.
VAE_CONFIG_FIELDS = ("latent_dim", "hidden", "activation", "beta", "prior", "prior_transforms",
                     "prior_hidden", "min_log_scale", "decoder", "decoder_transforms")  # fmt: skip


def check_meta_types(path: str | os.PathLike, meta: Mapping) -> None:
    """Every metadata value of the JSON type :meth:`vaeaug.Model.save` writes (``META_TYPES``),
    the vae_config with every field of ``VAE_CONFIG_FIELDS``, and as many representation
    objects as layout objects (checked before either is built: a representation of 10**9
    objects would fill the memory with their names).

    Raises:
        ModelFileError: naming the file, the key and its valid values.
    """
    for key, (test, valid) in META_TYPES.items():
        if key in meta and not test(meta[key]):
            raise ModelFileError(
                f"'{path}': metadata '{key}' is {_abbreviated(meta[key])}; valid: {valid}"
            )
    source = meta.get("provenance", {}).get("source")
    if source is not None and not isinstance(source, dict):
        raise ModelFileError(
            f"'{path}': metadata 'provenance' has a 'source' {_abbreviated(source)}; valid: "
            "null or a JSON object (file, tree, ...)"
        )
    if missing := [f for f in VAE_CONFIG_FIELDS if f not in meta["vae_config"]]:
        raise ModelFileError(
            f"'{path}': metadata 'vae_config' lacks {', '.join(missing)}; a model file records "
            f"{', '.join(VAE_CONFIG_FIELDS)}"
        )
    n_objects = meta["representation"].get("n_objects")
    objects = meta["layout"].get("objects")
    if isinstance(objects, list) and n_objects != len(objects):
        raise ModelFileError(
            f"'{path}': the layout names {len(objects)} objects ({', '.join(map(str, objects))}), "
            f"but the {meta['representation'].get('name')} representation has {n_objects}"
        )


def _abbreviated(value: object) -> str:
    """A JSON value for a message: its type and at most 60 characters of it."""
    text = json.dumps(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


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
                        network: Mapping[str, tuple[int, ...]]) -> None:  # fmt: skip
    """Every network tensor of the file against the shapes its configuration implies.

    Args:
        path: the file, named in the error.
        tensors: the file's tensors, ``vae.<parameter>`` and ``standardizer.*``.
        network: parameter name (without ``vae.``) -> shape, of a network freshly
            built from the file's ``vae_config`` and ``n_features``.

    Raises:
        ModelFileError: naming the file, the tensor and both shapes.
    """
    state = {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}
    check_shapes(path, state, network, "the file's vae_config and n_features")


def check_network_size(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                       implied: int, config: str) -> None:  # fmt: skip
    """Refuse, before the network is built, a configuration that implies more parameters
    than the file holds values: hidden widths of 60,000 would allocate gigabytes for a
    file of kilobytes. Once this passes, building the network allocates at most a small
    multiple of what the file already holds; :func:`check_model_tensors` then compares
    every shape.

    Args:
        path: the file, named in the error.
        tensors: the file's tensors; its ``vae.*`` values are counted.
        implied: a lower bound of the network's parameter count
            (:meth:`vaeaug.model.vae.VAEConfig.min_parameters`).
        config: the configuration in words, for the message.
    """
    held = sum(t.numel() for k, t in tensors.items() if k.startswith("vae."))
    if implied > held:
        raise ModelFileError(
            f"'{path}': the vae_config ({config}) implies at least {implied:,} network "
            f"parameters, but the file holds {held:,} network values; valid: the configuration "
            "the weights were trained with (the network was not built)"
        )


def check_standardizer(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                       n_features: int) -> None:  # fmt: skip
    """The standardizer: one ``center``, ``scale`` and ``constant`` entry per learned
    feature, every scale > 0, every ``constant`` flag 0 or 1, and the scale of a constant
    feature 1 (:meth:`vaeaug.model.standardize.Standardizer.fit` sets it so).

    Raises:
        ModelFileError: naming the file, the tensor and both shapes, or the bad entry.
    """
    scaler = {k: v for k, v in tensors.items() if not k.startswith("vae.")}
    check_shapes(path, scaler, {f"standardizer.{k}": (n_features,)
                                for k in ("center", "scale", "constant")},
                 f"n_features = {n_features}")  # fmt: skip
    scale, constant = tensors["standardizer.scale"], tensors["standardizer.constant"]
    if not (scale > 0).all():
        raise ModelFileError(f"'{path}': the standardizer's scale has entries <= 0")
    if not ((constant == 0) | (constant == 1)).all():
        raise ModelFileError(
            f"'{path}': the standardizer's constant flags are {constant.tolist()}; valid: 0 or 1"
        )
    if bad := torch.nonzero((constant == 1) & (scale != 1)).flatten().tolist():
        raise ModelFileError(
            f"'{path}': the standardizer marks feature {bad[0]} constant but scales it by "
            f"{scale[bad[0]].item():.6g}"
            + (f" (and {len(bad) - 1} more features)" if len(bad) > 1 else "")
            + "; a constant feature has scale 1"
        )


class RepresentationInfo(Protocol):
    """What the checks read of a representation (:class:`vaeaug.representations.Representation`)."""

    name: str
    n_objects: int
    masses: list[float] | None

    @property
    def n_features(self) -> int:
        """The number D of features."""
        ...

    def feature_names(self) -> list[str]:
        """The D feature names, in column order."""
        ...


class SupportInfo(Protocol):
    """What the checks read of a support (:class:`vaeaug.model.support.Support`): observable
    names and their bounds ``lo``, ``hi``, each of length O."""

    names: list[str]
    lo: Sequence[float]
    hi: Sequence[float]


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
            distinct indices below the representation's D, in order, all of them but the
            parent's (cos, sin) phi (features 2, 3) when ``phi_uniform``.
        phi_uniform: the parent azimuth drawn uniformly: needs the decay representation
            with its (cos, sin) phi (features 2, 3) not learned.
        exchange: groups of two or more distinct object indices, each in one group, in
            increasing order, of daughters with equal mass hypotheses (when the
            representation records masses).

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
    # fit learns every feature in order, but the parent's (cos, sin) phi when it is drawn
    # uniformly: a phi neither learned nor drawn would put every parent at phi = 0
    expected = [i for i in range(d) if not (phi_uniform and i in (2, 3))]
    if list(learned) != expected:
        raise ModelFileError(
            f"'{path}': 'learned' is {list(learned)}, but the {representation.name} "
            f"representation with phi_uniform {str(phi_uniform).lower()} learns {expected}"
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
    masses = representation.masses
    for group in exchange:
        # pt_ordered_groups: identical daughters, in label order
        same = masses is None or all(
            math.isclose(masses[i], masses[group[0]], rel_tol=MASS_RTOL) for i in group
        )
        if not same or list(group) != sorted(group):
            held = "unrecorded" if masses is None else [masses[i] for i in group]
            raise ModelFileError(
                f"'{path}': exchange group {group} ({', '.join(layout.objects[i] for i in group)}) "
                f"joins daughters of masses {held} GeV; valid: increasing indices of daughters "
                "with equal mass hypotheses"
            )


def check_model_ranges(path: str | os.PathLike, representation: RepresentationInfo,
                       learned: Sequence[int], tensors: Mapping[str, torch.Tensor],
                       support: SupportInfo | None) -> None:  # fmt: skip
    """The standardizer and the mass hypotheses against the training ranges the support
    records (a file without a support skips the checks that need it).

    Every check holds for any trained model, by construction:

    * a learned feature's center (its training median) lies within its training range:
      the support's ``feature:<name>`` interval, or [-1, 1] for a cosine or sine;
    * a varying feature's scale (interquartile range / 1.349, or the standard deviation)
      is at most the width of that range, and above a millionth of it (below, the middle
      half of the training sample would sit in a millionth of its range); a constant
      feature's range has no width (to 1e-6 of its value);
    * the parent masses that the mass hypotheses imply (their sum, plus the decay
      representation's excess ``exp(parent_log_excess)`` over its training range) reach
      into the support's ``parent_mass`` interval, to the precision
      (:data:`~vaeaug.model.symmetry.MASS_RTOL`) of masses inferred from data.

    Raises:
        ModelFileError: naming the file, the feature or mass and the range it contradicts.
    """
    bounds = {} if support is None else dict(zip(support.names, zip(support.lo, support.hi)))
    names = representation.feature_names()
    center = tensors["standardizer.center"].tolist()
    scale = tensors["standardizer.scale"].tolist()
    constant = tensors["standardizer.constant"].tolist()
    for j, i in enumerate(learned):
        name = names[i]
        angular = name.endswith(("_cos", "_sin"))
        if angular:
            lo, hi, where = -1.0, 1.0, "a cosine or sine"
        elif f"feature:{name}" in bounds:
            lo, hi = bounds[f"feature:{name}"]
            where = "the support's training range"
        else:
            continue
        width, tol = hi - lo, 1e-9 * max(abs(lo), abs(hi), 1.0)
        if not lo - tol <= center[j] <= hi + tol:
            raise ModelFileError(
                f"'{path}': the standardizer's center of feature '{name}' is {center[j]:.6g}, "
                f"outside [{lo:.6g}, {hi:.6g}] ({where}); valid: the training median, inside it"
            )
        if constant[j] and not angular and width > 1e-6 * max(abs(center[j]), 1.0):
            raise ModelFileError(
                f"'{path}': the standardizer marks feature '{name}' constant, but its training "
                f"values span [{lo:.6g}, {hi:.6g}] ({where})"
            )
        if not constant[j] and not width * 1e-6 < scale[j] <= width + tol:
            raise ModelFileError(
                f"'{path}': the standardizer's scale of feature '{name}' is {scale[j]:.6g}, "
                f"but its training values span [{lo:.6g}, {hi:.6g}] ({where}); valid: a "
                f"scale from {width * 1e-6:.3g} to {width:.3g}"
            )
    masses = representation.masses
    if masses is None or "parent_mass" not in bounds:
        return
    m_lo, m_hi = bounds["parent_mass"]
    total = math.fsum(masses)
    implied, words = (total, math.inf), f"their sum {total:.6g} GeV"
    excess = f"feature:{names[4]}" if representation.name == "decay" else None
    if excess in bounds:
        x_lo, x_hi = bounds[excess]
        implied = (total + math.exp(min(x_lo, 700.0)), total + math.exp(min(x_hi, 700.0)))
        words = f"{words} plus the excess exp({names[4]}): [{implied[0]:.6g}, {implied[1]:.6g}] GeV"
    tol = MASS_RTOL * total + 1e-9 * max(m_hi, 1.0)
    if implied[0] > m_hi + tol or implied[1] < m_lo - tol:
        raise ModelFileError(
            f"'{path}': the mass hypotheses {masses} GeV give parent masses ({words}) outside "
            f"the training range of the parent mass [{m_lo:.6g}, {m_hi:.6g}] GeV; valid: the "
            "daughters' masses the model was trained with"
        )
