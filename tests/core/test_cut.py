"""vaeaug.io.cut: selections evaluated by vaeaug on any format, with uproot's cut syntax."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from vaeaug.errors import InputError
from vaeaug.io import read_candidates, write_candidates
from vaeaug.io.cut import cut_branches, evaluate_cut
from vaeaug.io.layout import Layout

ARRAYS = {
    "nMuon": ak.Array([0, 1, 2, 3, 2]),
    "Muon_pt": ak.Array([[], [5.0], [30.0, 4.0], [12.0, 11.0, 3.0], [8.0, 25.0]]),
    "mass": ak.Array([1.0, 3.0, 3.1, 9.4, -2.0]),
}


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        ("nMuon == 2", [False, False, True, False, True]),
        ("(nMuon >= 2) & (Muon_pt[:, 0] > 10)", None),  # indexing needs the selection first
        ("nMuon >= 1 and not (mass > 5)", [False, True, True, False, True]),
        ("2.9 < mass < 3.3", [False, True, True, False, False]),
        ("abs(mass) > 1.5 or nMuon == 0", [True, True, True, True, True]),
        ("sqrt(abs(mass)) < 1.5", [True, False, False, False, True]),
    ],
)
def test_cuts_select_entry_by_entry(cut, expected):
    if expected is None:  # Muon_pt[:, 0] fails on the entry without muons: said, not a traceback
        with pytest.raises(InputError, match="could not be evaluated"):
            evaluate_cut(cut, ARRAYS, 5)
        return
    np.testing.assert_array_equal(evaluate_cut(cut, ARRAYS, 5), expected)


def test_a_cut_per_object_is_refused_with_the_way_out():
    with pytest.raises(InputError, match="value per object, not one per entry"):
        evaluate_cut("Muon_pt > 10", ARRAYS, 5)


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        ("nMuons == 2", "'nMuons', which is not a branch.*nMuon"),
        ("__import__('os')", "cannot be called"),
        ("nMuon.__class__", "Attribute is not allowed"),
        ("nMuon == 'two'", "only numbers"),
        ("nMuon ==", "not an expression"),
        ("[x for x in nMuon]", "ListComp is not allowed"),
        ("mass", "one boolean per entry"),
    ],
)
def test_bad_cuts_are_refused_by_name(cut, message):
    with pytest.raises(InputError, match=message):
        evaluate_cut(cut, ARRAYS, 5) if "nMuons" not in cut else cut_branches(cut, list(ARRAYS))


@pytest.mark.parametrize("fmt", ["ttree", "rntuple"])
def test_read_candidates_applies_the_cut_on_both_formats(fmt, toy_p4, tmp_path):
    path = tmp_path / f"toy_{fmt}.root"
    write_candidates(path, toy_p4, Layout.default(["K1", "pi1", "pi2"]), format=fmt)
    table = read_candidates(path, cut="(K1_E > 5) & (pi1_E < 3)")
    e = toy_p4.astype(np.float32)[..., 3]  # the file holds float32
    keep = (e[:, 0] > 5) & (e[:, 1] < 3)
    assert 0 < keep.sum() < len(toy_p4) / 2
    np.testing.assert_allclose(table.p4, toy_p4[keep], rtol=1e-6)
    assert table.source["entries_in_range"] == len(toy_p4)
    assert table.source["entries_read"] == keep.sum()
