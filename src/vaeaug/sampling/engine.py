"""The generation engine: seeded random-number blocks decoded into standardized features.

Determinism. Event ``i`` of a sample belongs to random-number block
``b = i // BLOCK`` (:mod:`vaeaug.sampling.sizes` holds every batch size); block
``b`` draws its standard normals (the prior's, the decoder's and, when the parent
azimuth is uniform, its own) from a ``torch.Generator`` seeded by
:func:`vaeaug.noise.child_seed` ``(seed, b)``.
The decoder runs on groups of rows whose boundaries depend only on the device
type and ``n`` (never on the chunk size a caller asks for), so the features
depend only on ``(seed, n)`` and the device type (CPU and CUDA random streams
differ), bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from ..errors import InputError
from ..noise import child_seed
from .decode import features_from_noise
from .protocol import SamplingModel
from .sizes import BATCH_BLOCKS, BLOCK, DECODE_ROWS

__all__ = ["PRECISIONS", "Engine", "block_seed"]

#: Valid values of ``precision``: "fp32", or "bf16" (decoder hidden layers under
#: bfloat16 autocast; output layer, noise and everything after in float32/float64).
PRECISIONS = ("fp32", "bf16")


def block_seed(seed: int, b: int) -> int:
    """The 63-bit seed of random-number block ``b`` of a sample drawn with ``seed``."""
    return child_seed(seed, b)


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"precision '{precision}' unknown; valid: {', '.join(PRECISIONS)}")
    return precision


class Engine:
    """Samples standardized features from a model on the model's device.

    Args:
        model: a trained model, e.g. a :class:`vaeaug.Model` (its network stays
            where it is).
        precision: "fp32" (default) or "bf16" (hidden layers of the decoder under
            bfloat16 autocast; pays on GPUs and on CPUs with bf16 matrix units, is
            ~4x slower on CPUs without them).
        compile: run the noise-to-features map through ``torch.compile`` (a
            one-off compilation of tens of seconds; pays on GPUs for large samples).

    Random-number blocks are decoded ``BATCH_BLOCKS`` at a time and ``DECODE_ROWS``
    rows per decoder call (:mod:`vaeaug.sampling.sizes`), fixed per device type: the
    decoder's row groups, and so the last bits of the events, depend on them.
    """

    def __init__(
        self, model: SamplingModel, *, precision: str = "fp32", compile: bool = False
    ) -> None:
        self.model = model
        self.device = model.device
        self.precision = _check_precision(precision)
        self.batch_blocks = BATCH_BLOCKS.get(self.device.type, 1)
        self.decode_rows = DECODE_ROWS.get(self.device.type)
        dtype = torch.bfloat16 if self.precision == "bf16" else None

        def features(eps: torch.Tensor) -> torch.Tensor:
            return features_from_noise(model, eps, hidden_dtype=dtype)

        self._features: Callable[[torch.Tensor], torch.Tensor] = (
            torch.compile(features, dynamic=False) if compile else features
        )

    @property
    def n_features(self) -> int:
        """Columns of :meth:`features` output: learned features (+ the phi noise)."""
        return len(self.model.learned) + int(self.model.phi_uniform)

    def features(self, eps: torch.Tensor) -> torch.Tensor:
        """Standardized features (B, n_features) float32 from normals (B, noise_width)."""
        rows = self.decode_rows or len(eps)
        outs = [self._features(eps[i : i + rows]) for i in range(0, len(eps), rows)]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def batches(self, n: int, seed: int) -> Iterator[torch.Tensor]:
        """Standardized features of the ``n`` events, (B, n_features) float32 on the device.

        Block ``b`` draws all its normals, (rows, noise_width), from one generator
        seeded by :func:`block_seed`. Must run under ``torch.inference_mode()``
        (thread-local: enter it in the thread that iterates).
        """
        n_blocks = math.ceil(n / BLOCK)
        width = self.model.noise_width
        self.model.vae.eval()
        for first in range(0, n_blocks, self.batch_blocks):
            eps = []
            for b in range(first, min(first + self.batch_blocks, n_blocks)):
                g = torch.Generator(device=self.device)
                g.manual_seed(block_seed(seed, b))
                eps.append(torch.randn(min(BLOCK, n - b * BLOCK), width, generator=g,
                                       device=self.device))  # fmt: skip
            yield self.features(eps[0] if len(eps) == 1 else torch.cat(eps))
