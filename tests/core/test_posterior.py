"""Posterior (local) sampling (issue #32, item 1): partners that follow their source.

The properties that make it usable: the encoding inverts the generator, a partner's
distance to its source follows ``width``, the partners of sources drawn from the model
follow the model (the step leaves N(0, 1) unchanged), what a selection kept stays
kept, and nothing depends on how the sources are cut into blocks or chunks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import uproot
from tiny_settings import TINY_CLI, TINY_TRAIN, TINY_VAE

import vaeaug
from vaeaug.cli import main
from vaeaug.datasets import OBJECTS
from vaeaug.errors import InputError
from vaeaug.integrations.coffea import iter_partners
from vaeaug.kinematics import invariant_mass
from vaeaug.validation.c2st import c2st

pytestmark = pytest.mark.outside_support


def _partners(model, sources, **kwargs):
    kwargs = {"factor": 1, "seed": 5, "sampling": "posterior", **kwargs}
    return np.concatenate([p4 for _, p4, _ in iter_partners(model, sources, **kwargs)])


def _parent_pt(p4):
    total = p4.sum(axis=1)
    return np.hypot(total[:, 0], total[:, 1])


@pytest.mark.parametrize("decoder", ["flow", "gaussian"])
def test_the_encoding_inverts_the_generator(toy_p4, decoder):
    """VAE.noise_of: generate(noise_of(x, z)) gives x back, for either decoder."""
    config = vaeaug.VAEConfig(**{**TINY_VAE, "decoder": decoder})
    model = vaeaug.fit(toy_p4[:600], objects=OBJECTS, config=config,
                       train=vaeaug.TrainConfig(**{**TINY_TRAIN, "epochs": 2}), seed=1,
                       device="cpu", progress=False)  # fmt: skip
    x = torch.randn(300, model.vae.n_features)
    z = torch.randn(300, model.vae.config.latent_dim)
    with torch.inference_mode():
        back = model.vae.generate(model.vae.noise_of(x, z))
    torch.testing.assert_close(back, x, atol=2e-4, rtol=1e-4)


def test_partners_stay_near_their_source_as_width_says(tiny_model, toy_p4):
    """Small widths give neighbours (width -> 0: the source itself), width 1 prior draws."""
    sources = toy_p4[:600]
    copies = _partners(tiny_model, sources, width=1e-6, support="off")
    np.testing.assert_allclose(copies, sources, rtol=2e-3, atol=2e-3)
    correlation = {}
    for width in (0.3, 1.0):
        partners = _partners(tiny_model, sources, width=width, support="off")
        correlation[width] = np.corrcoef(_parent_pt(sources), _parent_pt(partners))[0, 1]
    assert correlation[0.3] > 0.8 and abs(correlation[1.0]) < 0.15


def test_partners_of_model_draws_follow_the_model(tiny_model):
    """Sources drawn from the model give partners drawn from the model (the step keeps the
    standard normal): a C2ST cannot tell them from fresh draws."""
    sources = tiny_model.sample(6000, seed=11, support="off").p4
    fresh = tiny_model.sample(6000, seed=12, support="off").p4
    partners = _partners(tiny_model, sources, width=0.5, support="off")
    features = tiny_model.representation.to_features
    result = c2st(features(fresh), features(partners), seed=1, n_bootstrap=50)
    assert result["auc"] < 0.55


def test_what_a_selection_kept_stays_kept(tiny_model, toy_p4):
    """Partners of the candidates with the top 20% parent pT mostly pass the same cut; prior
    draws pass it at the sample's 20% rate."""
    pt = _parent_pt(toy_p4)
    cut = np.quantile(pt, 0.8)
    selected = toy_p4[pt > cut]
    posterior = _partners(tiny_model, selected, factor=5, width=0.3)
    prior = _partners(tiny_model, selected, factor=5, sampling="prior")
    passing = {name: np.mean(_parent_pt(p) > cut) for name, p in
               (("posterior", posterior), ("prior", prior))}  # fmt: skip
    assert passing["posterior"] > 0.7 and passing["prior"] < 0.35


def test_blocks_and_chunks_do_not_change_the_partners(tiny_model, toy_p4, monkeypatch):
    whole = _partners(tiny_model, toy_p4[:500], factor=3, width=0.5)
    monkeypatch.setattr(vaeaug.integrations.coffea, "BLOCK_ROWS", 3 * 37)  # 37 sources a block
    blocked = _partners(tiny_model, toy_p4[:500], factor=3, width=0.5)
    split = np.concatenate([_partners(tiny_model, toy_p4[:123], factor=3, width=0.5),
                            _partners(tiny_model, toy_p4[123:500], factor=3, width=0.5)])  # fmt: skip
    np.testing.assert_array_equal(blocked, whole)
    np.testing.assert_array_equal(split, whole)


def test_augment_posterior_follows_the_input_candidates(tiny_model, toy_p4):
    """Augment(sampling="posterior") on awkward candidates: partners near their source."""
    import awkward as ak

    cands = vaeaug.Candidates(toy_p4[:300], tiny_model.layout).to_awkward()
    near = vaeaug.Augment(tiny_model, factor=2, seed=3, sampling="posterior", width=0.2,
                          device="cpu")(cands)  # fmt: skip
    far = vaeaug.Augment(tiny_model, factor=2, seed=3, device="cpu")(cands)
    source_mass = np.repeat(invariant_mass(toy_p4[:300]), 2)

    def shift(records):
        mass = ak.to_numpy((records.K1 + records.pi1 + records.pi2).mass)
        return np.median(np.abs(mass - source_mass))

    assert shift(near) < 0.5 * shift(far)
    with pytest.raises(InputError, match="sampling 'local' unknown"):
        vaeaug.Augment(tiny_model, sampling="local")
    with pytest.raises(InputError, match=r"width must be a number in \(0, 1\]"):
        vaeaug.Augment(tiny_model, sampling="posterior", width=0)


def test_cli_augment_posterior_writes_partners_weighted_like_their_source(toy_root, tmp_path,
                                                                           capsys):  # fmt: skip
    out = tmp_path / "partners.root"
    argv = ["augment", str(toy_root), "-o", str(out), "--sampling", "posterior", "--width",
            "0.4", "--factor", "3", "--combined", *TINY_CLI]  # fmt: skip
    assert main(argv) == 0
    arrays = uproot.open(out)["candidates"].arrays(library="np")
    real = arrays["is_generated"] == 0
    n = real.sum()
    assert len(real) == 4 * n
    # each candidate and its three partners share its weight: the whole sums to the input's
    np.testing.assert_allclose(arrays["weight"], 0.25)
    assert arrays["weight"].sum() == pytest.approx(n)
    for argv_extra, message in (
        (["-n", "10"], "use --factor, not -n"),
        (["--refine", "weight"], "do not combine"),
    ):
        bad = ["augment", str(toy_root), "-o", str(tmp_path / "x.root"), "--sampling",
               "posterior", *argv_extra, *TINY_CLI]  # fmt: skip
        assert main(bad) == 2
        assert message in capsys.readouterr().err


def test_redrawn_partners_stay_near_their_source(tiny_model, toy_p4):
    """A partner outside the training support is redrawn with the same step from its source,
    not from the prior."""
    sources = toy_p4[:1500]
    kept = _partners(tiny_model, sources, width=0.3, support="off")
    redrawn_all = _partners(tiny_model, sources, width=0.3, support="reject")
    redrawn = (kept != redrawn_all).any(axis=(1, 2))
    assert redrawn.sum() > 30
    r = np.corrcoef(_parent_pt(sources[redrawn]), _parent_pt(redrawn_all[redrawn]))[0, 1]
    assert r > 0.6
