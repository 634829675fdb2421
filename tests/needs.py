"""Missing shared data or extras: a skip in a user's clone, a failure in CI.

CI (the ``CI`` environment variable, or ``VAEAUG_REQUIRE_TESTDATA=1`` as
``.ci/run`` sets) installs every extra and provides the shared ROOT files, so
there a missing one means the set-up is broken and the tests that need it
must fail, not vanish from the summary as skips.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest


def required() -> bool:
    """Whether missing data and extras are failures (CI) rather than skips."""
    return bool(os.environ.get("CI")) or os.environ.get("VAEAUG_REQUIRE_TESTDATA") == "1"


def missing(reason: str) -> None:
    """Fail (in CI) or skip (elsewhere) the current test or module, saying why."""
    if required():
        pytest.fail(f"{reason} (CI or VAEAUG_REQUIRE_TESTDATA=1: this must be present)",
                    pytrace=False)  # fmt: skip
    pytest.skip(reason, allow_module_level=True)


def need_module(name: str) -> ModuleType:
    """Import ``name``, an extra that CI always installs (:func:`missing` when absent)."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        missing(f"the optional dependency '{name}' is not installed ({err})")
        raise  # unreachable: missing() raises


def shared_data_folder() -> Path:
    """The shared data folder named by VAEAUG_TESTDATA (:func:`missing` when unset or absent)."""
    folder = os.environ.get("VAEAUG_TESTDATA")
    if not folder:
        missing("VAEAUG_TESTDATA is not set (the shared ROOT files are not available)")
    path = Path(folder).resolve()
    if not path.is_dir():
        missing(f"VAEAUG_TESTDATA={folder} is not a directory")
    return path


def need_file(path: Path) -> Path:
    """``path``, a shared data file (:func:`missing` when absent)."""
    if not path.is_file():
        missing(f"the shared data file {path} is missing")
    return path
