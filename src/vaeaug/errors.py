"""Errors raised on bad user input.

Every message says what was wrong and what would be valid; the CLI turns
:class:`InputError` into exit code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["InputError", "ModelFileError", "SupportLimitError", "close_matches"]


class InputError(ValueError):
    """Bad input from the user: a missing file, tree or branch, unusable values."""


class ModelFileError(InputError):
    """A model file that is missing, corrupt, or from an incompatible version."""


class SupportLimitError(InputError):
    """Sampling with ``support="reject"`` could not bring every candidate inside the
    training support: nothing is returned or written (``support="warn"`` keeps them)."""


def close_matches(name: str, candidates: Iterable[str], n: int = 5) -> str:
    """A short "close matches: a, b" phrase for error messages (empty if none)."""
    candidates = list(candidates)
    matches = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    if not matches:
        matches = [c for c in candidates if name.lower() in c.lower()][:n]
    return f"; close matches: {', '.join(matches)}" if matches else ""
