"""The variational autoencoder: Gaussian encoder, flow decoder, learned latent prior.

Written in the torch.distributions style: ``encode``, ``decode`` and ``prior``
return distributions and the loss is a sum of ``log_prob`` terms. All tensors
live on the device of the module's parameters; nothing here chooses a device.

- The prior p(z) is a normalizing flow over the latent space (zuko, spline
  coupling layers), trained jointly with the encoder and decoder in the ELBO. A
  fixed N(0, 1) prior leaves "holes" wherever the aggregate posterior
  q(z) = E_x q(z|x) differs from it, and decoding such z gives the blurred events
  a plain VAE is known for; a learned prior follows q(z) instead.
- The decoder p(x|z) is a neural spline flow over the features conditioned on z
  (zuko's NSF, coupling layers): a diagonal Gaussian cannot follow the sharp
  edges an acceptance cut leaves, nor a narrow peak on a continuum. A Gaussian
  decoder (``decoder="gaussian"``) is kept as the cheap option.

Coupling layers keep sampling at two network passes per layer (``flows.py``). The choices and
their measurements are in docs/benchmarks.md ("Choosing the defaults").
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..errors import InputError
from .flows import build_flow, flow_inverse

__all__ = ["DECODERS", "FLOWS", "PRIORS", "VAE", "VAEConfig", "network_bytes"]

_ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU, "tanh": nn.Tanh}
#: Valid values of ``VAEConfig.prior``.
PRIORS = ("flow", "standard")
#: Valid values of ``VAEConfig.decoder``.
DECODERS = ("gaussian", "flow")
#: Valid values of ``VAEConfig.prior_flow`` and ``decoder_flow``: the coupling transforms.
FLOWS = ("affine", "spline")


@dataclasses.dataclass
class VAEConfig:
    """Architecture of the VAE (saved in the model file, rebuilt with ``VAEConfig(**saved)``).

    The defaults were chosen on validation splits of the training files only
    (``bench/model_selection.py``; see docs/benchmarks.md for the table).
    """

    latent_dim: int = 8  # size of z
    hidden: Sequence[int] = (128, 128, 128)  # widths of the encoder and decoder MLPs
    activation: str = "silu"  # one of relu, silu, gelu, elu, tanh
    # weight of the KL term (1 = the true ELBO). Below 1 the latent code keeps more detail,
    # but the aggregate posterior grows structure the prior cannot follow (docs/benchmarks.md:
    # validation C2ST on a dimuon spectrum 0.703 at 0.1, 0.650 at 1)
    beta: float = 1.0
    prior: str = "flow"  # "flow" (learned, trained in the ELBO) or "standard" N(0, 1)
    prior_transforms: int = 4  # coupling layers of the flow prior
    prior_hidden: Sequence[int] = (64, 64)  # widths of each coupling layer's network
    min_log_scale: float = -7.0  # floor of the decoder's log standard deviation (standardized)
    # p(x|z): "gaussian" (diagonal, heteroscedastic: one network pass to sample) or "flow" (a
    # neural spline flow over x conditioned on z, coupling layers of width ``hidden``)
    decoder: str = "flow"
    decoder_transforms: int = 4  # coupling layers of the flow decoder
    # network passes of each decoder layer to sample: 2 = coupling layers; None = fully
    # autoregressive (one pass per feature, as zuko's NSF by default; slower to sample)
    decoder_passes: int | None = 2
    # coupling transforms: "spline" (rational-quadratic splines, zuko's NSF) or "affine"
    # (zuko's MAF with coupling masks, ~20x cheaper to sample on a CPU). An affine prior
    # gave C2ST 0.66 on the dimuon continuum against 0.585 with splines (multimodal q(z)).
    prior_flow: str = "spline"
    decoder_flow: str = "spline"

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        self.prior_hidden = tuple(int(h) for h in self.prior_hidden)
        if self.latent_dim < 2 or any(h < 1 for h in (*self.hidden, *self.prior_hidden)):
            raise ValueError(
                f"latent_dim must be >= 2 and every hidden width >= 1, got latent_dim "
                f"{self.latent_dim}, hidden {self.hidden}, prior_hidden {self.prior_hidden}"
            )
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation '{self.activation}' unknown; valid: {', '.join(_ACTIVATIONS)}"
            )
        if self.prior not in PRIORS:
            raise ValueError(f"prior '{self.prior}' unknown; valid: {', '.join(PRIORS)}")
        if not 0 < self.beta < math.inf:
            raise InputError(
                f"beta must be a finite number > 0 (1 is the true ELBO), got {self.beta}"
            )
        for name in ("prior_flow", "decoder_flow"):
            if getattr(self, name) not in FLOWS:
                raise ValueError(
                    f"{name} '{getattr(self, name)}' unknown; valid: {', '.join(FLOWS)}"
                )
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder '{self.decoder}' unknown; valid: {', '.join(DECODERS)}")
        if self.decoder_passes is not None and int(self.decoder_passes) < 1:
            raise ValueError(
                f"decoder_passes must be None (autoregressive) or >= 1, got {self.decoder_passes}"
            )
        if self.prior_transforms < 1 or self.decoder_transforms < 1:
            raise ValueError(
                f"prior_transforms and decoder_transforms must be >= 1, got "
                f"{self.prior_transforms}, {self.decoder_transforms}"
            )

    def min_parameters(self, n_features: int) -> int:
        """A lower bound of the parameter count of ``VAE(n_features, self)``, computed without
        building it: every layer's weights and biases, but only two outputs per feature of
        each flow layer's last layer (a spline has more). A model file is checked against it
        before the network is allocated (:func:`vaeaug.io.modelfile.check_network_size`)."""
        d, latent = int(n_features), int(self.latent_dim)

        def mlp(n_in: int, hidden: Sequence[int], n_out: int) -> int:
            widths = [n_in, *hidden, n_out]
            return sum((a + 1) * b for a, b in itertools.pairwise(widths))

        count = mlp(d, self.hidden, 2 * latent)  # the encoder
        if self.decoder == "flow":
            count += int(self.decoder_transforms) * mlp(d + latent, self.hidden, 2 * d)
        else:
            count += mlp(latent, tuple(reversed(self.hidden)), 2 * d)
        if self.prior == "flow":
            count += int(self.prior_transforms) * mlp(latent, self.prior_hidden, 2 * latent)
        return count

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["prior_hidden"] = list(self.prior_hidden)
        return d


def _mlp(n_in: int, hidden: Sequence[int], n_out: int, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), _ACTIVATIONS[activation]()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class _StandardPrior(nn.Module):
    """N(0, 1) over z, with the interface of a zuko flow: ``prior()`` gives the distribution."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.register_buffer("loc", torch.zeros(latent_dim))

    def forward(self) -> Distribution:
        return Independent(Normal(self.loc, torch.ones_like(self.loc)), 1)

    def from_noise(self, eps: torch.Tensor) -> torch.Tensor:
        return eps

    def to_noise(self, z: torch.Tensor) -> torch.Tensor:
        return z


class _FlowPrior(nn.Module):
    """A normalizing flow over z (coupling layers: two network passes to sample)."""

    def __init__(self, latent_dim: int, transforms: int, hidden: Sequence[int], kind: str) -> None:
        super().__init__()
        self.flow = build_flow(latent_dim, 0, transforms, hidden, kind)

    def forward(self) -> Distribution:
        return self.flow()

    def from_noise(self, eps: torch.Tensor) -> torch.Tensor:
        """z (N, L) from standard normals (N, L): the flow's inverse transform."""
        return flow_inverse(self.flow, eps)

    def to_noise(self, z: torch.Tensor) -> torch.Tensor:
        """Standard normals (N, L) whose :meth:`from_noise` is z (N, L): the flow's forward
        transform (one network pass per layer)."""
        return self.flow().transform(z)


class VAE(nn.Module):
    """Encoder q(z|x), decoder p(x|z) (diagonal Gaussians) and a learned prior p(z).

    The decoder's scale depends on z (heteroscedastic): the momentum
    resolution, and with it the mass-peak width, varies across phase space.

    Args:
        n_features: D, the number of (standardized) features the model learns.
        config: the architecture.
    """

    def __init__(self, n_features: int, config: VAEConfig) -> None:
        super().__init__()
        self.n_features = n_features
        self.config = config
        L = config.latent_dim
        self.encoder = _mlp(n_features, config.hidden, 2 * L, config.activation)
        if config.decoder == "flow":
            self.decoder = build_flow(
                n_features,
                L,
                config.decoder_transforms,
                config.hidden,
                config.decoder_flow,
                passes=config.decoder_passes,
            )
        else:
            self.decoder = _mlp(
                L, tuple(reversed(config.hidden)), 2 * n_features, config.activation
            )
        if config.prior == "flow":
            self.prior = _FlowPrior(
                L, config.prior_transforms, config.prior_hidden, config.prior_flow
            )
        else:
            self.prior = _StandardPrior(L)

    @property
    def noise_width(self) -> int:
        """Standard normals per generated event: L for the prior, D for the decoder."""
        return self.config.latent_dim + self.n_features

    def encode(self, x: torch.Tensor) -> Independent:
        """q(z|x): x of shape (N, D) -> distribution with batch shape (N,), event shape (L,)."""
        mu, sigma = self.encoder_params(x)
        return Independent(Normal(mu, sigma), 1)

    def encoder_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and widths of q(z|x), each (N, L), for x of shape (N, D)."""
        mu, log_sigma = self.encoder(x).chunk(2, dim=-1)
        return mu, log_sigma.clamp(-10.0, 5.0).exp()

    def decoder_params(
        self, z: torch.Tensor, hidden_dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and scales of p(x|z), each (N, D), for z of shape (N, L).

        ``hidden_dtype`` (e.g. ``torch.bfloat16``) runs the hidden layers under
        autocast (Gaussian decoder); the output layer stays float32, because it gives the features'
        means and scales, where 8 mantissa bits would blur a narrow mass peak.
        """
        if hidden_dtype is None:
            out = self.decoder(z)
        else:
            with torch.autocast(z.device.type, dtype=hidden_dtype):
                h = self.decoder[:-1](z)
            out = self.decoder[-1](h.float())
        mu, log_sigma = out.chunk(2, dim=-1)
        return mu, log_sigma.clamp(self.config.min_log_scale, 3.0).exp()

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z): z of shape (N, L) -> distribution with batch shape (N,), event shape (D,)."""
        if self.config.decoder == "flow":
            return self.decoder(z)
        return Independent(Normal(*self.decoder_params(z)), 1)

    def loss(self, x: torch.Tensor, weights: torch.Tensor | None = None, kl_weight: float = 1.0):
        """Negative ELBO per event, averaged (weighted) over the batch.

        The KL term ``E_q[log q(z|x) - log p(z)]`` is estimated with the one
        reparameterised draw of z (the prior is a flow: no closed form).

        Args:
            x: standardized features, shape (N, D).
            weights: per-event weights, shape (N,), or None.
            kl_weight: multiplies ``config.beta`` (used for KL warm-up).

        Returns:
            (loss, reconstruction NLL, KL), each a scalar tensor.
        """
        q = self.encode(x)
        z = q.rsample()
        nll = -self.decode(z).log_prob(x)
        kl = q.log_prob(z) - self.prior().log_prob(z)
        if weights is None:
            nll, kl = nll.mean(), kl.mean()
        else:
            nll, kl = (nll * weights).sum() / weights.sum(), (kl * weights).sum() / weights.sum()
        return nll + kl_weight * self.config.beta * kl, nll, kl

    def generate(self, eps: torch.Tensor, hidden_dtype: torch.dtype | None = None) -> torch.Tensor:
        """Standardized features (N, D) from standard normals ``eps`` of shape (N, L + D).

        The first L columns give the latent point through the prior's transform,
        the last D the decoder's noise. This is the one map from noise to features:
        every sampler of vaeaug and the training's sample score go through here, so the
        random numbers may come from any stream the caller chooses.
        ``hidden_dtype``: see :meth:`decoder_params`.
        """
        L = self.config.latent_dim
        z = self.prior.from_noise(eps[:, :L])
        if self.config.decoder == "flow":
            if hidden_dtype is None:
                return flow_inverse(self.decoder, eps[:, L:], z)
            # standardized features are O(1): bf16's 2^-8 relative error is far below
            # every feature's resolution, the narrow mass peak's included
            with torch.autocast(z.device.type, dtype=hidden_dtype):
                return flow_inverse(self.decoder, eps[:, L:], z).float()
        mu, scale = self.decoder_params(z, hidden_dtype)
        return mu + scale * eps[:, L:]

    def noise_of(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The standard normals (N, L + D) that :meth:`generate` maps to ``x`` (N, D) through
        the latent point ``z`` (N, L): the inverse of :meth:`generate` (the prior's and the
        decoder's forward transforms, one network pass per flow layer)."""
        if self.config.decoder == "flow":
            u_x = self.decoder(z).transform(x)
        else:
            mu, scale = self.decoder_params(z)
            u_x = (x - mu) / scale
        return torch.cat([self.prior.to_noise(z), u_x], dim=1)


def network_bytes(n_features: int, config: VAEConfig) -> int:
    """Bytes of the network's tensors (parameters and buffers, as a model file stores them)
    for ``n_features`` learned features: built once on the CPU and counted, which costs
    milliseconds at the default sizes."""
    return sum(t.numel() * t.element_size() for t in VAE(n_features, config).state_dict().values())
