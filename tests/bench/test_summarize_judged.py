"""bench/summarize_judged.py: seeds, sizes and generators of the fidelity summary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from summarize_judged import fidelity_summary, fidelity_tables


def _row(dataset, size, seed, generator, c2st):
    return {"dataset": dataset, "n_train": size, "seed": seed, "generator": generator,
            "c2st_auc": c2st, "c2st_mlp": c2st, "c2st_floor": 0.5, "c2st_mlp_floor": 0.5,
            "fit_s": 10.0 if generator.startswith("vaeaug") else 5.0, "sample_rate": 100.0,
            "amplification": 1.0, "peak_shift_mev": 0.0, "width_ratio": 1.0}  # fmt: skip


def test_merged_runs_summarise_each_generator_over_its_own_seeds():
    # seed 1 from an older run without refinement, seeds 2-3 with it; seed 4 lost its flow
    rows = [_row("dplus", 1000, 1, g, 0.60) for g in ("vaeaug", "nsf")]
    rows += [_row("dplus", 1000, s, g, c) for s in (2, 3)
             for g, c in (("vaeaug", 0.58), ("vaeaug, refined", 0.55), ("nsf", 0.59))]  # fmt: skip
    rows += [_row("dplus", 1000, 4, "vaeaug", 0.1)]
    entry = fidelity_summary({"rows": rows})["dplus"]
    assert entry["seeds"] == [1, 2, 3]  # seed 4 has no flow row: not counted
    assert entry["vaeaug"]["seeds"] == [1, 2, 3]
    assert entry["vaeaug"]["c2st_hgb"]["mean"] == pytest.approx((0.60 + 0.58 + 0.58) / 3)
    assert entry["vaeaug, refined"]["seeds"] == [2, 3]
    assert entry["vaeaug, refined"]["c2st_hgb"]["mean"] == pytest.approx(0.55)
    assert entry["lowest_hgb"] == {"vaeaug": 1, "vaeaug, refined": 2, "nsf": 0}
    assert entry["fit_ratio_vaeaug_to_nsf"] == pytest.approx(2.0)


def test_a_run_of_several_sizes_keys_each_size():
    rows = [_row("dimuon", n, 1, g, 0.7) for n in (400, 2000) for g in ("vaeaug", "nsf")]
    summary = fidelity_summary({"rows": rows})
    assert set(summary) == {"dimuon_N400", "dimuon_N2000"}
    assert summary["dimuon_N400"]["n_train"] == 400
    table = fidelity_tables({"datasets": summary})
    assert "| dimuon spectrum (400) |" in table and "| dimuon spectrum (2,000) |" in table
