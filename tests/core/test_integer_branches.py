"""Integer and boolean momentum branches: read as float64, written as float64 (never wrapped)."""

from __future__ import annotations

import numpy as np
import pytest
import uproot
from tiny_settings import TINY_CLI as TINY

from vaeaug.cli import main
from vaeaug.io import Candidates, Layout, read_candidates
from vaeaug.io.read import IntegerBranchWarning

OBJECTS = ["K1", "pi1", "pi2"]


def test_values_an_int16_cannot_hold_are_written_as_they_are():
    """The issue's case: pz = 45384 MeV in an int16 layout came back as -20152."""
    layout = Layout.default(OBJECTS)
    layout = Layout(layout.kind, layout.objects, layout.components,
                    dtypes={b: "int16" for b in layout.branch_names()})  # fmt: skip
    p4 = np.zeros((1, 3, 4))
    p4[0, 0] = [100.0, -200.0, 45384.0, 46801.0]
    p4[:, 1:, 3] = 1.0
    out = Candidates(p4, layout).to_numpy()
    assert out["K1_pz"].dtype == np.float64 and out["K1_pz"][0] == 45384.0
    assert out["K1_E"][0] == 46801.0
    assert layout.output_dtype("K1_px") == "float64"
    assert Layout.default(OBJECTS).output_dtype("K1_px") == "float32"


@pytest.mark.outside_support
def test_augment_on_int32_mev_branches_writes_float64(toy_p4, tmp_path, capsys):
    path = tmp_path / "int_mev.root"
    values = np.rint(toy_p4 * 1000).astype(np.int32)  # MeV, as some ntuples store them
    columns = {f"{o}_{c}": values[:, j, i] for j, o in enumerate(OBJECTS)
               for i, c in enumerate(("px", "py", "pz", "E"))}  # fmt: skip
    with uproot.recreate(path) as f:
        f.mktree("candidates", {k: v.dtype for k, v in columns.items()})
        f["candidates"].extend(columns)
    with pytest.warns(IntegerBranchWarning, match="12 momentum branches .* hold int32"):
        table = read_candidates(path)
    np.testing.assert_array_equal(table.p4, values.astype(np.float64))
    out = tmp_path / "more.root"
    with pytest.warns(IntegerBranchWarning):
        # MeV values: no fixed masses in GeV, so the cartesian representation, and a tiny
        # model's candidates outside the support kept (the types are what is tested)
        argv = ["augment", str(path), "-o", str(out), "-n", "500", "--representation",
                "cartesian", "--support", "warn"]  # fmt: skip
        assert main([*argv, *TINY]) == 0
    tree = uproot.open(out)["candidates"]
    assert {tree[b].typename for b in columns} == {"double"}
    e = tree["K1_E"].array(library="np")
    assert (e != np.rint(e)).mean() > 0.9  # generated values, not rounded to integers
