"""Atomic output files: write to a temporary name, rename when complete.

An interrupted run (exception, Ctrl-C, kill) leaves no half-written output:
the temporary file is removed on error, and ``os.replace`` is atomic on POSIX.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import InputError

__all__ = ["atomic_output", "refuse_overwriting_inputs"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise InputError(f"output directory '{path.parent}' does not exist")
    tmp = path.with_name(f".{path.name}.part-{os.getpid()}")
    try:
        yield tmp
        # some writers create private (0600) files; give the result the
        # permissions of a plainly created file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def refuse_overwriting_inputs(
    output: str | os.PathLike, inputs: Sequence[str | os.PathLike]
) -> None:
    """Raise :class:`InputError` when ``output`` is one of ``inputs`` (same file)."""
    out = Path(output).resolve()
    for given in inputs:
        if given is None:
            continue
        inp = Path(given).resolve()
        same = out == inp or (out.exists() and inp.exists() and os.path.samefile(out, inp))
        if same:
            raise InputError(
                f"output '{output}' is the input file '{given}'; vaeaug never overwrites its "
                "input: choose another output path"
            )
