"""``vaeaug.Augment``: generate candidates inside a coffea processor.

::

    augment = vaeaug.Augment("dimuon.vaeaug.safetensors", factor=10, seed=1)

    class Processor(coffea.processor.ProcessorABC):
        def process(self, events):
            pairs = vaeaug.candidates(events.Muon, n=2, charge="opposite", fields=["mu1", "mu2"])
            gen = augment(pairs)           # N * var * {mu1, mu2, weight, is_generated}
            h.fill(mass=ak.flatten((gen.mu1 + gen.mu2).mass), weight=ak.flatten(gen.weight))

The same object works on eager, virtual and dask-awkward arrays (coffea's
``mode="dask"``, ``apply_to_fileset``), under every coffea executor, on TTrees
and RNTuples (:func:`apply_to_fileset` and :func:`dask_events` work around
coffea's dask mode, which cannot read an RNTuple).

Generated daughters keep the input's daughter names and type: coffea
NanoEvents input (a ``Muon``, a ``PtEtaPhiMCandidate``) gives records of the
same type with its coordinates and behavior, plain awkward input gives
``vector`` ``Momentum4D``; each carries its source daughter's ``charge`` (and
``pdgId``). Other input fields (isolation, IDs...) cannot be generated: they
are dropped, listed in :attr:`Augment.dropped_fields` and in one warning.

Weights (``mode``), for input candidate weights ``w`` (1 when not given):

* ``"generated"``: ``factor`` generated candidates per input candidate, each
  with weight ``w / factor``: the output's weights sum to the input's;
* ``"combined"``: each input candidate followed by its ``factor`` generated
  ones, and a boolean ``is_generated``; the input and its partners share its
  weight, ``w / (1 + factor)`` each (:mod:`vaeaug.sampling.weights`). The whole
  output sums to the input's weights, as a histogram filled from it should: the
  real part holds ``1 / (1 + factor)`` of that yield, the generated part
  ``factor / (1 + factor)``. The same rule as ``vaeaug augment --combined``.

Determinism: the random numbers behind the generated partners of a candidate
derive from ``seed`` and that candidate's own 4-momenta (a counter-based
generator keyed by a hash of its float64 components), not from the chunk, file
or worker. The same fileset therefore gives the same generated candidates under
any executor, chunk size, chunk order or number of workers, in dask mode too
(where a partition does not know its file or entry range). Identical input
candidates get identical partners.

The model travels as the bytes of its safetensors file (no pickled torch
object); each worker process loads it once, on first use, on its GPU when it
has one, and keeps it in a cache keyed by the bytes' sha256, however many
chunks (and unpickled copies of the ``Augment``) it processes.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence

import awkward as ak
import numpy as np

from ..api import Model, load
from ..errors import InputError
from ..io.candidates import Candidates
from ..io.layout import Layout
from ..io.nanoaod import dask_events, has_rntuple
from ..kinematics import as_vectors
from ..model.support import SUPPORT_MODES, Support, SupportReport
from ..noise import candidate_keys, keyed_normals, mix
from ..sampling.decode import support_values
from ..sampling.posterior import DEFAULT_WIDTH, SAMPLINGS, PosteriorNoise, check_width
from ..sampling.weights import combined_weights
from .awkward import (
    CARRIED_FIELDS,
    MOMENTUM4D,
    AwkwardSource,
    candidate_p4,
    coordinate_values,
    from_awkward,
    is_dask,
    zip_candidates,
)
from .cache import cached_model, model_file_bytes, model_load_count, peek, remember, sha256_of

__all__ = [
    "BLOCK_ROWS",
    "DECODE_ROWS",
    "MODES",
    "Augment",
    "AugmentReport",
    "CandidateAccumulator",
    "DroppedFieldsWarning",
    "PartialNanoAODSchema",  # noqa: F822 (vaeaug.io.nanoaod's, imported on first use by __getattr__)
    "apply_to_fileset",
    "candidate_noise",
    "dask_events",
    "generate_from_noise",
    "iter_partners",
    "model_load_count",
]

#: Valid values of ``Augment(mode=...)``.
MODES = ("generated", "combined")

#: Generated candidates that ``Augment`` makes at once, from noise to output columns:
#: its memory beyond the output is bounded by this, whatever the chunk size and
#: factor (a block holds ``max(1, BLOCK_ROWS // factor)`` input candidates, so at
#: most ``max(BLOCK_ROWS, factor)`` rows). Each block pays the support check's
#: redraw rounds once, so blocks are large.
BLOCK_ROWS = 1 << 16

#: Rows per network call within a block, by device type (default: the whole block).
#: On the CPU the flow decoder's temporaries, and the heap they leave behind, grow
#: with the rows of a call, while calls of 1,024 rows are as fast as larger ones
#: (docs/performance.md, "coffea Augment cost").
DECODE_ROWS = {"cpu": 1 << 10}


def candidate_noise(p4: np.ndarray, seed: int, factor: int, n_normal: int
                    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The random numbers behind each candidate's ``factor`` generated partners.

    Args:
        p4: the input candidates, (M, k, 4) in GeV.
        seed: the user's seed.
        factor: partners per candidate.
        n_normal: standard normals per partner (``Model.noise_width``).

    Returns:
        ``(keys, eps)``: one uint64 key per partner, shape (M * factor,), and
        standard normals of shape (M * factor, n_normal); rows ``i * factor ...
        i * factor + factor - 1`` belong to candidate ``i``. Partner j of
        candidate i is keyed by (seed, p4[i], j) only (:mod:`vaeaug.noise`), and so
        are its redraws when it falls outside the training support.
    """
    keys = np.repeat(candidate_keys(p4, seed), factor)
    j = np.tile(np.arange(factor, dtype=np.uint64), len(p4))
    keys = mix(keys ^ mix(j + np.uint64(1)))
    return keys, keyed_normals(keys, n_normal, 0)


def generate_from_noise(model: Model, keys: np.ndarray, eps: np.ndarray, support: str = "reject",
                        batch_size: int | None = None, noise_map=None
                        ) -> tuple[np.ndarray, SupportReport]:  # fmt: skip
    """Decode given random numbers into 4-momenta: keys (M,), eps (M, noise_width) -> (M, k, 4) GeV.

    The same distribution as :meth:`Model.sample`, with the randomness supplied by
    the caller; candidates outside the training support are redrawn (or counted)
    per ``support``, from the streams of their ``keys``. ``batch_size``: rows per
    network call (default :data:`DECODE_ROWS` of the model's device type, else all).
    ``noise_map``: what turns a redraw's normals into noise (:func:`iter_partners`'s
    posterior), as in :func:`vaeaug.sampling.decode.enforce_support`.
    """
    if eps.shape != (len(keys), model.noise_width):
        raise InputError(
            f"noise must have shape ({len(keys)}, {model.noise_width}), got {eps.shape}"
        )
    rows = batch_size or DECODE_ROWS.get(model.device.type) or max(len(eps), 1)
    p4, features = model.p4_from_noise(eps, batch_size=rows)
    report = model.enforce_support(p4, features, keys, support, noise_map)
    return p4, report


def iter_partners(model: Model, p4: np.ndarray, *, factor: int, seed: int,
                  support: str = "reject", sampling: str = "prior", width: float = DEFAULT_WIDTH
                  ) -> Iterator[tuple[int, np.ndarray, SupportReport]]:  # fmt: skip
    """The ``factor`` generated partners of each candidate of ``p4`` (M, k, 4) GeV, by blocks.

    Yields ``(first source, partners (n * factor, k, 4) GeV, support report)`` for blocks of
    ``max(1, BLOCK_ROWS // factor)`` sources, the partners of source ``i`` in rows ``i *
    factor ...``. The random numbers of a partner are keyed by its source
    (:func:`candidate_noise`), so blocks and chunks never change the partners.
    ``sampling``: ``"prior"`` (the model's distribution, unrelated to the source) or
    ``"posterior"`` (a step of ``width`` from the source's encoding: its neighbours;
    :mod:`vaeaug.sampling.posterior`).
    What ``Augment`` and ``vaeaug augment --sampling`` run.
    """
    if sampling not in SAMPLINGS:
        raise InputError(f"sampling {sampling!r} unknown; valid: {', '.join(SAMPLINGS)}")
    step = max(1, BLOCK_ROWS // factor)
    for s in range(0, len(p4), step):
        block = p4[s : s + step]
        keys, eps = candidate_noise(block, seed, factor, model.noise_width)
        noise_map = None
        if sampling == "posterior":
            # the source's latent draw: its key with partner index -1 (partners use 0, 1, ...)
            latent = keyed_normals(mix(candidate_keys(block, seed)), model.vae.config.latent_dim)
            posterior = PosteriorNoise(model, block, latent, width)
            sources = np.repeat(np.arange(len(block)), factor)

            def noise_map(e, rows, posterior=posterior, sources=sources):
                return posterior(e, sources[rows])

            eps = noise_map(eps, np.arange(len(eps)))
        generated, report = generate_from_noise(model, keys, eps, support, noise_map=noise_map)
        yield s, generated, report


class DroppedFieldsWarning(UserWarning):
    """Input fields that generated candidates cannot have were dropped."""


_WARNED: set[tuple[str, object]] = set()
_WARNED_LOCK = threading.Lock()


def _first_time(key: tuple[str, object]) -> bool:
    """True the first time ``key`` is seen in this process (one warning per process)."""
    with _WARNED_LOCK:
        if key in _WARNED:
            return False
        _WARNED.add(key)
        return True


@dataclasses.dataclass
class AugmentReport:
    """What :class:`Augment` did in a run: a coffea accumulator.

    Return :meth:`Augment.report` from a processor's ``process``; coffea's ``Runner``
    adds up the chunks' reports (``+``), whichever executor and worker ran them::

        def process(self, events):
            gen = augment(pairs)
            return {"mass": h, "vaeaug": augment.report()}

        out = runner(fileset, processor)
        print(out["vaeaug"].summary())

    Attributes:
        candidates: input candidates augmented.
        support: the support check of their generated partners (counts added up).
        dropped_fields: input fields the output lacks (sorted names).
    """

    candidates: int = 0
    support: SupportReport = dataclasses.field(default_factory=SupportReport)
    dropped_fields: tuple[str, ...] = ()

    def __iadd__(self, other: AugmentReport) -> AugmentReport:
        self.candidates += other.candidates
        self.support.add(other.support)
        self.support.expected_rate = self.support.expected_rate or other.support.expected_rate
        self.dropped_fields = tuple(sorted({*self.dropped_fields, *other.dropped_fields}))
        return self

    def __add__(self, other: AugmentReport) -> AugmentReport:
        out = copy.deepcopy(self)
        out += other
        return out

    def summary(self) -> str:
        """One line: candidates, generated partners, the support check, the dropped fields."""
        dropped = (
            f"; dropped fields {', '.join(self.dropped_fields)}" if self.dropped_fields else ""
        )
        return (f"augmented {self.candidates} candidates with {self.support.n} generated; "
                f"{self.support.summary()}{dropped}")  # fmt: skip


class Augment:
    """Generate ``factor`` candidates per input candidate, in a coffea processor.

    Args:
        model: a :class:`vaeaug.Model` or the path of a model file.
        factor: generated candidates per input candidate (>= 1).
        seed: every random draw derives from it and the candidates (module docstring).
        mode: ``"generated"`` (only generated candidates, weight w / factor) or
            ``"combined"`` (inputs and generated candidates, each w / (1 + factor),
            flag ``is_generated``; the sum is the input's).
        objects: the candidates' daughter fields, in the model's object order
            (default: the model's object names when the candidates have them, else
            the candidates' 4-vector fields in order).
        device: where workers run the network: ``"auto"`` (a GPU when the worker
            has one), ``"cpu"``, ``"cuda"``...
        check_masses: compare the candidates' daughter masses with the model's
            mass hypotheses and refuse a mismatch (a model of another decay); for a
            model without mass hypotheses (collider, cartesian), refuse candidates most
            of which lie outside its training support (a model of other objects).
        support: ``"reject"`` (default: generated candidates outside the training
            support, e.g. a daughter outside the acceptance, are redrawn from their
            own keyed streams), ``"warn"`` or ``"off"``; counts accumulate in
            ``support_report`` (this copy's) and :meth:`report` (a coffea accumulator:
            what reaches a processor's output); one
            :class:`~vaeaug.model.support.SupportWarning` per process.
        sampling: ``"prior"`` (default: partners drawn from the model's distribution,
            unrelated to their source) or ``"posterior"`` (a step from the source's
            encoding: its neighbours, so what a selection kept stays kept;
            :mod:`vaeaug.sampling.posterior`).
        width: with ``"posterior"``, the step width in (0, 1] (1: prior sampling;
            smaller: partners closer to their source).

    Calling it on candidates (awkward or dask-awkward, from :func:`vaeaug.candidates`,
    ``ak.combinations`` or ``ak.zip``; see :func:`vaeaug.integrations.awkward.candidate_p4`),
    with optional ``weight=`` per candidate or per event, returns records nested
    like the input with the input's daughter names, plus ``weight`` and
    ``is_generated``. Each daughter is of the input daughter's type for coffea
    NanoEvents input (``Muon``, ``PtEtaPhiMCandidate``, with coffea's behavior),
    else a vector ``Momentum4D``, and carries the input daughter's ``charge``.

    Attributes:
        dropped_fields: the input fields that the output lacks (sorted names,
            each once), set when candidates are first seen in this process (in
            dask mode when the graph is built); a :class:`DroppedFieldsWarning`
            lists them once per process.
        model_sha256: the sha256 of the model file (provenance, the model cache key).
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
        support: str = "reject",
        sampling: str = "prior",
        width: float = DEFAULT_WIDTH,
    ) -> None:
        if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
            raise InputError(f"factor must be an integer >= 1, got {factor!r}")
        if mode not in MODES:
            raise InputError(f"mode {mode!r} unknown; valid: {', '.join(MODES)}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InputError(f"seed must be an integer >= 0, got {seed!r}")
        self.model_bytes = model_file_bytes(model)
        self.model_sha256 = sha256_of(self.model_bytes)
        if isinstance(model, Model):
            meta = model
        else:
            meta = peek(self.model_sha256, "cpu")
            if meta is None:  # check the file here, with its name in any error
                meta = load(model, device="cpu")
                if not isinstance(meta, Model):
                    raise InputError(
                        f"Augment draws from one model; '{model}' is an ensemble of {len(meta)} "
                        "members: save one of them (vaeaug.load(path).members[0].save(...))"
                    )
                remember(self.model_sha256, meta)
        self.factor = int(factor)
        self.seed = int(seed)
        self.mode = mode
        self.device = device
        self.check_masses = check_masses
        if support not in SUPPORT_MODES:
            raise InputError(f"support {support!r} unknown; valid: {', '.join(SUPPORT_MODES)}")
        self.support = support
        if sampling not in SAMPLINGS:
            raise InputError(f"sampling {sampling!r} unknown; valid: {', '.join(SAMPLINGS)}")
        self.sampling = sampling
        self.width = check_width(width)
        #: candidates seen by this copy of Augment and how many fell outside the support
        self.support_report = SupportReport()
        self._pending = AugmentReport()  # since the last report()
        self._model: Model | None = model if isinstance(model, Model) else None
        self.dropped_fields: tuple[str, ...] = ()
        self.model_objects = tuple(meta.objects)
        self.masses = getattr(meta.representation, "masses", None)
        self._has_support = meta.support is not None
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
        # a copy (a coffea chunk's processor) counts only what it does itself: the chunks'
        # reports are added up by the Runner (report()), never counted twice
        state["support_report"] = SupportReport()
        state["_pending"] = AugmentReport()
        return state

    def report(self) -> AugmentReport:
        """What this copy of Augment did since the last call (candidates, the support check,
        dropped fields), as an :class:`AugmentReport`; return it from a processor's
        ``process`` and coffea adds the chunks' up. Eager and virtual modes; in dask mode
        the graph is built before anything runs, so the report is empty."""
        with _WARNED_LOCK:
            out, self._pending = self._pending, AugmentReport()
        return out

    def __dask_tokenize__(self):
        return (
            type(self).__name__,
            self.model_sha256,
            self.factor,
            self.seed,
            self.mode,
            self.objects,
            self.support,
            self.sampling,
            self.width,
        )

    @property
    def model(self) -> Model:
        """The model on ``device``, loaded at most once per process (a cache keyed by its sha256)."""
        if self._model is None:
            self._model = cached_model(self.model_bytes, self.model_sha256, self.device)
        return self._model

    # -- the call ---------------------------------------------------------
    def __call__(self, candidates, weights=None, *, weight=None):
        """Augment ``candidates`` (awkward or dask-awkward); see the class docstring.

        ``weight=`` (or ``weights``, positionally): input weights, one per
        candidate or one per event.
        """
        if weight is not None and weights is not None:
            raise InputError("give the input weights once: weight=... or weights=..., not both")
        weights = weight if weight is not None else weights
        if is_dask(candidates):
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
        cands, source = from_awkward(
            candidates, objects=self._field_names(candidates), n_objects=len(self.model_objects)
        )
        self._note_dropped(source.dropped)
        if source.is_typetracer:
            # dask-awkward's first run: the reads above touched the needed columns;
            # answer with the output's form at unknown length
            if weights is not None and ak.backend(weights) == "typetracer":
                ak.typetracer.touch_data(weights)
            counts = np.zeros(0, np.int64) if source.nested else None
            empty = self._assemble(cands, source, np.ones(0), counts)
            return ak.Array(empty.layout.to_typetracer(forget_length=True), behavior=empty.behavior)
        w = self._weights(weights, len(cands), source.counts)
        if len(cands) and self.check_masses and self.masses is not None:
            self._check_masses(cands)
        elif len(cands) >= MIN_CHECKED and self.check_masses and self._has_support:
            self._check_inside(cands)
        return self._assemble(cands, source, w, source.counts)

    def _note_dropped(self, dropped: tuple[str, ...]) -> None:
        if dropped:
            with _WARNED_LOCK:
                self._pending.dropped_fields = tuple(sorted({*self._pending.dropped_fields,
                                                             *dropped}))  # fmt: skip
        if not dropped or set(dropped) <= set(self.dropped_fields):
            return
        self.dropped_fields = tuple(sorted({*self.dropped_fields, *dropped}))
        if not _first_time((self.model_sha256, self.dropped_fields)):
            return
        warnings.warn(
            f"vaeaug.Augment: generated candidates have 4-momenta and the fields the decay fixes "
            f"({', '.join(CARRIED_FIELDS)}), not the input fields {', '.join(self.dropped_fields)}; "
            "these are dropped (listed in Augment.dropped_fields)",
            DroppedFieldsWarning,
            stacklevel=4,
        )

    @staticmethod
    def _weights(weights, m: int, counts: np.ndarray | None) -> np.ndarray:
        """Per-candidate input weights, shape (M,) (ones when not given).

        ``counts``: candidates per event, shape (N,), when they are nested by event
        (then ``weights`` may hold one value per event).
        """
        if weights is None:
            return np.ones(m)
        w = ak.Array(weights) if not isinstance(weights, ak.Array) else weights
        if w.ndim == 1 and counts is not None and len(w) == len(counts):
            w = np.repeat(np.asarray(ak.to_numpy(w), dtype=np.float64), counts)  # one per event
        else:
            w = np.asarray(ak.to_numpy(ak.flatten(w, axis=None)), dtype=np.float64)
        if w.shape != (m,) or not np.isfinite(w).all():
            raise InputError(
                f"weights must be finite, one per candidate ({m}) or per event, nested like the candidates; "
                f"got {len(w)} values"
            )
        return w

    def _check_inside(self, cands: Candidates) -> None:
        """Refuse candidates mostly outside the model's training support (its lab observables
        and features: a daughter's mass is one of them without mass hypotheses)."""
        model = self.model
        with np.errstate(all="ignore"):
            features = model.representation.to_features(cands.p4)
            values = support_values(model, cands.p4, features)
        outside = float(np.mean(~model.support.inside(values)))
        if outside > MAX_OUTSIDE_INPUT:
            raise InputError(
                f"{outside:.0%} of the candidates lie outside the model's training support "
                f"(the training sample's own rate: {model.support.expected_rate:.1%}), e.g. "
                f"{_most_crossed(model.support, values)}: a model of other objects or "
                "another selection? Pass check_masses=False to override"
            )

    def _check_masses(self, cands: Candidates) -> None:
        found = [np.median(daughter.mass) for daughter in as_vectors(cands.p4)]
        bad = [
            f"{name}: model {m:.4g} GeV, candidates {f:.4g} GeV"
            for name, m, f in zip(cands.objects, self.masses, found, strict=True)
            if abs(f - m) > max(0.05 * m, 0.002)
        ]
        if bad:
            raise InputError(
                f"the candidates' daughter masses do not match the model's {self.representation} representation "
                f"({'; '.join(bad)}): a model of another decay or other daughters? "
                "Pass objects=[...] to reorder daughters, or check_masses=False to override"
            )

    def _assemble(
        self, cands: Candidates, source: AwkwardSource, w: np.ndarray, counts: np.ndarray | None
    ) -> ak.Array:
        """Generate and build the output records, nested like the input, per the mode.

        Each output column is allocated once, at its final size, and viewed as
        (M, rows per candidate): in ``"combined"`` mode column 0 holds the
        input candidate and columns 1... its partners, in ``"generated"`` mode
        the partners only. The partners are generated into it in blocks
        (:meth:`_generate_into`), so no full-size intermediate exists.
        """
        k, m = self.factor, len(cands)
        per = k if self.mode == "generated" else k + 1
        first = per - k  # the column of a candidate's first partner
        styles = {obj: source.styles.get(obj, MOMENTUM4D) for obj in cands.objects}
        columns = {
            obj: {c: np.empty(m * per) for c in style.coords} for obj, style in styles.items()
        }
        grids = {
            obj: {c: v.reshape(m, per) for c, v in cols.items()} for obj, cols in columns.items()
        }
        weight = np.empty((m, per))
        flag = np.ones((m, per), bool)
        if first:
            # the input and its k partners share w (vaeaug.sampling.weights): the whole
            # combined output sums to the input's weighted yield
            real, partners = combined_weights(w, m * k, partners=True)
            weight[:, 0], weight[:, 1:], flag[:, 0] = real, partners.reshape(m, k), False
            for j, obj in enumerate(cands.objects):
                for c, v in coordinate_values(cands.p4[:, j], styles[obj].coords).items():
                    grids[obj][c][:, 0] = v
        else:
            weight[:] = (w / k)[:, None]  # the partners alone carry the input's yield
        if m:
            self._generate_into(cands.p4, grids, styles, first)
        # a generated daughter has the charge (pdgId) of the daughter it comes from
        carried = {
            obj: {f: np.repeat(v, per) for f, v in values.items()}
            for obj, values in source.carried.items()
        }
        return zip_candidates(columns, weight=weight.reshape(-1),
                              counts=None if counts is None else counts * per,
                              extra={"is_generated": flag.reshape(-1)}, carried=carried,
                              styles=styles)  # fmt: skip

    def _generate_into(self, p4: np.ndarray, grids: dict, styles: dict, first: int) -> None:
        """Generate the partners of candidates ``p4`` (M, k, 4) into the output columns.

        ``grids``: daughter -> {coordinate: (M, rows per candidate) view of its
        output column}; the partners go to columns ``first ...``. The candidates
        are taken ``max(1, BLOCK_ROWS // factor)`` at a time (decoded
        :data:`DECODE_ROWS` rows per network call): noise, network
        activations, features and 4-momenta exist for one block only. Every
        partner's random numbers are keyed by its own candidate, so the blocks do
        not change the events. The blocks' support reports are added up (into
        ``support_report`` and the next :meth:`report`), and one warning per process
        says when too many fell outside.
        """
        model, k = self.model, self.factor
        report = SupportReport(expected_rate=model.support.expected_rate if model.support else 0.0)
        blocks = iter_partners(model, p4, factor=k, seed=self.seed, support=self.support,
                               sampling=self.sampling, width=self.width)  # fmt: skip
        for s, generated, part in blocks:
            report.add(part)
            n = len(generated) // k
            for j, (obj, style) in enumerate(styles.items()):
                for c, v in coordinate_values(generated[:, j], style.coords).items():
                    grids[obj][c][s : s + n, first:] = v.reshape(n, k)
        with _WARNED_LOCK:
            for total in (self.support_report, self._pending.support):
                total.expected_rate = report.expected_rate
                total.add(report)
            self._pending.candidates += len(p4)
        # one warning per process and model, not one per chunk: the counts of the whole run
        # come with report()
        if report.excess() and _first_time((self.model_sha256, "support")):
            report.warn_if_excess(self.support, stacklevel=6)  # the caller of Augment

    def invariant_mass(self, records: ak.Array) -> ak.Array:
        """The parent mass (GeV) of output records, nested like them.

        vector's ``.mass`` of the daughters' sum, the convention of
        :func:`vaeaug.kinematics.invariant_mass` (a spacelike sum has a negative mass).
        """
        daughters = [f for f in ak.fields(records) if f not in ("weight", "is_generated")]
        total = records[daughters[0]]
        for name in daughters[1:]:
            total = total + records[name]
        return total.mass


#: The input checks of Augment (check_masses=True) need this many candidates in a chunk ...
MIN_CHECKED = 20
#: ... and refuse a model when more than this fraction of them lie outside its support.
MAX_OUTSIDE_INPUT = 0.5


def _most_crossed(support: Support, values: np.ndarray) -> str:
    """The edge crossed by most of ``values`` (N, O), with its share."""
    edges = support.edges_crossed(values)
    edge, count = max(edges.items(), key=lambda item: item[1])
    return f"{edge} for {count / len(values):.0%} of them"


class CandidateAccumulator:
    """Collect candidates across a coffea run, to train a model on them.

    A coffea accumulator, so a processor returns
    ``{"train": CandidateAccumulator.from_awkward(pairs)}`` and the run's output
    holds all chunks' candidates; :attr:`candidates` gives them as one
    :class:`~vaeaug.io.candidates.Candidates`, and :meth:`fit` trains on them. The
    rows are put in a canonical (sorted) order, so the training data, and with a
    fixed seed the model, do not depend on the executor's chunk order.

    A thin wrapper rather than ``Candidates`` itself: coffea needs an empty
    value that adds to anything (``CandidateAccumulator()``: no daughters known
    yet, so no layout) and ``+``/``+=``, and the chunks are only joined once, when
    the candidates are asked for.
    """

    def __init__(self, candidates: Candidates | None = None) -> None:
        self._parts = [] if candidates is None else [candidates]
        self.objects = () if candidates is None else tuple(candidates.objects)

    @classmethod
    def from_awkward(cls, candidates: ak.Array, *, objects: Sequence[str] | None = None,
                     n_objects: int | None = None) -> CandidateAccumulator:  # fmt: skip
        """Take the candidates of a chunk (any shape :func:`candidate_p4` accepts)."""
        return cls(candidate_p4(candidates, objects=objects, n_objects=n_objects))

    def __add__(self, other: CandidateAccumulator) -> CandidateAccumulator:
        self._check(other)
        out = CandidateAccumulator()
        out.objects = self.objects or other.objects
        out._parts = self._parts + other._parts
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
    def candidates(self) -> Candidates:
        """All candidates collected, p4 of shape (N, k, 4) in GeV, rows sorted lexicographically."""
        layout = Layout.default(self.objects)
        if not self._parts:
            return Candidates(np.empty((0, len(self.objects), 4)), layout)
        p4 = np.concatenate([np.asarray(c.p4, dtype=np.float64) for c in self._parts])
        flat = p4.reshape(len(p4), -1)
        return Candidates(p4[np.lexsort(flat.T[::-1])], layout)

    def fit(self, **kwargs) -> Model:
        """Train on the collected candidates: :func:`vaeaug.fit` with ``objects`` set."""
        from ..api import fit

        if len(self) == 0:
            raise InputError("no candidates were collected; nothing to train on")
        return fit(self.candidates.p4, objects=self.objects, **kwargs)


def apply_to_fileset(processor, fileset: Mapping, *, schemaclass=None,
                     uproot_options: Mapping | None = None) -> dict:  # fmt: skip
    """``coffea.dataset_tools.apply_to_fileset`` that also reads RNTuples.

    Datasets of TTrees go to coffea's own ``apply_to_fileset``; datasets with
    an RNTuple are read by :func:`vaeaug.io.nanoaod.dask_events` (coffea's dask
    mode fails on them) and given to ``processor.process`` (or to ``processor`` itself when
    it is a function). Returns ``{dataset: dask output}``, ready for
    ``dask.compute``. File-access reports
    (``allow_read_errors_with_report``) are not supported here.
    """
    from coffea.dataset_tools import apply_to_fileset as coffea_apply
    from coffea.nanoevents import NanoAODSchema
    from coffea.processor import ProcessorABC

    schemaclass = schemaclass or NanoAODSchema
    options = dict(uproot_options or {})
    if options.get("allow_read_errors_with_report"):
        raise InputError(
            "vaeaug.integrations.coffea.apply_to_fileset does not return file-access reports; "
            "use coffea.dataset_tools.apply_to_fileset for TTrees with reports"
        )
    out = {}
    for name, dataset in fileset.items():
        files = dataset["files"]
        if not has_rntuple(files):
            out.update(coffea_apply(processor, {name: dataset}, schemaclass=schemaclass,
                                    uproot_options=options))  # fmt: skip
            continue
        events = dask_events(files, schemaclass=schemaclass, uproot_options=options)
        out[name] = (
            processor.process(events) if isinstance(processor, ProcessorABC) else processor(events)
        )
    return out


def __getattr__(name: str):
    # coffea is imported only when the schema is asked for: vaeaug.Augment works without it
    if name == "PartialNanoAODSchema":
        from ..io import nanoaod

        cls = nanoaod.PartialNanoAODSchema
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
