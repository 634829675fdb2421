"""Sphinx configuration for the vaeaug documentation (Markdown pages via MyST)."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Build from the source tree, so the docs document this checkout even when
# vaeaug is not installed.
sys.path.insert(0, str(ROOT / "src"))


def _version() -> str:
    spec = importlib.util.spec_from_file_location(
        "_vaeaug_version", ROOT / "src/vaeaug/_version.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.__version__


project = "vaeaug"
author = "vaeaug developers"
copyright = "vaeaug developers"
release = _version()
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "dev", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Heavy optional dependencies are imported lazily by vaeaug; mock them here so
# that autodoc works on a machine with only the docs extra installed.
autodoc_mock_imports = ["coffea", "dask", "dask_awkward", "distributed", "pythia8mc"]
napoleon_google_docstring = True
napoleon_numpy_docstring = True

try:
    import furo  # noqa: F401
except ImportError:
    html_theme = "alabaster"
else:
    html_theme = "furo"
html_title = f"vaeaug {release}"
html_static_path: list[str] = []
