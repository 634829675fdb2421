"""Run ``vaeaug demo`` as the quick start does and keep what it printed and measured.

The quick start (docs/quickstart.md) quotes the demo's printed lines and the
headline table of its validation report; README.md and docs/limitations.md
quote its C2ST AUC. This script runs the demo in a subprocess, exactly as a
user would (``vaeaug demo --out DIR``, one thread), and writes

``bench/results/demo/latest.json`` (and a line of ``history.jsonl``, through
``_record.record``): the command, the lines it printed (stdout), the wall time, the
machine, the report's headline table, and the validation report's ``summary.json``
as written by the demo. It prints the lines and the headline table verbatim, as the
quick start pastes them.

::

    OMP_NUM_THREADS=1 python bench/demo_numbers.py   # --results DIR: another folder

``--keep DIR`` keeps the demo's output folder (default: a temporary folder,
removed afterwards); extra arguments after ``--`` go to ``vaeaug demo``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from _record import add_results_arguments
from _record import record as write_record


def headline_table(report_md: str) -> list[str]:
    """The first Markdown table of a validation report, line by line."""
    lines = report_md.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        return []
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[start:end]


def run_demo(out_dir: Path, extra: list[str]) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    argv = [sys.executable, "-m", "vaeaug", "demo", "--out", str(out_dir), "-q", *extra]
    t0 = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if run.returncode != 0:
        sys.stderr.write(run.stderr)
        raise SystemExit(f"vaeaug demo failed with exit code {run.returncode}")
    return {
        "command": ["vaeaug", "demo", "--out", str(out_dir), "-q", *extra],
        "stdout": run.stdout.splitlines(),
        "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_results_arguments(parser)
    parser.add_argument("--keep", default=None, help="keep the demo's output folder here")
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]

    import torch

    import vaeaug

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(args.keep) if args.keep else Path(tmp) / "demo"
        record = run_demo(out_dir, extra)
        summary = json.loads((out_dir / "validation" / "summary.json").read_text())
        table = headline_table((out_dir / "validation" / "report.md").read_text())
    summary.pop("files", None)  # paths of a temporary folder
    record.update(
        vaeaug=vaeaug.__version__,
        torch=torch.__version__,
        machine=machine(),
        headline_table=table,
        summary=summary,
    )
    out = write_record(
        "demo",
        record,
        results=Path(args.results),
        argv=["bench/demo_numbers.py", *(sys.argv[1:] if argv is None else argv)],
    )
    md = ["```text", *record["stdout"], "```", "", *table, ""]
    print("\n".join(md))
    print(f"demo: {record['wall_s']} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
