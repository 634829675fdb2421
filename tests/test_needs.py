"""In CI a missing shared-data folder or extra fails the tests that need it; elsewhere it skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/core/test_io_read_write.py::test_shared_nanoaod_and_hzz_collections"
PYTHIA_TESTS = ["tests/examples/test_decays_pythia.py", "tests/examples/test_dmeson_pythia.py"]


def _run(*tests: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "VAEAUG_REQUIRE_TESTDATA")}
    # no -n: one process, and no need for pytest-xdist
    cmd = [sys.executable, "-m", "pytest", *(tests or [TEST]), "-q", "-p", "no:cacheprovider",
           "-rsf"]  # fmt: skip
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


@pytest.fixture
def without_pythia(tmp_path) -> str:
    """A PYTHONPATH on which ``import pythia8mc`` fails, as where the extra is not installed."""
    (tmp_path / "pythia8mc.py").write_text(
        "raise ModuleNotFoundError('no pythia8mc here (test)', name='pythia8mc')\n"
    )
    return os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])


def test_missing_extra_fails_the_pythia_tests_in_ci(without_pythia):
    result = _run(*PYTHIA_TESTS, PYTHONPATH=without_pythia, VAEAUG_REQUIRE_TESTDATA="1")
    assert result.returncode == pytest.ExitCode.INTERRUPTED, result.stdout  # collection errors
    assert "2 errors" in result.stdout  # each module fails to collect, none is skipped
    assert "skipped" not in result.stdout
    assert "the optional dependency 'pythia8mc' is not installed" in result.stdout
    assert "this must be present" in result.stdout


def test_missing_extra_skips_the_pythia_tests_in_a_users_clone(without_pythia):
    result = _run(*PYTHIA_TESTS, PYTHONPATH=without_pythia)
    # both modules skipped whole: pytest's exit code for "no tests collected"
    assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout
    assert "2 skipped" in result.stdout
    assert "the optional dependency 'pythia8mc' is not installed" in result.stdout


def test_no_test_skips_a_missing_extra_on_its_own():
    """``pytest.importorskip`` skips in CI too: tests use needs.need_module instead."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("*.py")
        if p.name != "test_needs.py" and "importorskip(" in p.read_text()
    ]
    assert offenders == []


def test_ci_script_requires_the_data():
    assert "export VAEAUG_REQUIRE_TESTDATA=1" in (ROOT / ".ci" / "run").read_text()
