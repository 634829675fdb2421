"""Atomic outputs: write to a temporary name, rename when complete.

An interrupted run (exception, Ctrl-C, SIGTERM) leaves no half-written output:
the temporary file ``.NAME.part-<pid>`` is removed on error, and ``os.replace``
is atomic on POSIX. A run killed outright (``kill -9``, a crash) cannot clean
up; the next run writing beside it removes the parts whose process is gone.

The temporary may also be a directory (``vaeaug generate --dask`` writes one
file per partition into it): it is removed whole on error, and renamed to the
output when complete; an existing output directory being replaced is first
moved aside to ``.NAME.old-<pid>`` and removed once the new one is in place.

Only regular files (or new paths) are outputs: a device, a FIFO, a socket, a
directory where a file is expected, or a symbolic link is never written through or
replaced (a link would be replaced by a file, leaving its target as it was: a
surprise either way; give the target's path instead). Without ``overwrite`` the
final rename is exclusive (``os.link``, which fails when the name exists), so of two
runs writing the same new path one fails instead of silently replacing the other's.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import InputError

__all__ = [
    "PART_MARKER",
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
#: The file that marks a temporary directory as vaeaug's (removed before the final rename).
PART_MARKER = ".vaeaug-part"
#: errno values of ``os.link`` on file systems without hard links (FAT, some network ones).
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK})


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


def _is_vaeaug_part(part: Path) -> bool:
    """Whether ``part`` holds what vaeaug writes, never following a symbolic link: a regular
    file that starts as a ROOT file (``root``) or a safetensors file (an 8-byte little-endian
    header length, then ``{``), or a directory marked with :data:`PART_MARKER`."""
    st = os.lstat(part)
    if stat.S_ISDIR(st.st_mode):
        return stat.S_ISREG(os.lstat(part / PART_MARKER).st_mode)
    if not stat.S_ISREG(st.st_mode):
        return False
    fd = os.open(part, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        head = f.read(9)
    return head[:4] == b"root" or (len(head) == 9 and head[8:9] == b"{")


def remove_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Remove the ``.NAME.part-<pid>`` (and ``.NAME.old-<pid>``) files or directories beside
    ``path`` whose process is gone and whose content is vaeaug's (:func:`_is_vaeaug_part`);
    returns them. Anything else of that name (a user's file, a symbolic link, a part of a
    live process) is left alone."""
    path = Path(path)
    removed = []
    with contextlib.suppress(OSError):
        for kind in ("part", "old"):
            for part in path.parent.glob(f".{glob.escape(path.name)}.{kind}-*"):
                match = _PART.search(part.name)
                if not match or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
                    continue
                with contextlib.suppress(OSError):
                    if _is_vaeaug_part(part):
                        _remove(part)
                        removed.append(part)
    return removed


def _refuse_special(path: Path, option: str) -> None:
    """Refuse an existing ``path`` that is not a regular file (a device such as /dev/null, a
    FIFO, a socket) or that is a symbolic link, whatever the overwrite rule."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise InputError(
            f"{option} '{path}' is a symbolic link; vaeaug neither writes through nor replaces "
            f"links: give the path it points to ('{os.path.realpath(path)}') or another name"
        )
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{option} '{path}' is not a regular file; vaeaug writes only regular files or new paths"
        )


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
    never, whatever ``overwrite``), names something that is not a regular file
    (a device, a FIFO, a socket) or a symbolic link (never, whatever ``overwrite``),
    or names any existing file unless ``overwrite`` is set.
    """
    if not str(path).strip():
        raise InputError(f"{option} is empty; give a file name, e.g. out.root")
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"{option} '{path}' is a directory; give a file name in it, e.g. '{path / 'out.root'}'"
        )
    _refuse_special(path, option)
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
        # a kill -9 from here on leaves `old` behind: marked, the next run removes it
        (old / PART_MARKER).touch()
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            (old / PART_MARKER).unlink()
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _rename_file(tmp: Path, path: Path, overwrite: bool) -> None:
    """Rename the file ``tmp`` to ``path``: replacing a regular file there only with
    ``overwrite``, never anything else (:func:`_refuse_special`)."""
    _refuse_special(path, "output")
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        # exclusive: fails with EEXIST when the name appeared meanwhile (another run)
        os.link(tmp, path)
    except FileExistsError as err:
        raise InputError(
            f"output '{path}' appeared while this run wrote it (another run writing the same "
            "file?); it was left as it is: rerun with --overwrite (-f) to replace it, or "
            "choose another name"
        ) from err
    except OSError as err:
        if err.errno not in _NO_LINKS:
            raise
        # no hard links on this file system: as close as a rename comes
        if os.path.lexists(path):
            raise InputError(f"output '{path}' appeared while this run wrote it; it was left "
                             "as it is: rerun with --overwrite (-f) to replace it") from err  # fmt: skip
        os.replace(tmp, path)
        return
    os.unlink(tmp)


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
def atomic_output(
    path: str | os.PathLike, *, overwrite: bool = True, directory: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The caller creates a file at the temporary path, or fills the directory created
    there when ``directory`` (marked as vaeaug's with :data:`PART_MARKER` while it is
    written). A directory replaces an existing directory ``path`` whole (the caller
    decides whether that may be replaced). A file replaces an existing regular file
    only when ``overwrite``; without it the rename is exclusive and a file that
    appeared at ``path`` meanwhile raises :class:`~vaeaug.errors.InputError` and stays.
    Whatever ``overwrite``, a path that is not a regular file is never replaced. A
    write that fails for want of permission, space or a file-size limit is re-raised
    as an :class:`OSError` naming ``path`` (not the temporary name).
    """
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise InputError(f"output directory '{path.parent}' does not exist")
    remove_stale_parts(path)
    tmp = part_name(path)
    try:
        if directory:
            tmp.mkdir()
            (tmp / PART_MARKER).touch()
        yield tmp
        # some writers create private (0600) files; give the result the
        # permissions of a plainly created file
        umask = _umask()
        if tmp.is_dir():
            (tmp / PART_MARKER).unlink(missing_ok=True)
            os.chmod(tmp, 0o777 & ~umask)
            _replace_dir(tmp, path)
        else:
            os.chmod(tmp, 0o666 & ~umask)
            _rename_file(tmp, path, overwrite)
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
