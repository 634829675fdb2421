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
from .model.support import AcceptanceTerm
from .model.vae import VAE

__all__ = ["TrainConfig", "choose_device", "energy_distance", "train_vae"]


@dataclasses.dataclass
class TrainConfig:
    """Optimisation settings (saved in the model file)."""

    epochs: int = 300  # upper bound; early stopping usually ends sooner
    batch_size: int = 256  # events per step (more steps per epoch for samples of ~1e4)
    # smaller batches when the training split is small, so that an epoch has at least this
    # many steps (0: off); warm-up, patience and the average are counted in epochs. 16 was
    # chosen on validation splits (round 10: mean C2ST 0.624 against 0.644 at N = 500-1,000);
    # any training split of 4,096 events or more keeps batches of ``batch_size``
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
    # generated events per score: as many as the validation events scored, and at least
    # this many (0: no floor). The validation events are few at small N (75 at N = 500)
    eval_samples: int = 0
    # > 0: score and keep an exponential moving average of the weights, averaging over about
    # this many epochs (torch.optim.swa_utils); 0 scores the raw weights. 10 was chosen on
    # validation splits (round 9: mean C2ST 0.597 against 0.622 without, 3 decays)
    ema_epochs: float = 10.0
    # > 0: add this times -log Q(A) to the loss, Q(A) the model's probability to generate
    # inside the training sample's lab-frame support (the truncated likelihood; see
    # vaeaug.model.support.AcceptanceTerm), estimated each step from ``acceptance_samples``
    # generated candidates; 0: off
    acceptance_weight: float = 0.0
    acceptance_samples: int = 256

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
        if not (math.isfinite(self.acceptance_weight) and self.acceptance_weight >= 0):
            raise ValueError(
                f"acceptance_weight must be >= 0 (0 = off), got {self.acceptance_weight}"
            )
        if self.acceptance_samples < 1:
            raise ValueError(f"acceptance_samples must be >= 1, got {self.acceptance_samples}")
        if self.eval_samples < 0:
            raise ValueError(f"eval_samples must be >= 0 (0 = no floor), got {self.eval_samples}")
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
        value it was trained with (``_BEFORE_FIELD_EXISTED``), not today's default."""
        return cls(**{**_BEFORE_FIELD_EXISTED, **saved})


#: fields added to TrainConfig after the first model files, and how those files were trained
_BEFORE_FIELD_EXISTED = {"ema_epochs": 0.0, "eval_samples": 0, "min_steps_per_epoch": 0,
                         "acceptance_weight": 0.0, "acceptance_samples": 256}  # fmt: skip


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
    acceptance: AcceptanceTerm | None = None,
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
        acceptance: with ``config.acceptance_weight > 0``, the model's probability to
            generate inside the acceptance (:class:`vaeaug.model.support.AcceptanceTerm`).

    Returns:
        The history: per-epoch lists ``train``, ``val``, ``nll``, ``kl``, ``lr`` (and, with
        the acceptance term, ``inside``: the epoch's mean estimate of Q(A)); the
        validation sample scores ``score`` (energy distance, see :func:`energy_distance`)
        at epochs ``score_epoch``; and ``best_epoch``, whose weights are restored into
        ``vae``. With ``config.ema_epochs > 0`` the scores, and the weights kept, are those
        of the moving average; the losses are the raw weights'.
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
    # fixed validation events and random numbers for the sample score: epochs compare
    n_eval = min(config.eval_events, len(x_val))
    x_eval = x_val[:n_eval]
    w_eval = None if w_val is None else w_val[:n_eval]
    n_generated = max(n_eval, config.eval_samples)
    eps_eval = torch.randn(n_generated, vae.noise_width, generator=gen, device=device)

    n_train = len(x_train)
    batch = _batch_size(n_train, config)
    steps = math.ceil(n_train / batch)
    ema = _moving_average(vae, config.ema_epochs, steps)
    scored = vae if ema is None else ema.module  # the weights that are scored and kept
    history: dict[str, list[float]] = {
        "train": [], "val": [], "nll": [], "kl": [], "lr": [], "score": [], "score_epoch": []
    }  # fmt: skip
    if config.acceptance_weight == 0:
        acceptance = None  # and no random numbers drawn for it: the same run as without
    elif acceptance is None:
        raise InputError("acceptance_weight > 0 needs the acceptance term (vaeaug.fit makes it)")
    else:
        acceptance.to(device)
        history["inside"] = []
    best, best_state, since_best = math.inf, None, 0
    bar = tqdm(
        range(config.epochs), desc="training", unit="epoch", disable=not progress, leave=False,
        mininterval=_bar_interval(),
    )  # fmt: skip
    for epoch in bar:
        kl_weight = min(1.0, (epoch + 1) / max(1, config.kl_warmup_epochs))
        vae.train()
        perm = torch.randperm(n_train, generator=gen, device=device)
        sums = torch.zeros(4, device=device)
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
            loss, nll, kl = vae.loss(
                x_train[idx], None if w_train is None else w_train[idx], kl_weight
            )
            if acceptance is not None:
                eps = torch.randn(config.acceptance_samples, vae.noise_width, generator=gen,
                                  device=device)  # fmt: skip
                log_inside = acceptance.log_inside(vae.generate(eps))
                loss = loss - config.acceptance_weight * log_inside.float()
                sums[3] += log_inside.detach().exp().float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update_parameters(vae)
            sums[:3] += torch.stack([loss.detach(), nll.detach(), kl.detach()])
        vae.eval()
        with torch.no_grad():
            val = vae.loss(x_val, w_val, 1.0)[0]
        train_loss, nll, kl, inside = (sums / steps).tolist()
        if acceptance is not None:
            history["inside"].append(inside)
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
        if epoch < config.kl_warmup_epochs:
            continue
        sched.step(val_loss)
        if (epoch - config.kl_warmup_epochs) % config.eval_every:
            continue
        scored.eval()
        with torch.no_grad():
            score = energy_distance(scored.generate(eps_eval), x_eval, w_eval)
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
