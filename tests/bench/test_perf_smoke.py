"""bench/perf.py --quick: every row runs and reports a finite figure against its ceiling."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

PERF = Path(__file__).resolve().parents[2] / "bench" / "perf.py"


def test_perf_quick_reports_every_row(testdata, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(PERF), "--quick", "--results", str(tmp_path)]
    cmd += ["--data", str(testdata)]
    run = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, timeout=300)
    res = json.loads((tmp_path / "perf-cpu-quick" / "latest.json").read_text())
    md = run.stdout  # the tables are printed; the record is JSON
    assert not (tmp_path / "perf-cpu-quick" / "partial.json").exists()

    for row in (res["in_memory"]["fp32"], res["in_memory"]["bf16"], res["root"]):
        assert row["rate"] > 0 and math.isfinite(row["ratio"]) and row["ratio"] > 0
    assert res["root"]["io_ceiling"] > 0
    # bf16 keeps the physics of the same draws: the peak moves by much less than its width
    phys = res["in_memory"]["bf16_physics"]
    assert abs(phys["peak_shift_mev"]) < 0.1 * phys["fp32"]["width_mev"]
    assert [r["n"] for r in res["memory"]] == [10_000, 50_000]
    assert all(r["peak_rss_mb"] >= r["baseline_mb"] > 0 for r in res["memory"])
    assert res["training"]["vaeaug_seconds"] > 0 and "tvae" in res["training"]
    coffea = res["coffea"]
    if "skipped" not in coffea:
        assert coffea["events_per_s"]["bare"] > 0 and coffea["model_loads_in_this_process"] == 1
        ratios = [coffea["ratio_factor1_vs_bare"], coffea["ratio_factor10_vs_bare"]]
        ratios += [coffea["generated"][f]["ratio"] for f in ("1", "10")]
        assert all(math.isfinite(x) and x > 0 for x in ratios), ratios
        [mem] = coffea["memory"]  # a fresh process with and without Augment(factor=40)
        assert mem["with"]["output_rows"] == 40 * mem["events"] and mem["output_mb"] > 0
        assert mem["augment_call_extra_mb"] > 0 and "coffea: coffea.processor.Runner" in md
    assert "in-memory generation, fp32" in md and "generation to ROOT" in md
    # the parts of the GPU run that need CUDA are in the JSON, skipped with the reason
    assert "needs CUDA" in res["copies"]["skipped"] and "CUDA" in res["in_memory"]["tf32"]
    assert all(r["gpu_memory"].startswith("needs CUDA") for r in res["memory"])
    for name in ("network", "decoder", "plain_mlp_same_widths"):
        assert res["ceilings"][name]["fp32"]["rate"] > 0 and "CUDA" in res["ceilings"][name]["tf32"]
    assert "skipped" in res["ceilings"]["compiled"]


def test_perf_help_shows_no_machine_path():
    out = subprocess.run([sys.executable, str(PERF), "--help"], check=True, capture_output=True,
                         text=True, timeout=120).stdout  # fmt: skip
    assert "--results RESULTS" in out
    # the repository's and its parent's absolute paths are this machine's, not a default to show
    assert str(PERF.parents[1]) not in out and str(PERF.parents[2]) + "/" not in out
