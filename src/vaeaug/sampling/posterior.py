"""Posterior (local) sampling: partners that follow their source candidate.

Prior sampling draws every candidate from the model's distribution, unrelated to
any real one. A VAE also has an encoder, and its generator is invertible: a source
candidate ``x_s`` has an *encoding*, the standard normals ``u_s`` that decode into
it exactly: its latent point ``z_s ~ q(z | x_s)`` taken to the prior's base space,
the decoder's base point of ``x_s`` given ``z_s``, and (when the parent azimuth is
drawn uniformly) the normal of its azimuth (:meth:`vaeaug.model.vae.VAE.noise_of`).

A partner decodes a small step away from it::

    u = sqrt(1 - width**2) * u_s + width * eps,    eps ~ N(0, 1)

(a preconditioned Crank-Nicolson step). When ``u_s`` is standard normal, as it is
for sources drawn from the model, so is ``u``: over a sample the partners follow the
model's distribution, while each stays near its source, and what a selection kept
(a mass window, a pT cut) stays kept. ``width`` sets how far: 1 is prior sampling
(partners unrelated to their source), 0 gives the source back (a copy, never
wanted), in between partners are neighbours. The latent alone cannot carry this:
with the default flow decoder the latent code holds little of a candidate (the
decoder models most of it), so decoding ``z ~ q(z | x_s)`` with fresh decoder noise
gives partners almost unrelated to their source.

Every generator decodes the partners' noise through the one sampling path
(:mod:`vaeaug.sampling.decode`), the support check's redraws included (their
normals go through the same step).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import InputError
from .protocol import SamplingModel
from .sizes import REDRAW_ROWS

__all__ = ["DEFAULT_WIDTH", "SAMPLINGS", "PosteriorNoise", "check_width"]

#: Valid ``sampling=`` values: from the prior (every candidate new) or near a source
#: candidate's encoding (its partners).
SAMPLINGS = ("prior", "posterior")
#: The step width when none is given: chosen on rows of the training files that no model saw
#: (bench/posterior.py tune, rule in docs/dev/posterior-plan.md).
DEFAULT_WIDTH = 0.35


def check_width(width: float) -> float:
    """``width`` as a float, or InputError when it is not in (0, 1]."""
    try:
        w = float(width)
    except (TypeError, ValueError):
        w = math.nan
    if not 0 < w <= 1:
        raise InputError(
            f"width must be a number in (0, 1] (1: prior sampling, partners unrelated to their "
            f"source; smaller: partners closer to it), got {width!r}"
        )
    return w


def _in_groups(fn, *xs: torch.Tensor, group: int = REDRAW_ROWS) -> torch.Tensor:
    """``fn(*xs)`` run on zero-padded groups of exactly ``group`` rows: a network's rounding can
    depend on the rows of a call, so a row's result never depends on which rows share it."""
    n = len(xs[0])
    rows = -(-n // group) * group
    padded = []
    for x in xs:
        p = torch.zeros((rows, *x.shape[1:]), dtype=x.dtype, device=x.device)
        p[:n] = x
        padded.append(p)
    return torch.cat([fn(*(p[i : i + group] for p in padded)) for i in range(0, rows, group)])[:n]


class PosteriorNoise:
    """The noise whose decoding gives partners of given source candidates.

    Args:
        model: the model (its encoder, prior, decoder, standardizer and representation).
        sources: the source candidates' 4-momenta, (M, k, 4) in GeV.
        latent_normals: standard normals (M, L) that draw each source's latent point from
            q(z | source) (keyed by the source: the caller's random stream).
        width: the step width (module docstring), in (0, 1].

    Attributes:
        encoding: each source's standard normals (M, noise_width).

    Calling it maps standard normals ``eps`` (R, noise_width) and the source of each row,
    ``rows`` (R,) indices below M, to partner noise (R, noise_width). Row ``r`` depends on
    ``eps[r]`` and its source only, so chunking does not change the partners.
    """

    def __init__(self, model: SamplingModel, sources: np.ndarray, latent_normals: np.ndarray,
                 width: float) -> None:  # fmt: skip
        self.width = check_width(width)
        full = model.representation.to_features(np.asarray(sources, dtype=np.float64))
        x = model.standardizer.transform(full[:, model.learned])
        vae = model.vae
        vae.eval()
        with torch.inference_mode():
            x = torch.as_tensor(x, dtype=torch.float32, device=model.device)
            e = torch.as_tensor(latent_normals, dtype=torch.float32, device=model.device)

            def encode(rows: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
                mu, sigma = vae.encoder_params(rows)
                return vae.noise_of(rows, mu + sigma * normals)

            encoding = _in_groups(encode, x, e).double().cpu().numpy()
        if model.phi_uniform:
            # the inverse of decode.to_p4's phi = pi * (2 Phi(u) - 1), clipped off the poles
            phi = np.arctan2(full[:, 3], full[:, 2])
            cdf = np.clip((phi / math.pi + 1.0) / 2.0, 1e-12, 1 - 1e-12)
            u_phi = torch.special.ndtri(torch.from_numpy(cdf)).numpy()
            encoding = np.concatenate([encoding, u_phi[:, None]], axis=1)
        self.encoding = encoding

    def __call__(self, eps: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Partner noise (R, noise_width) from normals ``eps`` (R, noise_width) and sources ``rows`` (R,)."""
        w = self.width
        return math.sqrt(1.0 - w * w) * self.encoding[np.asarray(rows)] + w * np.asarray(eps)
