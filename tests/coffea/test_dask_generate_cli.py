"""``vaeaug generate --dask``: one file per partition, the same events whatever the workers,
and nothing half-written after a failure.

One local cluster is started by the command line (``--dask local:1``); the other runs
go to the session's two-worker cluster by its address.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import uproot

import vaeaug.integrations.dask as vdask
from vaeaug.cli import main
from vaeaug.integrations.dask import partition_seeds
from vaeaug.io.atomic import PART_MARKER

N, PART, SEED = 3000, 1000, 5
FILES = [f"generated-part{i}.root" for i in range(3)]


@pytest.fixture(scope="module")
def address(cluster) -> str:
    """The scheduler address of the session's LocalCluster (2 worker processes)."""
    return cluster.scheduler.address


@pytest.fixture
def no_work(monkeypatch):
    """Any cluster start or generation fails the test: errors must come before the work."""

    def refuse(*args, **kwargs):
        raise AssertionError("work started before the options were checked")

    monkeypatch.setattr(vdask, "client", refuse)
    monkeypatch.setattr(vdask, "generate", refuse)


def _generate(model_file, out, scheduler, *extra) -> int:
    return main(["generate", str(model_file), "-n", str(N), "-o", str(out), "--dask", scheduler,
                 "--partition-size", str(PART), "--device", "cpu", "--seed", str(SEED), "-q",
                 *extra])  # fmt: skip


def _read(folder) -> list[dict[str, np.ndarray]]:
    """The arrays of each part file, in partition order."""
    assert sorted(p.name for p in folder.iterdir()) == FILES
    out = []
    for name in FILES:
        with uproot.open(folder / name) as f:
            out.append(f["candidates"].arrays(library="np"))
    return out


def test_same_events_whatever_the_workers(toy_model, address, tmp_path, capsys):
    model, path = toy_model
    assert _generate(path, tmp_path / "one", "local:1") == 0
    summary_one = capsys.readouterr().out
    assert _generate(path, tmp_path / "two", address) == 0
    summary_two = capsys.readouterr().out
    # the two runs really had different numbers of workers
    assert "1 worker," in summary_one and "2 workers," in summary_two
    assert "generated 3000 candidates" in summary_one and "3 files" in summary_one
    one, two = _read(tmp_path / "one"), _read(tmp_path / "two")
    assert [len(p["K1_px"]) for p in one] == [PART] * 3
    for a, b in zip(one, two, strict=True):
        assert list(a) == list(b) == model.layout.branch_names()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    # and they are the documented ones: partition i is Model.sample(n_i, seed=s_i)
    expect = model.sample(PART, seed=partition_seeds(SEED, 3)[2]).to_numpy()
    np.testing.assert_array_equal(two[2]["pi2_E"], expect["pi2_E"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no temporary left


@pytest.mark.parametrize("value", ["local:0", "local", "local:two", "8786", "http://host:8786"])
def test_bad_scheduler_exits_2_naming_the_valid_forms(value, toy_model, tmp_path, no_work, capsys):
    assert _generate(toy_model[1], tmp_path / "out", value) == 2
    err = capsys.readouterr().err
    assert "--dask must be local:K" in err and "tcp://host:8786" in err and repr(value) in err
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(toy_model, tmp_path, no_work, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "generated-part0.root").write_text("previous")
    assert _generate(toy_model[1], out, "local:1") == 2
    assert "'" + str(out) + "' exists" in capsys.readouterr().err
    # with -f, only a directory of part files may be replaced
    (out / "notes.txt").write_text("mine")
    assert _generate(toy_model[1], out, "local:1", "-f") == 2
    assert "holds notes.txt" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["generated-part0.root", "notes.txt"]


def test_overwrite_replaces_a_previous_output(toy_model, address, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "generated-part7.root").write_text("previous")
    # the temporary directory of a killed run (its process is gone) is removed too
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.part-{dead.pid}"
    stale.mkdir()
    (stale / PART_MARKER).touch()  # what vaeaug marks its temporary directories with
    (stale / "generated-part0.root").write_text("half")
    assert _generate(toy_model[1], out, address, "-f") == 0
    assert [len(p["K1_px"]) for p in _read(out)] == [PART] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_failed_write_leaves_nothing(error, toy_model, address, tmp_path, monkeypatch):
    real_write = vdask.write

    def write_then_fail(*args, **kwargs):
        real_write(*args, **kwargs)  # every part file is written, then the run fails
        raise error

    monkeypatch.setattr(vdask, "write", write_then_fail)
    if isinstance(error, KeyboardInterrupt):
        assert _generate(toy_model[1], tmp_path / "out", address) == 130
    else:
        with pytest.raises(RuntimeError, match="disk on fire"):
            _generate(toy_model[1], tmp_path / "out", address)
    assert list(tmp_path.iterdir()) == []


OPTION_ERRORS = [
    (["--format", "rntuple"], "--format rntuple cannot combine with --dask"),
    (["--partition-size", "0"], "--partition-size must be an integer >= 1, got 0"),
]


@pytest.mark.parametrize(("extra", "message"), OPTION_ERRORS)
def test_options_that_cannot_combine_exit_2(extra, message, toy_model, tmp_path, no_work, capsys):
    assert _generate(toy_model[1], tmp_path / "out", "local:1", *extra) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_partition_size_needs_dask(toy_model, tmp_path, capsys):
    argv = ["generate", str(toy_model[1]), "-n", "10", "-o", str(tmp_path / "g.root"),
            "--partition-size", "5"]  # fmt: skip
    assert main(argv) == 2
    assert "--partition-size needs --dask" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
