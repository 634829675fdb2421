"""Checks of an output before any work: room on the disk (candidates, a model file), a
directory of partition files.

The checks of a single output file or directory (writable, never an input, the
overwrite rule) are in :mod:`vaeaug.io.atomic`, beside the atomic writer they prepare for.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..errors import InputError
from .atomic import check_output_dir
from .layout import Layout
from .write import estimate_bytes

__all__ = ["check_free_space", "check_model_space", "check_parts_dir"]

#: A model file's header beyond its tensors: the JSON metadata (support bounds, the
#: per-epoch history, provenance), generously.
MODEL_HEADER_BYTES = 256_000


def _human(n_bytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n_bytes < 1000 or unit == "TB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1000
    raise AssertionError  # unreachable


def check_free_space(layout: Layout, n: int, out: str | os.PathLike, option: str,
                     extra: dict[str, str] | None = None) -> None:  # fmt: skip
    """Refuse an output of ``n`` candidates that would not fit on the disk of ``out``.

    Args:
        layout: the branches written (:func:`~vaeaug.io.write.estimate_bytes`).
        n: the candidates to write.
        out: the output path (its directory's file system is checked).
        option: the option that set ``n``, named in the error (e.g. ``"-n"``).
        extra: extra branches, name -> dtype string.
    """
    need = estimate_bytes(layout, n, extra)
    free = _free_bytes(out)
    if need > free:
        per = max(1, estimate_bytes(layout, 1, extra))
        raise InputError(
            f"{option}: {n} candidates would take about {_human(need)} ({per} bytes each) in "
            f"'{out}', but only {_human(free)} are free there; at most about {free // per} fit"
        )


def _free_bytes(out: str | os.PathLike) -> int:
    """Free bytes on the file system of the directory of ``out`` (its nearest existing
    ancestor when the directory is still to be created)."""
    directory = Path(out).resolve().parent
    while not directory.exists():
        directory = directory.parent
    return shutil.disk_usage(directory).free


def check_model_space(tensor_bytes: int, out: str | os.PathLike, option: str) -> None:
    """Refuse a model file of ``tensor_bytes`` (plus its header) that would not fit on the
    disk of ``out``, before training; ``option`` (e.g. ``"-o/--output"``) is named in the
    error."""
    need = tensor_bytes + MODEL_HEADER_BYTES
    free = _free_bytes(out)
    if need > free:
        raise InputError(
            f"{option}: the model file would take about {_human(need)} in '{out}', but only "
            f"{_human(free)} are free there; free some space or write it elsewhere"
        )


def check_parts_dir(path: str | os.PathLike, prefix: str, overwrite: bool,
                    option: str = "-o/--output") -> Path:  # fmt: skip
    """Refuse an output directory of ``<prefix>-part<i>.root`` files before any work.

    As :func:`~vaeaug.io.atomic.check_output_path` does for files: an existing
    directory is replaced only with ``overwrite`` and only when it holds nothing
    but ``<prefix>-part<i>.root`` files (a previous output), never another
    directory. Returns the resolved path.
    """
    if not str(path).strip():
        raise InputError(f"{option} is empty; give a directory name, e.g. generated")
    out = Path(path).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} '{path}' is a file; with --dask -o names a directory "
                         "(one ROOT file per partition), created by the run")  # fmt: skip
    if out.is_dir():
        if not overwrite:
            raise InputError(f"{option} '{path}' exists; vaeaug does not replace a "
                             "directory unless --overwrite (-f) is given")  # fmt: skip
        own = re.compile(rf"{re.escape(prefix)}-part\d+\.root")
        foreign = sorted(f.name for f in out.iterdir() if not own.fullmatch(f.name) or f.is_dir())
        if foreign:
            raise InputError(
                f"{option} '{path}' holds {', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}: -f replaces only a directory of "
                f"{prefix}-part<i>.root files (a previous --dask output); choose another name"
            )
    if not out.parent.is_dir():
        raise InputError(f"output directory '{out.parent}' of {option} does not exist; "
                         "create it first")  # fmt: skip
    check_output_dir(out.parent, option)  # writable
    return out
