"""Parent-mass regions: the share of candidates in the peak, the tails and named resonances.

A generator that reproduces the peak but loses a tail (a radiative tail, a
background shoulder, a second resonance) passes most distance metrics, since the
tail holds few candidates. :func:`mass_regions` counts them: for each region the
fraction of real and of generated candidates in it, with binomial errors, and
their ratio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from ..errors import InputError
from .massfit import robust_peak
from .metrics import _n_eff

__all__ = ["BUILTIN_REGIONS", "check_resonances", "mass_regions", "parse_resonances"]

#: The regions :func:`mass_regions` always defines, in the order listed.
BUILTIN_REGIONS = ("low tail", "peak", "high tail")


def _fraction(mass: np.ndarray, w: np.ndarray | None, lo: float, hi: float) -> tuple[float, float]:
    """Weighted fraction of ``mass`` (N,) in [lo, hi) GeV and its binomial error (Kish n)."""
    inside = (mass >= lo) & (mass < hi)
    f = float(np.mean(inside)) if w is None else float(np.sum(w[inside]) / np.sum(w))
    return f, math.sqrt(max(f * (1 - f), 0.0) / _n_eff(len(mass), w))


def _checked(name: str, x: np.ndarray | None, n: int | None = None) -> np.ndarray | None:
    """``x`` as float64 (n,) (any non-empty length without ``n``), or None; refuses others."""
    if x is None:
        return None
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or not len(x) or (n is not None and len(x) != n):
        want = f"({n},)" if n is not None else "(N,) with N >= 1"
        raise ValueError(f"{name} must have shape {want}; got {x.shape}")
    return x


def check_resonances(
    resonances: Mapping[str, tuple[float, float]] | None,
) -> dict[str, tuple[float, float]]:
    """``resonances`` name -> (lo_gev, hi_gev) checked: finite, lo < hi, no built-in name."""
    out: dict[str, tuple[float, float]] = {}
    for name, (lo, hi) in (resonances or {}).items():
        if name in BUILTIN_REGIONS:
            raise InputError(f"resonance name '{name}' is taken by a built-in region "
                             f"{BUILTIN_REGIONS}; give it another name")  # fmt: skip
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise InputError(f"resonance '{name}' needs finite bounds lo < hi in GeV; "
                             f"got ({lo}, {hi})")  # fmt: skip
        out[name] = (float(lo), float(hi))
    return out


def mass_regions(
    real_mass: np.ndarray,
    generated_mass: np.ndarray,
    *,
    real_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
    resonances: Mapping[str, tuple[float, float]] | None = None,
    n_widths: float = 3.0,
    min_fraction: float = 0.01,
) -> dict:
    """Fractions of real (N,) and generated (M,) parent masses, in GeV, in each mass region.

    Regions are half-open intervals [lo_gev, hi_gev) in GeV, all set by the real sample:

    ``peak``
        the real median ± ``n_widths`` robust half-widths, the half-width being
        (q84 − q16) / 2 of the real masses (:func:`~vaeaug.validation.massfit.robust_peak`,
        weighted quantiles with weights). For a Gaussian peak and the default 3 it
        holds 99.7% of the candidates, so the tails hold what a Gaussian would not.
    ``low tail``, ``high tail``
        every mass below the peak's lower edge (lo_gev is −inf), every mass from its
        upper edge on (hi_gev is +inf): with the peak they partition the masses, so
        the three fractions add up to 1.
    one region per entry ``name: (lo_gev, hi_gev)`` of ``resonances``
        counted independently of the others (it may overlap them); the bounds are
        checked by :func:`check_resonances`.

    Per region: ``real_fraction`` and ``generated_fraction``, the share of the
    sample's (weighted) candidates in it, sum(w in region) / sum(w); their
    binomial errors ``real_err`` and ``generated_err``, sqrt(f (1 − f) / n) with n
    the Kish effective count (sum w)^2 / sum w^2 (the count without weights),
    which is 0 at f = 0 or 1; ``ratio`` = generated / real fraction and
    ``ratio_err``, both errors propagated to first order (defined at a generated
    fraction of 0 too; NaN at a real fraction of 0). Weights are per candidate,
    (N,) and (M,).

    Returns ``{"regions": [...], "dropped": [...], "min_fraction": ..., "n_widths": ...}``:
    the regions holding at least ``min_fraction`` of the real sample, then those
    holding less (listed, not compared: their real fraction is too small to judge),
    each a dict with keys ``name``, ``lo_gev``, ``hi_gev`` and the numbers above.
    """
    mo = _checked("real_mass", real_mass)
    mg = _checked("generated_mass", generated_mass)
    wo = _checked("real_weights", real_weights, len(mo))
    wg = _checked("generated_weights", generated_weights, len(mg))
    for name, w in (("real_weights", wo), ("generated_weights", wg)):
        if w is not None and not np.sum(w) > 0:
            raise ValueError(f"{name} must have a positive sum; got {np.sum(w)}")
    peak = robust_peak(mo, wo)
    lo = peak["median"] - n_widths * peak["half_width"]
    hi = peak["median"] + n_widths * peak["half_width"]
    bounds = {"low tail": (-math.inf, lo), "peak": (lo, hi), "high tail": (hi, math.inf)}
    bounds |= check_resonances(resonances)
    kept, dropped = [], []
    for name, (r_lo, r_hi) in bounds.items():
        fo, eo = _fraction(mo, wo, r_lo, r_hi)
        fg, eg = _fraction(mg, wg, r_lo, r_hi)
        ratio = fg / fo if fo > 0 else math.nan
        # d(fg/fo) = dfg/fo - fg dfo/fo^2: finite when nothing was generated in the region
        ratio_err = math.hypot(eg / fo, fg * eo / fo**2) if fo > 0 else math.nan
        row = {"name": name, "lo_gev": r_lo, "hi_gev": r_hi,
               "real_fraction": fo, "real_err": eo, "generated_fraction": fg,
               "generated_err": eg, "ratio": ratio, "ratio_err": ratio_err}  # fmt: skip
        (kept if fo >= min_fraction else dropped).append(row)
    return {"regions": kept, "dropped": dropped, "min_fraction": min_fraction,
            "n_widths": n_widths}  # fmt: skip


def parse_resonances(specs: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Parse ``NAME=LO:HI`` resonance windows in GeV (the CLI's ``--resonance``).

    E.g. ``J/psi=2.9:3.3``. Returns name -> (lo_gev, hi_gev) in the order given;
    raises :class:`~vaeaug.errors.InputError` naming a malformed or repeated one.
    """
    out: dict[str, tuple[float, float]] = {}
    for spec in specs:
        name, sep, rest = spec.partition("=")
        name = name.strip()
        lo_text, colon, hi_text = rest.partition(":")
        try:
            lo, hi = float(lo_text), float(hi_text)
        except ValueError:
            lo = hi = math.nan
        if not (sep and colon and name and math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise InputError(
                f"--resonance '{spec}' is not NAME=LO:HI with masses LO < HI in GeV, "
                "e.g. --resonance J/psi=2.9:3.3"
            )
        if name in out or name in BUILTIN_REGIONS:
            taken = "given twice" if name in out else "the name of a built-in region"
            raise InputError(f"--resonance '{spec}': '{name}' is {taken}; give another name")
        out[name] = (lo, hi)
    return out
