"""The public Python API: :func:`fit`, :func:`load` and :class:`Model`.

Typical use::

    table = vaeaug.read_candidates("dplus.root", tree="signal")
    model = vaeaug.fit(table, seed=1)
    gen = model.sample(100_000, seed=2)  # Candidates: .p4, .to_awkward()
    model.save("dplus.vaeaug.safetensors")
    model = vaeaug.load("dplus.vaeaug.safetensors")
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import math
import numbers
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import generation
from ._version import __version__
from .candidates import Candidates
from .errors import InputError, ModelFileError
from .generation import Engine
from .io.layout import Layout, detect_flat_objects, to_p4
from .io.read import CandidateTable
from .model.standardize import Standardizer
from .model.vae import VAE, VAEConfig
from .modelfile import check_shapes, read_model_file, write_model_file
from .representations import REPRESENTATIONS, make_representation, representation_from_dict
from .training import TrainConfig, choose_device, fit_latent_prior, train_vae

__all__ = ["SEED_MAX", "Model", "check_settings", "fit", "load"]

#: The largest seed: every random draw (torch, numpy, scikit-learn) accepts 0 ... 2**32 - 1.
SEED_MAX = 2**32 - 1


def _integer(v, low: int, high: float = math.inf) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and low <= v <= high


def _real(v, low: float, high: float, *, open_low: bool = True) -> bool:
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    return ok and (low < v if open_low else low <= v) and v <= high


#: setting -> (test, the valid values in words). Settings of the model and of
#: training share one table, used by the API (field names) and the CLI (options).
_SETTINGS = {
    "seed": (lambda v: _integer(v, 0, SEED_MAX), f"an integer from 0 to {SEED_MAX}"),
    "latent_dim": (lambda v: _integer(v, 1), "an integer >= 1"),
    "hidden": (
        lambda v: len(v) > 0 and all(_integer(h, 1) for h in v),
        "one or more integers >= 1 (the layer widths)",
    ),
    "beta": (lambda v: _real(v, 0, math.inf), "a finite number > 0 (1 is the true ELBO)"),
    "epochs": (lambda v: _integer(v, 1), "an integer >= 1"),
    "batch_size": (lambda v: _integer(v, 1), "an integer >= 1"),
    "learning_rate": (lambda v: _real(v, 0, 1), "a number in (0, 1]"),
    "patience": (lambda v: _integer(v, 1), "an integer >= 1 (epochs without improvement)"),
    "masses": (
        lambda v: v is None or all(_real(m, 0, math.inf, open_low=False) for m in v),
        "finite numbers >= 0 (GeV), one per object",
    ),
}


def _check_sampling(n, seed) -> None:
    if not _integer(n, 0):
        raise InputError(f"number of candidates must be an integer >= 0, got {n!r}")
    if not _integer(seed, 0):
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")


def check_settings(values: Mapping[str, object], names: Mapping[str, str] | None = None) -> None:
    """Refuse invalid settings with an :class:`InputError` naming each and its valid range.

    Args:
        values: setting name -> value (``seed``, the fields of :class:`VAEConfig`
            and :class:`TrainConfig`); names without a rule are not checked.
        names: how to call a setting in the message (the CLI passes its options).
    """
    names = names or {}
    for key, value in values.items():
        if key in _SETTINGS:
            test, valid = _SETTINGS[key]
            try:
                ok = test(value)
            except TypeError:
                ok = False
            if not ok:
                raise InputError(f"{names.get(key, key)} must be {valid}, got {value!r}")


class ConstantFeatureWarning(UserWarning):
    """A model feature does not vary in the training data; it is kept fixed."""


def _as_table(data, objects: Sequence[str] | None, weights) -> CandidateTable:
    """Accept a CandidateTable, a (N, k, 4) array or a mapping of flat branches."""
    if isinstance(data, CandidateTable):
        table = data
    elif isinstance(data, Mapping):
        found, comps = detect_flat_objects(list(data))
        chosen = tuple(objects) if objects else found
        if not chosen:
            raise InputError(
                f"no <object>_px/py/pz/E (or pt/eta/phi/mass) columns among {list(data)[:12]}"
            )
        values = np.stack(
            [np.stack([np.asarray(data[f"{o}_{c}"]) for c in comps], -1) for o in chosen], 1
        )
        dtypes = {
            f"{o}_{c}": str(np.asarray(data[f"{o}_{c}"]).dtype) for o in chosen for c in comps
        }
        table = CandidateTable(to_p4(values, comps), Layout("flat", chosen, comps, None, dtypes))
    else:
        p4 = np.asarray(data, dtype=np.float64)
        if p4.ndim != 3 or p4.shape[-1] != 4:
            raise InputError(
                f"4-momenta must have shape (N, k, 4) as (px, py, pz, E) in GeV, got {p4.shape}"
            )
        names = tuple(objects) if objects else tuple(f"p{i}" for i in range(p4.shape[1]))
        if len(names) != p4.shape[1]:
            raise InputError(f"{len(names)} object names given for {p4.shape[1]} objects")
        table = CandidateTable(p4, Layout.default(names))
    if weights is not None:
        table = CandidateTable(table.p4, table.layout, np.asarray(weights, np.float64), table.source)
    w = table.weights
    if w is not None and (w.shape != (len(table),) or not np.isfinite(w).all() or (w < 0).any()):
        raise InputError(
            f"weights must be finite, non-negative and of shape ({len(table)},), got shape "
            f"{w.shape} with minimum {w.min() if w.size else 'n/a'}"
        )
    if not np.isfinite(table.p4).all():
        raise InputError(
            "the 4-momenta contain NaN or inf; drop them first (read_candidates does this)"
        )
    return table


def infer_masses(p4: np.ndarray, objects: Sequence[str], rtol: float = 1e-3) -> list[float]:
    """Daughter masses (GeV) from the data, when each object's mass is fixed.

    Raises InputError (naming the object) when an object's mass varies by
    more than ``rtol``: then pass ``masses=`` or use the collider representation.
    """
    m = np.sqrt(np.maximum(p4[..., 3] ** 2 - (p4[..., :3] ** 2).sum(-1), 0.0))
    med = np.median(m, axis=0)
    spread = np.percentile(m, 84, axis=0) - np.percentile(m, 16, axis=0)
    for obj, mm, s in zip(objects, med, spread):
        if s > rtol * max(mm, 1e-3):
            raise InputError(
                f"the mass of '{obj}' varies ({mm:.4g} GeV, 68% spread {s:.2g} GeV): the decay "
                "representation needs fixed mass hypotheses; pass masses=[...] (GeV) or use "
                "representation='collider'"
            )
    return [float(x) for x in med]


class Model:
    """A trained VAE with everything needed to generate candidates.

    Attributes:
        vae: the torch module (on ``device``).
        representation: the map between 4-momenta and features.
        standardizer: the feature scaling.
        layout: object names, branch names and types of the training input.
        train_config: the optimisation settings used.
        provenance: version, input, seed, data hash, timings.
        history: per-epoch losses (``train``, ``val``, ``nll``, ``kl``, ``lr``).
    """

    def __init__(self, vae: VAE, representation, standardizer: Standardizer, layout: Layout, *,
                 train_config: TrainConfig | None = None, provenance: dict | None = None,
                 history: dict | None = None) -> None:  # fmt: skip
        self.vae = vae
        self.representation = representation
        self.standardizer = standardizer
        self.layout = layout
        self.train_config = train_config or TrainConfig()
        self.provenance = provenance or {}
        self.history = history or {}

    @property
    def config(self) -> VAEConfig:
        """The architecture (:class:`~vaeaug.model.vae.VAEConfig`)."""
        return self.vae.config

    @property
    def objects(self) -> list[str]:
        """The k daughter names, e.g. ``["K1", "pi1", "pi2"]``."""
        return list(self.layout.objects)

    @property
    def device(self) -> torch.device:
        """Where the network's weights live."""
        return self.vae.prior_means.device

    def to(self, device: str | torch.device) -> Model:
        """Move the network to ``device`` ("auto", "cpu", "cuda", ...); returns self."""
        self.vae.to(choose_device(device))
        return self

    def __repr__(self) -> str:
        return (
            f"<vaeaug.Model {self.representation.name} representation, objects {'/'.join(self.objects)}, "
            f"latent {self.config.latent_dim}, trained on {self.provenance.get('n_events', '?')} events>"
        )

    # -- generation -------------------------------------------------------
    def _features_batches(self, n: int, seed: int, batch_size: int) -> Iterator[np.ndarray]:
        """Standardized features in batches of whole RNG blocks: (n_b, D) float64.

        Batches hold about ``batch_size`` events (whole device batches of
        :class:`vaeaug.generation.Engine`); the values do not depend on it.
        """
        engine = Engine(self)
        pending: list[torch.Tensor] = []
        with torch.inference_mode():
            for x in engine.batches(n, seed):
                pending.append(x)
                if sum(len(p) for p in pending) >= batch_size:
                    yield torch.cat(pending).double().cpu().numpy()
                    pending = []
            if pending:
                yield torch.cat(pending).double().cpu().numpy()

    def iter_samples(self, n: int, *, seed: int = 0, chunk_size: int = 1 << 20,
                     progress: bool = False, precision: str = "fp32",
                     compile: bool = False) -> Iterator[np.ndarray]:  # fmt: skip
        """Yield generated 4-momenta in chunks of ``chunk_size``: (n_c, k, 4) GeV.

        Every chunk but the last holds exactly ``chunk_size`` events.

        Memory is bounded by a few chunks, whatever ``n``: generation runs in a
        background thread, overlapped with the conversion to 4-momenta and with
        the caller's use of the previous chunk (:func:`vaeaug.generation.stream`).
        The events depend only on ``seed`` and ``n`` (and the device type: CPU
        and CUDA random streams differ), not on ``chunk_size``.

        Args:
            precision: "fp32" (default) or "bf16" (the decoder's hidden layers in
                bfloat16; fast on GPUs, slow on most CPUs; see docs/performance.md).
            compile: run the decoder through ``torch.compile`` (pays on GPUs for
                large samples; costs tens of seconds of compilation).
        """
        _check_sampling(n, seed)
        bar = tqdm(total=n, desc="generating", unit="ev", unit_scale=True, disable=not progress,
                   leave=False)  # fmt: skip
        chunks = generation.stream(self, n, seed, chunk_size=max(chunk_size, 1),
                                   precision=precision, compile=compile)  # fmt: skip
        with contextlib.closing(chunks):
            for p4 in chunks:
                bar.update(len(p4))
                yield p4
        bar.close()

    def sample(self, n: int, *, seed: int = 0, chunk_size: int = 1 << 20, progress: bool = False,
               precision: str = "fp32", compile: bool = False) -> Candidates:  # fmt: skip
        """Generate ``n`` candidates: :class:`~vaeaug.candidates.Candidates`, p4 (n, k, 4) GeV.

        The same ``seed`` gives the same events (on the same device type),
        whatever ``chunk_size``; ``precision`` and ``compile`` as in
        :meth:`iter_samples`. The events fill one preallocated array (no
        concatenation of chunks).
        """
        _check_sampling(n, seed)
        p4 = generation.sample_into(self, n, seed, progress=progress, chunk_size=max(chunk_size, 1),
                                    precision=precision, compile=compile)  # fmt: skip
        return Candidates(p4, self.layout)

    # -- persistence ------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the model file (safetensors, no pickle) atomically."""
        tensors = {f"vae.{k}": v for k, v in self.vae.state_dict().items()}
        tensors.update(self.standardizer.tensors())
        write_model_file(path, tensors, {
            "vae_config": self.config.to_dict(),
            "n_features": self.vae.n_features,
            # checked on load: a representation edited in the header is caught
            "feature_names": self.representation.feature_names(),
            "train_config": self.train_config.to_dict(),
            "representation": self.representation.to_dict(),
            "layout": self.layout.to_dict(),
            "provenance": self.provenance,
            "history": self.history,
        })  # fmt: skip


def load(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> Model:
    """Load a model file written by :meth:`Model.save`; never runs code from the file.

    The file is checked completely before use (:class:`~vaeaug.errors.ModelFileError`
    names the file and the problem): finite tensors, every network tensor of
    the shape its configuration implies, a standardizer of one entry per
    feature, and a representation that matches the features and the layout.
    """
    tensors, meta = read_model_file(path)
    try:
        config = VAEConfig(**meta["vae_config"])
        n_features = int(meta["n_features"])
        vae = VAE(n_features, config)
        representation = representation_from_dict(meta["representation"])
        layout = Layout.from_dict(meta["layout"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFileError(
            f"'{path}' is not a complete vaeaug model file ({type(err).__name__}: {err})"
        ) from err
    state = {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}
    _check_model_tensors(path, state, vae, tensors, n_features)
    _check_model_meta(path, meta, n_features, representation, layout)
    try:
        # the prior buffers change shape when a mixture was fitted
        vae.set_prior(state["prior_weights"], state["prior_means"], state["prior_scale_tril"])
        vae.load_state_dict(state)
        model = Model(
            vae,
            representation,
            Standardizer.from_tensors(tensors),
            layout,
            train_config=TrainConfig(**meta.get("train_config", {})),
            provenance=meta.get("provenance", {}),
            history=meta.get("history", {}),
        )
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ModelFileError(
            f"'{path}' is not a complete vaeaug model file ({type(err).__name__}: {err})"
        ) from err
    return model.to(device)


def _check_model_tensors(path, state: dict[str, torch.Tensor], vae: VAE,
                         tensors: dict[str, torch.Tensor], n_features: int) -> None:  # fmt: skip
    """Every tensor of the file against a freshly built network of the file's config."""
    expected = {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    # buffers of the sampling prior have a free leading dimension (mixture components),
    # the same for all of them; the rest of their shape is fixed by the config
    prior = [k for k in expected if k.startswith("prior") and k in state]
    leading = {k: state[k].shape[0] for k in prior if state[k].ndim}
    if len(set(leading.values())) > 1:
        raise ModelFileError(
            f"'{path}': the prior tensors disagree on the number of mixture components "
            f"({', '.join(f'{k} {n}' for k, n in leading.items())})"
        )
    for k in prior:
        if state[k].ndim == len(expected[k]):
            expected[k] = (state[k].shape[0], *expected[k][1:])
    check_shapes(path, state, expected, "the file's vae_config and n_features")
    scaler = {k: v for k, v in tensors.items() if not k.startswith("vae.")}
    check_shapes(path, scaler, {f"standardizer.{k}": (n_features,)
                                for k in ("center", "scale", "constant")},
                 f"n_features = {n_features}")  # fmt: skip
    if not (tensors["standardizer.scale"] > 0).all():
        raise ModelFileError(f"'{path}': the standardizer's scale has entries <= 0")


def _check_model_meta(path, meta: dict, n_features: int, representation, layout: Layout) -> None:
    """The representation against the features and the layout's objects."""
    if representation.n_features != n_features:
        raise ModelFileError(
            f"'{path}': the {representation.name} representation has {representation.n_features} "
            f"features, but the network has n_features = {n_features}"
        )
    names = meta.get("feature_names")
    if names is not None and list(names) != representation.feature_names():
        raise ModelFileError(
            f"'{path}': the network was trained on the features {', '.join(map(str, names))}, "
            f"not those of the {representation.name} representation in the file "
            f"({', '.join(representation.feature_names())})"
        )
    if representation.n_objects != layout.n_objects:
        raise ModelFileError(
            f"'{path}': the layout names {layout.n_objects} objects ({', '.join(layout.objects)}), "
            f"but the {representation.name} representation has {representation.n_objects}"
        )


def data_hash(p4: np.ndarray) -> str:
    """sha256 of the training 4-momenta (float64, C order), for provenance."""
    return hashlib.sha256(np.ascontiguousarray(p4, dtype=np.float64).tobytes()).hexdigest()


def fit(
    data,
    *,
    representation: str = "auto",
    masses: Sequence[float] | None = None,
    objects: Sequence[str] | None = None,
    config: VAEConfig | None = None,
    train: TrainConfig | None = None,
    weights: np.ndarray | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> Model:
    """Train a model on decay candidates.

    Args:
        data: a :class:`~vaeaug.io.CandidateTable` (from :func:`read_candidates`),
            4-momenta of shape (N, k, 4) as (px, py, pz, E) in GeV, or a mapping
            of flat branches (``{"K1_px": ..., ...}``).
        representation: ``"decay"`` (parent kinematics + rest-frame decay
            variables; best for a decay with fixed daughter masses, k = 2 or 3),
            ``"collider"`` (per-object log pt, eta, phi, mass), ``"cartesian"``,
            or ``"auto"``: decay when k is 2 or 3 and the daughter masses are
            fixed, else collider.
        masses: daughter mass hypotheses in GeV; when omitted they are inferred
            from the data if each object's mass is fixed (decay, collider).
        objects: object names for a bare array (default p0, p1, ...).
        config: the architecture (:class:`VAEConfig`).
        train: optimisation settings (:class:`TrainConfig`).
        weights: per-candidate weights, shape (N,) (overrides the table's).
        seed: every random draw of training flows from it.
        device: "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
        progress: show a progress bar.

    Returns:
        The trained :class:`Model`.
    """
    table = _as_table(data, objects, weights)
    config = config or VAEConfig()
    train = train or TrainConfig()
    check_settings({"seed": seed, "masses": masses, **config.to_dict(), **train.to_dict()})
    dev = choose_device(device)
    p4, names = table.p4, table.objects
    k = len(names)

    if representation not in (*REPRESENTATIONS, "auto"):
        raise InputError(
            f"representation '{representation}' unknown; valid: auto, {', '.join(REPRESENTATIONS)}"
        )
    if representation == "auto":
        representation = "collider"
        if k in (2, 3):
            try:
                masses = masses if masses is not None else infer_masses(p4, names)
                representation = "decay"
            except InputError:
                pass
    if representation == "decay" and masses is None:
        masses = infer_masses(p4, names)
    if representation == "collider" and masses is None:
        # fixed masses are mass hypotheses, not features to learn
        with contextlib.suppress(InputError):
            masses = infer_masses(p4, names)
    if masses is not None and len(masses) != k:
        raise InputError(f"{len(masses)} masses given for {k} objects ({', '.join(names)})")
    rep = make_representation(representation, k, masses=masses, object_names=names)

    features = rep.to_features(p4)
    standardizer = Standardizer.fit(features)
    if standardizer.constant.any():
        fixed = [n for n, c in zip(rep.feature_names(), standardizer.constant) if c]
        warnings.warn(f"features {fixed} are constant in the training data; they are kept fixed",
                      ConstantFeatureWarning, stacklevel=2)  # fmt: skip
    x = standardizer.transform(features)

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        vae = VAE(rep.n_features, config)
        start = time.perf_counter()
        history = train_vae(
            vae, x, train, weights=table.weights, seed=seed, device=dev, progress=progress
        )
        if config.prior == "gmm":
            fit_latent_prior(vae, x, n_components=config.prior_components, seed=seed, device=dev)
        seconds = time.perf_counter() - start

    provenance = {
        "vaeaug_version": __version__,
        "torch_version": torch.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": table.source,
        "n_events": len(p4),
        "seed": seed,
        "data_sha256": data_hash(p4),
        "device": str(dev),
        "train_seconds": round(seconds, 2),
        "epochs_run": len(history["val"]),
    }
    return Model(
        vae,
        rep,
        standardizer,
        table.layout,
        train_config=train,
        provenance=provenance,
        history=history,
    )
