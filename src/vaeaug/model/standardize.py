"""Robust standardization of model features, stored in the model file.

Heavy tails (momenta span two orders of magnitude) would let a few events
dominate a mean/std scaling, so features are centred on the median and scaled
by the interquartile range (divided by 1.349 so a Gaussian gets unit scale).
Features that do not vary are kept as constants and reproduced exactly.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Standardizer"]


class Standardizer:
    """Per-feature affine map ``z = (x - center) / scale``.

    Attributes:
        center: median per feature, shape (D,).
        scale: robust spread per feature, shape (D,); 1 for constant features.
        constant: boolean mask, shape (D,), of features that never vary.
    """

    def __init__(self, center: np.ndarray, scale: np.ndarray, constant: np.ndarray) -> None:
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.constant = np.asarray(constant, dtype=bool)
        # device -> (center, scale, constant) tensors, for inverse() on tensors
        self._on_device: dict[str, tuple[torch.Tensor, ...]] = {}

    @classmethod
    def fit(cls, x: np.ndarray, weights: np.ndarray | None = None) -> Standardizer:
        """Fit on features ``x`` of shape (N, D); ``weights`` are ignored (robust anyway)."""
        # imported here: scipy.stats adds ~50 MB to every process that only generates
        from scipy import stats

        q50 = np.median(x, axis=0)
        scale = stats.iqr(x, axis=0, scale="normal")  # IQR / 1.349: a Gaussian's sigma
        std = x.std(axis=0)
        # discrete-looking features can have IQR 0 but still vary: fall back to std
        scale = np.where(scale > 1e-12 * np.maximum(np.abs(q50), 1), scale, std)
        constant = ~(scale > 1e-12 * np.maximum(np.abs(q50), 1))
        return cls(q50, np.where(constant, 1.0, scale), constant)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Features (N, D) -> standardized (N, D); constant features become 0."""
        return (x - self.center) / self.scale * ~self.constant

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Standardized (N, D) -> features (N, D); constants restored exactly.

        ``z``: numpy, or a torch tensor on any device; the scaling runs in float64 and a
        tensor gives a tensor on its device.
        """
        if not torch.is_tensor(z):
            return np.where(self.constant, self.center, z * self.scale + self.center)
        center, scale, constant = self._tensors_on(z.device)
        return torch.where(constant, center, z.to(torch.float64) * scale + center)

    def _tensors_on(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """(center, scale, constant) as tensors on ``device``, copied there once."""
        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = tuple(torch.from_numpy(a).to(device)
                                         for a in (self.center, self.scale, self.constant))  # fmt: skip
        return self._on_device[key]

    def tensors(self) -> dict[str, torch.Tensor]:
        """For the model file (float64 keeps the narrow mass peak exact)."""
        return {
            "standardizer.center": torch.from_numpy(self.center.copy()),
            "standardizer.scale": torch.from_numpy(self.scale.copy()),
            "standardizer.constant": torch.from_numpy(self.constant.astype(np.uint8)),
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Standardizer:
        return cls(
            tensors["standardizer.center"].numpy(),
            tensors["standardizer.scale"].numpy(),
            tensors["standardizer.constant"].numpy().astype(bool),
        )
