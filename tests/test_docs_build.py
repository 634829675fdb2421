"""The documentation builds offline without a single Sphinx warning."""

import subprocess
import sys
from pathlib import Path

from needs import need_module

need_module("sphinx")
need_module("myst_parser")

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = (
    "installation",
    "quickstart",
    "guide/index",
    "guide/representations",
    "guide/training",
    "guide/model-files",
    "guide/coffea",
    "guide/dask",
    "guide/validation",
    "guide/ensembles",
    "guide/training-sets",
    "guide/reproducibility",
    "api",
    "benchmarks",
    "performance",
    "limitations",
    "examples",
)


def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    # -W turns warnings into errors; -E ignores any saved environment; -q keeps the log short.
    # A subprocess, because autodoc mocks coffea and dask in sys.modules while it imports
    # vaeaug, and conf.py edits sys.path: neither may leak into the rest of the test session.
    argv = ["-W", "-E", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)]
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", *argv], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-5000:]
    assert (out / "index.html").exists()
    for page in PAGES:
        assert (out / f"{page}.html").exists(), page
    # the API reference really holds the docstrings (autodoc imported the package)
    api = (out / "api.html").read_text()
    for name in (
        "vaeaug.fit",
        "vaeaug.Model.sample",
        "vaeaug.augment_training_set",
        "vaeaug.TrainingSet.features",
        "vaeaug.VAEConfig",
        "vaeaug.representations.DecayRepresentation",
        "vaeaug.validation.report.validate",
    ):
        assert f'id="{name}"' in api, name
    assert "Train a model on decay candidates" in api
