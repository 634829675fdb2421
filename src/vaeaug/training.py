"""Training loop: validation split, KL warm-up, LR schedule, early stopping.

The data stay on the training device for the whole run and the per-step
losses are accumulated on the device, so a GPU is never stalled by a
host synchronisation inside an epoch (one per epoch, for early stopping).
"""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import InputError
from .model.vae import VAE

__all__ = ["TrainConfig", "choose_device", "fit_latent_prior", "train_vae"]


@dataclasses.dataclass
class TrainConfig:
    """Optimisation settings (saved in the model file)."""

    epochs: int = 300  # upper bound; early stopping usually ends sooner
    batch_size: int = 256  # events per step (more steps per epoch for samples of ~1e4)
    learning_rate: float = 3e-3  # peak AdamW learning rate (halved on plateaus)
    weight_decay: float = 1e-5  # AdamW weight decay
    val_fraction: float = 0.15  # fraction held out for validation and early stopping
    patience: int = 30  # epochs without validation improvement before stopping
    kl_warmup_epochs: int = 10  # KL weight grows linearly from 0 to 1 over these epochs
    min_events: int = 50  # refuse to train on fewer events

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 0.9:
            raise ValueError(f"val_fraction must be in (0, 0.9), got {self.val_fraction}")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs, batch_size and learning_rate must be positive")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def choose_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; anything else is checked."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise InputError(f"device '{device}' is not valid; use auto, cpu, cuda or cuda:N") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device '{device}' requested but CUDA is not available here; use --device cpu or auto"
        )
    return dev


def train_vae(
    vae: VAE,
    x: np.ndarray,
    config: TrainConfig,
    *,
    weights: np.ndarray | None = None,
    seed: int = 0,
    device: torch.device,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train ``vae`` in place on standardized features.

    Args:
        vae: the model; moved to ``device``.
        x: standardized features, shape (N, D).
        config: optimisation settings.
        weights: per-event weights, shape (N,), or None.
        seed: seeds the split, the batch order, the initial weights' RNG use
            and the reparameterisation noise.
        device: where to train.
        progress: show a tqdm bar with the losses.

    Returns:
        The history: per-epoch lists ``train``, ``val``, ``nll``, ``kl``, ``lr``;
        the best epoch's weights are restored into ``vae``.
    """
    n = len(x)
    if n < config.min_events:
        raise InputError(f"too few events to train: {n} (need at least {config.min_events})")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = max(1, int(round(config.val_fraction * n)))
    val_idx, train_idx = order[:n_val], order[n_val:]

    dtype = torch.float32
    xt = torch.as_tensor(x, dtype=dtype, device=device)
    wt = None if weights is None else torch.as_tensor(weights, dtype=dtype, device=device)
    x_train, x_val = xt[train_idx], xt[val_idx]
    w_train = None if wt is None else wt[train_idx]
    w_val = None if wt is None else wt[val_idx]
    vae.to(device)

    opt = torch.optim.AdamW(
        vae.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=max(3, config.patience // 4)
    )
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)

    n_train = len(x_train)
    batch = min(config.batch_size, n_train)
    steps = math.ceil(n_train / batch)
    history: dict[str, list[float]] = {"train": [], "val": [], "nll": [], "kl": [], "lr": []}
    best, best_state, since_best = math.inf, None, 0
    bar = tqdm(
        range(config.epochs), desc="training", unit="epoch", disable=not progress, leave=False
    )
    for epoch in bar:
        kl_weight = min(1.0, (epoch + 1) / max(1, config.kl_warmup_epochs))
        vae.train()
        perm = torch.randperm(n_train, generator=gen, device=device)
        sums = torch.zeros(3, device=device)
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
            loss, nll, kl = vae.loss(
                x_train[idx], None if w_train is None else w_train[idx], kl_weight
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += torch.stack([loss.detach(), nll.detach(), kl.detach()])
        vae.eval()
        with torch.no_grad():
            # the validation loss is the full ELBO (kl weight 1) so epochs compare
            val = vae.loss(x_val, w_val, 1.0)[0]
        train_loss, nll, kl = (sums / steps).tolist()
        val_loss = float(val)
        if not math.isfinite(val_loss):
            raise FloatingPointError(
                f"validation loss became {val_loss} at epoch {epoch}; lower the learning rate"
            )
        for key, value in zip(
            ("train", "val", "nll", "kl", "lr"),
            (train_loss, val_loss, nll, kl, opt.param_groups[0]["lr"]),
        ):
            history[key].append(value)
        bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}", kl=f"{kl:.2f}")
        if epoch >= config.kl_warmup_epochs:
            sched.step(val_loss)
            if val_loss < best - 1e-4:
                best, since_best = val_loss, 0
                best_state = copy.deepcopy(vae.state_dict())
            else:
                since_best += 1
                if since_best >= config.patience:
                    break
    bar.close()
    if best_state is not None:
        vae.load_state_dict(best_state)
    return history


def fit_latent_prior(
    vae: VAE,
    x: np.ndarray,
    *,
    n_components: int,
    seed: int,
    device: torch.device,
    max_events: int = 200_000,
) -> None:
    """Fit a Gaussian mixture to the aggregate posterior and install it as the prior.

    Sampling z from N(0, 1) leaves holes and overdense regions wherever the
    aggregate posterior q(z) = E_x q(z|x) differs from the prior (the "prior
    hole" problem); decoding such z gives the blurred, unphysical events a plain
    VAE is known for. A mixture fitted to draws from q(z) (ex-post density
    estimation, Ghosh et al. 2020) samples where the decoder was trained.

    Args:
        x: standardized training features, shape (N, D).
        n_components: mixture components (reduced for small samples).
    """
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    if len(x) > max_events:
        x = x[rng.choice(len(x), max_events, replace=False)]
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    vae.eval()
    with torch.no_grad():
        q = vae.encode(torch.as_tensor(x, dtype=torch.float32, device=device))
        eps = torch.randn(q.mean.shape, generator=gen, device=device)
        z = (q.mean + q.stddev * eps).double().cpu().numpy()
    k = int(max(1, min(n_components, len(z) // 50)))
    gmm = GaussianMixture(
        k, covariance_type="full", random_state=seed, reg_covar=1e-5, max_iter=300
    )
    gmm.fit(z)
    vae.set_prior(
        torch.as_tensor(gmm.weights_, dtype=torch.float32),
        torch.as_tensor(gmm.means_, dtype=torch.float32),
        torch.as_tensor(np.linalg.cholesky(gmm.covariances_), dtype=torch.float32),
    )
