"""#30: what a user owns is not replaced, and what vaeaug prints as JSON is JSON.

Only regular files or new paths are outputs; without -f the final rename is exclusive;
the stale-part cleanup removes only vaeaug's parts of dead processes; a failed demo
leaves nothing; a model file's room on the disk is checked before training."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_settings import TINY_CLI

import vaeaug
import vaeaug.api
from vaeaug.cli import main
from vaeaug.errors import InputError
from vaeaug.io import write_candidates
from vaeaug.io.atomic import (
    PART_MARKER,
    atomic_output,
    check_output_path,
    part_name,
    remove_stale_parts,
)


def test_model_save_never_replaces_a_root_file(tiny_model, toy_root, tmp_path):
    data = tmp_path / "data.root"
    data.write_bytes(toy_root.read_bytes())
    with pytest.raises(InputError, match="is a ROOT file; a model file is never written over data"):
        tiny_model.save(data)
    assert data.read_bytes() == toy_root.read_bytes()
    # an earlier model file is replaced, as Python users expect of save()
    path = tmp_path / "m.safetensors"
    tiny_model.save(path)
    tiny_model.save(path)
    assert vaeaug.load(path, device="cpu").objects == tiny_model.objects


def test_info_json_is_strict_json(tiny_model, tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    tiny_model.save(path)
    model = vaeaug.load(path, device="cpu")
    model.history = {**model.history, "score": [float("nan")]}  # a score that never came
    model.save(path)
    assert main(["info", str(path), "--json"]) == 0

    def refuse(token):
        raise AssertionError(f"not JSON: {token}")

    meta = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert meta["history"]["score"] == [None]


# -- only regular files or new paths are written ------------------------------------------


def _fifo(path):
    os.mkfifo(path)


def _socket(path):
    # bound by its name relative to the working directory: a tmp_path may exceed 108 bytes
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path.name)


def _symlink(path):
    target = path.with_name("target.root")
    target.write_bytes(b"root and the user's data")
    path.symlink_to(target)


NOT_A_FILE = "is not a regular file; vaeaug writes only regular files or new paths"
SPECIAL = [(_fifo, NOT_A_FILE), (_socket, NOT_A_FILE), (_symlink, "is a symbolic link; vaeaug "
           "neither writes through nor replaces links: give the path it points to")]  # fmt: skip


@pytest.mark.parametrize(("make", "message"), SPECIAL, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("overwrite", [False, True], ids=["", "-f"])
def test_only_regular_files_or_new_paths_are_outputs(make, message, overwrite, tmp_path,
                                                     monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "out.root"
    make(path)
    before = os.lstat(path)
    with pytest.raises(InputError, match=f"-o/--output '{path}' {message}"):
        check_output_path(path, overwrite=overwrite)
    # and at the final rename, when it appeared while the output was written
    path.unlink()
    with pytest.raises(InputError, match=message.split(";")[0]):
        with atomic_output(path, overwrite=overwrite) as tmp:
            tmp.write_bytes(b"root")
            make(path)
    assert stat.S_IFMT(os.lstat(path).st_mode) == stat.S_IFMT(before.st_mode)
    assert not part_name(path).exists()


def test_a_device_is_never_an_output():
    # checked, never written: as root, a replaced /dev/null would become a regular file
    with pytest.raises(InputError, match=f"'/dev/null' {NOT_A_FILE}"):
        check_output_path("/dev/null", overwrite=True)
    with pytest.raises(InputError, match=NOT_A_FILE):
        check_output_path("/dev/null", model=True, overwrite=True)


def test_the_cli_refuses_a_fifo_even_with_f(tiny_model, tmp_path, capsys):
    model = tmp_path / "m.safetensors"
    tiny_model.save(model)
    fifo = tmp_path / "g.root"
    os.mkfifo(fifo)
    for flags in ([], ["-f"]):
        assert main(["generate", str(model), "-n", "10", "-o", str(fifo), "-q", *flags]) == 2
        err = capsys.readouterr().err
        assert err == f"vaeaug generate: error: -o/--output '{fifo}' {NOT_A_FILE}\n"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# -- exclusive creation without -f --------------------------------------------------------

RIVAL = b"the other run's output"


@pytest.fixture
def rival(monkeypatch):
    """Another run's file appears at the output just before this run's final rename (atomic
    outputs give their temporary its permissions right before it)."""
    real = os.chmod

    def chmod(path, mode, *args, **kwargs):
        real(path, mode, *args, **kwargs)
        if match := re.fullmatch(r"\.(.+)\.part-\d+", Path(path).name):
            (Path(path).parent / match.group(1)).write_bytes(RIVAL)

    monkeypatch.setattr(os, "chmod", chmod)


def _write_root(path, tiny_model, overwrite):
    write_candidates(path, np.asarray(tiny_model.sample(20).p4), tiny_model.layout,
                     overwrite=overwrite)  # fmt: skip


def _save_model(path, tiny_model, overwrite):
    tiny_model.save(path, overwrite=overwrite)


@pytest.mark.outside_support  # a tiny model's sample; the support check has its own tests
@pytest.mark.parametrize("write", [_write_root, _save_model])
def test_a_file_that_appears_meanwhile_is_not_replaced_without_f(write, tiny_model, tmp_path,
                                                                 rival):  # fmt: skip
    path = tmp_path / "out"
    with pytest.raises(InputError, match=f"output '{path}' appeared while this run wrote it"):
        write(path, tiny_model, overwrite=False)
    assert path.read_bytes() == RIVAL
    assert list(tmp_path.iterdir()) == [path]
    write(path, tiny_model, overwrite=True)  # -f: this run's output replaces it
    assert path.read_bytes() != RIVAL


@pytest.mark.outside_support
@pytest.mark.parametrize("command", ["generate", "train"])
def test_of_two_cli_runs_on_one_new_output_the_second_exits_2(command, tiny_model, toy_root,
                                                               tmp_path, capsys, rival):  # fmt: skip
    model = tmp_path / "m.safetensors"
    tiny_model.save(model)
    out = tmp_path / "out" / "o.root"
    out.parent.mkdir()
    argv = (["generate", str(model), "-n", "50", "-o", str(out), "-q"] if command == "generate"
            else ["train", str(toy_root), "-o", str(out), *TINY_CLI])  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vaeaug {command}: error: output '{out}' appeared while this run "
                          "wrote it") and err.count("\n") == 1, err  # fmt: skip
    assert out.read_bytes() == RIVAL
    assert list(out.parent.iterdir()) == [out]


# -- the stale-part cleanup removes only vaeaug's parts of dead processes -----------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _user_file(part):
    part.write_text("the user's notes")


def _root_part(part):
    part.write_bytes(b"root\x00\x00\xf4\x4a" + bytes(100))


def _safetensors_part(part):
    header = b'{"__metadata__":{}}'
    part.write_bytes(struct.pack("<Q", len(header)) + header)


def _user_dir(part):
    part.mkdir()
    (part / "thesis.tex").write_text("chapter 1")


def _marked_dir(part):
    part.mkdir()
    (part / PART_MARKER).touch()
    _root_part(part / "generated-part0.root")


def _link_to_root(part):
    target = part.parent / "elsewhere.root"
    _root_part(target)
    part.symlink_to(target)


@pytest.mark.parametrize(
    ("kind", "make", "removed"),
    [
        ("part", _user_file, False),
        ("part", _root_part, True),
        ("part", _safetensors_part, True),
        ("part", _user_dir, False),
        ("part", _marked_dir, True),
        ("part", _link_to_root, False),
        ("old", _user_dir, False),
        ("old", _marked_dir, True),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_stale_parts_are_removed_only_when_vaeaug_wrote_them(kind, make, removed, tmp_path):
    out = tmp_path / "g.root"
    part = tmp_path / f".g.root.{kind}-{_dead_pid()}"
    make(part)
    assert remove_stale_parts(out) == ([part] if removed else [])
    assert os.path.lexists(part) != removed
    if make is _link_to_root:
        assert (tmp_path / "elsewhere.root").read_bytes().startswith(b"root")  # never followed


def test_a_part_of_a_live_process_is_left_alone(tmp_path):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as proc:
        try:
            part = part_name(tmp_path / "g.root", proc.pid)
            _root_part(part)
            assert remove_stale_parts(tmp_path / "g.root") == []
            assert part.exists()
        finally:
            proc.kill()


# -- demo leaves nothing on failure; the model file's room is checked before training -----


def test_demo_with_too_few_events_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "-n", "5", "-q"]) == 2
    assert capsys.readouterr().err == ("vaeaug demo: error: -n: too few events to train: 5 "
                                       "(need at least 50)\n")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["train", "{toy}", "-o", "{tmp}/m.safetensors"], "-o/--output"),
        (["augment", "{toy}", "-o", "{tmp}/a.root", "--model-out", "{tmp}/m.safetensors"], "--model-out"),
        (["demo", "--out", "{tmp}/demo"], "--out"),
    ],
)  # fmt: skip
def test_a_model_file_that_would_not_fit_is_refused_before_training(args, option, toy_root, tmp_path,
                                                                    monkeypatch, capsys):  # fmt: skip
    real = shutil.disk_usage
    # 1.5 MB: room for augment's 20,000 candidates (0.96 MB), not for a default model (2.2 MB)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1_500_000))

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the model file's room was checked")

    monkeypatch.setattr(vaeaug.api, "fit", refuse)
    argv = [a.format(toy=toy_root, tmp=tmp_path) for a in args]
    assert main([*argv, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vaeaug {argv[0]}: error: {option}: the model file would take about "
                          "2.16 MB in ") and err.count("\n") == 1, err  # fmt: skip
    assert "but only 1.5 MB are free there; free some space or write it elsewhere" in err
    assert list(tmp_path.iterdir()) == []
