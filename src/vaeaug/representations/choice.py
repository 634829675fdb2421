"""Which representation a training sample gets, and the daughter masses it needs.

:func:`infer_masses` reads fixed daughter masses (GeV) off the 4-momenta;
:func:`choose_representation` resolves ``representation="auto"``: the decay
representation when every daughter's mass is fixed, else the collider one, with a
:class:`RepresentationWarning` that says why (never a silent choice).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence

import numpy as np

from vaeaug.errors import InputError
from vaeaug.representations import REPRESENTATIONS

__all__ = ["RepresentationWarning", "choose_representation", "infer_masses"]


class RepresentationWarning(UserWarning):
    """``representation="auto"`` could not use the decay representation."""


def infer_masses(p4: np.ndarray, objects: Sequence[str], rtol: float = 1e-3) -> list[float]:
    """Daughter masses (GeV) from the data, when each object's mass is fixed.

    An object's mass counts as fixed when 95% of its candidates agree with the
    median within ``rtol``, or within the rounding of float32-stored components:
    E^2 - |p|^2 of a 300 GeV muon stored in float32 is only good to ~1e-2 GeV^2,
    the muon mass squared itself.

    Args:
        p4: 4-momenta (N, k, 4) as (px, py, pz, E) in GeV.
        objects: the k object names (for the message).
        rtol: the relative tolerance on the mass.

    Raises InputError (naming the object) when an object's mass varies: then
    pass ``masses=`` or use the collider representation.
    """
    e2 = p4[..., 3] ** 2
    p2 = (p4[..., :3] ** 2).sum(-1)
    m = np.sqrt(np.maximum(e2 - p2, 0.0))
    med = np.median(m, axis=0)
    rounding = 8.0 * 2.0**-24 * (e2 + p2)  # float32 unit roundoff on both terms, with margin
    agree = np.abs(m**2 - med**2) <= 2.0 * rtol * med**2 + rounding
    for i, obj in enumerate(objects):
        if agree[:, i].mean() < 0.95:
            spread = np.percentile(m[:, i], 84) - np.percentile(m[:, i], 16)
            raise InputError(
                f"the mass of '{obj}' varies ({med[i]:.4g} GeV, 68% spread {spread:.2g} GeV, "
                f"{1 - agree[:, i].mean():.0%} of candidates off by more than {rtol:.0e} or "
                "float32 rounding): the decay representation needs fixed mass hypotheses; give "
                "them (masses=[...] in GeV; --masses on the command line) or use the collider "
                "representation (representation='collider'; --representation collider)"
            )
    return [float(x) for x in med]


def choose_representation(
    representation: str, p4: np.ndarray, names: Sequence[str], masses: Sequence[float] | None
) -> tuple[str, list[float] | None, str]:
    """(the representation to use, the masses in GeV or None, why).

    Args:
        representation: ``"auto"`` or one of :data:`~vaeaug.representations.REPRESENTATIONS`.
        p4: the training 4-momenta (N, k, 4) GeV.
        names: the k object names.
        masses: the daughter masses given by the user (GeV), or None: inferred
            (:func:`infer_masses`) for the decay representation, and for the collider
            one when they are fixed (mass hypotheses, not features to learn).

    ``"auto"`` falling back to the collider representation warns
    (:class:`RepresentationWarning`) with the reason.
    """
    k = len(names)
    if representation not in (*REPRESENTATIONS, "auto"):
        raise InputError(
            f"representation '{representation}' unknown; valid: auto, {', '.join(REPRESENTATIONS)}"
        )
    reason = f"'{representation}' requested"
    if representation == "auto":
        if k < 2:
            representation = "collider"
            reason = "auto: one object per candidate has no decay; 'collider' chosen"
        else:
            try:
                masses = masses if masses is not None else infer_masses(p4, names)
                representation, reason = "decay", f"auto: {k}-body decay with fixed daughter masses"
            except InputError as err:
                representation = "collider"
                reason = (
                    f"auto: 'collider' chosen, not 'decay', because {err}. Give the daughter "
                    "masses (masses=[...] in GeV, --masses on the CLI) to get the decay "
                    "representation, which keeps the parent mass peak and momentum "
                    "conservation exact"
                )
                warnings.warn(reason, RepresentationWarning, stacklevel=3)
    if representation == "decay" and masses is None:
        masses = infer_masses(p4, names)
    if representation == "collider" and masses is None:
        # fixed masses are mass hypotheses, not features to learn
        with contextlib.suppress(InputError):
            masses = infer_masses(p4, names)
    if masses is not None and len(masses) != k:
        raise InputError(f"{len(masses)} masses given for {k} objects ({', '.join(names)})")
    return representation, None if masses is None else list(masses), reason
