"""The documentation builds offline without a single Sphinx warning."""

from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_build_without_warnings(tmp_path):
    from sphinx.cmd.build import build_main

    out = tmp_path / "html"
    # -W turns warnings into errors; -E ignores any saved environment; -q keeps the log short.
    argv = ["-W", "-E", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)]
    assert build_main(argv) == 0
    assert (out / "index.html").exists()
    for page in ("installation", "examples"):
        assert (out / f"{page}.html").exists()
