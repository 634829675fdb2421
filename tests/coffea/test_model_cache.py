"""The model is loaded at most once per worker process, however many chunks it processes."""

from __future__ import annotations

import os

import awkward as ak
import pytest
import vector
from coffea import processor
from coffea.nanoevents import BaseSchema

import vaeaug
from vaeaug.integrations.coffea import model_load_count

pytestmark = pytest.mark.testdata


class LoadCounter(processor.ProcessorABC):
    """Augments HZZ dimuons; reports the chunks seen and each process's model-load count."""

    def __init__(self, augment: vaeaug.Augment) -> None:
        self.augment = augment

    def process(self, events):
        muons = ak.zip({"px": events.Muon_Px, "py": events.Muon_Py, "pz": events.Muon_Pz,
                        "E": events.Muon_E, "charge": events.Muon_Charge},
                       with_name="Momentum4D", behavior=vector.backends.awkward.behavior)  # fmt: skip
        gen = self.augment(vaeaug.candidates(muons, n=2, charge="opposite", fields=["mu1", "mu2"]))
        loads = model_load_count(self.augment.model_sha256)
        return {"chunks": 1, "generated": int(ak.sum(ak.num(gen))), "loads": {(os.getpid(), loads)}}

    def postprocess(self, accumulator):
        return accumulator


@pytest.mark.parametrize("executor", ["iterative", "futures"])
def test_model_loaded_once_per_process(hzz, dimuon_model_file, executor):
    augment = vaeaug.Augment(dimuon_model_file, factor=2, seed=1, device="cpu")
    # another Augment of the same file in this process finds the model loaded
    vaeaug.Augment(dimuon_model_file, factor=5, seed=2, device="cpu")
    assert model_load_count(augment.model_sha256) == 1
    ex = (
        processor.IterativeExecutor(status=False)
        if executor == "iterative"
        else processor.FuturesExecutor(workers=2, status=False)
    )
    runner = processor.Runner(executor=ex, schema=BaseSchema, chunksize=300)
    out = runner({"HZZ": [hzz]}, LoadCounter(augment), treename="events")
    pids = {pid for pid, _ in out["loads"]}
    assert out["chunks"] >= 8 and out["generated"] > 1000 and len(pids) <= 2  # 2421 events
    # every chunk of every process saw exactly one load of the model in its process
    assert {count for _, count in out["loads"]} == {1}, out["loads"]
