"""Sphinx configuration for the vaeaug documentation (Markdown pages via MyST)."""

import importlib.util
import inspect
import re
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


# Some docstrings list their arguments zuko-style, one "name: description" line
# each (continuation lines indented), outside any "Args:" section. Plain
# reStructuredText reads those as broken definition lists and -W fails, so turn
# each such line that names a real parameter into a ":param name:" field.
_ARG_LINE = re.compile(r"^([A-Za-z_]\w*(?:, [A-Za-z_]\w*)*): (\S.*)$")


def _parameters(obj) -> set[str]:
    try:
        return set(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        return set()


def _arguments_as_fields(app, what, name, obj, options, lines) -> None:
    if what not in ("class", "function", "method", "exception"):
        return
    params = _parameters(obj)
    if not params:
        return
    out: list[str] = []
    in_field = False
    for line in lines:
        m = _ARG_LINE.match(line)
        names = m.group(1).split(", ") if m else []
        if names and all(n in params for n in names):
            if out and out[-1].strip() and not in_field:
                out.append("")
            out.append(f":param {m.group(1)}: {m.group(2)}")
            in_field = True
        elif in_field and line.startswith(" ") and line.strip():
            out.append(line)
        else:
            if in_field and line.strip():
                out.append("")
            in_field = False
            out.append(line)
    lines[:] = out


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _arguments_as_fields)
