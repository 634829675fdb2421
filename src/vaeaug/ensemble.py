"""Ensembles: K models trained on bootstrap replicas of one sample, in one model file.

``vaeaug.fit(table, ensemble=K)`` trains member ``i`` on the replica drawn from
``Stream.ENSEMBLE_BOOTSTRAP, i`` with the training seed of ``Stream.ENSEMBLE_MEMBER, i``
(:func:`member_seed`). The spread between the members' distributions estimates the
model's own uncertainty (the validation report's band, :mod:`vaeaug.validation.bands`).

:meth:`Ensemble.sample` splits a sample evenly across the members and tags each candidate
with its ``member``; :meth:`Ensemble.member_samples` gives each member's sample apart (one
histogram per member, for a fit). The file layout is in :mod:`vaeaug.io.modelfile`.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from .io.atomic import check_output_path
from .io.candidates import Candidates
from .io.modelfile import ENSEMBLE_FORMAT_VERSION, write_model_file
from .model.support import SupportReport, SupportWarning
from .noise import Stream, seed_words
from .settings import check_sampling

__all__ = ["Ensemble", "member_seed", "shares"]


def member_seed(seed: int, stream: int, i: int) -> int:
    """A 32-bit seed (a valid ``seed`` of :func:`vaeaug.fit`) of member ``i`` in ``stream``."""
    return int(seed_words(seed, stream, i, dtype=np.uint32)[0])


def shares(n: int, k: int) -> list[int]:
    """``n`` candidates split across ``k`` members: sizes differing by at most one."""
    return [n // k + (i < n % k) for i in range(k)]


@contextlib.contextmanager
def _one_support_warning(mode: str, report: SupportReport | None = None):
    """Yield a report that the members' sampling fills; their own SupportWarnings are held
    back and one is given for the whole ensemble at the end (as one model gives one)."""
    report = report if report is not None else SupportReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupportWarning)
        yield report
    report.warn_if_excess(mode, stacklevel=4)


class Ensemble:
    """K trained :class:`~vaeaug.Model` members of one decay, sampled and saved together.

    Attributes:
        members: the K models (each with its own standardizer and support, fitted on
            its bootstrap replica).
    """

    def __init__(self, members: Sequence) -> None:
        if len(members) < 2:
            raise ValueError(f"an ensemble has at least 2 members, got {len(members)}")
        self.members = list(members)

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
        with _one_support_warning(options.get("support", "reject")) as report:
            parts = self.member_samples(shares(n, len(self)), seed=seed, **options)
            for part in parts:
                report.add(part.support_report)
                report.expected_rate = max(report.expected_rate, part.support_report.expected_rate)
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
                        extra={"member": "int16"}) as writer, _one_support_warning(mode, report):  # fmt: skip
            for i, (m, k) in enumerate(zip(self.members, shares(n, len(self)))):
                chunks = iter_chunks(m, k, member_seed(seed, Stream.ENSEMBLE_SAMPLE, i), options,
                                     progress=progress, report=report)  # fmt: skip
                with contextlib.closing(chunks):
                    for p4 in chunks:
                        writer.write(p4, member=np.full(len(p4), i, dtype=np.int16))
        return writer.n_written

    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> None:
        """Write one safetensors file (no pickle): member ``i``'s tensors prefixed
        ``member<i>.``, its metadata under ``member<i>`` (:mod:`vaeaug.io.modelfile`)."""
        check_output_path(path, "path", model=True, overwrite=overwrite)
        tensors: dict[str, torch.Tensor] = {}
        meta: dict = {"ensemble": len(self)}
        for i, m in enumerate(self.members):
            t, md = m.file_parts()
            tensors.update({f"member{i}.{k}": v for k, v in t.items()})
            meta[f"member{i}"] = md
        write_model_file(path, tensors, meta, overwrite=overwrite,
                         format_version=ENSEMBLE_FORMAT_VERSION)  # fmt: skip
