"""The moving average of the weights (TrainConfig.ema_epochs): scored, kept, optimisation untouched."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tiny_settings import TINY_VAE

from vaeaug import TrainConfig, VAEConfig
from vaeaug.model.vae import VAE
from vaeaug.training import _moving_average, train_vae


def _train(ema_epochs: float, x: np.ndarray) -> tuple[VAE, dict]:
    torch.manual_seed(0)
    vae = VAE(x.shape[1], VAEConfig(**TINY_VAE))
    # one score, at the last epoch: both runs keep the weights of the same epoch
    config = TrainConfig(epochs=4, kl_warmup_epochs=3, eval_every=1, patience=5,
                         ema_epochs=ema_epochs)  # fmt: skip
    history = train_vae(vae, x, config, seed=3, device=torch.device("cpu"), progress=False)
    return vae, history


def test_moving_average_keeps_the_average_and_leaves_the_optimisation_alone():
    x = np.random.default_rng(1).normal(size=(600, 5)).astype(np.float32)
    raw, h_raw = _train(0.0, x)
    avg, h_avg = _train(2.0, x)
    assert h_raw["score_epoch"] == h_avg["score_epoch"] == [3]
    assert h_raw["best_epoch"] == h_avg["best_epoch"] == 3
    # the average only reads the trajectory: the losses are the same, step for step
    assert h_raw["train"] == h_avg["train"] and h_raw["val"] == h_avg["val"]
    # what is scored and kept is the average, not the last step's weights
    assert h_raw["score"] != h_avg["score"]
    differ = [
        not torch.equal(a, b)
        for a, b in zip(raw.state_dict().values(), avg.state_dict().values(), strict=True)
    ]
    assert sum(differ) > len(differ) // 2
    # the constant buffers (masks, orders) are kept exactly
    for (name, a), (_, b) in zip(raw.named_buffers(), avg.named_buffers(), strict=True):
        assert torch.equal(a, b), name


def test_moving_average_horizon_is_counted_in_epochs():
    layer = torch.nn.Linear(1, 1, bias=False)
    ema = _moving_average(layer, 2.0, 10)  # decay 1 - 1 / 20 per step
    values = []
    for value in (1.0, 3.0, 7.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        ema.update_parameters(layer)
        values.append(float(ema.module.weight.detach()))
    # the first update copies; then 0.95 of the average and 0.05 of the new weights
    np.testing.assert_allclose(values, [1.0, 1.1, 1.1 * 0.95 + 7.0 * 0.05], rtol=1e-6)
    assert _moving_average(layer, 0.0, 10) is None


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_moving_average_horizon_is_validated(bad):
    with pytest.raises(ValueError, match="ema_epochs must be >= 0"):
        TrainConfig(ema_epochs=bad)
    assert dataclasses.asdict(TrainConfig())["ema_epochs"] == 10.0  # round 9's choice
