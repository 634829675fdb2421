"""Inputs that used to be read silently wrong or end in a traceback: a daughter missing a
component, one branch given to two daughters, array branches as components, weights that sum
to zero, all-zero momenta, candidates of another shape than the layout's."""

from __future__ import annotations

import re

import awkward as ak
import numpy as np
import pytest
import uproot

import vaeaug
from vaeaug.cli import main
from vaeaug.errors import InputError
from vaeaug.io import Layout, read_candidates, write_candidates

OBJECTS = ["K1", "pi1", "pi2"]


@pytest.fixture
def no_pi2_e(toy_p4, tmp_path):
    """The toy candidates without the pi2_E branch."""
    columns = {f"{o}_{c}": toy_p4[:, j, i].astype(np.float32) for j, o in enumerate(OBJECTS)
               for i, c in enumerate(("px", "py", "pz", "E"))}  # fmt: skip
    del columns["pi2_E"]
    path = tmp_path / "no_pi2_E.root"
    with uproot.recreate(path) as f:
        f.mktree("candidates", {k: v.dtype for k, v in columns.items()})
        f["candidates"].extend(columns)
    return path


def test_a_daughter_missing_a_component_is_refused_by_name(no_pi2_e, toy_p4, capsys):
    with pytest.raises(InputError, match=r"'pi2' .* has pi2_px, pi2_py, pi2_pz but no pi2_E"):
        read_candidates(no_pi2_e)
    # asked for explicitly, the complete daughters are read
    two = read_candidates(no_pi2_e, objects=["K1", "pi1"])
    np.testing.assert_allclose(two.p4, toy_p4[:, :2], rtol=1e-6)
    assert main(["train", str(no_pi2_e), "-o", str(no_pi2_e.with_suffix(".st")), "-q"]) == 2
    assert "but no pi2_E" in capsys.readouterr().err


def test_one_branch_for_two_daughters_is_refused(toy_root):
    daughters = {"a": ["K1_px", "K1_py", "K1_pz", "K1_E"],
                 "b": ["K1_px", "pi1_py", "pi1_pz", "pi1_E"]}  # fmt: skip
    with pytest.raises(InputError, match="branch 'K1_px' is given to two daughters"):
        read_candidates(toy_root, daughters=daughters)


def _tree(path, p4):
    columns = {f"{o}_{c}": p4[:, j, i] for j, o in enumerate(OBJECTS)
               for i, c in enumerate(("px", "py", "pz", "E"))}  # fmt: skip
    with uproot.recreate(path) as f:
        f.mktree("candidates", {k: v.dtype for k, v in columns.items()})
        f["candidates"].extend(columns)
    return path


def test_unphysical_rows_are_dropped_by_reason_or_refused_in_strict_mode(toy_p4, tmp_path):
    from vaeaug.io import UnphysicalWarning

    p4 = toy_p4[:100].copy()
    p4[0, 1, 3] *= -1  # negative energy
    p4[1, 2, 3] = 0.5 * np.linalg.norm(p4[1, 2, :3])  # spacelike
    p4[2, 0] = 0.0  # all components zero
    p4[3, 1, 2] = 1e30  # a unit mistake (and so spacelike too: counted under both)
    path = _tree(tmp_path / "bad.root", p4)
    with pytest.warns(UnphysicalWarning, match=r"dropped 4 of 100 .*1 with negative energy.*"
                      r"2 with spacelike.*1 with all components zero.*1 with a component beyond"):  # fmt: skip
        table = read_candidates(path)
    np.testing.assert_allclose(table.p4, p4[4:], rtol=1e-12)
    assert table.source["dropped"] == 4
    with pytest.raises(InputError, match=r"4 of 100 candidates .* are unusable"):
        read_candidates(path, strict=True)
    # all spacelike: nothing left, said as such (no "parent mass -5.3 GeV" model)
    spacelike = toy_p4[:50].copy()
    spacelike[..., 3] = 0.1 * np.linalg.norm(spacelike[..., :3], axis=-1)
    with pytest.warns(UnphysicalWarning), pytest.raises(InputError, match="is empty"):
        read_candidates(_tree(tmp_path / "spacelike.root", spacelike))


def test_float32_rounding_is_not_spacelike(toy_p4, tmp_path):
    """Daughters of exact mass stored as float32 stay: rounding is not unphysical."""
    table = read_candidates(_tree(tmp_path / "f32.root", toy_p4.astype(np.float32)))
    assert len(table) == len(toy_p4)


@pytest.fixture(scope="module")
def with_arrays(toy_p4, tmp_path_factory):
    """The toy candidates, plus their three daughters as a jagged (J_*) and a fixed-size
    (F_*, float[3]) array per candidate, and a weight branch of zeros."""
    columns = {f"{o}_{c}": toy_p4[:, j, i] for j, o in enumerate(OBJECTS)
               for i, c in enumerate(("px", "py", "pz", "E"))}  # fmt: skip
    for i, c in enumerate(("px", "py", "pz", "E")):
        columns[f"F_{c}"] = toy_p4[:, :, i].astype(np.float32)
        columns[f"J_{c}"] = ak.Array(toy_p4[:, :, i].tolist())
    columns["w0"] = np.zeros(len(toy_p4))
    path = tmp_path_factory.mktemp("arrays") / "arrays.root"
    types = {k: v.type if isinstance(v, ak.Array) else (v.dtype, v.shape[1:])
             for k, v in columns.items()}  # fmt: skip
    with uproot.recreate(path) as f:
        f.mktree("candidates", types)
        f["candidates"].extend(columns)
    return path


ARRAY_BRANCHES = [
    (["J", "pi1"], "branch 'J_px' in tree 'candidates' holds a jagged array (var * float64) per entry"),
    (["F", "pi1"], "branch 'F_px' in tree 'candidates' holds a fixed-size array (3 * float32) per entry"),
]  # fmt: skip


@pytest.mark.parametrize(("objects", "message"), ARRAY_BRANCHES)
def test_an_array_branch_as_a_component_is_refused_by_name(objects, message, with_arrays, tmp_path,
                                                           capsys):  # fmt: skip
    way = "--collection NAME --n-objects K (collection=, n_objects=), or give flat per-candidate"
    with pytest.raises(InputError, match=re.escape(message) + ".*" + re.escape(way)):
        read_candidates(with_arrays, objects=objects)
    argv = ["train", str(with_arrays), "--objects", *objects, "-o", str(tmp_path / "m.st"), "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vaeaug train: error: {message}") and err.count("\n") == 1, err


def test_weights_that_sum_to_zero_are_refused(with_arrays, toy_p4, tmp_path, capsys):
    message = "weights sum to 0 (2000 of 2000 are zero): training needs a positive total weight"
    with pytest.raises(InputError, match=re.escape(message)):
        vaeaug.fit(read_candidates(with_arrays, objects=OBJECTS, weight="w0"), progress=False)
    with pytest.raises(InputError, match=re.escape(message)):
        vaeaug.fit(toy_p4, weights=np.zeros(len(toy_p4)), progress=False)
    argv = ["train", str(with_arrays), "--objects", *OBJECTS, "--weight", "w0", "-o",
            str(tmp_path / "m.st"), "-q", "--device", "cpu"]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"vaeaug train: error: {message}")
    assert list(tmp_path.iterdir()) == []


def test_fit_refuses_all_zero_momenta_up_front():
    # once "validation loss became nan at epoch 0; lower the learning rate"
    with pytest.raises(InputError, match=r"300 of 300 candidates are unphysical \(300 with all "
                       r"components zero\); drop them first"):  # fmt: skip
        vaeaug.fit(np.zeros((300, 3, 4)), objects=OBJECTS, progress=False)


def test_candidates_of_another_shape_than_the_layout_are_refused(tmp_path):
    with pytest.raises(InputError, match=re.escape("p4 of shape (10, 2, 4) does not match the "
                       "layout: its 3 objects (K1, pi1, pi2) need shape (N, 3, 4)")):  # fmt: skip
        write_candidates(tmp_path / "g.root", np.ones((10, 2, 4)), Layout.default(OBJECTS))
    assert list(tmp_path.iterdir()) == []
