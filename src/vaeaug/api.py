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

from ._version import __version__
from .errors import InputError, ModelFileError
from .io.layout import Layout, detect_flat_objects, to_p4
from .io.modelfile import check_shapes, read_model_file, write_model_file
from .io.read import CandidateTable
from .model.standardize import Standardizer
from .model.support import AcceptanceTerm, Support, SupportReport, observables
from .model.symmetry import (
    EXCHANGE_CHOICES,
    PHI_TEST_LEVEL,
    exchange_mode,
    kuiper_uniform_pvalue,
    order_by_pt,
    pt_ordered_groups,
    shuffle_within,
)
from .model.vae import VAE, VAEConfig
from .representations import REPRESENTATIONS, make_representation, representation_from_dict
from .representations.arrays import as_float64, is_tensor, namespace
from .sampling import streaming
from .sampling.candidates import Candidates
from .sampling.noise import keyed_normals
from .training import TrainConfig, choose_device, train_vae

__all__ = ["SEED_MAX", "Model", "check_settings", "fit", "load"]

#: The largest seed: every random draw (torch, numpy, scikit-learn) accepts 0 ... 2**32 - 1.
SEED_MAX = 2**32 - 1


def _ndtr(u: np.ndarray) -> np.ndarray:
    """The standard normal CDF of a float64 array, by torch (no scipy.special import, ~17 MB)."""
    return torch.special.ndtr(torch.from_numpy(np.ascontiguousarray(u))).numpy()


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


def as_table(data, objects: Sequence[str] | None, weights) -> CandidateTable:
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
        table = CandidateTable(
            table.p4, table.layout, np.asarray(weights, np.float64), table.source
        )
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

    An object's mass counts as fixed when 95% of its candidates agree with the
    median within ``rtol``, or within the rounding of float32-stored components:
    E^2 - |p|^2 of a 300 GeV muon stored in float32 is only good to ~1e-2 GeV^2,
    the muon mass squared itself.

    Raises InputError (naming the object) when an object's mass varies: then
    pass ``masses=`` or use the collider representation.
    """
    e2 = p4[..., 3] ** 2
    p2 = (p4[..., :3] ** 2).sum(-1)
    m = np.sqrt(np.maximum(e2 - p2, 0.0))
    med = np.median(m, axis=0)
    rounding = 8.0 * 2.0**-24 * (e2 + p2)  # float32 unit roundoff on both terms, with margin
    agree = np.abs(m**2 - med**2) <= 2.0 * rtol * med**2 + rounding
    for i, obj in enumerate(objects):
        if agree[:, i].mean() < 0.95:
            spread = np.percentile(m[:, i], 84) - np.percentile(m[:, i], 16)
            raise InputError(
                f"the mass of '{obj}' varies ({med[i]:.4g} GeV, 68% spread {spread:.2g} GeV, "
                f"{1 - agree[:, i].mean():.0%} of candidates off by more than {rtol:.0e} or "
                "float32 rounding): the decay representation needs fixed mass hypotheses; pass "
                "masses=[...] (GeV) or use representation='collider'"
            )
    return [float(x) for x in med]


# rows per redraw batch: see Model._p4_from_noise_padded
_REDRAW_ROWS = 256


def _column_runs(columns: Sequence[int]) -> list[tuple[int, int, int]]:
    """(first column, its position in ``columns``, length) of each run of consecutive columns."""
    runs: list[tuple[int, int, int]] = []
    for i, c in enumerate(columns):
        if runs and runs[-1][0] + runs[-1][2] == c:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((c, i, 1))
    return runs


class RepresentationWarning(UserWarning):
    """``representation="auto"`` could not use the decay representation."""


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

    def __init__(self, vae: VAE, representation, standardizer: Standardizer, layout: Layout, *,
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

    # -- the one sampling path: noise -> standardized features -> 4-momenta ------------
    def features_from_noise(self, eps: torch.Tensor, *, hidden_dtype=None) -> torch.Tensor:
        """Standardized features, (N, D_learned [+ 1]), from standard normals (N, noise_width).

        With ``phi_uniform`` the last column is the normal that becomes the parent
        azimuth in :meth:`to_p4`. ``hidden_dtype`` (e.g. ``torch.bfloat16``) runs
        the decoder's hidden layers under autocast. Runs on the model's device.
        """
        w = self.vae.noise_width
        x = self.vae.generate(eps[:, :w], hidden_dtype=hidden_dtype)
        return torch.cat([x, eps[:, w:]], dim=1) if self.phi_uniform else x

    def to_p4(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(4-momenta (N, k, 4) GeV, full features (N, D)) from :meth:`features_from_noise` output.

        ``x`` (N, D_learned [+ 1]) may be float32: the inverse scaling runs in float64.
        A numpy ``x`` gives numpy arrays; a torch tensor gives float64 tensors on its
        device (the same code: see :mod:`vaeaug.representations.arrays`), so that a GPU
        can decode what it generated before anything is copied to the host.
        """
        rep = self.representation
        x = as_float64(x)
        xp = namespace(x)
        full = xp.empty((x.shape[0], rep.n_features), like=x)
        learned = self.standardizer.inverse(x[:, : len(self.learned)])
        # runs of consecutive columns: slice copies, no index array to send to a device
        for dst, src, width in _column_runs(self.learned):
            full[:, dst : dst + width] = learned[:, src : src + width]
        if self.phi_uniform:
            u = x[:, -1]
            cdf = torch.special.ndtr(u) if is_tensor(u) else _ndtr(u)
            phi = math.pi * (2.0 * cdf - 1.0)
            full[:, 2], full[:, 3] = xp.cos(phi), xp.sin(phi)
        # the features stay in the network's labelling: the support's feature part was
        # fitted in it
        return order_by_pt(rep.from_features(full), self.exchange), full

    def p4_from_noise(
        self, eps: np.ndarray, batch_size: int = 1 << 16
    ) -> tuple[np.ndarray, np.ndarray]:
        """(4-momenta (M, k, 4) GeV, features (M, D)) from standard normals (M, noise_width)."""
        if eps.ndim != 2 or eps.shape[1] != self.noise_width:
            raise InputError(f"noise must have shape (M, {self.noise_width}), got {eps.shape}")
        p4 = np.empty((len(eps), len(self.objects), 4))
        full = np.empty((len(eps), self.representation.n_features))
        self.vae.eval()
        with torch.inference_mode():
            for s in range(0, len(eps), batch_size):
                e = torch.as_tensor(
                    eps[s : s + batch_size], dtype=torch.float32, device=self.device
                )
                x = self.features_from_noise(e).double().cpu().numpy()
                p4[s : s + len(x)], full[s : s + len(x)] = self.to_p4(x)
        return p4, full

    def _p4_from_noise_padded(self, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`p4_from_noise` in zero-padded groups of ``_REDRAW_ROWS`` rows.

        A matrix product's rounding can depend on the number of rows; with a
        fixed row count a redraw gives the same bits whichever other redraws
        share its batch, so the events do not depend on the chunking.
        """
        n = len(eps)
        padded = np.zeros((-(-n // _REDRAW_ROWS) * _REDRAW_ROWS, eps.shape[1]))
        padded[:n] = eps
        p4, full = self.p4_from_noise(padded, batch_size=_REDRAW_ROWS)
        return p4[:n], full[:n]

    def support_values(self, p4: np.ndarray, features: np.ndarray) -> np.ndarray:
        """The support's observables (N, O): lab-frame ones, then the model's features.

        Features that are (cos, sin) halves of an angle are left out: every
        angle is physical, and generated pairs are normalised only when decoded.
        """
        columns = [i for i, n in enumerate(self.representation.feature_names())
                   if not n.endswith(("_cos", "_sin"))]  # fmt: skip
        return np.concatenate([observables(p4, self.objects)[1], features[:, columns]], axis=1)

    def enforce_support(self, p4: np.ndarray, features: np.ndarray, keys: np.ndarray,
                        mode: str = "reject", max_rounds: int = 100) -> SupportReport:  # fmt: skip
        """Check candidates against the support; with ``"reject"`` redraw those outside, in place.

        Args:
            p4: generated 4-momenta (M, k, 4) GeV; rows outside are replaced.
            features: their features (M, D); replaced alongside.
            keys: one uint64 key per row (:mod:`vaeaug.sampling.noise`): redraw ``r`` of row
                ``i`` uses only ``keys[i]`` and ``r``, so the result is independent of
                how the sample is cut into chunks.
            mode: one of :data:`~vaeaug.model.support.SUPPORT_MODES`.
            max_rounds: redraws per candidate before it is kept as it is.

        Returns:
            The :class:`~vaeaug.model.support.SupportReport` of these rows.
        """
        report = SupportReport(n=len(p4), expected_rate=self.support.expected_rate
                               if self.support else 0.0)  # fmt: skip
        if mode == "off" or self.support is None or not len(p4):
            return report
        values = self.support_values(p4, features)
        todo = np.flatnonzero(~self.support.inside(values))
        report.outside = len(todo)
        report.edges = self.support.edges_crossed(values[todo])
        if mode == "reject":
            for round_ in range(1, max_rounds + 1):
                if not len(todo):
                    break
                new_p4, new_f = self._p4_from_noise_padded(
                    keyed_normals(keys[todo], self.noise_width, round_)
                )
                ok = self.support.inside(self.support_values(new_p4, new_f))
                p4[todo[ok]], features[todo[ok]] = new_p4[ok], new_f[ok]
                todo = todo[~ok]
        report.unresolved = len(todo) if mode == "reject" else 0
        return report

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

        Args:
            chunk_size: events per chunk (default
                :func:`vaeaug.sampling.streaming.default_chunk`: 131,072, 2**20 on CUDA).
            precision: "fp32" (default) or "bf16" (the decoder's hidden layers in
                bfloat16; fast on GPUs, slow on most CPUs; see docs/performance.md).
            compile: run the decoder through ``torch.compile`` (pays on GPUs for
                large samples; costs tens of seconds of compilation).
            support: "reject" (default: candidates outside the training support,
                e.g. a daughter outside the detector acceptance, are redrawn),
                "warn" (kept; a warning when more fall outside than real ones
                would) or "off".
            report: a :class:`~vaeaug.model.support.SupportReport` to fill.
        """
        _check_sampling(n, seed)
        report = report if report is not None else SupportReport()
        bar = tqdm(total=n, desc="generating", unit="ev", unit_scale=True, disable=not progress,
                   leave=False)  # fmt: skip
        chunks = streaming.stream(self, n, seed, chunk_size=chunk_size,
                                   precision=precision, compile=compile, support=support,
                                   report=report)  # fmt: skip
        with contextlib.closing(chunks):
            for p4 in chunks:
                bar.update(len(p4))
                yield p4
        bar.close()
        report.warn_if_excess(support)

    def sample(self, n: int, *, seed: int = 0, chunk_size: int | None = None,
               progress: bool = False, precision: str = "fp32", compile: bool = False,
               support: str = "reject") -> Candidates:  # fmt: skip
        """Generate ``n`` candidates: :class:`~vaeaug.sampling.candidates.Candidates`, p4 (n, k, 4) GeV.

        The same ``seed`` gives the same events (on the same device type),
        whatever ``chunk_size``; ``precision``, ``compile`` and ``support`` as in
        :meth:`iter_samples`. The events fill one preallocated array (no
        concatenation of chunks); the support check's report is
        ``candidates.support_report``.
        """
        _check_sampling(n, seed)
        report = SupportReport()
        p4 = streaming.sample_into(self, n, seed, progress=progress, chunk_size=chunk_size,
                                    precision=precision, compile=compile, support=support,
                                    report=report)  # fmt: skip
        report.warn_if_excess(support)
        return Candidates(p4, self.layout, support_report=report)

    # -- persistence ------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the model file (safetensors, no pickle) atomically."""
        tensors = {f"vae.{k}": v for k, v in self.vae.state_dict().items()}
        tensors.update(self.standardizer.tensors())
        write_model_file(path, tensors, {
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
        learned = [int(i) for i in meta["learned"]]
        phi_uniform = bool(meta["phi_uniform"])
        exchange = [[int(i) for i in g] for g in meta.get("exchange", [])]  # format 2: none
        support = meta.get("support")
        support = None if support is None else Support.from_dict(support)
    except (KeyError, TypeError, ValueError, RuntimeError, InputError) as err:
        raise ModelFileError(
            f"'{path}' is not a complete vaeaug model file ({type(err).__name__}: {err})"
        ) from err
    state = {k[4:]: v for k, v in tensors.items() if k.startswith("vae.")}
    _check_model_tensors(path, state, vae, tensors, n_features)
    _check_model_meta(
        path, meta, n_features, representation, layout, learned, phi_uniform, exchange
    )
    try:
        vae.load_state_dict(state)
        model = Model(
            vae,
            representation,
            Standardizer.from_tensors(tensors),
            layout,
            learned=learned,
            phi_uniform=phi_uniform,
            exchange=exchange,
            support=support,
            train_config=TrainConfig.from_dict(meta.get("train_config", {})),
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
    check_shapes(path, state, expected, "the file's vae_config and n_features")
    scaler = {k: v for k, v in tensors.items() if not k.startswith("vae.")}
    check_shapes(path, scaler, {f"standardizer.{k}": (n_features,)
                                for k in ("center", "scale", "constant")},
                 f"n_features = {n_features}")  # fmt: skip
    if not (tensors["standardizer.scale"] > 0).all():
        raise ModelFileError(f"'{path}': the standardizer's scale has entries <= 0")


def _check_model_meta(path, meta: dict, n_features: int, representation, layout: Layout,
                      learned: list[int], phi_uniform: bool,
                      exchange: list[list[int]]) -> None:  # fmt: skip
    """The representation against the learned features and the layout's objects."""
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


def data_hash(p4: np.ndarray) -> str:
    """sha256 of the training 4-momenta (float64, C order), for provenance."""
    return hashlib.sha256(np.ascontiguousarray(p4, dtype=np.float64).tobytes()).hexdigest()


def _choose_representation(
    representation: str, p4: np.ndarray, names: Sequence[str], masses: Sequence[float] | None
) -> tuple[str, list[float] | None, str]:
    """The representation to use, the masses, and why (for ``"auto"``; said, never silent)."""
    k = len(names)
    if representation not in (*REPRESENTATIONS, "auto"):
        raise InputError(
            f"representation '{representation}' unknown; valid: auto, {', '.join(REPRESENTATIONS)}"
        )
    reason = f"'{representation}' requested"
    if representation == "auto":
        if k < 2:
            representation = "collider"
            reason = "auto: one object per candidate has no decay; 'collider' chosen"
        else:
            try:
                masses = masses if masses is not None else infer_masses(p4, names)
                representation, reason = "decay", f"auto: {k}-body decay with fixed daughter masses"
            except InputError as err:
                representation = "collider"
                reason = (
                    f"auto: 'collider' chosen, not 'decay', because {err}. Give the daughter "
                    "masses (masses=[...] in GeV, --masses on the CLI) to get the decay "
                    "representation, which keeps the parent mass peak and momentum "
                    "conservation exact"
                )
                warnings.warn(reason, RepresentationWarning, stacklevel=3)
    if representation == "decay" and masses is None:
        masses = infer_masses(p4, names)
    if representation == "collider" and masses is None:
        # fixed masses are mass hypotheses, not features to learn
        with contextlib.suppress(InputError):
            masses = infer_masses(p4, names)
    if masses is not None and len(masses) != k:
        raise InputError(f"{len(masses)} masses given for {k} objects ({', '.join(names)})")
    return representation, None if masses is None else list(masses), reason


def _acceptance_term(rep, standardizer: Standardizer, learned: list[int], groups: list,
                     support: Support, obs: np.ndarray) -> AcceptanceTerm:  # fmt: skip
    """The training's acceptance term: decodes standardized learned features (B, D) the way
    :meth:`Model.to_p4` does (identical daughters ``groups`` put in pT order; the parent
    azimuth, when drawn uniformly, set to 0: no lab-frame observable of the support depends
    on it), then checks them against the lab-frame part of ``support`` (observables ``obs``
    (N, 2 k + 3) of the training sample)."""

    def decode(x: torch.Tensor) -> torch.Tensor:
        full = torch.zeros((len(x), rep.n_features), dtype=torch.float64, device=x.device)
        full[:, learned] = standardizer.inverse(x)
        if len(learned) < rep.n_features:  # phi drawn uniformly: (cos, sin) = (1, 0)
            full[:, 2] = 1.0
        return order_by_pt(rep.from_features(full), groups)

    lo, hi = np.quantile(obs, [0.16, 0.84], axis=0)
    return AcceptanceTerm(decode, support, (hi - lo) / 2)


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
) -> Model:
    """Train a model on decay candidates.

    Args:
        data: a :class:`~vaeaug.io.CandidateTable` (from :func:`read_candidates`),
            4-momenta of shape (N, k, 4) as (px, py, pz, E) in GeV, or a mapping
            of flat branches (``{"K1_px": ..., ...}``).
        representation: ``"decay"`` (parent kinematics + rest-frame decay
            variables; for a decay with fixed daughter masses, any k >= 2),
            ``"collider"`` (per-object log pt, eta, phi, mass), ``"cartesian"``,
            or ``"auto"``: decay when the daughter masses are fixed, else
            collider, with a :class:`RepresentationWarning` saying why.
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
        seed: every random draw of training flows from it.
        device: "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
        progress: show a progress bar.

    Returns:
        The trained :class:`Model`.
    """
    if phi not in ("auto", "uniform", "learn"):
        raise InputError(f"phi must be one of auto, uniform, learn; got {phi!r}")
    if exchange not in EXCHANGE_CHOICES:
        raise InputError(f"exchange must be one of {', '.join(EXCHANGE_CHOICES)}; got {exchange!r}")
    table = as_table(data, objects, weights)
    config = config or VAEConfig()
    train = train or TrainConfig()
    check_settings({"seed": seed, "masses": masses, **config.to_dict(), **train.to_dict()})
    dev = choose_device(device)
    p4, names = table.p4, table.objects
    representation, masses, reason = _choose_representation(representation, p4, names, masses)
    rep = make_representation(representation, len(names), masses=masses, object_names=names)

    mode = exchange_mode(exchange, len(names))
    groups = pt_ordered_groups(p4, masses) if mode != "off" else []
    if groups and mode == "symmetric":  # each candidate's identical daughters in a seeded order
        learned_p4 = shuffle_within(p4, groups, np.random.default_rng([seed, 0x5EED]))
    else:
        learned_p4 = p4
    features = rep.to_features(learned_p4)
    phi_pvalue = None
    phi_uniform = False
    if rep.name == "decay":
        phi_pvalue = kuiper_uniform_pvalue(np.arctan2(features[:, 3], features[:, 2]))
        phi_uniform = phi == "uniform" or (phi == "auto" and phi_pvalue > PHI_TEST_LEVEL)
    learned = [i for i in range(rep.n_features) if not (phi_uniform and i in (2, 3))]
    standardizer = Standardizer.fit(features[:, learned])
    if standardizer.constant.any():
        fixed = [rep.feature_names()[i] for i, c in zip(learned, standardizer.constant) if c]
        warnings.warn(f"features {fixed} are constant in the training data; they are kept fixed",
                      ConstantFeatureWarning, stacklevel=2)  # fmt: skip
    x = standardizer.transform(features[:, learned])

    obs_names, obs = observables(p4, names)
    angular = [f.endswith(("_cos", "_sin")) for f in rep.feature_names()]
    support = Support.fit(
        np.concatenate([obs, features[:, ~np.array(angular)]], axis=1),
        obs_names + [f"feature:{f}" for f, a in zip(rep.feature_names(), angular) if not a],
        seed=seed,
    )
    acceptance = None
    if train.acceptance_weight > 0:
        if rep.name != "decay":
            raise InputError(
                f"acceptance_weight > 0 needs the decay representation, not '{rep.name}'; "
                "give the daughters' masses (masses=...) or representation='decay'"
            )
        acceptance = _acceptance_term(rep, standardizer, learned, groups, support, obs)

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        vae = VAE(len(learned), config)
        start = time.perf_counter()
        history = train_vae(vae, x, train, weights=table.weights, seed=seed, device=dev,
                            progress=progress, acceptance=acceptance)  # fmt: skip
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
        "best_epoch": history.get("best_epoch"),
        "representation_choice": reason,
        "phi_choice": phi,
        "phi_kuiper_pvalue": phi_pvalue,
        "exchange_choice": exchange,
        "exchange_mode": mode if groups else "off",
    }
    return Model(
        vae,
        rep,
        standardizer,
        table.layout,
        learned=learned,
        phi_uniform=phi_uniform,
        exchange=groups,
        support=support,
        train_config=train,
        provenance=provenance,
        history=history,
    )
