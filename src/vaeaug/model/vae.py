"""The variational autoencoder: Gaussian encoder, Gaussian decoder, latent prior.

Written in the torch.distributions style: ``encode`` and ``decode`` return
distributions and the loss is a sum of ``log_prob`` and ``kl_divergence``.
All tensors live on the device of the module's parameters; nothing here
chooses a device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Independent, Normal, kl_divergence

__all__ = ["VAE", "VAEConfig"]

_ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU, "tanh": nn.Tanh}


@dataclasses.dataclass
class VAEConfig:
    """Architecture of the VAE (saved in the model file, rebuilt with ``VAEConfig(**saved)``)."""

    # size of z: above the 9 degrees of freedom of a three-body decay, so that no direction of
    # the data has to be modelled as decoder noise (8 gave C2ST AUC 0.74 on 10k D+, 16: 0.67)
    latent_dim: int = 16
    hidden: Sequence[int] = (256, 256, 256)  # widths of the encoder and decoder MLPs
    activation: str = "silu"  # one of relu, silu, gelu, elu, tanh
    # weight of the KL term (1 = the true ELBO). Below 1 the latent code keeps more detail and
    # the decoder's noise shrinks; the GMM prior then samples the less regular aggregate
    # posterior. 1 -> 0.2 -> 0.05 halved the mean W1 on 10k D+ (bench/fidelity.py).
    beta: float = 0.05
    prior: str = (
        "gmm"  # sampling prior: "standard" N(0, 1), or "gmm" fitted to the aggregate posterior
    )
    prior_components: int = 100  # mixture components of the "gmm" prior (at most N/50)
    min_log_scale: float = (
        -6.0
    )  # floor of the decoder's log standard deviation (standardized units)

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.latent_dim < 1 or any(h < 1 for h in self.hidden):
            raise ValueError(
                f"latent_dim and hidden widths must be positive, got {self.latent_dim}, {self.hidden}"
            )
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation '{self.activation}' unknown; valid: {', '.join(_ACTIVATIONS)}"
            )
        if self.prior not in ("standard", "gmm"):
            raise ValueError(f"prior '{self.prior}' unknown; valid: standard, gmm")
        if self.beta <= 0:
            raise ValueError(f"beta must be positive, got {self.beta}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def _mlp(n_in: int, hidden: Sequence[int], n_out: int, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), _ACTIVATIONS[activation]()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Encoder q(z|x) and decoder p(x|z), both diagonal Gaussians.

    The decoder's scale depends on z (heteroscedastic): the momentum
    resolution, and with it the mass-peak width, varies across phase space.

    Args:
        n_features: D, the number of (standardized) features.
        config: the architecture.

    The sampling prior is a Gaussian mixture over z (``prior.*`` buffers),
    fitted after training to the aggregate posterior when ``config.prior ==
    "gmm"``; until then it is the standard normal.
    """

    def __init__(self, n_features: int, config: VAEConfig) -> None:
        super().__init__()
        self.n_features = n_features
        self.config = config
        L = config.latent_dim
        self.encoder = _mlp(n_features, config.hidden, 2 * L, config.activation)
        self.decoder = _mlp(L, tuple(reversed(config.hidden)), 2 * n_features, config.activation)
        # one standard-normal component until the aggregate posterior is fitted
        self.register_buffer("prior_weights", torch.ones(1))
        self.register_buffer("prior_means", torch.zeros(1, L))
        self.register_buffer("prior_scale_tril", torch.eye(L).unsqueeze(0))

    def encode(self, x: torch.Tensor) -> Independent:
        """q(z|x): x of shape (N, D) -> distribution with batch shape (N,), event shape (L,)."""
        mu, log_sigma = self.encoder(x).chunk(2, dim=-1)
        return Independent(Normal(mu, log_sigma.clamp(-10.0, 5.0).exp()), 1)

    def decode(self, z: torch.Tensor) -> Independent:
        """p(x|z): z of shape (N, L) -> distribution with batch shape (N,), event shape (D,)."""
        mu, log_sigma = self.decoder(z).chunk(2, dim=-1)
        return Independent(Normal(mu, log_sigma.clamp(self.config.min_log_scale, 3.0).exp()), 1)

    def loss(self, x: torch.Tensor, weights: torch.Tensor | None = None, kl_weight: float = 1.0):
        """Negative ELBO per event, averaged (weighted) over the batch.

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
        prior = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1)
        kl = kl_divergence(q, prior)
        if weights is None:
            nll, kl = nll.mean(), kl.mean()
        else:
            nll, kl = (nll * weights).sum() / weights.sum(), (kl * weights).sum() / weights.sum()
        return nll + kl_weight * self.config.beta * kl, nll, kl

    def set_prior(
        self, weights: torch.Tensor, means: torch.Tensor, scale_tril: torch.Tensor
    ) -> None:
        """Install a Gaussian-mixture sampling prior: (C,), (C, L), (C, L, L)."""
        self.prior_weights = weights.to(self.prior_weights)
        self.prior_means = means.to(self.prior_means)
        self.prior_scale_tril = scale_tril.to(self.prior_scale_tril)

    def sample_latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draw z of shape (n, L) from the sampling prior with ``generator``.

        Written with explicit draws rather than ``MixtureSameFamily.sample``
        because torch.distributions samplers take no generator, and every draw
        here must come from the caller's seeded stream.
        """
        device = self.prior_means.device
        if len(self.prior_weights) == 1:
            eps = torch.randn(n, self.config.latent_dim, generator=generator, device=device)
            return self.prior_means[0] + eps @ self.prior_scale_tril[0].T
        idx = torch.multinomial(self.prior_weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.config.latent_dim, 1, generator=generator, device=device)
        return self.prior_means[idx] + (self.prior_scale_tril[idx] @ eps).squeeze(-1)

    def sample(self, n: int, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
        """Generate standardized features of shape (n, D) from the model."""
        z = self.sample_latent(n, generator)
        px = self.decode(z).base_dist
        eps = torch.randn(px.loc.shape, generator=generator, device=px.loc.device)
        return px.loc + temperature * px.scale * eps
