"""bench/conversion.py on a small sample: every variant reports a rate, the two paths agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "conversion.py"


def test_conversion_benchmark_writes_rates_and_precision(testdata, tmp_path):
    out = tmp_path / "conversion" / "latest.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(SCRIPT), "--n", "70000", "--repeats", "1", "--data",
           str(testdata), "--results", str(tmp_path)]  # fmt: skip
    run = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, timeout=300)
    res = json.loads(out.read_text())
    assert len(res["best_rate"]) == 4 and all(r > 0 for r in res["best_rate"].values())
    assert res["cpu_keeps_numpy"] == (res["torch_over_numpy"] <= 1.1)
    assert res["max_rel_diff_dplus"] < 1e-9
    assert {r["bodies"] for r in res["precision"]} == {2, 3, 4, 5}
    assert all(r["max_rel_diff"] < 1e-9 for r in res["precision"])
    assert res["torch_ops_per_call"]["non_view"] > 100
    assert "torch float64, 65,536-row slices" in run.stdout  # the table is printed
    assert res["provenance"]["command"].startswith("python bench/conversion.py --n 70000")
