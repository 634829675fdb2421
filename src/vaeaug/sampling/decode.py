"""The one sampling path: noise -> standardized features -> 4-momenta -> support check.

Every generator of the package runs these functions: the streaming pipeline
(:mod:`vaeaug.sampling.streaming`, through :class:`~vaeaug.sampling.engine.Engine`),
the coffea step (given noise, :func:`p4_from_noise`) and the support check's
redraws (:func:`enforce_support`). They read a model through
:class:`~vaeaug.sampling.protocol.SamplingModel`.

Shapes: ``eps`` (N, noise_width) standard normals; standardized features
(N, D_learned [+ 1], the last column the parent azimuth's normal when it is drawn
uniformly); full features (N, D) of the representation; 4-momenta (N, k, 4) as
(px, py, pz, E) in GeV.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..errors import InputError, SupportLimitError
from ..model.support import SupportReport, observables
from ..model.symmetry import order_by_pt
from ..noise import keyed_normals
from ..representations.arrays import as_float64, is_tensor, namespace
from .protocol import SamplingModel
from .sizes import NOISE_BATCH_ROWS, REDRAW_ROWS

__all__ = [
    "MAX_REDRAW_ROUNDS",
    "enforce_support",
    "features_from_noise",
    "p4_from_noise",
    "support_values",
    "to_p4",
]

#: Redraws of a candidate outside the training support before sampling with "reject" gives
#: up (:class:`~vaeaug.errors.SupportLimitError`; "warn" keeps such candidates).
MAX_REDRAW_ROUNDS = 100


def _ndtr(u: np.ndarray) -> np.ndarray:
    """The standard normal CDF of a float64 array, by torch (no scipy.special import, ~17 MB)."""
    return torch.special.ndtr(torch.from_numpy(np.ascontiguousarray(u))).numpy()


def _column_runs(columns: Sequence[int]) -> list[tuple[int, int, int]]:
    """(first column, its position in ``columns``, length) of each run of consecutive columns."""
    runs: list[tuple[int, int, int]] = []
    for i, c in enumerate(columns):
        if runs and runs[-1][0] + runs[-1][2] == c:
            runs[-1] = (runs[-1][0], runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((c, i, 1))
    return runs


def features_from_noise(
    model: SamplingModel, eps: torch.Tensor, *, hidden_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Standardized features, (N, D_learned [+ 1]), from standard normals (N, noise_width).

    With ``phi_uniform`` the last column is the normal that becomes the parent
    azimuth in :func:`to_p4`. ``hidden_dtype`` (e.g. ``torch.bfloat16``) runs
    the decoder's hidden layers under autocast. Runs on ``eps``'s device, the model's.
    """
    w = model.vae.noise_width
    x = model.vae.generate(eps[:, :w], hidden_dtype=hidden_dtype)
    return torch.cat([x, eps[:, w:]], dim=1) if model.phi_uniform else x


def to_p4(model: SamplingModel, x):
    """(4-momenta (N, k, 4) GeV, full features (N, D)) from :func:`features_from_noise` output.

    ``x`` (N, D_learned [+ 1]) may be float32: the inverse scaling runs in float64.
    A numpy ``x`` gives numpy arrays; a torch tensor gives float64 tensors on its
    device (the same code: see :mod:`vaeaug.representations.arrays`), so that a GPU
    can decode what it generated before anything is copied to the host.
    """
    rep = model.representation
    x = as_float64(x)
    xp = namespace(x)
    full = xp.empty((x.shape[0], rep.n_features), like=x)
    learned = model.standardizer.inverse(x[:, : len(model.learned)])
    # runs of consecutive columns: slice copies, no index array to send to a device
    for dst, src, width in _column_runs(model.learned):
        full[:, dst : dst + width] = learned[:, src : src + width]
    if model.phi_uniform:
        u = x[:, -1]
        cdf = torch.special.ndtr(u) if is_tensor(u) else _ndtr(u)
        phi = math.pi * (2.0 * cdf - 1.0)
        full[:, 2], full[:, 3] = xp.cos(phi), xp.sin(phi)
    # the features stay in the network's labelling: the support's feature part was
    # fitted in it
    return order_by_pt(rep.from_features(full), model.exchange), full


def p4_from_noise(
    model: SamplingModel, eps: np.ndarray, batch_size: int = NOISE_BATCH_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """(4-momenta (M, k, 4) GeV, features (M, D)) from standard normals (M, noise_width).

    The network runs on ``batch_size`` rows at a time, on the model's device.
    """
    if eps.ndim != 2 or eps.shape[1] != model.noise_width:
        raise InputError(f"noise must have shape (M, {model.noise_width}), got {eps.shape}")
    p4 = np.empty((len(eps), len(model.objects), 4))
    full = np.empty((len(eps), model.representation.n_features))
    model.vae.eval()
    with torch.inference_mode():
        for s in range(0, len(eps), batch_size):
            e = torch.as_tensor(eps[s : s + batch_size], dtype=torch.float32, device=model.device)
            x = features_from_noise(model, e).double().cpu().numpy()
            p4[s : s + len(x)], full[s : s + len(x)] = to_p4(model, x)
    return p4, full


def _p4_from_noise_padded(model: SamplingModel, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`p4_from_noise` in zero-padded groups of :data:`~vaeaug.sampling.sizes.REDRAW_ROWS` rows.

    A matrix product's rounding can depend on the number of rows; with a
    fixed row count a redraw gives the same bits whichever other redraws
    share its batch, so the events do not depend on the chunking.
    """
    n = len(eps)
    padded = np.zeros((-(-n // REDRAW_ROWS) * REDRAW_ROWS, eps.shape[1]))
    padded[:n] = eps
    p4, full = p4_from_noise(model, padded, batch_size=REDRAW_ROWS)
    return p4[:n], full[:n]


def support_values(model: SamplingModel, p4: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The support's observables (N, O): lab-frame ones, then the model's features.

    ``p4`` (N, k, 4) GeV, ``features`` (N, D). Features that are (cos, sin) halves
    of an angle are left out: every angle is physical, and generated pairs are
    normalised only when decoded.
    """
    columns = [i for i, n in enumerate(model.representation.feature_names())
               if not n.endswith(("_cos", "_sin"))]  # fmt: skip
    return np.concatenate([observables(p4, model.objects)[1], features[:, columns]], axis=1)


def enforce_support(model: SamplingModel, p4: np.ndarray, features: np.ndarray,
                    keys: np.ndarray, mode: str = "reject",
                    noise_map: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
                    ) -> SupportReport:  # fmt: skip
    """Check candidates against the support; with ``"reject"`` redraw those outside, in place.

    Args:
        model: the model that generated them.
        p4: generated 4-momenta (M, k, 4) GeV; rows outside are replaced.
        features: their features (M, D); replaced alongside.
        keys: one uint64 key per row (:mod:`vaeaug.noise`): redraw ``r`` of row
            ``i`` uses only ``keys[i]`` and ``r``, so the result is independent of
            how the sample is cut into chunks.
        mode: one of :data:`~vaeaug.model.support.SUPPORT_MODES`. With ``"reject"`` a
            candidate is redrawn up to :data:`MAX_REDRAW_ROUNDS` times.
        noise_map: maps a redraw's normals (R, noise_width) and the rows they redraw (R,)
            to the noise decoded, e.g. a source's posterior
            (:class:`~vaeaug.sampling.posterior.PosteriorNoise`); default: the normals.

    Returns:
        The :class:`~vaeaug.model.support.SupportReport` of these rows.

    Raises:
        SupportLimitError: with ``"reject"``, candidates still outside after
            :data:`MAX_REDRAW_ROUNDS` redraws each: an out-of-support candidate is never
            returned under ``"reject"``.
    """
    support = model.support
    report = SupportReport(n=len(p4), expected_rate=support.expected_rate if support else 0.0)
    if mode == "off" or support is None or not len(p4):
        return report
    values = support_values(model, p4, features)
    todo = np.flatnonzero(~support.inside(values))
    report.outside = len(todo)
    report.edges = support.edges_crossed(values[todo])
    if mode == "reject":
        for round_ in range(1, MAX_REDRAW_ROUNDS + 1):
            if not len(todo):
                break
            eps = keyed_normals(keys[todo], model.noise_width, round_)
            if noise_map is not None:
                eps = noise_map(eps, todo)
            new_p4, new_f = _p4_from_noise_padded(model, eps)
            ok = support.inside(support_values(model, new_p4, new_f))
            p4[todo[ok]], features[todo[ok]] = new_p4[ok], new_f[ok]
            todo = todo[~ok]
        if len(todo):
            raise SupportLimitError(
                f"{len(todo)} of {len(p4)} generated candidates are still outside the training "
                f"support after {MAX_REDRAW_ROUNDS} redraws each ({report.summary()}): the "
                "model does not cover its own training sample there. Retrain it (more epochs, "
                "the representation 'decay' for fixed daughter masses), or keep such "
                "candidates with support='warn' (--support warn) and look at them"
            )
    return report
