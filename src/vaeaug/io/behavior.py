"""Awkward behaviors that survive plain ``pickle``.

vector's and coffea's behavior dicts hold lambdas, so an array carrying one cannot
go through plain ``pickle``, which coffea's executors and ``multiprocessing`` use to
send outputs back. :func:`behavior_of` merges behaviors into a dict that pickles by
reference to the modules it came from and unpickles as the receiver's own copy.
"""

from __future__ import annotations

import functools
import importlib

import vector

__all__ = ["VECTOR_BEHAVIOR", "behavior_of"]


class _Behavior(dict):
    """An awkward behavior merged from modules, pickled by reference to them."""

    def __init__(self, sources: tuple[str, ...]) -> None:
        super().__init__()
        self.sources = sources
        for source in sources:
            if source == "vector":
                self.update(vector.backends.awkward.behavior)
            else:
                self.update(importlib.import_module(source).behavior)

    def __reduce__(self):
        return (behavior_of, (self.sources,))


@functools.cache
def behavior_of(sources: tuple[str, ...]) -> _Behavior:
    """The merged behavior of ``sources`` (``"vector"`` or a module with a ``behavior``
    dict, e.g. ``"coffea.nanoevents.methods.nanoaod"``), one object per process."""
    return _Behavior(tuple(sources))


#: The behavior attached to plain outputs: ``Momentum4D`` methods (``.mass``,
#: ``+``, ``.deltaR``), picklable with plain ``pickle``.
VECTOR_BEHAVIOR = behavior_of(("vector",))


#: The behavior attached to plain outputs: ``Momentum4D`` methods (``.mass``,
#: ``+``, ``.deltaR``), picklable with plain ``pickle``.
VECTOR_BEHAVIOR = behavior_of(("vector",))
