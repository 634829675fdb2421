"""Atomic outputs: write to a temporary name, rename when complete.

An interrupted run (exception, Ctrl-C, SIGTERM) leaves no half-written output:
the temporary file ``.NAME.part-<pid>`` is removed on error, and ``os.replace``
is atomic on POSIX. A run killed outright (``kill -9``, a crash) cannot clean
up; the next run writing beside it removes the parts whose process is gone.

The temporary may also be a directory (``vaeaug generate --dask`` writes one
file per partition into it): it is removed whole on error, and renamed to the
output when complete; an existing output directory being replaced is first
moved aside to ``.NAME.old-<pid>`` and removed once the new one is in place.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import InputError

__all__ = [
    "atomic_output",
    "check_output_dir",
    "check_output_path",
    "part_name",
    "refuse_overwriting_inputs",
    "remove_stale_parts",
]

#: errno values that mean "this output cannot be written here" (not a bug):
#: permissions, read-only file system, full disk or quota, a file-size limit.
WRITE_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
)
_PART = re.compile(r"\.(?:part|old)-(\d+)$")


def part_name(path: str | os.PathLike, pid: int | None = None) -> Path:
    """The temporary name of ``path`` while process ``pid`` writes it: ``.NAME.part-<pid>``."""
    path = Path(path)
    return path.with_name(f".{path.name}.part-{os.getpid() if pid is None else pid}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove(path: Path) -> None:
    """Remove a file or a whole directory tree (a symbolic link itself, not its target)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def remove_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Remove ``.NAME.part-<pid>`` (and ``.NAME.old-<pid>``) files or directories beside
    ``path`` whose process is gone; returns them."""
    path = Path(path)
    removed = []
    with contextlib.suppress(OSError):
        for kind in ("part", "old"):
            for part in path.parent.glob(f".{glob.escape(path.name)}.{kind}-*"):
                match = _PART.search(part.name)
                if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
                    with contextlib.suppress(FileNotFoundError):
                        _remove(part)
                        removed.append(part)
    return removed


def check_output_path(
    path: str | os.PathLike,
    option: str = "-o/--output",
    *,
    model: bool = False,
    overwrite: bool = False,
) -> Path:
    """Refuse an output ``path`` that cannot be written, before any work is done.

    Raises InputError (naming ``option``) when ``path`` is empty, names a
    directory, lies in a directory that does not exist or is not writable,
    names an existing ROOT file when a model file is to be written (``model``:
    never, whatever ``overwrite``), or names any existing file unless
    ``overwrite`` is set.
    """
    if not str(path).strip():
        raise InputError(f"{option} is empty; give a file name, e.g. out.root")
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"{option} '{path}' is a directory; give a file name in it, e.g. '{path / 'out.root'}'"
        )
    if model and path.is_file():
        magic = b""
        with contextlib.suppress(OSError), open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"root":
            raise InputError(
                f"{option} '{path}' is a ROOT file; a model file is never written over "
                "data: choose another name, e.g. model.safetensors"
            )
    if path.is_file() and not overwrite:
        raise InputError(
            f"{option} '{path}' exists; vaeaug does not replace a file unless "
            "--overwrite (-f) is given"
        )
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise InputError(f"output directory '{parent}' of {option} {what}; create it first")
    _probe(parent, option)
    return path


def check_output_dir(path: str | os.PathLike, option: str = "--out", *,
                     writes: Sequence[str] = (), overwrite: bool = False) -> Path:  # fmt: skip
    """Refuse an output directory that is a file or cannot be created or written, or that
    already holds one of the files the command ``writes`` (names relative to it) unless
    ``overwrite``.

    Missing directories are fine (they are created later) when the nearest
    existing one above them is writable.
    """
    if not str(path).strip():
        raise InputError(f"{option} is empty; give a directory name, e.g. report")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(
            f"{option} '{path}' is an existing file; {option} names a directory (created if missing)"
        )
    taken = [name for name in writes if (path / name).exists()]
    if taken and not overwrite:
        raise InputError(
            f"{option} '{path}' already holds {', '.join(taken[:4])}{' ...' if len(taken) > 4 else ''}; "
            "vaeaug does not replace files unless --overwrite (-f) is given, or choose "
            f"another {option}"
        )
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{option} '{path}' cannot be created: '{existing}' is a file")
    _probe(existing, option)
    return path


def _probe(directory: Path, option: str) -> None:
    try:
        # a real probe: os.access says yes to root even on a read-only mount
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".vaeaug-probe-"):
            pass
    except OSError as err:
        raise InputError(
            f"directory '{directory}' of {option} is not writable ({err.strerror})"
        ) from err


def _replace_dir(tmp: Path, path: Path) -> None:
    """Rename the directory ``tmp`` to ``path``, replacing an existing directory there."""
    if not path.is_dir() or path.is_symlink():
        os.replace(tmp, path)
        return
    # rename cannot replace a non-empty directory: move the old one aside first
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _proc_umask() -> int | None:
    """The process's umask as /proc/self/status shows it (Linux), without changing it; else None."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return None


def _import_umask() -> int:
    umask = _proc_umask()
    if umask is None:
        # os.umask reads the mask only by setting it, for the whole process: done once,
        # at import, never while generation threads create files
        umask = os.umask(0o022)
        os.umask(umask)
    return umask


_IMPORT_UMASK = _import_umask()


def _umask() -> int:
    """The umask, read without setting it: the current one on Linux, the import's elsewhere."""
    umask = _proc_umask()
    return _IMPORT_UMASK if umask is None else umask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The caller creates a file or a directory at the temporary path; a directory
    replaces an existing directory ``path`` whole (the caller decides whether that
    may be replaced). A write that fails for want of permission, space or a
    file-size limit is re-raised as an :class:`OSError` naming ``path`` (not the
    temporary name).
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise InputError(f"output directory '{path.parent}' does not exist")
    remove_stale_parts(path)
    tmp = part_name(path)
    try:
        yield tmp
        # some writers create private (0600) files; give the result the
        # permissions of a plainly created file
        umask = _umask()
        if tmp.is_dir():
            os.chmod(tmp, 0o777 & ~umask)
            _replace_dir(tmp, path)
        else:
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            _remove(tmp)
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            raise OSError(err.errno, os.strerror(err.errno), str(path)) from err
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
