"""Reading and writing candidates: ROOT trees <-> 4-momentum arrays (:class:`Candidates`)."""

from .atomic import (
    atomic_output,
    check_output_dir,
    check_output_path,
    refuse_overwriting_inputs,
)
from .candidates import Candidates
from .coerce import as_candidates
from .layout import Layout
from .read import IntegerBranchWarning, NonFiniteWarning, UnphysicalWarning, read_candidates
from .write import (
    FLAG_BRANCH,
    NANOAOD_FLAG_BRANCH,
    WEIGHT_BRANCH,
    RootWriter,
    estimate_bytes,
    flag_branch,
    write_candidates,
)

__all__ = [
    "FLAG_BRANCH",
    "NANOAOD_FLAG_BRANCH",
    "WEIGHT_BRANCH",
    "Candidates",
    "IntegerBranchWarning",
    "Layout",
    "NonFiniteWarning",
    "RootWriter",
    "UnphysicalWarning",
    "as_candidates",
    "atomic_output",
    "check_output_dir",
    "check_output_path",
    "estimate_bytes",
    "flag_branch",
    "read_candidates",
    "refuse_overwriting_inputs",
    "write_candidates",
]
