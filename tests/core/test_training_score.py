"""Small training samples: the sample score's generated events, the steps per epoch
(TrainConfig.min_steps_per_epoch), and model files that record removed options."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny_settings import TINY_VAE

from vaeaug import TrainConfig, VAEConfig
from vaeaug import training as training_module
from vaeaug.model.vae import VAE
from vaeaug.training import _batch_size, train_vae

X = np.random.default_rng(2).normal(size=(600, 4)).astype(np.float32)  # 90 validation events


def _train(monkeypatch, **overrides) -> tuple[dict, list[tuple[int, int]]]:
    sizes = []
    score = training_module.energy_distance

    def recording(x, y, wy=None):
        sizes.append((len(x), len(y)))
        return score(x, y, wy)

    monkeypatch.setattr(training_module, "energy_distance", recording)
    torch.manual_seed(0)
    vae = VAE(X.shape[1], VAEConfig(**TINY_VAE))
    config = TrainConfig(epochs=5, kl_warmup_epochs=3, eval_every=1, patience=5, **overrides)
    history = train_vae(vae, X, config, seed=4, device=torch.device("cpu"), progress=False)
    return history, sizes


def test_score_generates_as_many_events_as_it_scores(monkeypatch):
    _, sizes = _train(monkeypatch)
    assert sizes == [(90, 90)] * 2  # 90 generated against the 90 validation events


def test_the_score_decodes_through_vae_generate(monkeypatch):
    """The score's events come from VAE.generate, the noise-to-features map of sampling."""
    calls = []
    generate = VAE.generate

    def recording(self, eps, *args, **kwargs):
        calls.append(eps.shape)
        return generate(self, eps, *args, **kwargs)

    monkeypatch.setattr(VAE, "generate", recording)
    _train(monkeypatch)
    assert len(calls) == 2 and all(shape[0] == 90 for shape in calls)


def test_old_files_read_as_trained_and_removed_options_are_dropped():
    saved = TrainConfig().to_dict()
    del saved["min_steps_per_epoch"], saved["ema_epochs"]
    # options a format-3 file may still carry (removed: the acceptance term, eval_samples)
    saved.update(eval_samples=0, acceptance_weight=0.0, acceptance_samples=256)
    old = TrainConfig.from_dict(saved)  # a file from before both fields: trained without either
    assert old.min_steps_per_epoch == 0 and old.ema_epochs == 0.0
    assert not {"eval_samples", "acceptance_weight", "acceptance_samples"} & set(old.to_dict())
    with pytest.raises(TypeError):
        TrainConfig(eval_samples=0)  # removed, not silently accepted from code


def test_small_training_splits_get_smaller_batches_and_large_ones_do_not():
    config = TrainConfig(min_steps_per_epoch=16)
    assert _batch_size(425, config) == 26 and math.ceil(425 / 26) >= 16  # N = 500
    assert _batch_size(8_500, config) == 256  # N = 10k: the batch size as configured
    off = TrainConfig(min_steps_per_epoch=0)
    assert _batch_size(425, off) == 256 and _batch_size(100, off) == 100  # one size for all N
    assert TrainConfig().min_steps_per_epoch == 16  # the default chosen on validation splits
    assert _batch_size(4_096, TrainConfig()) == 256 and _batch_size(4_095, TrainConfig()) == 255
    with pytest.raises(ValueError, match="min_steps_per_epoch must be >= 0"):
        TrainConfig(min_steps_per_epoch=-1)


def test_training_takes_at_least_min_steps_per_epoch():
    torch.manual_seed(0)
    vae = VAE(X.shape[1], VAEConfig(**TINY_VAE))
    steps = []
    loss = vae.loss

    def counting(*args, **kwargs):
        if vae.training:
            steps.append(len(args[0]))
        return loss(*args, **kwargs)

    vae.loss = counting
    config = TrainConfig(epochs=2, kl_warmup_epochs=3, min_steps_per_epoch=16)
    train_vae(vae, X, config, seed=4, device=torch.device("cpu"), progress=False)
    # 510 training events: batches of 31, 17 steps per epoch
    assert len(steps) == 2 * 17 and max(steps) == 31 and sum(steps) == 2 * 510
