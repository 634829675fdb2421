"""Ensembles: K models trained on bootstrap replicas of one sample, in one model file.

``vaeaug.fit(table, ensemble=K)`` trains member ``i`` on the replica drawn from
``Stream.ENSEMBLE_BOOTSTRAP, i`` with the training seed of ``Stream.ENSEMBLE_MEMBER, i``
(:func:`member_seed`). The spread between the members' distributions estimates how much
the model varies with its training sample; :func:`out_of_bag_check` adds what the spread
cannot see, the error every member shares, measured on each member's out-of-bag candidates.
Both make the validation report's model-uncertainty band (:mod:`vaeaug.validation.bands`).

:meth:`Ensemble.sample` splits a sample evenly across the members and tags each candidate
with its ``member``; :meth:`Ensemble.member_samples` gives each member's sample apart (one
histogram per member, for a fit). The file layout is in :mod:`vaeaug.io.modelfile`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import numpy as np
import torch

from .binning import fractions, quantile_edges, spread
from .io.atomic import check_output_path
from .io.candidates import Candidates
from .io.modelfile import ENSEMBLE_FORMAT_VERSION, write_model_file
from .kinematics import feature_table
from .model.support import SupportReport
from .model.symmetry import order_by_pt
from .noise import Stream, child_seed, seed_words
from .settings import check_sampling

__all__ = ["OUT_OF_BAG_QUANTILES", "OUT_OF_BAG_SAMPLE", "Ensemble", "bootstrap_counts",
           "member_seed", "out_of_bag_check", "shares"]  # fmt: skip

#: Candidates each member generates for the out-of-bag check: their statistical error
#: (a variance of p (1 − p) / 10,000 per bin, subtracted) is small beside that of the
#: out-of-bag rows (p (1 − p) / 0.37 N) up to N ~ 10,000; about 0.5 s per member on a CPU.
OUT_OF_BAG_SAMPLE = 10_000
#: Quantile bins per feature of the out-of-bag check (those of the amplification forecast).
OUT_OF_BAG_QUANTILES = 20


def member_seed(seed: int, stream: int, i: int) -> int:
    """A 32-bit seed (a valid ``seed`` of :func:`vaeaug.fit`) of member ``i`` in ``stream``."""
    return int(seed_words(seed, stream, i, dtype=np.uint32)[0])


def bootstrap_counts(n: int, seed: int, i: int) -> np.ndarray:
    """Member ``i``'s bootstrap replica of ``n`` rows: how often each row was drawn in n
    draws with replacement, (n,) int, from the seed sub-stream ``(ENSEMBLE_BOOTSTRAP, i)``."""
    rng = np.random.default_rng(child_seed(seed, Stream.ENSEMBLE_BOOTSTRAP, i))
    return np.bincount(rng.integers(0, n, n), minlength=n)


def shares(n: int, k: int) -> list[int]:
    """``n`` candidates split across ``k`` members: sizes differing by at most one."""
    return [n // k + (i < n % k) for i in range(k)]


class Ensemble:
    """K trained :class:`~vaeaug.Model` members of one decay, sampled and saved together.

    Attributes:
        members: the K models (each with its own standardizer and support, fitted on
            its bootstrap replica).
    """

    def __init__(self, members: Sequence, out_of_bag: dict | None = None) -> None:
        if len(members) < 2:
            raise ValueError(f"an ensemble has at least 2 members, got {len(members)}")
        self.members = list(members)
        self.out_of_bag = out_of_bag

    @property
    def shared_variance(self) -> float:
        """The error the members share per bin, in units of the bin's ``p (1 − p)``
        (:func:`out_of_bag_check`); 0.0 when the file has no out-of-bag check."""
        return float((self.out_of_bag or {}).get("shared_variance") or 0.0)

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        first = self.members[0]
        return (
            f"<vaeaug.Ensemble of {len(self)} members: {first.representation.name} representation, "
            f"objects {'/'.join(first.objects)}>"
        )

    # what the command line and validation read of a model: the first member's
    @property
    def layout(self):
        """The layout of the training input (every member's)."""
        return self.members[0].layout

    @layout.setter
    def layout(self, value) -> None:
        for m in self.members:
            m.layout = value

    @property
    def objects(self) -> list[str]:
        """The k daughter names."""
        return self.members[0].objects

    @property
    def representation(self):
        """The representation (every member's)."""
        return self.members[0].representation

    @property
    def provenance(self) -> dict:
        """The first member's provenance (source, ensemble size and seeds)."""
        return self.members[0].provenance

    @property
    def history(self) -> dict:
        """The first member's training history."""
        return self.members[0].history

    @property
    def device(self) -> torch.device:
        """Where the members' weights live."""
        return self.members[0].device

    def to(self, device) -> Ensemble:
        """Move every member to ``device``; returns self."""
        for m in self.members:
            m.to(device)
        return self

    def sample(self, n: int, *, seed: int = 0, **options) -> Candidates:
        """``n`` candidates, member ``i`` giving ``shares(n, K)[i]`` of them (in member order)
        from its seed ``member_seed(seed, Stream.ENSEMBLE_SAMPLE, i)``.

        ``options``: those of :meth:`vaeaug.Model.sample`. Returns
        :class:`~vaeaug.io.candidates.Candidates` with ``member`` (int16, shape (n,)).
        """
        check_sampling(n, seed)
        report = SupportReport()
        parts = self.member_samples(shares(n, len(self)), seed=seed, warn=False, **options)
        for part in parts:
            report.add(part.support_report)
            report.expected_rate = max(report.expected_rate, part.support_report.expected_rate)
        report.warn_if_excess(options.get("support", "reject"))  # one for the ensemble
        member = np.concatenate([np.full(len(p), i, dtype=np.int16) for i, p in enumerate(parts)])
        p4 = np.concatenate([p.p4 for p in parts]) if n else parts[0].p4
        return Candidates(p4, self.layout, support_report=report, member=member)

    def member_samples(self, n_each: int | Sequence[int], *, seed: int = 0,
                       **options) -> list[Candidates]:  # fmt: skip
        """One sample per member (``n_each`` candidates each, or ``n_each[i]``), from the
        seeds :meth:`sample` uses: for a histogram per member (a band, or one template per
        member in a fit)."""
        sizes = [n_each] * len(self) if isinstance(n_each, int | np.integer) else list(n_each)
        for k in sizes:
            check_sampling(k, seed)
        if len(sizes) != len(self):
            raise ValueError(f"n_each has {len(sizes)} sizes for {len(self)} members")
        return [
            m.sample(int(k), seed=member_seed(seed, Stream.ENSEMBLE_SAMPLE, i), **options)
            for i, (m, k) in enumerate(zip(self.members, sizes))
        ]

    def generate_to_root(self, n: int, path, *, seed: int = 0, tree: str | None = None,
                         options=None, report: SupportReport | None = None,
                         overwrite: bool = True, progress: bool = False) -> int:  # fmt: skip
        """Stream :meth:`sample`'s candidates (the same events) into a ROOT tree with a
        ``member`` branch (int16); returns the number written."""
        from .io import RootWriter
        from .sampling.streaming import iter_chunks

        check_sampling(n, seed)
        report = report if report is not None else SupportReport()
        mode = getattr(options, "support", None) or "reject"
        with RootWriter(path, self.layout, tree=tree, seed=seed, overwrite=overwrite,
                        extra={"member": "int16"}) as writer:  # fmt: skip
            for i, (m, k) in enumerate(zip(self.members, shares(n, len(self)))):
                chunks = iter_chunks(m, k, member_seed(seed, Stream.ENSEMBLE_SAMPLE, i), options,
                                     progress=progress, report=report, warn=False)  # fmt: skip
                with contextlib.closing(chunks):
                    for p4 in chunks:
                        writer.write(p4, member=np.full(len(p4), i, dtype=np.int16))
        report.warn_if_excess(mode)  # one for the ensemble, once the file is complete
        return writer.n_written

    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> None:
        """Write one safetensors file (no pickle): member ``i``'s tensors prefixed
        ``member<i>.``, its metadata under ``member<i>`` (:mod:`vaeaug.io.modelfile`)."""
        check_output_path(path, "path", model=True, overwrite=overwrite)
        tensors: dict[str, torch.Tensor] = {}
        meta: dict = {"ensemble": len(self)}
        if self.out_of_bag is not None:
            meta["out_of_bag"] = self.out_of_bag
        for i, m in enumerate(self.members):
            t, md = m.file_parts()
            tensors.update({f"member{i}.{k}": v for k, v in t.items()})
            meta[f"member{i}"] = md
        write_model_file(path, tensors, meta, overwrite=overwrite,
                         format_version=ENSEMBLE_FORMAT_VERSION)  # fmt: skip


def out_of_bag_check(members: Sequence, table: Candidates, in_bag: Sequence[np.ndarray], *,
                     seed: int, n_each: int = OUT_OF_BAG_SAMPLE,
                     n_quantiles: int = OUT_OF_BAG_QUANTILES) -> dict:  # fmt: skip
    """The error the members share, measured on their out-of-bag candidates; no holdout.

    Member ``i`` never saw the rows of ``table`` its replica did not draw (``~in_bag[i]``,
    about 37% of them). In ``n_quantiles`` quantile bins of every feature of
    :func:`vaeaug.kinematics.feature_table` (identical daughters ordered by pT), its sample
    of ``n_each`` candidates differs from those rows' fractions by ``d`` (B,), and::

        E[d² − σ_oob² − σ_member²] = b² + L² (var(S) + var(replica)) + η² = b² + 2 L² var(S) + η²

    where ``b`` is the bias every member shares, ``S`` the training sample's fluctuation,
    ``L`` how much of it a model learns and ``η²`` a member's training noise. The members'
    spread (their variance beyond sampling noise, :func:`vaeaug.binning.spread`) is
    ``V = L² var(S) + η²``, and the ensemble's sample (the members' mix) deviates from the
    truth by ``b² + L² var(S) + V / K = E[d² − σ²] − V + V / K`` per bin, whatever part of
    ``V`` is training noise. The band of :mod:`vaeaug.validation.bands` is ``V`` plus the
    rest, ``E[d² − σ²] − (2 − 1/K) V`` (``b²`` when the training noise is small), floored
    at 0: where the members' training noise exceeds their shared bias, the spread alone
    already holds the error, and more.

    Returns ``shared_variance`` (that rest over the bins' ``p (1 − p)``, averaged over
    every bin and feature, floored at 0; None without out-of-bag rows), its error
    ``shared_variance_err`` (the members' scatter; they share rows, so it is rough),
    ``n_shared`` (1 / shared_variance: the real-sample size whose statistical error equals
    the shared one; None when 0), ``member_variance`` and ``spread_variance`` (mean
    ``d² − σ²`` and ``V`` in the same units), ``bins``, ``members_checked``,
    ``n_out_of_bag`` (mean out-of-bag rows per member), ``n_each`` and ``n_quantiles``.

    Args:
        members: the K trained models.
        table: their training candidates (N rows; ``weights`` count).
        in_bag: member ``i``'s replica's rows, K boolean masks (N,).
        seed: the members' sample seeds, ``member_seed(seed, Stream.ENSEMBLE_OUT_OF_BAG, i)``.
    """
    groups, objects = members[0].exchange, members[0].objects

    def features(p4: np.ndarray) -> np.ndarray:
        return feature_table(order_by_pt(np.array(p4, dtype=np.float64), groups), objects)[1]

    real = features(table.p4)  # (N, F)
    w = np.ones(len(real)) if table.weights is None else np.asarray(table.weights, np.float64)
    out = [~np.asarray(b, dtype=bool) for b in in_bag]
    checked = [i for i, o in enumerate(out) if o.sum() >= 2 and w[o].sum() > 0]
    result: dict = {"n_each": n_each, "n_quantiles": n_quantiles, "members_checked": len(checked),
                    "n_out_of_bag": float(np.mean([o.sum() for o in out]))}  # fmt: skip
    if len(checked) < 2:
        return {**result, "shared_variance": None, "n_shared": None}
    gen = [features(m.sample(n_each, seed=member_seed(seed, Stream.ENSEMBLE_OUT_OF_BAG, i),
                             warn=False).p4) for i, m in enumerate(members)]  # fmt: skip
    error, between, pq, bins = np.zeros(len(members)), 0.0, 0.0, 0
    for f in range(real.shape[1]):
        edges = quantile_edges(real[:, f], n_quantiles)
        if edges is None:
            continue
        p_real, _ = fractions(real[:, f], edges, w)
        pm = np.array([fractions(g[:, f], edges)[0] for g in gen])  # (K, B)
        between += spread(pm, np.full(len(gen), n_each)).sum()
        pq += (p_real * (1.0 - p_real)).sum()
        bins += len(edges) - 1
        for i in checked:
            po, vo = fractions(real[out[i], f], edges, w[out[i]])
            error[i] += ((pm[i] - po) ** 2 - vo - pm[i] * (1.0 - pm[i]) / n_each).sum()
    if bins == 0:  # every feature constant: nothing to compare
        return {**result, "shared_variance": None, "n_shared": None}
    pq_bin = float(pq / bins)
    k = len(members)
    shared = (error[checked] - (2.0 - 1.0 / k) * between) / bins  # (K_checked,): b² per member
    value = max(float(shared.mean()), 0.0) / float(pq_bin)
    return {
        **result,
        "shared_variance": value,
        "shared_variance_err": float(shared.std(ddof=1) / np.sqrt(len(shared))) / pq_bin,
        "n_shared": 1.0 / value if value > 0 else None,
        "member_variance": float(error[checked].mean()) / bins / pq_bin,
        "spread_variance": float(between / bins / pq_bin),
        "bins": bins,
    }
