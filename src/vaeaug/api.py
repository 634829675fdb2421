"""The public Python API: :func:`fit`, :func:`load` and :class:`Model`.

Typical use::

    table = vaeaug.read_candidates("dplus.root", tree="signal")
    model = vaeaug.fit(table, seed=1)
    gen = model.sample(100_000, seed=2)  # Candidates: .p4, .to_awkward()
    model.save("dplus.vaeaug.safetensors")
    model = vaeaug.load("dplus.vaeaug.safetensors")

Sampling itself lives in :mod:`vaeaug.sampling` (:mod:`~vaeaug.sampling.decode`,
:mod:`~vaeaug.sampling.streaming`); :class:`Model`'s sampling methods call it.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import time
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ._version import __version__
from .ensemble import Ensemble, bootstrap_counts, member_seed, out_of_bag_check
from .errors import InputError, ModelFileError
from .io.atomic import check_output_path
from .io.candidates import Candidates
from .io.coerce import as_candidates
from .io.layout import Layout
from .io.modelfile import (
    check_model_meta,
    check_model_ranges,
    check_model_tensors,
    check_network_size,
    check_standardizer,
    member_parts,
    read_model_file,
    write_model_file,
)
from .model.standardize import Standardizer
from .model.support import Support, SupportReport, SupportWarning, observables
from .model.symmetry import (
    EXCHANGE_CHOICES,
    PHI_TEST_LEVEL,
    exchange_mode,
    kuiper_uniform_pvalue,
    pt_ordered_groups,
    shuffle_within,
)
from .model.vae import VAE, VAEConfig
from .noise import Stream, child_seed
from .representations import Representation, make_representation, representation_from_dict
from .representations.choice import (  # noqa: F401 (RepresentationWarning, infer_masses: re-exported)
    RepresentationWarning,
    choose_representation,
    infer_masses,
)
from .sampling import decode, streaming
from .sampling.options import SamplingOptions
from .sampling.refine import MODES as REFINE_MODES
from .sampling.refine import Refiner
from .sampling.sizes import NOISE_BATCH_ROWS
from .settings import SEED_MAX, check_settings
from .training import TrainConfig, choose_device, train_vae

__all__ = ["SEED_MAX", "ConstantFeatureWarning", "Model", "check_settings", "fit", "load", "refine"]


class ConstantFeatureWarning(UserWarning):
    """A model feature does not vary in the training data; it is kept fixed."""


class Model:
    """A trained VAE with everything needed to generate candidates.

    Attributes:
        vae: the torch module (on ``device``).
        representation: the map between 4-momenta and features.
        standardizer: the scaling of the learned features.
        layout: object names, branch names and types of the training input.
        learned: indices of the representation's features that the VAE learns
            (all but the parent azimuth when ``phi_uniform``).
        phi_uniform: the parent azimuth is drawn uniformly, not learned
            (:mod:`vaeaug.model.symmetry`).
        exchange: groups of identical daughters (object indices) that the training
            input orders by decreasing pT: every generated candidate is put in that
            order (:mod:`vaeaug.model.symmetry`).
        support: the training support and acceptance (:mod:`vaeaug.model.support`).
        train_config: the optimisation settings used.
        provenance: version, input, seed, data hash, timings, the choices made.
        history: per-epoch losses (``train``, ``val``, ``nll``, ``kl``, ``lr``) and
            the validation sample-quality score (``score``).
    """

    def __init__(self, vae: VAE, representation: Representation, standardizer: Standardizer,
                 layout: Layout, *,
                 learned: Sequence[int] | None = None, phi_uniform: bool = False,
                 exchange: Sequence[Sequence[int]] = (), support: Support | None = None,
                 train_config: TrainConfig | None = None, provenance: dict | None = None,
                 history: dict | None = None) -> None:  # fmt: skip
        self.vae = vae
        self.representation = representation
        self.standardizer = standardizer
        self.layout = layout
        self.learned = list(range(representation.n_features)) if learned is None else list(learned)
        self.phi_uniform = bool(phi_uniform)
        self.exchange = [[int(i) for i in g] for g in exchange]
        self.support = support
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
        return next(self.vae.parameters()).device

    @property
    def noise_width(self) -> int:
        """Standard normals per generated event: the VAE's, plus one for a uniform phi."""
        return self.vae.noise_width + int(self.phi_uniform)

    def to(self, device: str | torch.device) -> Model:
        """Move the network to ``device`` ("auto", "cpu", "cuda", ...); returns self."""
        self.vae.to(choose_device(device))
        return self

    def __repr__(self) -> str:
        return (
            f"<vaeaug.Model {self.representation.name} representation, objects {'/'.join(self.objects)}, "
            f"latent {self.config.latent_dim}, trained on {self.provenance.get('n_events', '?')} events>"
        )

    # -- sampling: vaeaug.sampling.decode and .streaming do the work ------------
    def features_from_noise(self, eps: torch.Tensor, *, hidden_dtype=None) -> torch.Tensor:
        """Features from normals: :func:`vaeaug.sampling.decode.features_from_noise`."""
        return decode.features_from_noise(self, eps, hidden_dtype=hidden_dtype)

    def to_p4(self, x):
        """(4-momenta, full features) of features: :func:`vaeaug.sampling.decode.to_p4`."""
        return decode.to_p4(self, x)

    def p4_from_noise(self, eps: np.ndarray, batch_size: int = NOISE_BATCH_ROWS):
        """(4-momenta, features) of normals: :func:`vaeaug.sampling.decode.p4_from_noise`."""
        return decode.p4_from_noise(self, eps, batch_size)

    def support_values(self, p4: np.ndarray, features: np.ndarray) -> np.ndarray:
        """The support's observables: :func:`vaeaug.sampling.decode.support_values`."""
        return decode.support_values(self, p4, features)

    def enforce_support(self, p4: np.ndarray, features: np.ndarray, keys: np.ndarray,
                        mode: str = "reject", noise_map=None) -> SupportReport:  # fmt: skip
        """The support check and redraws: :func:`vaeaug.sampling.decode.enforce_support`."""
        return decode.enforce_support(self, p4, features, keys, mode, noise_map)

    def iter_samples(self, n: int, *, seed: int = 0, chunk_size: int | None = None,
                     progress: bool = False, precision: str = "fp32", compile: bool = False,
                     support: str = "reject",
                     report: SupportReport | None = None) -> Iterator[np.ndarray]:  # fmt: skip
        """Yield generated 4-momenta in chunks of ``chunk_size``: (n_c, k, 4) GeV.

        Every chunk but the last holds exactly ``chunk_size`` events.

        Memory is bounded by a few chunks, whatever ``n``: generation runs in a
        background thread, overlapped with the conversion to 4-momenta and with
        the caller's use of the previous chunk (:func:`vaeaug.sampling.streaming.stream`).
        The events depend only on ``seed`` and ``n`` (and the device type: CPU
        and CUDA random streams differ), not on ``chunk_size``.

        ``chunk_size`` (default 131,072, 2**20 on CUDA), ``precision`` ("fp32" or
        "bf16"), ``compile`` and ``support`` ("reject": candidates outside the training
        support, e.g. a daughter outside the detector acceptance, are redrawn; "warn";
        "off"): see :class:`~vaeaug.sampling.options.SamplingOptions`. ``report``: a
        :class:`~vaeaug.model.support.SupportReport` to fill.
        """
        options = SamplingOptions(chunk_size=chunk_size, precision=precision, compile=compile,
                                  support=support)  # fmt: skip
        return streaming.iter_chunks(self, n, seed, options, progress=progress, report=report)

    def sample(self, n: int, *, seed: int = 0, chunk_size: int | None = None,
               progress: bool = False, precision: str = "fp32", compile: bool = False,
               support: str = "reject", warn: bool = True) -> Candidates:  # fmt: skip
        """Generate ``n`` candidates: :class:`~vaeaug.io.candidates.Candidates`, p4 (n, k, 4) GeV.

        The same ``seed`` gives the same events (on the same device type),
        whatever ``chunk_size``; ``precision``, ``compile`` and ``support`` as in
        :meth:`iter_samples`. The events fill one preallocated array (no
        concatenation of chunks); the support check's report is
        ``candidates.support_report``, and a
        :class:`~vaeaug.model.support.SupportWarning` is given when it shows more
        candidates outside the support than real ones would (``warn=False``: none;
        the caller reports, as an ensemble does once for its members).
        """
        options = SamplingOptions(chunk_size=chunk_size, precision=precision, compile=compile,
                                  support=support)  # fmt: skip
        report = SupportReport()
        p4 = streaming.sample_into(self, n, seed, options, progress=progress, report=report)
        if warn:
            report.warn_if_excess(support)
        return Candidates(p4, self.layout, support_report=report)

    # -- persistence ------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> None:
        """Write the model file (safetensors, no pickle) atomically.

        An earlier model file at ``path`` is replaced (unless ``overwrite`` is False, as the
        command line without -f); a ROOT file (data), a directory or anything but a regular
        file never is (:class:`~vaeaug.errors.InputError`), as on the command line.
        """
        check_output_path(path, "path", model=True, overwrite=overwrite)
        tensors, metadata = self.file_parts()
        write_model_file(path, tensors, metadata, overwrite=overwrite)

    def file_parts(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What the model file holds: (tensors ``vae.*`` and ``standardizer.*``, the metadata
        of JSON values). An ensemble file holds one such pair per member."""
        tensors = {f"vae.{k}": v for k, v in self.vae.state_dict().items()}
        tensors.update(self.standardizer.tensors())
        return tensors, {
            "vae_config": self.config.to_dict(),
            "n_features": self.vae.n_features,
            "learned": self.learned,
            "phi_uniform": self.phi_uniform,
            "exchange": self.exchange,
            "support": None if self.support is None else self.support.to_dict(),
            # checked on load: a representation edited in the header is caught
            "feature_names": self.representation.feature_names(),
            "train_config": self.train_config.to_dict(),
            "representation": self.representation.to_dict(),
            "layout": self.layout.to_dict(),
            "provenance": self.provenance,
            "history": self.history,
        }


def load(path: str | os.PathLike, *, device: str | torch.device = "auto") -> Model | Ensemble:
    """Load a model file written by :meth:`Model.save` (or an :class:`~vaeaug.ensemble.Ensemble`
    file, :meth:`Ensemble.save`, each member checked as one model); never runs code from the file.

    The file is checked completely before use (:class:`~vaeaug.errors.ModelFileError`
    names the file and the problem): metadata of the types :meth:`Model.save` writes,
    finite tensors, a standardizer of one entry per feature with its centers and scales
    inside the training ranges the support records, a representation that matches the
    features and the layout, mass hypotheses that match the parent masses and the
    exchange groups, a layout of unique, writable branch names and numeric types, and a
    network configuration of the size the file holds, checked before the network is
    built, then every network tensor of the shape it implies (:mod:`vaeaug.io.modelfile`).
    Training options this version no longer has are ignored.
    ``device``: as in :func:`fit`, "auto" (CUDA when available), "cpu", "cuda", ...;
    a seed's samples depend on the device type (CPU and CUDA random streams differ).
    """
    tensors, meta = read_model_file(path)  # also the metadata's JSON types
    if "ensemble" in meta:
        members = [_model_from(f"{path}' member '{i}", member_parts(tensors, i), m)
                   for i, m in enumerate(meta["members"])]  # fmt: skip
        return Ensemble(members, meta["out_of_bag"]).to(device)
    return _model_from(path, tensors, meta).to(device)


def _model_from(path, tensors: dict[str, torch.Tensor], meta: dict) -> Model:
    """One model of a file's (tensors, metadata), checked completely (:func:`load`);
    ``path`` names it in errors."""
    n_features = meta["n_features"]
    config = _loaded(path, meta, "vae_config", _vae_config)
    representation = _loaded(path, meta, "representation", representation_from_dict)
    layout = _loaded(path, meta, "layout", Layout.from_dict)
    support = _loaded(path, meta, "support", lambda v: v and Support.from_dict(v))
    train_config = _loaded(path, meta, "train_config", TrainConfig.from_dict, {})
    learned, phi_uniform = meta["learned"], meta["phi_uniform"]
    exchange = meta.get("exchange", [])  # format 2: none
    # everything that needs no network first, and its size before it is allocated
    check_standardizer(path, tensors, n_features)
    check_model_meta(path, meta, n_features, representation, layout, learned, phi_uniform,
                     exchange)  # fmt: skip
    check_model_ranges(path, representation, learned, tensors, support)
    check_network_size(path, tensors, config.min_parameters(n_features),
                       f"latent_dim {config.latent_dim}, hidden {list(config.hidden)}, "
                       f"prior_hidden {list(config.prior_hidden)}")  # fmt: skip
    try:
        vae = VAE(n_features, config)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ModelFileError(
            f"'{path}': metadata 'vae_config' does not build a network: {err}"
        ) from err
    check_model_tensors(path, tensors, {k: tuple(v.shape) for k, v in vae.state_dict().items()})
    vae.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("vae.")})
    model = Model(vae, representation, Standardizer.from_tensors(tensors), layout,
                  learned=learned, phi_uniform=phi_uniform, exchange=exchange, support=support,
                  train_config=train_config, provenance=meta.get("provenance", {}),
                  history=meta.get("history", {}))  # fmt: skip
    return model


def _loaded(path, meta: dict, key: str, build, default=None):
    """``build(meta[key])`` (of ``default`` when the key is absent), a bad value refused with a
    :class:`~vaeaug.errors.ModelFileError` naming the file, the key and the problem."""
    try:
        return build(meta.get(key, default))
    except (KeyError, TypeError, ValueError) as err:  # InputError is a ValueError
        raise ModelFileError(f"'{path}': metadata '{key}': {err}") from err


def _vae_config(saved: dict) -> VAEConfig:
    """The architecture a model file records, its settings checked as fit checks them."""
    check_settings({k: saved[k] for k in ("latent_dim", "hidden", "beta") if k in saved})
    return VAEConfig(**saved)


def data_hash(p4: np.ndarray) -> str:
    """sha256 of the training 4-momenta (float64, C order), for provenance."""
    return hashlib.sha256(np.ascontiguousarray(p4, dtype=np.float64).tobytes()).hexdigest()


def _features(rep: Representation, p4: np.ndarray, groups: list[list[int]], mode: str,
              phi: str, seed: int) -> tuple[np.ndarray, list[int], bool, float | None]:  # fmt: skip
    """(features (N, D), the learned ones' indices, phi drawn uniformly, Kuiper's p-value).

    With ``mode == "symmetric"`` each candidate's identical daughters are first put in
    a seeded order (sub-stream ``Stream.EXCHANGE_SHUFFLE`` of ``seed``).
    """
    if groups and mode == "symmetric":
        rng = np.random.default_rng(child_seed(seed, Stream.EXCHANGE_SHUFFLE))
        p4 = shuffle_within(p4, groups, rng)
    features = rep.to_features(p4)
    phi_pvalue = None
    phi_uniform = False
    if rep.name == "decay":
        phi_pvalue = kuiper_uniform_pvalue(np.arctan2(features[:, 3], features[:, 2]))
        phi_uniform = phi == "uniform" or (phi == "auto" and phi_pvalue > PHI_TEST_LEVEL)
    learned = [i for i in range(rep.n_features) if not (phi_uniform and i in (2, 3))]
    return features, learned, phi_uniform, phi_pvalue


def _support(rep: Representation, p4: np.ndarray, names: Sequence[str], features: np.ndarray,
             seed: int) -> Support:  # fmt: skip
    """The training support of the lab-frame observables and the non-angular features."""
    obs_names, obs = observables(p4, names)
    angular = np.array([f.endswith(("_cos", "_sin")) for f in rep.feature_names()])
    return Support.fit(
        np.concatenate([obs, features[:, ~angular]], axis=1),
        obs_names + [f"feature:{f}" for f, a in zip(rep.feature_names(), angular) if not a],
        seed=seed,
    )


def fit(
    data,
    *,
    representation: str = "auto",
    masses: Sequence[float] | None = None,
    objects: Sequence[str] | None = None,
    config: VAEConfig | None = None,
    train: TrainConfig | None = None,
    weights: np.ndarray | None = None,
    phi: str = "auto",
    exchange: str = "auto",
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    ensemble: int | None = None,
) -> Model | Ensemble:
    """Train a model on decay candidates (or an ensemble of models: ``ensemble``).

    Args:
        data: :class:`~vaeaug.io.candidates.Candidates` (from :func:`read_candidates`),
            4-momenta of shape (N, k, 4) as (px, py, pz, E) in GeV, or a mapping
            of flat branches (``{"K1_px": ..., ...}``).
        representation: ``"decay"`` (parent kinematics + rest-frame decay
            variables; for a decay with fixed daughter masses, any k >= 2),
            ``"collider"`` (per-object log pt, eta, phi, mass), ``"cartesian"``,
            or ``"auto"``: decay when the daughter masses are fixed, else
            collider, with a :class:`~vaeaug.representations.choice.RepresentationWarning`
            saying why.
        masses: daughter mass hypotheses in GeV; when omitted they are inferred
            from the data if each object's mass is fixed (decay, collider).
        objects: object names for a bare array (default p0, p1, ...).
        config: the architecture (:class:`VAEConfig`).
        train: optimisation settings (:class:`TrainConfig`).
        weights: per-candidate weights, shape (N,) (overrides the table's).
        phi: the parent azimuth (decay representation): ``"auto"`` draws it
            uniformly when the training sample is consistent with that (Kuiper's
            test at 1%) and learns it otherwise; ``"uniform"`` or ``"learn"`` force.
        exchange: daughters with equal mass hypotheses that the input orders by
            decreasing pT on every candidate (``pi1``, ``pi2``) are generated in that
            order; ``"symmetric"`` learns them exchange-symmetric, ``"sort"`` learns
            the labels as given, ``"auto"`` picks one by the number of daughters
            (:func:`vaeaug.model.symmetry.exchange_mode`); ``"off"`` learns and
            generates the labels as they are (:mod:`vaeaug.model.symmetry`).
        seed: every random draw of training flows from it, each use from its own
            sub-stream (:class:`vaeaug.noise.Stream`).
        device: "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
        progress: show a progress bar.
        ensemble: K >= 2 trains K members, member ``i`` on a bootstrap replica of the
            candidates (N drawn with replacement, sub-stream ``(Stream.ENSEMBLE_BOOTSTRAP, i)``,
            each drawn candidate once, weighted by its count) with the seed
            ``member_seed(seed, Stream.ENSEMBLE_MEMBER, i)``; None: one model.

    Returns:
        The trained :class:`Model`, or an :class:`~vaeaug.ensemble.Ensemble` of K.
    """
    if phi not in ("auto", "uniform", "learn"):
        raise InputError(f"phi must be one of auto, uniform, learn; got {phi!r}")
    if exchange not in EXCHANGE_CHOICES:
        raise InputError(f"exchange must be one of {', '.join(EXCHANGE_CHOICES)}; got {exchange!r}")
    table = as_candidates(data, objects, weights)
    if ensemble is not None:
        return _fit_ensemble(table, ensemble, seed, representation=representation, masses=masses,
                             config=config, train=train, phi=phi, exchange=exchange,
                             device=device, progress=progress)  # fmt: skip
    config = config or VAEConfig()
    train = train or TrainConfig()
    check_settings({"seed": seed, "masses": masses, **config.to_dict(), **train.to_dict()})
    dev = choose_device(device)
    p4, names = table.p4, table.objects
    representation, masses, reason = choose_representation(representation, p4, names, masses)
    rep = make_representation(representation, len(names), masses=masses, object_names=names)
    mode = exchange_mode(exchange, len(names))
    groups = pt_ordered_groups(p4, masses) if mode != "off" else []
    features, learned, phi_uniform, phi_pvalue = _features(rep, p4, groups, mode, phi, seed)
    standardizer = Standardizer.fit(features[:, learned])
    if standardizer.constant.any():
        fixed = [rep.feature_names()[i] for i, c in zip(learned, standardizer.constant) if c]
        warnings.warn(f"features {fixed} are constant in the training data; they are kept fixed",
                      ConstantFeatureWarning, stacklevel=2)  # fmt: skip
    x = standardizer.transform(features[:, learned])
    support = _support(rep, p4, names, features, seed)

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        # the initial weights and the reparameterisation noise: torch's global generator
        torch.manual_seed(child_seed(seed, Stream.TRAIN_INIT))
        vae = VAE(len(learned), config)
        start = time.perf_counter()
        history = train_vae(vae, x, train, weights=table.weights, seed=seed, device=dev,
                            progress=progress)  # fmt: skip
        seconds = time.perf_counter() - start
    provenance = {
        "vaeaug_version": __version__, "torch_version": torch.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": table.source, "n_events": len(p4), "seed": seed, "data_sha256": data_hash(p4),
        "device": str(dev), "train_seconds": round(seconds, 2), "epochs_run": len(history["val"]),
        "best_epoch": history.get("best_epoch"), "representation_choice": reason,
        "phi_choice": phi, "phi_kuiper_pvalue": phi_pvalue,
        "exchange_choice": exchange, "exchange_mode": mode if groups else "off",
    }  # fmt: skip
    return Model(vae, rep, standardizer, table.layout, learned=learned, phi_uniform=phi_uniform,
                 exchange=groups, support=support, train_config=train, provenance=provenance,
                 history=history)  # fmt: skip


def _fit_ensemble(table: Candidates, k: int, seed: int, **options) -> Ensemble:
    """K models of :func:`fit`, each on its bootstrap replica of ``table``.

    A replica is N draws with replacement, given to :func:`fit` as the candidates drawn at
    least once, each weighted by its count (times its own weight): the same loss as the
    duplicated rows, but the training/validation split stays one of distinct candidates,
    so early stopping never scores a candidate that the member also trains on. Then each
    member is compared with the rows its replica did not draw (:func:`out_of_bag_check`).
    """
    if not (isinstance(k, int | np.integer) and not isinstance(k, bool) and 2 <= k <= 1000):
        raise InputError(f"ensemble must be an integer from 2 to 1000 (members), got {k!r}")
    check_settings({"seed": seed})
    n = len(table)
    base = np.ones(n) if table.weights is None else table.weights
    members, in_bag = [], []
    for i in range(int(k)):
        counts = bootstrap_counts(n, seed, i)
        drawn = counts > 0
        in_bag.append(drawn)
        replica = Candidates(table.p4[drawn], table.layout, (base * counts)[drawn],
                             source=table.source)  # fmt: skip
        model = fit(replica, seed=member_seed(seed, Stream.ENSEMBLE_MEMBER, i), **options)
        model.provenance["ensemble"] = {
            "member": i,
            "members": int(k),
            "seed": seed,
            "n_events": n,
            "replica_sha256": hashlib.sha256(counts.astype(np.int64).tobytes()).hexdigest(),
        }
        members.append(model)
    return Ensemble(members, out_of_bag_check(members, table, in_bag, seed=seed))


def refine(model: Model, real, n: int, *, seed: int = 0, mode: str = "weight",
           weights=None, support: str = "reject", **options) -> Candidates:  # fmt: skip
    """``n`` generated candidates of ``model``, refined against the real sample ``real``.

    A classifier trained to tell ``real`` from the model's candidates gives each new
    candidate its density ratio real/generated (:class:`~vaeaug.sampling.refine.Refiner`);
    ``mode="weight"`` (the default) keeps all and sets ``weights`` (summing to ``n``),
    ``mode="reject"`` keeps candidates with probability proportional to it (unweighted
    output, about 1 / acceptance draws per candidate). Give the
    training sample as ``real``, and judge the result on real candidates it never saw.

    Args:
        model: a trained :class:`Model`.
        real: the real candidates: :class:`~vaeaug.io.Candidates` (their weights are used)
            or 4-momenta (N, k, 4) GeV with the model's k daughters in its order.
        n: candidates to return.
        seed: seeds everything: the classifier's draws, its calibration and the
            candidates returned (sub-streams ``Stream.REFINE_*``).
        weights: per-candidate weights of ``real`` (N,), replacing those it carries.
        support: the model's support check for every draw (:meth:`Model.sample`).
        options: ``clip_quantile``, ``n_generated``, ``classifier_kwargs`` of
            :meth:`Refiner.fit`.

    Returns :class:`~vaeaug.io.Candidates`, p4 (n, k, 4) GeV, with ``refine_report``.
    """
    if mode not in REFINE_MODES:
        raise InputError(f"refinement mode must be one of {', '.join(REFINE_MODES)}, got {mode!r}")
    table = as_candidates(real, model.objects, weights=weights)
    if table.p4.shape[1] != len(model.objects):
        raise InputError(
            f"the real sample has {table.p4.shape[1]} daughters per candidate, the model "
            f"{len(model.objects)} ({', '.join(model.objects)})"
        )
    masses = model.representation.masses

    def draw(m: int, s: int) -> np.ndarray:
        return model.sample(m, seed=s, support=support).p4

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SupportWarning)
        refiner = Refiner.fit(draw, table.p4, model.objects, masses, seed=seed,
                              real_weights=table.weights, **options)  # fmt: skip
        p4, w, report = refiner.sample(n, seed=seed, mode=mode)
    support_warnings = [c for c in caught if issubclass(c.category, SupportWarning)]
    for c in caught:
        if not issubclass(c.category, SupportWarning):
            warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
    if support_warnings:
        # one warning for the whole run (each of its draws checks the support)
        warnings.warn(f"{len(support_warnings)} of refinement's draws: "
                      f"{support_warnings[0].message}", SupportWarning, stacklevel=2)  # fmt: skip
    return Candidates(p4, model.layout, w, refine_report=report)
