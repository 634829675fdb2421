"""The generators compared with vaeaug, behind one small interface.

Every peer learns from 4-momenta ``p4`` of shape (N, k, 4), (px, py, pz, E) in GeV,
any k >= 2, and generates arrays of the same form::

    peer = make_peer("nsf-decay", objects=["mu1", "mu2"], masses=[0.10566, 0.10566])
    peer.fit(p4, seed=1)
    generated = peer.sample(40_000, seed=2)   # (40000, 2, 4) GeV

``objects`` (the daughters' names) and ``masses`` (GeV) are given when the peer is
built; without them the objects are named p0, p1, ... and the masses, which only the
decay-representation peers need, are inferred from the data (fixed masses).

Peers: ``gaussian`` (multivariate normal on the 4k raw components), ``plain-vae``
(the tutorial VAE: MLP, MSE reconstruction, N(0, 1) prior, on standardized raw
components), ``tvae`` (SDV's TVAE, package ``ctgan``), ``nsf`` (a zuko neural spline
flow on standardized raw components), ``nsf-decay`` (the same flow on vaeaug's decay
representation, to separate the network from the representation) and ``vaeaug``.
Optional packages (ctgan, zuko) are imported when their peer is built.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

__all__ = ["PEERS", "Peer", "make_peer"]


class Peer:
    """A generator of (N, k, 4) GeV candidate arrays; subclasses implement fit and sample.

    objects: the daughters' names (default p0, p1, ...); masses: their masses in GeV
    (default: inferred from the training data by the peers that need them).
    """

    name: ClassVar[str] = "peer"

    def __init__(
        self, *, objects: Sequence[str] | None = None, masses: Sequence[float] | None = None
    ) -> None:
        self.objects = None if objects is None else list(objects)
        self.masses = None if masses is None else [float(m) for m in masses]

    def _objects(self, p4: np.ndarray) -> list[str]:
        """The object names for ``p4`` (N, k, 4), checked against k."""
        k = np.shape(p4)[1]
        if self.objects is None:
            return [f"p{i}" for i in range(k)]
        if len(self.objects) != k:
            raise ValueError(f"{len(self.objects)} objects ({', '.join(self.objects)}) for "
                             f"samples of {k} objects")  # fmt: skip
        return self.objects

    def _masses(self, p4: np.ndarray) -> list[float]:
        """The daughters' masses (GeV): the given ones, else inferred from ``p4``."""
        if self.masses is not None:
            return self.masses
        from vaeaug.representations.choice import infer_masses

        return infer_masses(p4, self._objects(p4))

    def fit(self, p4: np.ndarray, *, seed: int, weights: np.ndarray | None = None) -> Peer:
        raise NotImplementedError

    def sample(self, n: int, *, seed: int) -> np.ndarray:
        raise NotImplementedError


def _flat(p4: np.ndarray) -> np.ndarray:
    return np.asarray(p4, dtype=np.float64).reshape(len(p4), -1)


def _unflat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1, 4)


class GaussianPeer(Peer):
    """Multivariate normal with the sample mean and covariance of the 4k raw components."""

    name = "gaussian"

    def fit(self, p4, *, seed, weights=None):
        x = _flat(p4)
        self.mean = np.average(x, axis=0, weights=weights)
        self.cov = np.cov(x, rowvar=False, aweights=weights)
        return self

    def sample(self, n, *, seed):
        rng = np.random.default_rng(seed)
        return _unflat(rng.multivariate_normal(self.mean, self.cov, size=n, method="cholesky"))


def _train_torch(
    loss_fn,
    params,
    x: torch.Tensor,
    *,
    seed: int,
    epochs: int,
    batch: int,
    lr: float,
    patience: int,
) -> int:
    """Adam on ``loss_fn(batch) -> scalar`` with a 15% validation split and early stopping.

    Restores the best validation state into the modules that own ``params``; returns the
    number of epochs run. ``x`` has shape (N, D).
    """
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=gen)
    n_val = max(1, len(x) * 15 // 100)
    x_val, x_train = x[perm[:n_val]], x[perm[n_val:]]
    opt = torch.optim.Adam(params["params"], lr=lr)
    best, best_state, since = math.inf, None, 0
    epoch = 0
    for epoch in range(epochs):  # noqa: B007 (the count is returned)
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(x_train), batch):
            loss = loss_fn(x_train[order[i : i + batch]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = float(loss_fn(x_val))
        if val < best - 1e-4:
            best, since = val, 0
            best_state = copy.deepcopy(params["module"].state_dict())
        else:
            since += 1
            if since >= patience:
                break
    if best_state is not None:
        params["module"].load_state_dict(best_state)
    return epoch + 1


class PlainVAEPeer(Peer):
    """The tutorial VAE: MLP encoder/decoder on standardized (px, py, pz, E) of each daughter.

    MSE reconstruction (a fixed-variance Gaussian decoder), KL to N(0, 1), sampling
    z ~ N(0, 1) and taking the decoder mean, as in the common Keras/PyTorch examples.
    """

    name = "plain-vae"

    def __init__(
        self, latent_dim: int = 8, hidden: int = 128, epochs: int = 300, **base: Any
    ) -> None:
        super().__init__(**base)
        self.latent_dim, self.hidden, self.epochs = latent_dim, hidden, epochs

    def fit(self, p4, *, seed, weights=None):
        x = _flat(p4)
        self.mu, self.sd = x.mean(axis=0), x.std(axis=0)
        xt = torch.as_tensor((x - self.mu) / self.sd, dtype=torch.float32)
        d, h, k = xt.shape[1], self.hidden, self.latent_dim
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.enc = nn.Sequential(
                nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2 * k)
            )
            self.dec = nn.Sequential(
                nn.Linear(k, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, d)
            )
            module = nn.ModuleList([self.enc, self.dec])

            def loss_fn(xb):
                mu, logvar = self.enc(xb).chunk(2, dim=-1)
                z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
                rec = ((self.dec(z) - xb) ** 2).sum(-1)
                kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)
                return (rec + kl).mean()

            self.epochs_run = _train_torch(
                loss_fn,
                {"params": module.parameters(), "module": module},
                xt,
                seed=seed,
                epochs=self.epochs,
                batch=256,
                lr=1e-3,
                patience=20,
            )
        return self

    def sample(self, n, *, seed):
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            x = self.dec(torch.randn(n, self.latent_dim, generator=gen)).double().numpy()
        return _unflat(x * self.sd + self.mu)


class TVAEPeer(Peer):
    """SDV's TVAE (package ``ctgan``) on the 4k raw components, default settings."""

    name = "tvae"

    def __init__(self, epochs: int = 300, **base: Any) -> None:
        super().__init__(**base)
        self.epochs = epochs

    def fit(self, p4, *, seed, weights=None):
        try:
            import pandas as pd
            from ctgan import TVAE
        except ImportError as err:
            raise SystemExit("the tvae peer needs ctgan: pip install 'vaeaug[bench]'") from err
        x = _flat(p4)
        cols = [f"x{i}" for i in range(x.shape[1])]
        self.cols = cols
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)  # noqa: NPY002 (the RDT transformers draw from it)
            self.model = TVAE(epochs=self.epochs, enable_gpu=False)
            self.model.set_random_state(seed)
            self.model.fit(pd.DataFrame(x, columns=cols))
        return self

    def sample(self, n, *, seed):
        self.model.set_random_state(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)  # noqa: NPY002
            return _unflat(self.model.sample(n)[self.cols].to_numpy())


class NSFPeer(Peer):
    """A zuko neural spline flow on standardized raw components (or on decay features)."""

    name = "nsf"

    def __init__(
        self,
        representation: str = "raw",
        transforms: int = 5,
        hidden: int = 128,
        epochs: int = 300,
        patience: int = 20,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.representation = representation
        self.transforms, self.hidden, self.epochs, self.patience = (
            transforms,
            hidden,
            epochs,
            patience,
        )

    def _to_x(self, p4: np.ndarray) -> np.ndarray:
        return _flat(p4) if self.rep is None else self.rep.to_features(p4)

    def fit(self, p4, *, seed, weights=None):
        try:
            import zuko
        except ImportError as err:
            raise SystemExit("the nsf peers need zuko: pip install 'vaeaug[bench]'") from err
        self.rep = None
        if self.representation == "decay":
            from vaeaug.representations import make_representation

            self.rep = make_representation(
                "decay", np.shape(p4)[1], masses=self._masses(p4), object_names=self._objects(p4)
            )
        x = self._to_x(p4)
        q25, q50, q75 = np.percentile(x, [25, 50, 75], axis=0)
        self.center, self.scale = q50, (q75 - q25) / 1.349
        xt = torch.as_tensor((x - self.center) / self.scale, dtype=torch.float32)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.flow = zuko.flows.NSF(
                xt.shape[1], transforms=self.transforms, hidden_features=(self.hidden, self.hidden)
            )

            def loss_fn(xb):
                return -self.flow().log_prob(xb).mean()

            self.epochs_run = _train_torch(
                loss_fn,
                {"params": self.flow.parameters(), "module": self.flow},
                xt,
                seed=seed,
                epochs=self.epochs,
                batch=512,
                lr=1e-3,
                patience=self.patience,
            )
        return self

    def sample(self, n, *, seed):
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed)
            z = self.flow().sample((n,)).double().numpy()
        x = z * self.scale + self.center
        # A flow can put rare samples far out in the tails; keep them finite for decoding.
        x = np.where(np.isfinite(x), x, 0.0)
        return _unflat(x) if self.rep is None else self.rep.from_features(x)


class VaeaugPeer(Peer):
    """vaeaug with its defaults (or the given VAEConfig/TrainConfig keyword overrides)."""

    name = "vaeaug"

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        train: dict[str, Any] | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.config, self.train = config or {}, train or {}

    def fit(self, p4, *, seed, weights=None):
        import vaeaug

        self.model = vaeaug.fit(
            p4,
            objects=self._objects(p4),
            masses=self.masses,
            config=vaeaug.VAEConfig(**self.config),
            train=vaeaug.TrainConfig(**self.train),
            weights=weights,
            seed=seed,
            device="cpu",
            progress=False,
        )
        self.epochs_run = self.model.provenance["epochs_run"]
        return self

    def sample(self, n, *, seed):
        candidates = self.model.sample(n, seed=seed)
        # the model's own support guard: first draws outside it (redrawn), and kept ones
        report = getattr(candidates, "support_report", None)
        self.support_report = None if report is None else report.to_dict()
        return candidates.p4


class _NSFDecay(NSFPeer):
    name = "nsf-decay"

    def __init__(self, **kwargs) -> None:
        super().__init__(representation="decay", **kwargs)


PEERS: dict[str, type[Peer]] = {
    cls.name: cls for cls in (GaussianPeer, PlainVAEPeer, TVAEPeer, NSFPeer, _NSFDecay, VaeaugPeer)
}


def make_peer(name: str, **kwargs) -> Peer:
    """Build the peer called ``name`` (one of :data:`PEERS`) with keyword overrides
    (``objects`` and ``masses`` for every peer, see :class:`Peer`)."""
    if name not in PEERS:
        raise SystemExit(f"peer '{name}' unknown; valid: {', '.join(PEERS)}")
    return PEERS[name](**kwargs)
