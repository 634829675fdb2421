"""What sampling needs of a trained model: :class:`SamplingModel`.

Sampling sits below the public API (:mod:`vaeaug.api`), so it cannot import
:class:`vaeaug.Model`; it states here, as a :class:`typing.Protocol`, exactly the
attributes it reads. :class:`vaeaug.Model` satisfies it, and so does any object
with these attributes (a test double, a model rebuilt in a worker).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from ..io.layout import Layout
from ..model.standardize import Standardizer
from ..model.support import Support
from ..model.vae import VAE
from ..representations.base import Representation

__all__ = ["SamplingModel"]


class SamplingModel(Protocol):
    """A trained model as the sampling path reads it (:mod:`vaeaug.sampling.decode`).

    Attributes:
        vae: the network; ``vae.generate`` maps the first ``vae.noise_width`` normals
            of each row to standardized learned features.
        representation: the map between 4-momenta (N, k, 4) GeV and features (N, D).
        standardizer: the scaling of the learned features.
        learned: indices (into the representation's D features) of the learned ones.
        phi_uniform: the parent azimuth is drawn uniformly from the last noise column.
        exchange: groups of identical daughters (object indices) put in pT order.
        support: the training support, or None (no support check).
        layout: object names, branch names and types of the training input.
    """

    vae: VAE
    representation: Representation
    standardizer: Standardizer
    learned: Sequence[int]
    phi_uniform: bool
    exchange: Sequence[Sequence[int]]
    support: Support | None
    layout: Layout

    @property
    def objects(self) -> list[str]:
        """The k daughter names."""
        ...

    @property
    def noise_width(self) -> int:
        """Standard normals per generated event."""
        ...

    @property
    def device(self) -> torch.device:
        """Where the network's weights live."""
        ...
