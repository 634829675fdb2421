"""Inputs that used to be read silently wrong: a daughter missing a component, one branch
given to two daughters."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from vaeaug.cli import main
from vaeaug.errors import InputError
from vaeaug.io import read_candidates

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
