"""The valid values of every user setting, in one table for the API and the CLI.

:func:`check_settings` refuses a bad value with an :class:`~vaeaug.errors.InputError`
naming the setting (the field name, or the CLI's option) and its valid range;
:func:`check_sampling` does the same for a sample's size and seed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

from .errors import InputError

__all__ = ["SEED_MAX", "check_sampling", "check_settings"]

#: The largest seed: every random draw (torch, numpy, scikit-learn) accepts 0 ... 2**32 - 1.
SEED_MAX = 2**32 - 1


def _integer(v, low: int, high: float = math.inf) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and low <= v <= high


def _real(v, low: float, high: float, *, open_low: bool = True) -> bool:
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    return ok and (low < v if open_low else low <= v) and v <= high


#: setting -> (test, the valid values in words). Settings of the model and of
#: training share one table, used by the API (field names) and the CLI (options).
_SETTINGS = {
    "seed": (lambda v: _integer(v, 0, SEED_MAX), f"an integer from 0 to {SEED_MAX}"),
    "latent_dim": (lambda v: _integer(v, 2), "an integer >= 2"),
    "hidden": (
        lambda v: len(v) > 0 and all(_integer(h, 1) for h in v),
        "one or more integers >= 1 (the layer widths)",
    ),
    "beta": (lambda v: _real(v, 0, math.inf), "a finite number > 0 (1 is the true ELBO)"),
    "epochs": (lambda v: _integer(v, 1), "an integer >= 1"),
    "batch_size": (lambda v: _integer(v, 1), "an integer >= 1"),
    "learning_rate": (lambda v: _real(v, 0, 1), "a number in (0, 1]"),
    "patience": (lambda v: _integer(v, 1), "an integer >= 1 (epochs without improvement)"),
    "masses": (
        lambda v: v is None or all(_real(m, 0, math.inf, open_low=False) for m in v),
        "finite numbers >= 0 (GeV), one per object",
    ),
}


def check_settings(values: Mapping[str, object], names: Mapping[str, str] | None = None) -> None:
    """Refuse invalid settings with an :class:`InputError` naming each and its valid range.

    Args:
        values: setting name -> value (``seed``, the fields of
            :class:`~vaeaug.model.vae.VAEConfig` and :class:`~vaeaug.training.TrainConfig`);
            names without a rule are not checked.
        names: how to call a setting in the message (the CLI passes its options).
    """
    names = names or {}
    for key, value in values.items():
        if key in _SETTINGS:
            test, valid = _SETTINGS[key]
            try:
                ok = test(value)
            except TypeError:
                ok = False
            if not ok:
                raise InputError(f"{names.get(key, key)} must be {valid}, got {value!r}")


def check_sampling(n, seed) -> None:
    """Refuse a sample size ``n`` or a ``seed`` that is not an integer >= 0."""
    if not _integer(n, 0):
        raise InputError(f"number of candidates must be an integer >= 0, got {n!r}")
    if not _integer(seed, 0):
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")
