"""bench/ensemble.py end to end at a CI size (its numbers mean nothing at this size)."""

from __future__ import annotations

import json

import pytest
from test_bench_smoke import _load


@pytest.mark.testdata
@pytest.mark.filterwarnings("ignore::UserWarning")  # tiny members: support warnings
def test_ensemble_bench_records_coverage_cost_and_forecast(testdata, tmp_path, monkeypatch):
    monkeypatch.setenv("VAEAUG_TESTDATA", str(testdata))
    bench = _load("ensemble")
    argv = ["--n", "300", "--members", "2", "--epochs", "2", "--generated", "2000",
            "--results", str(tmp_path)]  # fmt: skip
    result = bench.main(argv)
    saved = json.loads((tmp_path / "ensemble_coverage" / "latest.json").read_text())
    s = saved["summary"]
    assert s == json.loads(json.dumps(result["summary"]))
    assert s["features"] == len(saved["features"]) == 24
    assert 0 <= s["coverage_stat"] <= s["coverage"] <= 1  # the band only widens the error
    assert s["train_cpu_ratio"] > 1 and s["epochs_members"] == [2, 2]
    assert s["forecast_amplification"] > 0 and saved["settings"]["members"] == 2
