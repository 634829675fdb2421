"""Under support="reject" no candidate outside the training support is ever returned or
written: when the redraws cannot bring one inside, sampling stops with SupportLimitError
(exit 2 on the command line) and nothing is written; support="warn" keeps them and says so."""

from __future__ import annotations

import numpy as np
import pytest

import vaeaug
from vaeaug.cli import main
from vaeaug.errors import SupportLimitError
from vaeaug.model.support import Support, SupportWarning

pytestmark = pytest.mark.outside_support  # the tiny model leaks out of its support: it warns


@pytest.fixture(scope="module")
def unreachable(tiny_model, tmp_path_factory):
    """The tiny model with its parent-mass bound narrowed to 1 keV around the training
    median: almost no draw lands inside, so 100 redraws cannot fill a sample."""
    path = tmp_path_factory.mktemp("limit") / "tiny.safetensors"
    tiny_model.save(path)
    model = vaeaug.load(path, device="cpu")
    s = model.support
    j = s.names.index("parent_mass")
    lo, hi = s.lo.copy(), s.hi.copy()
    mid = 0.5 * (lo[j] + hi[j])
    lo[j], hi[j] = mid - 5e-7, mid + 5e-7
    model.support = Support(s.names, lo, hi, s.expected_rate)
    out = path.with_name("unreachable.safetensors")
    model.save(out)
    return out


def test_reject_raises_instead_of_returning_candidates_outside(unreachable):
    model = vaeaug.load(unreachable, device="cpu")
    with pytest.raises(SupportLimitError, match=r"still outside the training support after 100"):
        model.sample(500, seed=1)
    with pytest.warns(SupportWarning, match="they are in the output"):
        kept = model.sample(500, seed=1, support="warn")
    # what "reject" refused to return: every one of these is outside
    mass = kept.mass
    s = model.support
    j = s.names.index("parent_mass")
    assert ((mass < s.lo[j]) | (mass > s.hi[j])).mean() > 0.99


def test_generate_exits_2_and_writes_nothing(unreachable, tmp_path, capsys):
    out = tmp_path / "gen.root"
    code = main(["generate", str(unreachable), "-n", "500", "-o", str(out), "-q",
                 "--device", "cpu"])  # fmt: skip
    assert code == 2 and not out.exists()
    assert not list(tmp_path.iterdir())  # no part file left behind either
    err = capsys.readouterr().err
    assert "still outside the training support" in err and "--support warn" in err
    assert main(["generate", str(unreachable), "-n", "500", "-o", str(out), "-q",
                 "--device", "cpu", "--support", "warn"]) == 0  # fmt: skip
    assert out.exists()


def test_a_model_that_covers_its_support_samples_as_before(tiny_model):
    """The limit only bites where redraws fail: the usual sample is unchanged."""
    a = tiny_model.sample(2000, seed=3).p4
    assert np.isfinite(a).all() and tiny_model.sample(2000, seed=3).support_report.unresolved == 0
