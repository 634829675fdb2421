"""The coupling flows: vaeaug's spline and inverse are zuko's, computed faster."""

from __future__ import annotations

import pytest
import torch
from zuko.transforms import MonotonicRQSTransform

from vaeaug.model.flows import (
    RationalQuadraticSpline,
    build_flow,
    flow_inverse,
    spline_classes,
    use_zuko_spline,
)


@pytest.fixture(autouse=True)
def _seeded():
    with torch.random.fork_rng():
        torch.manual_seed(7)
        yield


# In float64: the two splines differ only by rounding, and where a spline is steep (slopes up
# to 1e3 between knots that differ by an ulp) float32 rounding shows at 1e-4, as it would
# between zuko on two machines. In float64 any difference beyond 1e-9 is a bug.
TOL = {"rtol": 1e-9, "atol": 1e-9}


def _spline_params(*batch: int, bins: int = 8) -> tuple[torch.Tensor, ...]:
    # logits wide enough that the soft clamp matters and bins differ by orders of magnitude
    return tuple(scale * torch.randn(*batch, n, dtype=torch.float64)
                 for scale, n in ((4, bins), (4, bins), (3, bins - 1)))  # fmt: skip


@pytest.mark.parametrize("param_batch", [(500, 3), (3,)], ids=["per-event", "broadcast"])
def test_spline_is_zuko_spline(param_batch):
    params = _spline_params(*param_batch)
    ours, zukos = RationalQuadraticSpline(*params), MonotonicRQSTransform(*params)
    # inside the bound [-5, 5], and outside it (the identity there)
    x = torch.cat([10 * torch.rand(400, 3, dtype=torch.float64) - 5,
                   torch.tensor([[-7.0, 5.5, 12.0]] * 100, dtype=torch.float64)])  # fmt: skip
    y_ours, ladj_ours = ours.call_and_ladj(x)
    y_zuko, ladj_zuko = zukos.call_and_ladj(x)
    torch.testing.assert_close(y_ours, y_zuko, **TOL)
    torch.testing.assert_close(ladj_ours, ladj_zuko, **TOL)
    torch.testing.assert_close(ours(x), y_zuko, **TOL)
    torch.testing.assert_close(ours.inv(y_zuko), zukos.inv(y_zuko), **TOL)
    torch.testing.assert_close(ours.inv(y_ours), x, rtol=1e-7, atol=1e-7)
    assert torch.equal(y_ours[-100:], x[-100:])  # the identity outside the bound


def test_spline_flow_trains_and_samples_as_zuko_flow():
    flow = build_flow(5, context=3, transforms=3, hidden=(32, 32), kind="spline").double()
    reference = use_zuko_spline(build_flow(5, context=3, transforms=3, hidden=(32, 32),
                                              kind="spline")).double()  # fmt: skip
    reference.load_state_dict(flow.state_dict())  # the parameters are zuko's: files load either way
    for p in flow.parameters():  # a trained flow, not the identity an initialised one is near
        p.data += 0.3 * torch.randn_like(p)
    reference.load_state_dict(flow.state_dict())
    c, eps = torch.randn(300, 3, dtype=torch.float64), torch.randn(300, 5, dtype=torch.float64)
    x = flow(c).transform.inv(eps)
    torch.testing.assert_close(x, reference(c).transform.inv(eps), **TOL)
    log_p = flow(c).log_prob(x)
    torch.testing.assert_close(log_p, reference(c).log_prob(x), **TOL)
    log_p.mean().backward()  # every parameter gets a gradient through the new spline
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())


def test_build_flow_uses_the_faster_spline_in_every_layer():
    flow = build_flow(4, context=2, transforms=3, hidden=(16,), kind="spline")
    assert spline_classes(flow) == [RationalQuadraticSpline] * 3
    assert spline_classes(use_zuko_spline(flow)) == [MonotonicRQSTransform] * 3
    affine = build_flow(4, context=0, transforms=2, hidden=(16,), kind="affine")
    assert spline_classes(affine) == []
    assert affine().sample((10,)).shape == (10, 4)


@pytest.mark.parametrize(("passes", "expected"), [(2, 2), (None, 5)])
def test_decoder_passes_choose_coupling_or_autoregressive_layers(passes, expected):
    from vaeaug.model.vae import VAE, VAEConfig

    vae = VAE(5, VAEConfig(latent_dim=2, hidden=(16,), prior_hidden=(8,), decoder_passes=passes))
    layers = [m for m in vae.decoder.modules() if hasattr(m, "passes")]
    assert layers and all(m.passes == expected for m in layers)
    # sampling inverts every layer exactly, whatever the number of passes
    eps = torch.randn(50, vae.noise_width)
    x = vae.generate(eps)
    z = vae.prior.from_noise(eps[:, :2])
    torch.testing.assert_close(vae.decoder(z).transform(x), eps[:, 2:], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="decoder_passes"):
        VAEConfig(decoder_passes=0)


@pytest.mark.parametrize(
    ("features", "context", "passes", "kind"),
    [
        (9, 8, 2, "spline"),
        (8, 0, 2, "spline"),
        (9, 4, None, "spline"),
        (4, 3, 3, "spline"),
        (7, 2, 2, "affine"),
    ],
    ids=["coupling", "coupling-no-context", "autoregressive", "pass-without-features", "affine"],
)
def test_flow_inverse_is_zukos_inverse_bit_for_bit(features, context, passes, kind):
    flow = build_flow(features, context, transforms=3, hidden=(32, 32), kind=kind, passes=passes)
    for p in flow.parameters():  # a trained flow, not the near-identity of an initialised one
        p.data += 0.3 * torch.randn_like(p)
    y = 1.5 * torch.randn(400, features)  # float32, as sampled; some beyond the spline's bound
    c = torch.randn(400, context) if context else None
    with torch.no_grad():
        assert torch.equal(flow_inverse(flow, y, c), flow(c).transform.inv(y))


def test_flow_inverse_passes_gradients_as_zukos():
    flow = build_flow(5, 2, transforms=2, hidden=(16,), kind="spline")
    y, c = torch.randn(20, 5, requires_grad=True), torch.randn(20, 2)
    flow_inverse(flow, y, c).square().sum().backward()
    ours, y.grad = y.grad, None
    flow(c).transform.inv(y).square().sum().backward()
    torch.testing.assert_close(ours, y.grad)


def test_sampling_inverts_both_flows_pass_by_pass(monkeypatch):
    from vaeaug.model import vae as vae_module

    calls = []
    monkeypatch.setattr(vae_module, "flow_inverse",
                        lambda flow, *a: calls.append(flow) or flow_inverse(flow, *a))  # fmt: skip
    vae = vae_module.VAE(5, vae_module.VAEConfig(latent_dim=2, hidden=(16,), prior_hidden=(8,)))
    with torch.no_grad():
        vae.generate(torch.randn(10, vae.noise_width))
    assert calls == [vae.prior.flow, vae.decoder]


@pytest.mark.parametrize("kind", ["spline", "affine"])
def test_sampling_leaves_no_reference_cycles(kind):
    """torch's ``Transform.inv`` keeps the inverse it builds, which keeps the transform: a
    cycle holding the spline's (N, F, K + 1) knots until Python's cyclic collector runs.
    Sampling must build none (they held ~1 GB of a 1e6-event run; #30)."""
    import gc

    from vaeaug.model.vae import VAE, VAEConfig

    config = VAEConfig(latent_dim=2, hidden=(16,), prior_hidden=(8,), prior_flow=kind,
                       decoder_flow=kind)  # fmt: skip
    vae = VAE(5, config).eval()
    eps = torch.randn(50, vae.noise_width)
    gc.collect()
    gc.disable()  # no collection during the call: it would hide the cycles
    try:
        with torch.inference_mode():
            vae.generate(eps)
        # what the collector finds, kept: only the transforms count (other threads of a
        # test session may leave unrelated garbage meanwhile)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        cycles = [o for o in gc.garbage if isinstance(o, torch.distributions.Transform)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not cycles
