"""The old home of :class:`~vaeaug.io.candidates.Candidates`: import it from :mod:`vaeaug.io`.

Read and generated candidates share one container, defined in the lowest layer
(:mod:`vaeaug.io.candidates`); this module only keeps old imports working.
"""

from __future__ import annotations

from ..io.candidates import Candidates

__all__ = ["Candidates"]
