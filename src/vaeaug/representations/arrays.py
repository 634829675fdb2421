"""The array functions that decoding needs, for numpy arrays and torch tensors alike.

Decoding (``from_features`` and the helpers it calls) is written once, against a
namespace ``xp`` of array-API-named functions: :func:`namespace` gives numpy's own
functions for numpy arrays (so numpy results are bit for bit what numpy-only code
gives) and torch's for tensors (any device; no tensor is ever built from host data,
which on a GPU would be a copy that waits for the device)::

    xp = namespace(x)
    pt = xp.exp(xp.clip(log_pt, min=-30.0, max=30.0))

Only what decoding uses is here. A small shim rather than ``array_api_compat``: numpy
needs no wrapping, and that package's torch wrappers of ``maximum``/``minimum`` with a
Python number (and of ``clip``, in 1.13 and earlier) build tensors from host data on
every call.

Conventions: elementwise functions take arrays of one library (``where``, ``clip``
also Python numbers as values or bounds); ``empty`` and ``constant`` make float64
arrays in the library and on the device of ``like``.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np

__all__ = ["as_float64", "is_tensor", "namespace"]

# functions with the same name and meaning in numpy and torch
_SHARED = ("abs", "cos", "cosh", "exp", "hypot", "maximum", "minimum", "reshape", "sin",
           "sinh", "sqrt", "tanh", "where", "zeros_like")  # fmt: skip

_NUMPY = SimpleNamespace(
    **{name: getattr(np, name) for name in _SHARED},
    clip=lambda x, min=None, max=None: np.clip(x, min, max),
    concat=lambda arrays, axis=0: np.concatenate(arrays, axis=axis),
    stack=lambda arrays, axis=0: np.stack(arrays, axis=axis),
    sum=lambda x, axis=None: np.sum(x, axis=axis),
    empty=lambda shape, like: np.empty(shape),
    constant=lambda values, like: np.asarray(values, dtype=np.float64),
)

_TORCH: SimpleNamespace | None = None


def _torch_namespace() -> SimpleNamespace:
    global _TORCH
    if _TORCH is None:
        import torch

        _TORCH = SimpleNamespace(
            **{name: getattr(torch, name) for name in _SHARED},
            clip=lambda x, min=None, max=None: torch.clamp(x, min=min, max=max),
            concat=lambda arrays, axis=0: torch.cat(arrays, dim=axis),
            stack=lambda arrays, axis=0: torch.stack(arrays, dim=axis),
            sum=lambda x, axis=None: torch.sum(x) if axis is None else torch.sum(x, dim=axis),
            empty=lambda shape, like: torch.empty(shape, dtype=torch.float64, device=like.device),
            constant=lambda values, like: torch.as_tensor(
                np.asarray(values, dtype=np.float64), device=like.device
            ),
        )
    return _TORCH


def is_tensor(x) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch when nobody has)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def namespace(*arrays) -> SimpleNamespace:
    """The functions for ``arrays``: torch's if any is a tensor, else numpy's."""
    return _torch_namespace() if any(is_tensor(a) for a in arrays) else _NUMPY


def as_float64(x):
    """``x`` as float64 in its own library and on its own device.

    A torch tensor (any float dtype, any device) becomes a float64 tensor where it is;
    anything else (numpy arrays, lists) a numpy array, not copied when already float64.
    """
    if is_tensor(x):
        import torch

        return x.to(torch.float64)
    return np.asarray(x, dtype=np.float64)
