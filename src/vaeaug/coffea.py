"""``vaeaug.Augment``: generate candidates inside a coffea processor.

::

    augment = vaeaug.Augment("dimuon.vaeaug.safetensors", factor=10, seed=1)

    class Processor(coffea.processor.ProcessorABC):
        def process(self, events):
            mu = ak.zip({"px": events.Muon_Px, ...}, with_name="Momentum4D")
            pairs = ak.combinations(mu, 2, fields=["mu1", "mu2"])
            gen = augment(pairs)                      # N * var * {mu1, mu2, weight}
            h.fill(mass=ak.flatten((gen.mu1 + gen.mu2).mass), weight=ak.flatten(gen.weight))

The same object works on eager, virtual and dask-awkward arrays (coffea's
``mode="dask"``, ``apply_to_fileset``), under every coffea executor.

Weights (``mode``), for input candidate weights ``w`` (1 when not given):

* ``"generated"``: ``factor`` generated candidates per input candidate, each
  with weight ``w / factor``: the output's weights sum to the input's;
* ``"combined"``: each input candidate (weight ``w``) followed by its
  ``factor`` generated ones (weight ``w / factor`` each), and a boolean
  ``is_generated``. The real part and the generated part each sum to the
  input's weights, so the whole sums to twice that: select one part with
  ``is_generated``, or scale by 1/2, for a normalised histogram. The same rule
  as ``vaeaug augment --combined``.

Determinism: the random numbers behind the generated partners of a candidate
derive from ``seed`` and that candidate's own 4-momenta (a counter-based
generator keyed by a hash of its float64 components), not from the chunk, file
or worker. The same fileset therefore gives the same generated candidates under
any executor, chunk size, chunk order or number of workers, in dask mode too
(where a partition does not know its file or entry range). Identical input
candidates get identical partners.

The model travels as the bytes of its safetensors file (no pickled torch
object); each worker loads it on first use, on its GPU when it has one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import numpy as np
import torch

from .api import Model, load
from .awkward_adaptors import CandidateArrays, candidate_p4, to_awkward
from .candidates import invariant_mass
from .errors import InputError
from .training import choose_device

__all__ = ["MODES", "Augment", "CandidateAccumulator", "candidate_noise", "generate_from_noise"]

#: Valid values of ``Augment(mode=...)``.
MODES = ("generated", "combined")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on a uint64 array (wraps modulo 2**64 by design)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _candidate_keys(p4: np.ndarray, seed: int) -> np.ndarray:
    """A 64-bit key per candidate from ``seed`` and its float64 4-momenta: (M, k, 4) -> (M,)."""
    words = np.ascontiguousarray(p4, dtype=np.float64).reshape(len(p4), -1).view(np.uint64)
    start = np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]
    h = np.full(len(p4), start, dtype=np.uint64)
    for col in words.T:
        h = _mix((h ^ col) + _GOLDEN)
    return h


def candidate_noise(
    p4: np.ndarray, seed: int, factor: int, n_normal: int
) -> tuple[np.ndarray, np.ndarray]:
    """The random numbers behind each candidate's ``factor`` generated partners.

    Args:
        p4: the input candidates, (M, k, 4) in GeV.
        seed: the user's seed.
        factor: partners per candidate.
        n_normal: standard normals per partner.

    Returns:
        ``(u, eps)``: uniforms in (0, 1) of shape (M * factor,) and standard
        normals of shape (M * factor, n_normal); rows ``i * factor ... i * factor +
        factor - 1`` belong to candidate ``i``. Partner j of a candidate draws from
        the SplitMix64 stream of its key at counters ``j * n + 1 ... (j + 1) * n``,
        so its numbers depend on nothing but (seed, p4[i], j).
    """
    n_pairs = (n_normal + 1) // 2
    n_u = 1 + 2 * n_pairs
    keys = np.repeat(_candidate_keys(p4, seed), factor)
    j = np.tile(np.arange(factor, dtype=np.uint64), len(p4))
    counters = j[:, None] * np.uint64(n_u) + np.arange(1, n_u + 1, dtype=np.uint64)
    bits = _mix(keys[:, None] + counters * _GOLDEN)
    # 53 random bits, centred in their bin: strictly inside (0, 1), so log() is finite
    u = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    r = np.sqrt(-2.0 * np.log(u[:, 1 : 1 + n_pairs]))
    theta = 2.0 * np.pi * u[:, 1 + n_pairs :]
    eps = np.concatenate([r * np.cos(theta), r * np.sin(theta)], axis=1)[:, :n_normal]
    return u[:, 0], eps


def generate_from_noise(
    model: Model, u: np.ndarray, eps: np.ndarray, batch_size: int = 1 << 16
) -> np.ndarray:
    """Decode given random numbers into 4-momenta: (M,), (M, L + D) -> (M, k, 4) GeV.

    ``u`` picks the component of the latent mixture prior (inverse CDF), the
    first L normals of ``eps`` the latent point, the last D the decoder noise:
    the same distribution as :meth:`Model.sample`, with the randomness supplied
    by the caller.
    """
    vae = model.vae
    L, D = vae.config.latent_dim, vae.n_features
    if eps.shape != (len(u), L + D):
        raise InputError(f"noise must have shape ({len(u)}, {L + D}), got {eps.shape}")
    device = model.device
    cdf = torch.cumsum(vae.prior_weights.double(), 0).cpu().numpy()
    comp = np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), len(cdf) - 1)
    out = []
    vae.eval()
    with torch.inference_mode():
        for s in range(0, len(u), batch_size):
            idx = torch.as_tensor(comp[s : s + batch_size], device=device)
            e = torch.as_tensor(eps[s : s + batch_size], dtype=torch.float32, device=device)
            z = vae.prior_means[idx] + (vae.prior_scale_tril[idx] @ e[:, :L, None]).squeeze(-1)
            px = vae.decode(z).base_dist
            x = (px.loc + px.scale * e[:, L:]).double().cpu().numpy()
            out.append(model.representation.from_features(model.standardizer.inverse(x)))
    return np.concatenate(out) if out else np.empty((0, len(model.objects), 4))


def _model_bytes(model: Model | str | os.PathLike) -> bytes:
    if isinstance(model, Model):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.safetensors"
            model.save(path)
            return path.read_bytes()
    if not isinstance(model, str | os.PathLike):
        raise InputError(
            f"Augment needs a vaeaug.Model or a model file path, got {type(model).__name__}"
        )
    load(model, device="cpu")  # validates the file here, with its name in any error
    return Path(model).read_bytes()


def _model_from_bytes(data: bytes, device: str | torch.device) -> Model:
    # safetensors' metadata is only read from a file, so go through a private temporary one
    fd, name = tempfile.mkstemp(suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return load(name, device=device)
    finally:
        os.unlink(name)


def _is_dask(array) -> bool:
    return type(array).__module__.startswith("dask_awkward")


class Augment:
    """Generate ``factor`` candidates per input candidate, in a coffea processor.

    Args:
        model: a :class:`vaeaug.Model` or the path of a model file.
        factor: generated candidates per input candidate (>= 1).
        seed: every random draw derives from it and the candidates (module docstring).
        mode: ``"generated"`` (only generated candidates, weight w / factor) or
            ``"combined"`` (inputs with weight w, generated with w / factor, flag
            ``is_generated``; the sum is twice the input's).
        objects: the candidates' daughter fields, in the model's object order
            (default: the model's object names when the candidates have them, else
            the candidates' 4-vector fields in order).
        device: where workers run the network: ``"auto"`` (a GPU when the worker
            has one), ``"cpu"``, ``"cuda"``...
        check_masses: compare the candidates' daughter masses with the model's
            mass hypotheses and refuse a mismatch (a model of another decay).
        batch_size: generated candidates per network call (bounds memory).

    Calling it on candidates (awkward or dask-awkward; see
    :func:`vaeaug.awkward_adaptors.candidate_p4` for the accepted shapes), with
    optional ``weights`` per candidate or per event, returns records named after
    the model's objects, each a ``Momentum4D`` with the vector behavior attached,
    plus ``weight`` (and ``is_generated`` in combined mode), nested like the input.
    """

    def __init__(
        self,
        model: Model | str | os.PathLike,
        *,
        factor: int = 1,
        seed: int = 0,
        mode: str = "generated",
        objects: Sequence[str] | None = None,
        device: str = "auto",
        check_masses: bool = True,
        batch_size: int = 1 << 16,
    ) -> None:
        if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
            raise InputError(f"factor must be an integer >= 1, got {factor!r}")
        if mode not in MODES:
            raise InputError(f"mode {mode!r} unknown; valid: {', '.join(MODES)}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InputError(f"seed must be an integer >= 0, got {seed!r}")
        self.model_bytes = _model_bytes(model)
        self.model_sha256 = hashlib.sha256(self.model_bytes).hexdigest()
        self.factor = int(factor)
        self.seed = int(seed)
        self.mode = mode
        self.device = device
        self.check_masses = check_masses
        self.batch_size = int(batch_size)
        self._model: Model | None = model if isinstance(model, Model) else None
        meta = self._model or _model_from_bytes(self.model_bytes, "cpu")
        self.model_objects = tuple(meta.objects)
        self.masses = getattr(meta.representation, "masses", None)
        self.representation = meta.representation.name
        self.objects = tuple(objects) if objects is not None else None
        if self.objects is not None and len(self.objects) != len(self.model_objects):
            raise InputError(
                f"objects={list(self.objects)} names {len(self.objects)} daughters, but the model was trained "
                f"on {len(self.model_objects)} ({', '.join(self.model_objects)})"
            )

    def __repr__(self) -> str:
        return (
            f"<vaeaug.Augment factor={self.factor} seed={self.seed} mode={self.mode!r} "
            f"objects={'/'.join(self.model_objects)} model sha256 {self.model_sha256[:12]}>"
        )

    # -- shipping to workers ----------------------------------------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_model"] = None  # workers rebuild it from model_bytes: no torch object is pickled
        return state

    def __dask_tokenize__(self):
        return (
            type(self).__name__,
            self.model_sha256,
            self.factor,
            self.seed,
            self.mode,
            self.objects,
        )

    @property
    def model(self) -> Model:
        """The model, loaded on first use in this process (on ``device``)."""
        if self._model is None:
            self._model = _model_from_bytes(self.model_bytes, choose_device(self.device))
        return self._model

    # -- the call ---------------------------------------------------------
    def __call__(self, candidates, weights=None):
        """Augment ``candidates`` (awkward or dask-awkward); see the class docstring."""
        if _is_dask(candidates):
            import dask_awkward as dak

            args = (candidates,) if weights is None else (candidates, weights)
            return dak.map_partitions(self._augment, *args, label="vaeaug-augment")
        return self._augment(candidates, weights)

    def _field_names(self, candidates: ak.Array) -> Sequence[str] | None:
        if self.objects is not None:
            return self.objects
        fields = ak.fields(candidates)
        return self.model_objects if all(o in fields for o in self.model_objects) else None

    def _augment(self, candidates, weights=None) -> ak.Array:
        arrays = candidate_p4(
            candidates, objects=self._field_names(candidates), n_objects=len(self.model_objects)
        )
        if arrays.is_typetracer:
            # dask-awkward's first run: the reads above touched the needed columns;
            # answer with the output's form at unknown length
            if weights is not None and ak.backend(weights) == "typetracer":
                ak.typetracer.touch_data(weights)
            counts = np.zeros(0, np.int64) if arrays.nested else None
            empty = self._assemble(
                arrays, np.empty((0, len(self.model_objects), 4)), np.ones(0), counts
            )
            return ak.Array(empty.layout.to_typetracer(forget_length=True), behavior=empty.behavior)
        w = self._weights(weights, candidates, arrays)
        if len(arrays.p4) == 0:
            return self._assemble(
                arrays, np.empty((0, len(self.model_objects), 4)), w, arrays.counts
            )
        if self.check_masses and self.masses is not None:
            self._check_masses(arrays)
        u, eps = candidate_noise(arrays.p4, self.seed, self.factor, self._n_normal())
        generated = generate_from_noise(self.model, u, eps, self.batch_size)
        return self._assemble(arrays, generated, w, arrays.counts)

    def _n_normal(self) -> int:
        return self.model.vae.config.latent_dim + self.model.vae.n_features

    def _weights(self, weights, candidates: ak.Array, arrays: CandidateArrays) -> np.ndarray:
        """Per-candidate input weights, shape (M,) (ones when not given)."""
        m = len(arrays.p4)
        if weights is None:
            return np.ones(m)
        w = ak.Array(weights) if not isinstance(weights, ak.Array) else weights
        if w.ndim == 1 and arrays.counts is not None and len(w) == len(arrays.counts):
            w = np.repeat(
                np.asarray(ak.to_numpy(w), dtype=np.float64), arrays.counts
            )  # one weight per event
        else:
            w = np.asarray(ak.to_numpy(ak.flatten(w, axis=None)), dtype=np.float64)
        if w.shape != (m,) or not np.isfinite(w).all():
            raise InputError(
                f"weights must be finite, one per candidate ({m}) or per event, nested like the candidates; "
                f"got {len(w)} values"
            )
        return w

    def _check_masses(self, arrays: CandidateArrays) -> None:
        e, p2 = arrays.p4[..., 3], (arrays.p4[..., :3] ** 2).sum(-1)
        found = np.median(np.sqrt(np.maximum(e**2 - p2, 0.0)), axis=0)
        bad = [
            f"{name}: model {m:.4g} GeV, candidates {f:.4g} GeV"
            for name, m, f in zip(arrays.objects, self.masses, found, strict=True)
            if abs(f - m) > max(0.05 * m, 0.002)
        ]
        if bad:
            raise InputError(
                f"the candidates' daughter masses do not match the model's {self.representation} representation "
                f"({'; '.join(bad)}): a model of another decay or other daughters? "
                "Pass objects=[...] to reorder daughters, or check_masses=False to override"
            )

    def _assemble(self, arrays: CandidateArrays, generated: np.ndarray, w: np.ndarray,
                  counts: np.ndarray | None) -> ak.Array:  # fmt: skip
        """Output records nested like the input, per the mode's ordering and weights."""
        k = self.factor
        names = self.model_objects
        if self.mode == "generated":
            p4, weight, extra, per = generated, np.repeat(w, k) / k, {}, k
        else:
            n_obj = len(names)
            blocks = np.concatenate(
                [arrays.p4.reshape(-1, 1, n_obj, 4), generated.reshape(-1, k, n_obj, 4)], axis=1
            )  # (M, 1 + k, n_obj, 4): each input then its partners
            p4 = blocks.reshape(-1, n_obj, 4)
            flag = np.tile(np.r_[False, np.ones(k, bool)], len(arrays.p4))
            # each input keeps w, its partners share it: real and generated parts each sum to w
            weight = np.concatenate([w[:, None], np.repeat(w[:, None] / k, k, axis=1)], axis=1)
            weight, extra, per = weight.reshape(-1), {"is_generated": flag}, k + 1
        if len(p4) == 0:
            p4, weight = np.empty((0, len(names), 4)), np.empty(0)
            extra = {key: np.empty(0, bool) for key in extra}
        return to_awkward(
            p4, names, weight=weight, counts=None if counts is None else counts * per, extra=extra
        )

    def invariant_mass(self, records: ak.Array) -> ak.Array:
        """The parent mass (GeV) of output records, nested like them."""
        total = records[self.model_objects[0]]
        for name in self.model_objects[1:]:
            total = total + records[name]
        return total.mass


class CandidateAccumulator:
    """Collect candidates' 4-momenta across a coffea run, to train a model on them.

    A coffea accumulator (it adds), so a processor returns
    ``{"train": CandidateAccumulator.from_awkward(pairs)}`` and the run's
    output holds all chunks' candidates; :meth:`fit` trains on them. The rows
    are put in a canonical (sorted) order, so the training data, and with a
    fixed seed the model, do not depend on the executor's chunk order.
    """

    def __init__(self, p4: np.ndarray | None = None, objects: Sequence[str] = ()) -> None:
        self._parts = [] if p4 is None else [np.asarray(p4, dtype=np.float64)]
        self.objects = tuple(objects)

    @classmethod
    def from_awkward(cls, candidates: ak.Array, *, objects: Sequence[str] | None = None,
                     n_objects: int | None = None) -> CandidateAccumulator:  # fmt: skip
        """Take the candidates of a chunk (any shape :func:`candidate_p4` accepts)."""
        arrays = candidate_p4(candidates, objects=objects, n_objects=n_objects)
        return cls(arrays.p4, arrays.objects)

    def __add__(self, other: CandidateAccumulator) -> CandidateAccumulator:
        out = CandidateAccumulator(objects=self.objects or other.objects)
        out._parts = self._parts + other._parts
        out._check(other)
        return out

    def __iadd__(self, other: CandidateAccumulator) -> CandidateAccumulator:
        self._check(other)
        self.objects = self.objects or other.objects
        self._parts += other._parts
        return self

    def _check(self, other: CandidateAccumulator) -> None:
        if self.objects and other.objects and self.objects != other.objects:
            raise InputError(f"cannot add candidates of objects {other.objects} to {self.objects}")

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)

    @property
    def p4(self) -> np.ndarray:
        """All candidates, (N, k, 4) in GeV, rows sorted lexicographically."""
        if not self._parts:
            return np.empty((0, len(self.objects), 4))
        p4 = np.concatenate(self._parts)
        flat = p4.reshape(len(p4), -1)
        return p4[np.lexsort(flat.T[::-1])]

    @property
    def mass(self) -> np.ndarray:
        """The parents' invariant masses in GeV, shape (N,), in the order of :attr:`p4`."""
        return invariant_mass(self.p4)

    def fit(self, **kwargs) -> Model:
        """Train on the collected candidates: :func:`vaeaug.fit` with ``objects`` set."""
        from .api import fit

        if len(self) == 0:
            raise InputError("no candidates were collected; nothing to train on")
        return fit(self.p4, objects=self.objects, **kwargs)
