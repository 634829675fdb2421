"""Coupling flows for the prior and the decoder: zuko's NSF and MAF, with a faster spline.

``build_flow`` builds zuko's ``NSF`` (rational-quadratic splines) or ``MAF``
(affine), by default with coupling masks (``passes=2``: two network passes to
sample, one to evaluate the density). For splines it swaps zuko's ``MonotonicRQSTransform`` for
:class:`RationalQuadraticSpline`, the same function computed with fewer and
cheaper tensor operations. The parameters, and so the model file, are zuko's.

Why: on a CPU the spline's bookkeeping, not the networks, dominated the cost of
sampling and training (profiled on the D+ model: ``softmax`` over 8 bins alone
took a third of ``VAE.generate``). ``bench/sampling_cost.py`` measures both
splines side by side.

Sampling inverts the flow. zuko inverts a layer with P passes by running its network and
its spline over every feature P times, of which pass p only settles the features of
order p. :func:`flow_inverse` computes the same passes, but each pass's spline only over
the features it settles: the same numbers (bit for bit; tested), half the spline work of
a coupling layer.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Sequence

import torch
import torch.nn.functional as F
import zuko
from torch import nn
from torch.distributions import Transform
from zuko.flows.autoregressive import MaskedAutoregressiveTransform
from zuko.transforms import MonotonicRQSTransform
from zuko.utils import broadcast, unpack

__all__ = [
    "RationalQuadraticSpline",
    "build_flow",
    "flow_inverse",
    "spline_classes",
    "use_zuko_spline",
]


class RationalQuadraticSpline(MonotonicRQSTransform):
    """zuko's ``MonotonicRQSTransform`` (Durkan et al. 2019): same arguments, same function.

    Arguments (as zuko's): ``widths`` and ``heights`` with shape (*, K), unconstrained;
    ``derivatives`` with shape (*, K - 1); ``bound`` B of the (co)domain [-B, B];
    ``slope`` the minimum slope. Outside [-B, B] the transform is the identity.

    What differs is how it is computed (results agree to float32 rounding): the
    softmax over the K bins is ``exp / sum`` (the soft-clamped logits lie within
    ±|log slope| / 2, so nothing can overflow, and torch's CPU softmax is slow along
    a short last axis), and each bin's two knots are gathered with one index each
    instead of a broadcast, stacked index.
    """

    def __init__(self, widths, heights, derivatives, bound=5.0, slope=1e-3, **kwargs) -> None:
        Transform.__init__(self, **kwargs)
        log_slope = math.log(slope)
        widths = widths / (1 + abs(2 * widths / log_slope))  # within ±|log slope| / 2
        heights = heights / (1 + abs(2 * heights / log_slope))
        derivatives = derivatives / (1 + abs(derivatives / log_slope))
        widths, heights = widths.exp(), heights.exp()
        widths = F.pad(widths / widths.sum(dim=-1, keepdim=True), (1, 0))  # (*, K + 1)
        heights = F.pad(heights / heights.sum(dim=-1, keepdim=True), (1, 0))
        self.horizontal = bound * (2 * torch.cumsum(widths, dim=-1) - 1)  # knots, (*, K + 1)
        self.vertical = bound * (2 * torch.cumsum(heights, dim=-1) - 1)
        self.derivatives = torch.exp(F.pad(derivatives, (1, 1)))  # (*, K + 1)

    def bin(self, k: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For bin indices k (*,): the in-range mask, the bin's knots x0, x1, y0, y1,
        its end slopes d0, d1 and its mean slope s, each of k's shape."""
        bins = self.bins
        mask = (k >= 0) & (k < bins)
        k = k % bins
        hs, vs, ds = self.horizontal, self.vertical, self.derivatives
        if hs.shape[:-1] != k.shape:
            k, hs, vs, ds = broadcast(k[..., None], hs, vs, ds, ignore=1)
            k = k[..., 0]
        i0 = k.unsqueeze(-1)
        i1 = i0 + 1
        x0, x1 = hs.gather(-1, i0).squeeze(-1), hs.gather(-1, i1).squeeze(-1)
        y0, y1 = vs.gather(-1, i0).squeeze(-1), vs.gather(-1, i1).squeeze(-1)
        d0, d1 = ds.gather(-1, i0).squeeze(-1), ds.gather(-1, i1).squeeze(-1)
        s = (y1 - y0) / (x1 - x0)
        return mask, x0, x1, y0, y1, d0, d1, s


def build_flow(
    features: int,
    context: int,
    transforms: int,
    hidden: Sequence[int],
    kind: str,
    passes: int | None = 2,
) -> nn.Module:
    """A zuko flow over ``features`` (F) dimensions, conditioned on ``context`` (C)
    dimensions: ``flow(c)`` with c of shape (N, C) is a distribution with event shape (F,).

    Args:
        kind: "spline" (zuko's NSF, 8 bins, with :class:`RationalQuadraticSpline`) or
            "affine" (zuko's MAF).
        hidden: widths of each layer's network.
        passes: network passes per layer to sample: 2 is a coupling layer (the
            default), None a fully autoregressive one (F passes, zuko's default).
            Evaluating the density is one pass either way.
    """
    cls = zuko.flows.NSF if kind == "spline" else zuko.flows.MAF
    flow = cls(features, context=context, transforms=transforms,
               hidden_features=tuple(hidden), passes=passes)  # fmt: skip
    if kind == "spline":
        _set_spline(flow, RationalQuadraticSpline)
    return flow


def flow_inverse(
    flow: nn.Module, y: torch.Tensor, context: torch.Tensor | None = None
) -> torch.Tensor:
    """``flow(context).transform.inv(y)`` of a zuko flow, computed pass by pass.

    Args:
        flow: a flow from :func:`build_flow` (any zuko ``Flow`` whose transform is a
            ``LazyComposedTransform``).
        y: points of the base space, shape (N, F) (standard normals, for sampling).
        context: (N, C), or None for an unconditional flow.

    Returns:
        x of shape (N, F): bit for bit what zuko's inverse gives (the network sees the
        same inputs, up to features its masks multiply by zero).
    """
    for layer in reversed(flow.transform.transforms):
        if isinstance(layer, MaskedAutoregressiveTransform) and layer.order is not None:
            y = _masked_autoregressive_inverse(layer, y, context)
        else:
            y = layer(context).inv(y)
    return y


def _masked_autoregressive_inverse(
    layer: MaskedAutoregressiveTransform, y: torch.Tensor, context: torch.Tensor | None
) -> torch.Tensor:
    """One layer's inverse, (N, F) -> (N, F): pass p runs the network on the features
    settled so far (the others are zero and masked out) and the spline only on the
    features of order p. zuko's pass p runs the spline on all F features and keeps only
    those of order p (the rest are overwritten by later passes)."""
    x = torch.zeros_like(y)
    for settled in _pass_features(layer):
        inputs = x if context is None else torch.cat(broadcast(x, context, ignore=1), dim=-1)
        phi = layer.hyper(inputs).unflatten(-1, (-1, layer.total))[..., settled, :]
        x = x.clone()  # the network's input of this pass may be kept for autograd
        spline = layer.univariate(*unpack(phi, layer.shapes))
        x[..., settled] = _inverse(spline, y[..., settled])
    return x


def _inverse(transform: Transform, y: torch.Tensor) -> torch.Tensor:
    """``transform.inv(y)``, without the reference cycle ``transform.inv`` makes.

    torch's ``Transform.inv`` keeps the inverse it builds (``transform._inv``), which keeps
    ``transform``: a cycle that only Python's cyclic garbage collector frees, and with it
    the spline's knots, (N, F, K + 1) tensors three times over. Sampling builds 16 splines
    per network call, so the cycles held up to ~1 GB of 16k-row calls until a collection
    came (bench/results/memory-flow). ``inv(y)`` is ``transform._inv_call(y)``, so the
    numbers are the same.
    """
    return transform._inv_call(y)


#: per layer, the features each pass settles (read once: the order is a constant buffer)
_PASS_FEATURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pass_features(layer: MaskedAutoregressiveTransform) -> list[slice | list[int]]:
    """The features settled by each pass of ``layer``, in pass order (a slice where they are
    a run); passes that settle none are left out (zuko may count more passes than there are
    orders). Read from the ``order`` buffer once per layer, not on every call: on a GPU each
    read would wait for the device."""
    features = _PASS_FEATURES.get(layer)
    if features is None:
        order = layer.order.tolist()
        runs = ([i for i, o in enumerate(order) if o == p] for p in range(layer.passes))
        features = [_as_slice(indices) for indices in runs if indices]
        _PASS_FEATURES[layer] = features
    return features


def _as_slice(indices: list[int]) -> slice | list[int]:
    """A run of consecutive indices as a slice (a view, no copy); else the list itself.
    zuko's coupling and autoregressive orders give runs."""
    if indices == list(range(indices[0], indices[-1] + 1)):
        return slice(indices[0], indices[-1] + 1)
    return indices


def use_zuko_spline(module: nn.Module) -> nn.Module:
    """Switch every flow of ``module`` (a flow from :func:`build_flow`, or a VAE) back to
    zuko's own spline (for benchmarks and tests that compare the two); returns it."""
    _set_spline(module, MonotonicRQSTransform)
    return module


def spline_classes(module: nn.Module) -> list[type]:
    """The spline class of each spline layer in ``module`` (any flow or VAE), in module order."""
    return [layer.univariate.func for layer in _spline_layers(module)]


def _spline_layers(module: nn.Module) -> list[nn.Module]:
    # zuko's NSF layers hold their spline as partial(MonotonicRQSTransform, slope=...)
    return [layer for layer in module.modules()
            if isinstance(getattr(layer, "univariate", None), functools.partial)]  # fmt: skip


def _set_spline(module: nn.Module, spline: type) -> None:
    for layer in _spline_layers(module):
        old = layer.univariate
        layer.univariate = functools.partial(spline, *old.args, **old.keywords)
