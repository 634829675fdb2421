"""Training loop: validation split, KL warm-up, LR schedule, early stopping on sample quality.

Model selection reads the validation part of the training data only. The epoch
kept is the one whose *samples* are closest to the validation events (the energy
distance in the standardized feature space, on a fixed set of random numbers so
that epochs compare), not the one with the best beta-weighted ELBO: with beta < 1
the ELBO rewards reconstructions, while what vaeaug sells is samples.

The data stay on the training device for the whole run and the per-step
losses are accumulated on the device, so a GPU is never stalled by a
host synchronisation inside an epoch (one per epoch, for early stopping).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import InputError
from .model.vae import VAE
from .noise import Stream, child_seed

__all__ = ["DEVICE_TYPES", "TrainConfig", "check_device", "choose_device", "energy_distance",
           "train_vae"]  # fmt: skip

#: The kinds of device vaeaug trains and samples on (torch knows others: meta, xla, ...).
DEVICE_TYPES = ("cpu", "cuda", "mps")


@dataclasses.dataclass
class TrainConfig:
    """Optimisation settings (saved in the model file)."""

    epochs: int = 300  # upper bound; early stopping usually ends sooner
    batch_size: int = 256  # events per step (more steps per epoch for samples of ~1e4)
    # smaller batches when the training split is small, so that an epoch has at least this
    # many steps (0: off); warm-up, patience and the average are counted in epochs. 16 scored
    # better than 0 on validation splits at N = 500-1,000 (docs/benchmarks.md); any training
    # split of 4,096 events or more keeps batches of ``batch_size``
    min_steps_per_epoch: int = 16
    learning_rate: float = 3e-3  # peak AdamW learning rate (halved on plateaus)
    weight_decay: float = 1e-5  # AdamW weight decay
    val_fraction: float = 0.15  # fraction held out for validation and early stopping
    # epochs without a better validation sample score before stopping: the score has long
    # plateaus (30 stopped a dimuon model at C2ST 0.66 that 80 took to 0.58)
    patience: int = 60
    kl_warmup_epochs: int = 10  # KL weight grows linearly from 0 to 1 over these epochs
    min_events: int = 50  # refuse to train on fewer events
    eval_every: int = 2  # epochs between sample-quality scores
    eval_events: int = 2000  # at most this many validation events per score
    # > 0: score and keep an exponential moving average of the weights, averaging over about
    # this many epochs (torch.optim.swa_utils); 0 scores the raw weights. 10 scored better
    # than no average on validation splits (docs/benchmarks.md)
    ema_epochs: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 0.9:
            raise ValueError(f"val_fraction must be in (0, 0.9), got {self.val_fraction}")
        if self.epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0:
            raise ValueError("epochs, batch_size and learning_rate must be positive")
        if not (math.isfinite(self.ema_epochs) and self.ema_epochs >= 0):
            raise ValueError(f"ema_epochs must be >= 0 (0 = off), got {self.ema_epochs}")
        if self.min_steps_per_epoch < 0:
            raise ValueError(
                f"min_steps_per_epoch must be >= 0 (0 = off), got {self.min_steps_per_epoch}"
            )
        if self.patience < 1 or self.eval_every < 1 or self.eval_events < 10:
            raise ValueError(
                "patience and eval_every must be >= 1 and eval_events >= 10, got "
                f"{self.patience}, {self.eval_every}, {self.eval_events}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> TrainConfig:
        """The settings a model file records; fields added since it was written take the
        value it was trained with (``_BEFORE_FIELD_EXISTED``), not today's default, and
        options since removed (``_REMOVED_FIELDS``) are dropped."""
        kept = {k: v for k, v in saved.items() if k not in _REMOVED_FIELDS}
        return cls(**{**_BEFORE_FIELD_EXISTED, **kept})


#: fields added to TrainConfig after the first model files, and how those files were trained
_BEFORE_FIELD_EXISTED = {"ema_epochs": 0.0, "min_steps_per_epoch": 0}
#: options that older model files may record and that no longer exist. Files trained with
#: them at their defaults (a floor of 0 generated events per score, no acceptance term)
#: were trained as today's code trains.
_REMOVED_FIELDS = frozenset({"eval_samples", "acceptance_weight", "acceptance_samples"})


def check_enough_events(n: int, config: TrainConfig, option: str | None = None) -> None:
    """Refuse training on fewer than ``config.min_events`` events (``option``: the option
    that set ``n``, named in the error)."""
    if n < config.min_events:
        where = f"{option}: " if option else ""
        raise InputError(f"{where}too few events to train: {n} (need at least {config.min_events})")


def check_device(device: str | torch.device | None, name: str = "device") -> torch.device | None:
    """The device ``device`` names (None for ``"auto"``), or InputError naming ``name`` when it
    is not auto or a device of :data:`DEVICE_TYPES` (whether it exists here is
    :func:`choose_device`'s check)."""
    if device is None or str(device) == "auto":
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        dev = err
    if isinstance(dev, Exception) or dev.type not in DEVICE_TYPES:
        raise InputError(f"{name} '{device}' is not valid; use auto, cpu, cuda, cuda:N or mps")
    return dev


def choose_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; anything else is checked."""
    dev = check_device(device)
    if dev is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device '{device}' requested but MPS is not available here; use "
                         "--device cpu or auto")  # fmt: skip
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
        seed: seeds the split (sub-stream ``Stream.TRAIN_SPLIT`` of
            :mod:`vaeaug.noise`), the batch order and the score's noise
            (``Stream.TRAIN_ORDER``). The initial weights and the reparameterisation
            noise come from torch's global generator, which the caller seeds.
        device: where to train.
        progress: show a tqdm bar with the losses.

    Returns:
        The history: per-epoch lists ``train``, ``val``, ``nll``, ``kl``, ``lr``; the
        validation sample scores ``score`` (energy distance, see :func:`energy_distance`)
        at epochs ``score_epoch``; and ``best_epoch``, whose weights are restored into
        ``vae``. With ``config.ema_epochs > 0`` the scores, and the weights kept, are those
        of the moving average; the losses are the raw weights'.
    """
    n = len(x)
    check_enough_events(n, config)
    val_idx, train_idx = _split(n, config.val_fraction, seed)
    dtype = torch.float32
    xt = torch.as_tensor(x, dtype=dtype, device=device)
    wt = None if weights is None else torch.as_tensor(weights, dtype=dtype, device=device)
    x_train, x_val = xt[train_idx], xt[val_idx]
    w_train, w_val = (None, None) if wt is None else (wt[train_idx], wt[val_idx])
    vae.to(device)

    opt = torch.optim.AdamW(
        vae.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=max(3, config.patience // 4)
    )
    gen = torch.Generator(device=device)
    gen.manual_seed(child_seed(seed, Stream.TRAIN_ORDER))
    # fixed validation events and random numbers for the sample score: epochs compare
    n_eval = min(config.eval_events, len(x_val))
    x_eval = x_val[:n_eval]
    w_eval = None if w_val is None else w_val[:n_eval]
    eps_eval = torch.randn(n_eval, vae.noise_width, generator=gen, device=device)

    batch = _batch_size(len(x_train), config)
    steps = math.ceil(len(x_train) / batch)
    ema = _moving_average(vae, config.ema_epochs, steps)
    scored = vae if ema is None else ema.module  # the weights that are scored and kept
    history: dict[str, list[float]] = {
        "train": [], "val": [], "nll": [], "kl": [], "lr": [], "score": [], "score_epoch": []
    }  # fmt: skip
    best, best_state, since_best = math.inf, None, 0
    bar = tqdm(
        range(config.epochs), desc="training", unit="epoch", disable=not progress, leave=False,
        mininterval=_bar_interval(),
    )  # fmt: skip
    for epoch in bar:
        kl_weight = min(1.0, (epoch + 1) / max(1, config.kl_warmup_epochs))
        train_loss, nll, kl = _train_epoch(vae, opt, ema, x_train, w_train, batch, gen, kl_weight)
        val_loss = _validation_loss(vae, x_val, w_val, epoch)
        for key, value in zip(
            ("train", "val", "nll", "kl", "lr"),
            (train_loss, val_loss, nll, kl, opt.param_groups[0]["lr"]),
        ):
            history[key].append(value)
        if epoch < config.kl_warmup_epochs:
            continue
        sched.step(val_loss)
        if (epoch - config.kl_warmup_epochs) % config.eval_every:
            continue
        score = _sample_score(scored, eps_eval, x_eval, w_eval)
        history["score"].append(score)
        history["score_epoch"].append(epoch)
        bar.set_postfix(val=f"{val_loss:.3f}", score=f"{score:.4f}", kl=f"{kl:.2f}")
        if score < best:
            best, since_best = score, 0
            best_state = copy.deepcopy(scored.state_dict())
            history["best_epoch"] = epoch
        else:
            since_best += config.eval_every
            if since_best >= config.patience:
                break
    bar.close()
    if best_state is not None:
        vae.load_state_dict(best_state)
    return history


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (validation, training) of ``n`` events: a random ``val_fraction`` (at least
    one event) held out, drawn from the sub-stream ``Stream.TRAIN_SPLIT`` of ``seed``."""
    order = np.random.default_rng(child_seed(seed, Stream.TRAIN_SPLIT)).permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return order[:n_val], order[n_val:]


def _train_epoch(
    vae: VAE,
    opt: torch.optim.Optimizer,
    ema: torch.optim.swa_utils.AveragedModel | None,
    x: torch.Tensor,
    w: torch.Tensor | None,
    batch: int,
    gen: torch.Generator,
    kl_weight: float,
) -> tuple[float, float, float]:
    """One pass over the training events ``x`` (N, D) (weights ``w`` (N,) or None) in
    batches of ``batch`` in an order drawn from ``gen``; returns the mean (loss, NLL, KL).

    The losses are summed on the device: one host synchronisation per epoch."""
    vae.train()
    n, steps = len(x), math.ceil(len(x) / batch)
    perm = torch.randperm(n, generator=gen, device=x.device)
    sums = torch.zeros(3, device=x.device)
    for i in range(steps):
        idx = perm[i * batch : (i + 1) * batch]
        loss, nll, kl = vae.loss(x[idx], None if w is None else w[idx], kl_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update_parameters(vae)
        sums += torch.stack([loss.detach(), nll.detach(), kl.detach()])
    train_loss, nll, kl = (sums / steps).tolist()
    return train_loss, nll, kl


def _sample_score(vae: VAE, eps: torch.Tensor, x: torch.Tensor, w: torch.Tensor | None) -> float:
    """Energy distance between the features ``vae`` generates from the normals ``eps``
    (N, L + D) and the validation events ``x`` (M, D) with weights ``w`` (M,) or None.

    The events come from :meth:`VAE.generate`, the noise-to-features map of sampling."""
    vae.eval()
    with torch.no_grad():
        return energy_distance(vae.generate(eps), x, w)


def _validation_loss(vae: VAE, x: torch.Tensor, w: torch.Tensor | None, epoch: int) -> float:
    """The loss (KL weight 1) of the validation events ``x`` (N, D); refuses a non-finite one."""
    vae.eval()
    with torch.no_grad():
        val_loss = float(vae.loss(x, w, 1.0)[0])
    if not math.isfinite(val_loss):
        raise FloatingPointError(
            f"validation loss became {val_loss} at epoch {epoch}; lower the learning rate"
        )
    return val_loss


def _batch_size(n_train: int, config: TrainConfig) -> int:
    """Events per optimiser step for ``n_train`` training events: ``config.batch_size``,
    smaller when that would leave an epoch fewer than ``config.min_steps_per_epoch``
    steps, and never more than ``n_train``."""
    batch = min(config.batch_size, n_train)
    if config.min_steps_per_epoch:
        batch = min(batch, max(1, n_train // config.min_steps_per_epoch))
    return batch


def _moving_average(
    vae: torch.nn.Module, ema_epochs: float, steps_per_epoch: int
) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of ``vae``'s weights over about ``ema_epochs`` epochs
    (decay ``1 - 1 / (ema_epochs * steps_per_epoch)`` per step), or None when off.

    The horizon is set in epochs, not steps, so that it means the same at N = 1k (a few
    steps per epoch) and at N = 100k."""
    if ema_epochs <= 0:
        return None
    decay = 1.0 - 1.0 / max(1.0, ema_epochs * steps_per_epoch)
    # parameters only: the buffers (the flows' masks and orders, the standard prior's loc and
    # scale) are constants, copied once; averaging an integer or boolean buffer would round it
    return torch.optim.swa_utils.AveragedModel(
        vae, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=False
    )


def _bar_interval() -> float:
    """Seconds between progress-bar updates: a few lines a minute when not on a terminal."""
    return 0.1 if sys.stderr.isatty() else 10.0


def energy_distance(x: torch.Tensor, y: torch.Tensor, wy: torch.Tensor | None = None) -> float:
    """Energy distance between samples x (n, D) and y (m, D), y optionally weighted (m,).

    ``2 E|X - Y| - E|X - X'| - E|Y - Y'|``: zero only when the distributions are
    equal, sensitive to every feature and every correlation, and cheap at a few
    thousand events (three ``cdist`` calls).
    """
    wy = torch.ones(len(y), device=y.device) if wy is None else wy
    wy = wy / wy.sum()
    wx = torch.full((len(x),), 1.0 / len(x), device=x.device)
    xy = wx @ torch.cdist(x, y) @ wy
    xx = wx @ torch.cdist(x, x) @ wx
    yy = wy @ torch.cdist(y, y) @ wy
    return float(2 * xy - xx - yy)
