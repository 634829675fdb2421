"""Reading and writing candidates: ROOT trees <-> 4-momentum arrays."""

from .atomic import atomic_output, refuse_overwriting_inputs
from .layout import Layout
from .read import CandidateTable, NonFiniteWarning, read_candidates
from .write import FLAG_BRANCH, WEIGHT_BRANCH, RootWriter, write_candidates

__all__ = [
    "FLAG_BRANCH",
    "WEIGHT_BRANCH",
    "CandidateTable",
    "Layout",
    "NonFiniteWarning",
    "RootWriter",
    "atomic_output",
    "read_candidates",
    "refuse_overwriting_inputs",
    "write_candidates",
]
