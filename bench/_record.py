"""Benchmark records a reader can trace: ``bench/results/<benchmark>/latest.json`` and
``history.jsonl`` (one line a run), each carrying the commit, a hash of ``src/``, the
command, the date and the machine."""

from __future__ import annotations

import datetime
import hashlib
import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["RESULTS", "add_results_arguments", "provenance", "record", "run_tasks", "src_hash"]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def src_hash(root: Path = ROOT) -> str:
    """sha256 over the paths and bytes of every file under ``src/`` (sorted)."""
    h = hashlib.sha256()
    for path in sorted((root / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance(argv: Sequence[str]) -> dict[str, Any]:
    """Who made a result: commit (``+dirty`` when src/ or bench/ differ from it), the hash
    of src/, the command, the UTC date and the machine."""
    from _common import machine

    dirty = _git("status", "--porcelain", "--", "src", "bench/*.py")
    return {
        "commit": _git("rev-parse", "HEAD") + ("+dirty" if dirty else ""),
        "src_sha256": src_hash(),
        "command": shlex.join(["python", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
    }


def record(
    benchmark: str,
    result: dict[str, Any],
    *,
    argv: Sequence[str] = sys.argv,
    results: Path = RESULTS,
    started: dict[str, Any] | None = None,
) -> Path:
    """Write ``result`` with its provenance to ``<results>/<benchmark>/latest.json``; append
    it to ``<results>/<benchmark>/history.jsonl``. Returns the path of latest.json.

    ``started``: the :func:`provenance` taken when the run began (a long run's commit is
    the one it started on, whatever is committed while it runs); default: taken now."""
    from _common import write_json

    from vaeaug.validation.report import jsonable

    folder = Path(results) / benchmark
    folder.mkdir(parents=True, exist_ok=True)
    full = {"benchmark": benchmark, "provenance": started or provenance(argv), **result}
    write_json(folder / "latest.json", full)
    with open(folder / "history.jsonl", "a") as f:
        f.write(json.dumps(jsonable(full), allow_nan=False, separators=(",", ":")) + "\n")
    return folder / "latest.json"


def add_results_arguments(parser, benchmark: str | None = None) -> None:
    """``--results DIR`` (default bench/results) and, with a ``benchmark`` name, ``--benchmark``
    (the record's folder name, defaulting to it)."""
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="results folder: writes <results>/<benchmark>/latest.json and "
                             "history.jsonl")  # fmt: skip
    if benchmark is not None:
        parser.add_argument("--benchmark", default=benchmark,
                            help=f"the record's folder name (default {benchmark})")  # fmt: skip


def run_tasks(func, tasks: Sequence, jobs: int, minutes: float | None = None) -> list:
    """``func(task)`` for every task in ``jobs`` spawned processes, results concatenated in
    task order. With ``minutes``, no result is waited for once the budget is spent: the
    workers are stopped and the results so far are returned. A worker that dies (killed for
    memory) loses its task and, the pool being broken, those not finished: a warning names
    them and the results of the finished tasks are returned (a ``multiprocessing.Pool``
    would wait for the lost task forever)."""
    import multiprocessing
    import time
    import warnings
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    deadline = None if minutes is None else time.time() + 60 * minutes
    results: dict[int, list] = {}
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(jobs, mp_context=context)
    index = {executor.submit(func, task): i for i, task in enumerate(tasks)}
    pending, lost = set(index), []
    try:
        while pending:
            # the first result is always waited for: a budget shorter than one task still
            # gives a row
            timeout = None if deadline is None or not results else max(0.0, deadline - time.time())
            done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    results[index[future]] = future.result()
                except Exception as err:  # BrokenProcessPool: a worker died
                    lost.append((index[future], type(err).__name__))
            if deadline is not None and results and time.time() > deadline:
                break
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():
            child.terminate()
    if lost:
        warnings.warn(f"{len(lost)} tasks lost (task index, error): {sorted(lost)}", stacklevel=2)
    return [row for i in sorted(results) for row in results[i]]
