"""The training's acceptance term: the model's probability to generate inside the support."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tiny_settings import TINY_TRAIN, TINY_VAE

import vaeaug
from vaeaug.datasets import OBJECTS, dplus_kpipi
from vaeaug.model.support import AcceptanceTerm, Support, observables, observables_torch


@pytest.fixture(scope="module")
def p4():
    return np.asarray(dplus_kpipi(2000, seed=11))


def test_torch_observables_agree_with_vector(p4):
    names, expected = observables(p4, OBJECTS)
    got = observables_torch(torch.as_tensor(p4)).numpy()
    assert got.shape == expected.shape == (len(p4), len(names))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def _term(p4, decode=None):
    _, obs = observables(p4, OBJECTS)
    support = Support.fit(obs, observables(p4, OBJECTS)[0])
    lo, hi = np.quantile(obs, [0.16, 0.84], axis=0)
    return AcceptanceTerm(decode or (lambda x: x), support, (hi - lo) / 2)


def test_log_inside_counts_the_candidates_inside(p4):
    term = _term(p4)
    inside = torch.as_tensor(p4[:400])
    # every training candidate is inside: Q ~ 1, up to the soft edges of the outermost ones
    assert math.exp(term.log_inside(inside)) == pytest.approx(1.0, abs=0.02)
    # a quarter pushed to |eta| ~ 3.9 (pz scaled up 25x): Q ~ 3/4
    outside = inside.clone()
    outside[:100, 0, 2] *= 25.0
    outside[:100, 0, 3] = outside[:100, 0, :3].norm(dim=-1).hypot(torch.tensor(0.4937))
    assert math.exp(term.log_inside(outside)) == pytest.approx(0.75, abs=0.02)
    # candidates that cannot be decoded (here: the kaon going backwards, pz < 0) count as
    # outside and carry no gradient
    term = _term(p4, decode=lambda x: x / (x[:, :1, 2:3] > 0))
    x = inside.clone().requires_grad_(True)
    log_q = term.log_inside(x)
    forward = (inside[:, 0, 2] > 0).double()
    assert 0.3 < float(forward.mean()) < 0.7
    assert math.exp(log_q.item()) == pytest.approx(float(forward.mean()), abs=0.01)
    log_q.backward()
    assert torch.isfinite(x.grad).all() and (x.grad[forward == 0] == 0).all()
    assert (x.grad[forward == 1] != 0).any()


def test_the_gradient_pulls_a_candidate_back_across_the_edge(p4):
    names, obs = observables(p4, OBJECTS)
    # one edge that matters, the kaon's lowest pT; every other interval far away and soft
    lo, hi = np.full(len(names), -1e6), np.full(len(names), 1e6)
    spread = np.full(len(names), 1e6)
    lo[0], spread[0] = obs[:, 0].min(), 1.0  # edge width EDGE_SOFTNESS x 1 GeV
    support = Support(names, lo, hi)
    kaon = torch.as_tensor(p4[:1, 0])  # (1, 4)
    rest = torch.as_tensor(p4[:1, 1:])

    def decode(s):  # s (B, 1): the kaon's pT in GeV, its direction and mass kept
        unit = kaon[:, :2] / kaon[:, :2].norm(dim=-1, keepdim=True)
        pz, m2 = kaon[:, 2:3], kaon[:, 3:] ** 2 - (kaon[:, :3] ** 2).sum(-1, keepdim=True)
        e = (s**2 + pz**2 + m2).sqrt()
        return torch.cat([torch.cat([s * unit, pz, e], 1)[:, None], rest], 1)

    term = AcceptanceTerm(decode, support, spread)
    for offset in (-2.0, -0.5, 0.5):  # below the edge, in the soft zone, just inside
        s = torch.tensor([[lo[0] + offset * float(term.width[0])]], requires_grad=True)
        term.log_inside(s).backward()
        assert s.grad.item() > 0, offset  # more pT: more likely inside
    below = term.log_inside(torch.tensor([[lo[0] - 3 * float(term.width[0])]]))
    above = term.log_inside(torch.tensor([[lo[0] + 3 * float(term.width[0])]]))
    assert below < math.log(0.1) < math.log(0.9) < above


SHORT = {**TINY_TRAIN, "epochs": 4, "kl_warmup_epochs": 1}


def test_training_with_the_term_records_q_and_is_reproducible(p4):
    train = vaeaug.TrainConfig(**SHORT, acceptance_weight=1.0, acceptance_samples=64)
    fits = [vaeaug.fit(p4[:600], objects=OBJECTS, config=vaeaug.VAEConfig(**TINY_VAE), train=train,
                       seed=3, progress=False, device="cpu") for _ in range(2)]  # fmt: skip
    inside = fits[0].history["inside"]
    assert len(inside) == len(fits[0].history["train"]) and all(0 < q <= 1 for q in inside)
    assert inside == fits[1].history["inside"]
    np.testing.assert_array_equal(fits[0].sample(500, seed=1).p4, fits[1].sample(500, seed=1).p4)
    assert fits[0].train_config.acceptance_weight == 1.0  # saved with the model


def test_training_without_the_term_draws_no_extra_numbers(p4):
    def fit(weight, samples):
        train = vaeaug.TrainConfig(**SHORT, acceptance_weight=weight, acceptance_samples=samples)
        return vaeaug.fit(p4[:600], objects=OBJECTS, config=vaeaug.VAEConfig(**TINY_VAE),
                          train=train, seed=3, progress=False, device="cpu").history  # fmt: skip

    off = [fit(0.0, samples) for samples in (1, 256)]
    # off, the term's sample count cannot matter: no random number is drawn for it
    assert off[0]["train"] == off[1]["train"] and "inside" not in off[0]
    assert fit(1.0, 64)["train"] != off[0]["train"]


def test_the_term_needs_the_decay_representation(p4):
    train = vaeaug.TrainConfig(**SHORT, acceptance_weight=1.0)
    with pytest.raises(vaeaug.InputError, match="needs the decay representation, not 'collider'"):
        vaeaug.fit(p4[:600], objects=OBJECTS, representation="collider", train=train,
                   progress=False, device="cpu")  # fmt: skip


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_bad_acceptance_weight_is_refused(bad):
    with pytest.raises(ValueError, match="acceptance_weight must be >= 0"):
        vaeaug.TrainConfig(acceptance_weight=bad)
