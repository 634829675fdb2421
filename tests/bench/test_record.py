"""bench/_record.py: records with provenance and the budgeted process pool."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _record import record, run_tasks, src_hash


def _rows(i: int) -> list[int]:
    return [i, 10 * i]


def test_run_tasks_keeps_task_order_and_stops_at_the_budget():
    assert run_tasks(_rows, [1, 2, 3], jobs=2) == [1, 10, 2, 20, 3, 30]
    # a spent budget returns the first result and stops the pool
    assert run_tasks(_slow_after_first, [1, 2, 3, 4, 5, 6], jobs=1, minutes=0) == [1, 10]


def _slow_after_first(i: int) -> list[int]:
    import time

    if i > 1:
        time.sleep(2.0)  # still running when the first result has been read
    return _rows(i)


def test_record_writes_latest_and_appends_history(tmp_path):
    for value in (1, 2):
        path = record("demo", {"value": value}, argv=["bench/x.py"], results=tmp_path)
    latest = json.loads(path.read_text())
    history = [
        json.loads(line) for line in (tmp_path / "demo" / "history.jsonl").read_text().splitlines()
    ]
    assert latest["value"] == 2 and [h["value"] for h in history] == [1, 2]
    assert latest["provenance"]["src_sha256"] == src_hash()
    assert latest["provenance"]["command"] == "python bench/x.py"


def _rows_or_die(i: int) -> list[int]:
    import os

    if i == 2:
        os._exit(9)  # a worker killed (for memory, say)
    return [i]


def test_a_dead_worker_loses_its_tasks_not_the_finished_ones():
    import pytest

    with pytest.warns(UserWarning, match="tasks lost"):
        out = run_tasks(_rows_or_die, [1, 2], jobs=1)
    assert out == [1]
