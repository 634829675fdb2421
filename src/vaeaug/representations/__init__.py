"""Invertible maps between final-state 4-momenta and model features.

Three representations, from least to most physics built in:

- ``"cartesian"``: ``(px, py, pz, E)`` per object;
- ``"collider"``: ``(log pt, eta, cos phi, sin phi[, m])`` per object;
- ``"decay"``: parent ``(log pt, eta, cos phi, sin phi, M)`` plus rest-frame decay
  variables (helicity angles, square Dalitz plot, sequential splits) for any n >= 2 with known
  daughter masses: exact masses and momentum conservation by construction.

All map 4-momenta of shape ``(N, k, 4)`` (GeV) to features of shape ``(N, D)`` and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vaeaug.errors import InputError, close_matches
from vaeaug.representations.base import Representation
from vaeaug.representations.cartesian import CartesianRepresentation
from vaeaug.representations.collider import ColliderRepresentation
from vaeaug.representations.decay import DecayRepresentation

__all__ = [
    "REPRESENTATIONS",
    "CartesianRepresentation",
    "ColliderRepresentation",
    "DecayRepresentation",
    "Representation",
    "make_representation",
    "representation_from_dict",
]

_CLASSES: dict[str, type[Representation]] = {
    cls.name: cls for cls in (CartesianRepresentation, ColliderRepresentation, DecayRepresentation)
}
REPRESENTATIONS: tuple[str, ...] = tuple(_CLASSES)


def _lookup(name: object) -> type[Representation]:
    if not isinstance(name, str) or name not in _CLASSES:
        hint = close_matches(name, REPRESENTATIONS) if isinstance(name, str) else ""
        raise InputError(
            f"unknown representation {name!r}; valid choices: {', '.join(REPRESENTATIONS)}{hint}"
        )
    return _CLASSES[name]


def make_representation(
    name: str, n_objects: int, masses: Sequence[float] | None = None, **options: Any
) -> Representation:
    """Build a representation by name.

    name: one of :data:`REPRESENTATIONS` (``"cartesian"``, ``"collider"``, ``"decay"``).
    n_objects: the number ``k`` of final-state objects.
    masses: mass hypotheses in GeV, one per object. Required by ``"decay"``; in
        ``"collider"`` they fix the masses (not features); ``"cartesian"`` keeps ``E`` as a
        feature and ignores them.
    options: forwarded to the class constructor: ``object_names`` (all),
        ``parent_name`` (``"decay"``).

    Raises ``InputError`` (a ``ValueError``) naming the valid choices on a bad name,
    option or argument.
    """
    cls = _lookup(name)
    kwargs = dict(options)
    if cls is not CartesianRepresentation:
        kwargs["masses"] = masses
    try:
        return cls(n_objects, **kwargs)
    except TypeError as err:
        raise InputError(
            f"bad option for representation {name!r}: {err}; valid options: "
            f"{', '.join(_options(cls))}"
        ) from None


def representation_from_dict(d: dict[str, Any]) -> Representation:
    """Rebuild a representation from :meth:`Representation.to_dict` output."""
    if not isinstance(d, dict) or "name" not in d:
        raise InputError(
            f"a representation dict needs a 'name' (one of {', '.join(REPRESENTATIONS)}), got {d!r}"
        )
    kwargs = {k: v for k, v in d.items() if k != "name"}
    cls = _lookup(d["name"])
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise InputError(
            f"bad representation dict for {d['name']!r}: {err}; valid keys: name, "
            f"{', '.join(_options(cls))}"
        ) from None


def _options(cls: type[Representation]) -> list[str]:
    import inspect

    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
