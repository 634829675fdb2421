"""The fair yardsticks: one support guard for every generator, and a spline flow trained
by vaeaug's own trainer (same steps, stopping and score).

- the guard for any generator is :class:`vaeaug.sampling.guard.SupportGuard` (the
  library's; ``Guard`` here is its name in the benchmarks): vaeaug's training support on
  the observables any (N, k, 4) GeV sample has, and the redraws.
- :class:`FlowPeer`: a zuko neural spline flow on vaeaug's decay representation,
  standardized as vaeaug standardizes, trained by :func:`vaeaug.training.train_vae`
  (AdamW, at least 16 steps an epoch, early stopping on the same validation sample score
  with the same moving average and patience): the flow is wrapped in the small interface
  that trainer uses (``loss``, ``generate``, ``noise_width``).

Used by ``bench/tune_flow.py`` (validation splits of the training files) and
``bench/judge.py`` (the sealed judging).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vaeaug.sampling.guard import SupportGuard as Guard

__all__ = [
    "DATASETS",
    "FLOW_GRID",
    "FlowConfig",
    "FlowPeer",
    "Guard",
    "chosen_flow",
    "dataset_args",
]


#: The seed sub-stream of the flow's partner steps, ``(PARTNER_STREAM, round)`` (a tag far
#: from vaeaug.noise.Stream's, which the library's own draws use).
PARTNER_STREAM = 0x5EED_0F10


@dataclasses.dataclass(frozen=True)
class FlowConfig:
    """A spline flow's settings; optimisation otherwise vaeaug's TrainConfig defaults."""

    transforms: int = 5  # autoregressive spline transforms
    hidden: int = 128  # width of the two hidden layers of each transform's network
    bins: int = 8  # spline bins
    learning_rate: float = 1e-3  # peak AdamW learning rate

    def label(self) -> str:
        return f"T{self.transforms}-H{self.hidden}-B{self.bins}-lr{self.learning_rate:g}"


#: The tuning grid (docs/dev/nsf-tuning.md): the project's earlier NSF settings
#: (5 transforms, 128 wide, 8 bins, lr 1e-3) and one change at a time around them.
FLOW_GRID: list[FlowConfig] = [
    FlowConfig(),
    FlowConfig(learning_rate=3e-3),
    FlowConfig(transforms=3),
    FlowConfig(hidden=64),
    FlowConfig(bins=16),
    FlowConfig(transforms=3, hidden=64, learning_rate=3e-3),
]


class _FlowAsVAE(nn.Module):
    """A zuko NSF behind the interface of :func:`vaeaug.training.train_vae`.

    loss(x (B, D), w (B,) or None, kl_weight) -> (loss, nll, kl) with kl = 0;
    generate(eps (M, D) standard normals) -> features (M, D); noise_width = D.
    """

    def __init__(self, d: int, config: FlowConfig) -> None:
        import zuko

        super().__init__()
        self.flow = zuko.flows.NSF(d, transforms=config.transforms, bins=config.bins,
                                   hidden_features=(config.hidden, config.hidden))  # fmt: skip
        self.noise_width = d

    def loss(self, x, w, kl_weight):
        nll = -self.flow().log_prob(x)
        nll = nll.mean() if w is None else (nll * w).sum() / w.sum()
        return nll, nll, torch.zeros((), device=x.device)

    def generate(self, eps: torch.Tensor) -> torch.Tensor:
        return self.flow().transform.inv(eps)


class FlowPeer:
    """A neural spline flow on vaeaug's decay representation, trained by vaeaug's trainer."""

    name = "nsf"

    def __init__(self, objects: Sequence[str], masses: Sequence[float],
                 config: FlowConfig = FlowConfig()) -> None:  # fmt: skip
        self.objects, self.masses, self.config = list(objects), list(masses), config

    def fit(self, p4: np.ndarray, *, seed: int, train=None) -> FlowPeer:
        """Train on ``p4`` (N, k, 4) GeV with vaeaug's trainer (``train``: a TrainConfig,
        default vaeaug's with the flow's learning rate)."""
        from vaeaug.model.standardize import Standardizer
        from vaeaug.representations import make_representation
        from vaeaug.training import TrainConfig, train_vae

        self.rep = make_representation("decay", len(self.objects), masses=self.masses,
                                       object_names=self.objects)  # fmt: skip
        x = self.rep.to_features(p4)
        self.standardizer = Standardizer.fit(x)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.module = _FlowAsVAE(x.shape[1], self.config)
            history = train_vae(self.module, self.standardizer.transform(x),
                                train or TrainConfig(learning_rate=self.config.learning_rate),
                                seed=seed, device=torch.device("cpu"), progress=False)  # fmt: skip
        self.epochs_run = len(history["val"])
        return self

    def sample(self, n: int, seed: int, batch: int = 100_000) -> np.ndarray:
        """(n, k, 4) GeV; a non-finite feature row decodes to a non-finite candidate. The
        flow runs ``batch`` rows at a time (one pass over 10^6 rows took > 20 GB)."""
        gen = torch.Generator().manual_seed(int(seed))
        return self._decode(torch.randn(n, self.module.noise_width, generator=gen), batch)

    def partners(self, sources: np.ndarray, factor: int, seed: int, width: float,
                 inside, max_rounds: int = 100) -> np.ndarray:  # fmt: skip
        """``factor`` partners per source (len(sources) * factor, k, 4) GeV, in source order:
        vaeaug's posterior step (:mod:`vaeaug.sampling.posterior`) on the flow's exact base
        point of each source, ``u = sqrt(1 − width²) u_source + width ε``; a partner outside
        ``inside`` (the guard's test) steps again from its source, as vaeaug's do."""
        from vaeaug.noise import child_seed

        x = self.standardizer.transform(self.rep.to_features(sources))
        self.module.eval()
        with torch.no_grad():
            base = self.module.flow().transform(torch.as_tensor(x, dtype=torch.float32))
        base = base.repeat_interleave(factor, dim=0)  # (n * factor, D)
        p4 = np.full((len(base), len(self.objects), 4), np.nan)
        todo = np.arange(len(base))
        for round_ in range(max_rounds + 1):
            gen = torch.Generator().manual_seed(child_seed(seed, PARTNER_STREAM, round_))
            eps = torch.randn(len(todo), base.shape[1], generator=gen)
            step = math.sqrt(1.0 - width**2) * base[todo] + width * eps
            p4[todo] = self._decode(step)
            todo = todo[~inside(p4[todo])]
            if not len(todo):
                break
        return p4

    def _decode(self, eps: torch.Tensor, batch: int = 100_000) -> np.ndarray:
        """The candidates (M, k, 4) GeV of base points ``eps`` (M, D)."""
        self.module.eval()
        with torch.no_grad():
            x = np.concatenate([self.module.generate(eps[i : i + batch]).double().numpy()
                                for i in range(0, len(eps), batch)]) if len(eps) else np.zeros((0, eps.shape[1]))  # fmt: skip
        x = self.standardizer.inverse(x)
        bad = ~np.isfinite(x).all(axis=1)
        x[bad] = 0.0
        with np.errstate(all="ignore"):
            p4 = self.rep.from_features(x)
        p4[bad] = np.nan
        return p4


#: The fidelity benchmark's datasets: training file, reference file and their layout
#: (``bench/_common.py:load_dataset`` arguments). ``dplus`` is the shared pair; the others
#: are made by ``examples/decays_pythia.py`` (seeds 21/22) and ``bench/real_pairs.py``.
DATASETS: dict[str, dict[str, Any]] = {
    "dplus": {"objects": ["K1", "pi1", "pi2"], "identical": ["pi1,pi2"], "tree": "signal"},
    "lambdac": {"objects": ["p", "K", "pi"], "identical": []},
    "d0_k3pi": {"objects": ["K", "pi1", "pi2", "pi3"], "identical": ["pi1,pi2"]},
    "dplus_5body": {"objects": ["K", "pi1", "pi2", "pi3", "pi4"], "identical": ["pi1,pi2,pi3"]},
    "dimuon": {"objects": ["mu1", "mu2"], "identical": ["mu1,mu2"],
               "resonances": ["J/psi(1S)", "Upsilon(1S)", "Z0", ("m < 60 GeV", 0.0, 60.0)]},
    "hzz_mumu": {"objects": ["l1", "l2"], "identical": ["l1,l2"],
                 "masses": [0.1056583755, 0.1056583755], "resonances": ["Z0"]},
}  # fmt: skip


def dataset_args(name: str, samples: str, data: str | None, *, reference: bool) -> dict[str, Any]:
    """``load_dataset`` keyword arguments of dataset ``name``; with ``reference=False`` the
    training file stands in for the reference file, so that nothing reads it."""
    from _common import data_dir

    spec = dict(DATASETS[name])
    spec.pop("resonances", None)
    if name == "dplus":
        folder = data_dir(data)
        train, ref = folder / "dplus_kpipi_train.root", folder / "dplus_kpipi_reference.root"
    else:
        train = Path(samples) / f"{name}_train.root"
        ref = Path(samples) / f"{name}_reference.root"
    return {"data": str(train), "reference": str(ref if reference else train), "name": name,
            **spec}  # fmt: skip


def chosen_flow() -> FlowConfig:
    """The configuration of the last tuning run (``flow_tuning/latest.json``)."""
    import json

    from _record import RESULTS

    chosen = json.loads((RESULTS / "flow_tuning" / "latest.json").read_text())["chosen"]
    for config in FLOW_GRID:
        if config.label() == chosen:
            return config
    raise SystemExit(f"flow_tuning chose {chosen!r}, which is not in fair.FLOW_GRID")


def add_data_arguments(parser, seeds: tuple[int, ...] = (1,)) -> None:
    """The options every script over :data:`DATASETS` takes: where the files are, the seeds
    and the processes."""
    parser.add_argument("--samples", default="/work/samples", help="folder of the Pythia pairs")
    parser.add_argument("--data", default=None, help="folder of the shared files")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    parser.add_argument("--jobs", type=int, default=1, help="processes (one thread each)")
