"""In CI a missing shared-data folder or extra fails the tests that need it; elsewhere it skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/core/test_io_read_write.py::test_shared_nanoaod_and_hzz_collections"


def _run(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "VAEAUG_REQUIRE_TESTDATA")}
    # one process: the suite's "-n 2" would start two workers to run one test
    cmd = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider", "-rsf", "-n", "0"]
    return subprocess.run(cmd, cwd=ROOT, env={**base, **env}, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("folder", "flag"),
    [("/nonexistent/shared/data", {"CI": "true"}), ("", {"VAEAUG_REQUIRE_TESTDATA": "1"})],
)
def test_missing_data_fails_in_ci(folder, flag):
    result = _run(VAEAUG_TESTDATA=folder, **flag)
    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout  # the testdata fixture fails
    assert "this must be present" in result.stdout


def test_missing_data_skips_in_a_users_clone_and_says_why():
    result = _run(VAEAUG_TESTDATA="/nonexistent/shared/data")
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "VAEAUG_TESTDATA=/nonexistent/shared/data is not a directory" in result.stdout


def test_ci_script_requires_the_data():
    assert "export VAEAUG_REQUIRE_TESTDATA=1" in (ROOT / ".ci" / "run").read_text()
