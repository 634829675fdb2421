"""The early-stopping sample score: how many generated events it compares (TrainConfig.eval_samples)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_settings import TINY_VAE

from vaeaug import TrainConfig, VAEConfig
from vaeaug import training as training_module
from vaeaug.model.vae import VAE
from vaeaug.training import train_vae

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


def test_score_generates_at_least_eval_samples_events(monkeypatch):
    _, sizes = _train(monkeypatch, eval_samples=500)
    assert sizes == [(500, 90)] * 2  # 500 generated against the 90 validation events


def test_score_generates_as_many_events_as_it_scores_without_a_floor(monkeypatch):
    plain, sizes = _train(monkeypatch)
    assert sizes == [(90, 90)] * 2
    # a floor below the validation events scored changes nothing, draw for draw
    floored, sizes = _train(monkeypatch, eval_samples=50)
    assert sizes == [(90, 90)] * 2
    assert floored == plain


def test_eval_samples_is_validated_and_old_files_read_without_a_floor():
    with pytest.raises(ValueError, match="eval_samples must be >= 0"):
        TrainConfig(eval_samples=-1)
    saved = TrainConfig().to_dict()
    del saved["eval_samples"]
    assert TrainConfig.from_dict(saved).eval_samples == 0
