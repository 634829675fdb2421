"""Bad options, unwritable outputs, full disks and signals, through the command line.

Each invalid value gets exit code 2 and one line naming the option and its
valid range, before any work; an interrupted or killed run leaves no
``.NAME.part-<pid>`` file behind (or the next run removes it).
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import uproot
from tiny_settings import TINY_CLI as TINY

import vaeaug.api
from vaeaug.cli import main
from vaeaug.io import Layout, estimate_bytes

#: Tiny test models put many candidates outside the training support, and the warning says
#: so; these tests check other behaviour (the support check's own tests use pytest.warns).
pytestmark = pytest.mark.outside_support


@pytest.fixture(scope="module")
def model_file(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("faults") / "m.safetensors"
    tiny_model.save(path)
    return path


def _argv(template, tmp_path, toy_root, model_file):
    return [a.format(tmp=tmp_path, toy=toy_root, model=model_file) for a in template]


BAD_OPTIONS = [
    (["train", "{toy}", "-o", "{tmp}/m.st", "--seed", "-1"], "--seed must be an integer from 0 to 4294967295"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--beta", "0"], "--beta must be a finite number > 0"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--beta", "-1"], "--beta must be a finite number > 0"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--beta", "nan"], "--beta must be a finite number > 0"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--latent-dim", "0"], "--latent-dim must be an integer >= 2"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--hidden", "64", "0"], "--hidden must be one or more integers >= 1"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--epochs", "0"], "--epochs must be an integer >= 1"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--batch-size", "0"], "--batch-size must be an integer >= 1"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--lr", "0"], r"--lr must be a number in \(0, 1\]"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--lr", "nan"], r"--lr must be a number in \(0, 1\]"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--lr", "1e6"], r"--lr must be a number in \(0, 1\]"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--patience", "-1"], "--patience must be an integer >= 1"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--masses", "0.49", "nan", "0.14"], "--masses must be finite"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--collection", "K", "--n-objects", "0"], "--n-objects must be an integer >= 1"),
    (["generate", "{model}", "-n", "10", "-o", "{tmp}/g.root", "--seed", "-1"], "--seed must be an integer from 0"),
    (["generate", "{model}", "-n", "0", "-o", "{tmp}/g.root"], "-n must be an integer >= 1, got 0"),
    (["augment", "{toy}", "-o", "{tmp}/a.root", "--factor", "-3"], "--factor must be an integer >= 1, got -3"),
    (["augment", "{toy}", "-o", "{tmp}/a.root", "--factor", "0"], "--factor must be an integer >= 1, got 0"),
    (["augment", "{toy}", "-o", "{tmp}/a.root", "-n", "-5"], "-n must be an integer >= 1, got -5"),
    (["demo", "--out", "{tmp}/demo", "--n", "0"], "-n must be an integer >= 1"),
    (["demo", "--out", "{tmp}/demo", "--factor", "0"], "--factor must be an integer >= 1"),
    (["validate", "{toy}", "{toy}", "--out", "{tmp}/v", "--seed", "-1"], "--seed must be an integer from 0"),
    (["validate", "{toy}", "{toy}", "--out", "{tmp}/v", "--max-events", "0"], "--max-events must be an integer >= 1"),
    (["train", "{toy}", "-o", "{tmp}/m.st", "--device", "meta"], "--device 'meta' is not valid; use auto, cpu, cuda, cuda:N or mps"),
    (["generate", "{model}", "-n", "10", "-o", "{tmp}/g.root", "--device", "xla"], "--device 'xla' is not valid"),
    (["demo", "--out", "{tmp}/demo", "--device", "cuda:x"], "--device 'cuda:x' is not valid"),
]  # fmt: skip


@pytest.fixture
def no_training(monkeypatch):
    """Any training fails the test: errors must come before the work."""

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the options were checked")

    monkeypatch.setattr(vaeaug.api, "fit", refuse)


@pytest.mark.parametrize(
    ("args", "message"), BAD_OPTIONS, ids=lambda a: " ".join(a) if isinstance(a, list) else None
)
def test_invalid_option_exits_2_naming_it(args, message, tmp_path, toy_root, model_file,
                                          no_training, capsys):  # fmt: skip
    argv = _argv(args, tmp_path, toy_root, model_file)
    assert main([*argv, "-q"] if argv[0] != "validate" else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vaeaug {argv[0]}: error: ") and err.count("\n") == 1, err
    assert __import__("re").search(message, err), err
    assert list(tmp_path.iterdir()) == []


def test_augment_with_a_seed_out_of_range_is_refused_by_the_api(toy_p4):
    with pytest.raises(vaeaug.InputError, match="seed must be an integer from 0"):
        vaeaug.fit(toy_p4, objects=["K1", "pi1", "pi2"], seed=-1, progress=False)
    with pytest.raises(vaeaug.InputError, match="beta must be a finite number > 0"):
        vaeaug.fit(toy_p4, config=vaeaug.VAEConfig(beta=float("nan")), progress=False)


def test_sampling_with_a_negative_seed_is_refused(tiny_model):
    with pytest.raises(vaeaug.InputError, match="seed must be an integer >= 0, got -1"):
        tiny_model.sample(10, seed=-1)


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory this process cannot write: chmod 555, or /sys for root (who ignores modes)."""
    if os.geteuid() == 0:
        yield Path("/sys")
        return
    path = tmp_path / "ro"
    path.mkdir()
    path.chmod(0o555)
    yield path
    path.chmod(0o755)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "{toy}", "-o", ""], "-o/--output is empty"),
        (["train", "{toy}", "-o", "{tmp}"], "is a directory; give a file name in it"),
        (["train", "{toy}", "-o", "{tmp}/missing/m.st"], "output directory '{tmp}/missing' of -o/--output does not exist"),
        (["train", "{toy}", "-o", "{ro}/m.st"], "directory '{ro}' of -o/--output is not writable"),
        (["train", "{toy}", "-o", "{data}"], "is a ROOT file; a model file is never written over data"),
        (["augment", "{toy}", "-o", "{ro}/a.root"], "directory '{ro}' of -o/--output is not writable"),
        (["augment", "{toy}", "-o", "{tmp}/a.root", "--model-out", "{ro}/m.st"], "of --model-out is not writable"),
        (["augment", "{toy}", "-o", "{tmp}/missing/a.root"], "'{tmp}/missing' of -o/--output does not exist"),
        (["generate", "{model}", "-n", "10", "-o", "{ro}/g.root"], "directory '{ro}' of -o/--output is not writable"),
        (["validate", "{toy}", "{toy}", "--out", "{data}"], "--out '{data}' is an existing file"),
        (["demo", "--out", "{data}"], "--out '{data}' is an existing file"),
        (["train", "{toy}", "-o", "{old}"], "-o/--output '{old}' exists; vaeaug does not replace a file unless --overwrite (-f)"),
        (["train", "{toy}", "-o", "{data}", "-f"], "is a ROOT file; a model file is never written over data"),
        (["generate", "{model}", "-n", "10", "-o", "{data}"], "-o/--output '{data}' exists; vaeaug does not replace"),
        (["augment", "{toy}", "-o", "{data}"], "-o/--output '{data}' exists; vaeaug does not replace"),
        (["augment", "{toy}", "-o", "{tmp}/a.root", "--model-out", "{old}"], "--model-out '{old}' exists"),
        (["trainset", "{toy}", "--background-tree", "signal", "-o", "{data}"], "-o/--output '{data}' exists"),
    ],
)  # fmt: skip
def test_unwritable_output_is_refused_before_training(args, message, tmp_path, toy_root, model_file,
                                                      read_only_dir, no_training, capsys):  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    data = work / "data.root"
    data.write_bytes(toy_root.read_bytes())
    old = work / "old.safetensors"
    old.write_bytes(b"an earlier result")
    keys = {"tmp": work, "toy": toy_root, "model": model_file, "ro": read_only_dir, "data": data,
            "old": old}  # fmt: skip
    argv = [a.format(**keys) for a in args]
    assert main([*argv, "-q"] if argv[0] != "validate" else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vaeaug {argv[0]}: error: ") and err.count("\n") == 1, err
    assert message.format(**keys) in err
    assert sorted(p.name for p in work.iterdir()) == ["data.root", "old.safetensors"]
    assert data.read_bytes() == toy_root.read_bytes()
    assert old.read_bytes() == b"an earlier result"


def test_overwrite_replaces_an_existing_output(model_file, tmp_path, capsys):
    out = tmp_path / "g.root"
    out.write_bytes(b"an earlier result")
    assert main(["generate", str(model_file), "-n", "50", "-o", str(out), "-q"]) == 2
    assert out.read_bytes() == b"an earlier result"
    assert main(["generate", str(model_file), "-n", "50", "-o", str(out), "-q", "--overwrite"]) == 0
    with uproot.open(out) as f:
        assert sum(f[k].num_entries for k in f.keys(cycle=False)) == 50


def test_output_that_would_not_fit_on_the_disk_is_refused(model_file, tmp_path, monkeypatch,
                                                          capsys):  # fmt: skip
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1_000_000))
    out = tmp_path / "g.root"
    assert main(["generate", str(model_file), "-n", "100000", "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "-n: 100000 candidates would take about 4.8 MB (48 bytes each)" in err
    assert "only 1 MB are free there; at most about 20833 fit" in err
    assert list(tmp_path.iterdir()) == []


def test_size_estimate_matches_a_written_file(tiny_model, tmp_path):
    from vaeaug.sampling.streaming import generate_to_root

    out = tmp_path / "g.root"
    generate_to_root(tiny_model, 50_000, out, seed=1)
    estimate = estimate_bytes(tiny_model.layout, 50_000)
    # ZLIB level 1 saves ~10% on generated float32 values; headers add a few kB
    assert 0.8 < out.stat().st_size / estimate < 1.05
    assert estimate_bytes(
        Layout("jagged", ("Muon0", "Muon1"), ("pt", "eta", "phi", "mass"), "Muon", {}), 10
    ) == 10 * (2 * 4 * 4 + 8 + 16)  # + event ids


@pytest.mark.skipif(not Path("/proc/self/status").exists(),
                    reason="without /proc the umask is read once, at import")  # fmt: skip
def test_outputs_get_plain_permissions_without_setting_the_umask(tmp_path, monkeypatch):
    """A private (0600) temporary becomes 0666 & ~umask, and the umask is never set: it is
    process-wide, and generation threads create files meanwhile."""
    import stat

    from vaeaug.io.atomic import atomic_output

    def refuse(mask):
        raise AssertionError("os.umask called while writing an output")

    old = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", refuse)
        with atomic_output(tmp_path / "out.root") as tmp:
            os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600))
        with atomic_output(tmp_path / "parts") as tmp:
            tmp.mkdir(mode=0o700)
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.root").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "parts").stat().st_mode) == 0o750


def test_full_disk_exits_2_and_leaves_nothing(model_file, tmp_path, monkeypatch, capsys):
    import vaeaug.io.write

    def full(self, p4, **extra):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(vaeaug.io.write.RootWriter, "write", full)
    out = tmp_path / "g.root"
    assert main(["generate", str(model_file), "-n", "1000", "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err == (f"vaeaug generate: error: cannot write '{out}': No space left on device "
                   "(the disk is full); no partial file was left behind\n")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vaeaug", *args]


def _limit_file_size(n_bytes: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, n_bytes))

    return limit


@pytest.mark.parametrize("command", ["generate", "train"])
def test_file_size_limit_exits_2_and_leaves_nothing(command, model_file, toy_root, tmp_path):
    # ulimit -f: the ROOT file or the model file outgrows 8 kB
    out = tmp_path / ("g.root" if command == "generate" else "m.safetensors")
    argv = (_cli("generate", str(model_file), "-n", "20000", "-o", str(out), "-q")
            if command == "generate" else _cli("train", str(toy_root), "-o", str(out), *TINY))  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                            preexec_fn=_limit_file_size(8192), check=False)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"vaeaug {command}: error: cannot write '{out}': File too large (a file-size limit "
        "(ulimit -f) was reached); no partial file was left behind\n"
    )
    assert list(tmp_path.iterdir()) == []


def _start_and_wait_for_part(argv: list[str], folder: Path, name: str, timeout: float = 240,
                             min_bytes: int = 1_000_000):  # fmt: skip
    """Start ``argv``; return the process once ``.NAME.part-<pid>`` in ``folder`` passes ``min_bytes``.

    1 MB: generated chunks are being written, so the signal lands while the
    generation pipeline streams (the common case of a long run).
    """
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = folder / f".{name}.part-{proc.pid}"
    deadline = time.monotonic() + timeout
    while not (part.exists() and part.stat().st_size > min_bytes):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{part.name} did not reach 1 MB: {proc.communicate()}")
        time.sleep(0.05)
    return proc, part


def test_sigterm_during_generate_leaves_no_file(model_file, tmp_path):
    out = tmp_path / "g.root"
    argv = _cli("generate", str(model_file), "-n", "50000000", "-o", str(out), "-q",
                "--chunk-size", "65536")  # fmt: skip
    proc, _ = _start_and_wait_for_part(argv, tmp_path, out.name)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err == "vaeaug generate: terminated (SIGTERM); no output file was left behind\n"
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_augment_leaves_neither_output_nor_model(toy_root, tmp_path):
    out, model_out = tmp_path / "a.root", tmp_path / "m.safetensors"
    argv = _cli("augment", str(toy_root), "-o", str(out), "--model-out", str(model_out),
                "-n", "50000000", "--combined", *TINY)  # fmt: skip
    # the originals are written first; the first generated chunk (262,144 candidates) takes
    # long with the flow decoder, so the signal lands while the pipeline generates it
    proc, _ = _start_and_wait_for_part(argv, tmp_path, out.name, min_bytes=0)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert list(tmp_path.iterdir()) == []


def test_the_next_run_removes_the_part_of_a_killed_one(model_file, tmp_path):
    out = tmp_path / "g.root"
    argv = _cli("generate", str(model_file), "-n", "50000000", "-o", str(out), "-q",
                "--chunk-size", "65536")  # fmt: skip
    proc, part = _start_and_wait_for_part(argv, tmp_path, out.name)
    proc.kill()  # SIGKILL: no clean-up is possible
    proc.communicate(timeout=60)
    assert part.exists()
    # a part of a live process (this one) is left alone
    live = tmp_path / f".{out.name}.part-{os.getpid()}"
    live.write_bytes(b"")
    result = subprocess.run(_cli("generate", str(model_file), "-n", "1000", "-o", str(out), "-q"),
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "g.root"]
    assert uproot.open(out)["candidates"].num_entries == 1000


def test_progress_bars_to_a_file_stay_short(toy_root, tmp_path):
    # 30 epochs redraw the bar ~30 times: kilobytes in a log when drawn at every update
    log = tmp_path / "stderr.txt"
    argv = _cli("train", str(toy_root), "-o", str(tmp_path / "m.safetensors"), "--latent-dim", "2",
                "--hidden", "16", "--epochs", "30", "--patience", "30", "--device", "cpu")  # fmt: skip
    with open(log, "w") as stderr:
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0
    assert "30 epochs" in result.stdout
    assert log.stat().st_size < 600, log.read_text()


@pytest.mark.parametrize("source", ["toy", "shared"])
def test_a_truncated_root_file_is_refused(source, toy_root, testdata, tmp_path, no_training,
                                          capsys):  # fmt: skip
    # the first half of the shared file still holds its whole 'signal' tree: uproot
    # reads it without a word; the first half of the toy file fails inside uproot
    full = toy_root if source == "toy" else testdata / "dplus_kpipi_train.root"
    data = full.read_bytes()
    half = tmp_path / "half.root"
    half.write_bytes(data[: len(data) // 2])
    tree = ["--tree", "signal"] if source == "shared" else []
    argv = ["train", str(half), *tree, "-o", str(tmp_path / "m.safetensors"), "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"vaeaug train: error: '{half}' is truncated: it holds {len(data) // 2} bytes, "
                   f"but its header says {len(data)} (an interrupted copy or write?); copy it "
                   "again\n")  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["half.root"]


def test_augment_interrupted_while_saving_the_model_leaves_neither_file(toy_root, tmp_path,
                                                                        monkeypatch):  # fmt: skip
    def interrupted(self, path, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vaeaug.api.Model, "save", interrupted)
    argv = ["augment", str(toy_root), "-o", str(tmp_path / "a.root"), "--factor", "1",
            "--model-out", str(tmp_path / "m.safetensors"), *TINY]  # fmt: skip
    assert main(argv) == 130
    assert list(tmp_path.iterdir()) == []


def test_a_closed_pipe_ends_quietly(model_file):
    """``vaeaug info MODEL | head -1``: no BrokenPipeError traceback, exit 141 (SIGPIPE)."""
    script = (f"set -o pipefail; for json in '' --json; do {sys.executable} -m vaeaug info "
              f"'{model_file}' $json | head -1; done")  # fmt: skip
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                            check=False)  # fmt: skip
    assert result.stderr == ""
    assert result.stdout.splitlines() == [f"model file      {model_file}", "{"]
    assert result.returncode in (0, 141)
