"""The ``vaeaug`` command line: train, generate, augment, info, validate, demo.

Each command is a thin layer over the library; it prints a one-line summary
at the end and exits with 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ._version import __version__
from .errors import InputError

__all__ = ["main"]


def _add_read_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input selection")
    g.add_argument("--tree", help="TTree or RNTuple name (needed when the file holds several)")
    g.add_argument(
        "--objects",
        nargs="+",
        metavar="NAME",
        help="objects to use, e.g. K1 pi1 pi2 (default: all found)",
    )
    g.add_argument(
        "--branches", nargs="+", metavar="PATTERN", help="branch names or glob patterns to consider"
    )
    g.add_argument("--collection", help="jagged collection to read, e.g. Muon (with --n-objects)")
    g.add_argument("--n-objects", type=int, help="number of leading objects of --collection")
    g.add_argument("--entry-start", type=int, help="first entry read")
    g.add_argument("--entry-stop", type=int, help="entry after the last one read")
    g.add_argument("--cut", help="uproot cut expression, e.g. 'K1_E > 2'")
    g.add_argument("--weight", metavar="BRANCH", help="branch with per-candidate training weights")
    g.add_argument(
        "--strict", action="store_true", help="refuse NaN/inf values instead of dropping them"
    )
    _add_daughter_option(g)


def _add_daughter_option(g) -> None:
    g.add_argument(
        "--daughter",
        action="append",
        metavar="NAME=B1,B2,B3,B4",
        help="a daughter's four branches, as px,py,pz,E or pt,eta,phi,M; repeat per daughter, "
        "e.g. --daughter mu1=px1,py1,pz1,E1 --daughter mu2=px2,py2,pz2,E2",
    )


def _daughters(args) -> dict | None:
    from .io.layout import parse_daughters

    return parse_daughters(args.daughter) if getattr(args, "daughter", None) else None


def _add_format_option(p: argparse.ArgumentParser) -> None:
    from .io.layout import FORMATS

    p.add_argument(
        "--format",
        choices=FORMATS,
        help="write a TTree or an RNTuple (default: the format of the training input)",
    )


def _output_format(model, fmt: str | None) -> None:
    """Make ``model`` write ``fmt`` (the CLI's --format); None keeps the input's."""
    import dataclasses

    if fmt is not None:
        model.layout = dataclasses.replace(model.layout, format=fmt)


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from .model.symmetry import EXCHANGE_CHOICES
    from .model.vae import PRIORS, VAEConfig
    from .training import TrainConfig

    v, t = VAEConfig(), TrainConfig()
    g = p.add_argument_group("model and training")
    g.add_argument(
        "--representation", default="auto", help="auto, decay, collider or cartesian (default auto)"
    )
    g.add_argument(
        "--masses", nargs="+", type=float, metavar="GEV", help="daughter mass hypotheses in GeV"
    )
    g.add_argument(
        "--latent-dim", type=int, default=v.latent_dim, help=f"latent size (default {v.latent_dim})"
    )
    g.add_argument(
        "--hidden", type=int, nargs="+", default=list(v.hidden), help="hidden layer widths"
    )
    g.add_argument("--beta", type=float, default=v.beta, help=f"KL weight (default {v.beta})")
    g.add_argument("--prior", default=v.prior, choices=PRIORS,
                   help=f"latent prior: flow (learned) or standard (default {v.prior})")  # fmt: skip
    g.add_argument("--phi", default="auto", choices=("auto", "uniform", "learn"),
                   help="parent azimuth: uniform when the data are (auto, Kuiper test at 1%%), "
                   "or forced (default auto)")  # fmt: skip
    g.add_argument("--exchange", default="auto", choices=EXCHANGE_CHOICES,
                   help="daughters of equal mass that the input orders by decreasing pT: "
                   "generated in that order, learned exchange-symmetric (symmetric) or as "
                   "labelled (sort); auto picks by the number of daughters; off leaves "
                   "the labels alone (default auto)")  # fmt: skip
    g.add_argument(
        "--epochs", type=int, default=t.epochs, help=f"maximum epochs (default {t.epochs})"
    )
    g.add_argument(
        "--batch-size",
        type=int,
        default=t.batch_size,
        help=f"events per step (default {t.batch_size})",
    )
    g.add_argument(
        "--lr",
        type=float,
        default=t.learning_rate,
        help=f"learning rate (default {t.learning_rate})",
    )
    g.add_argument(
        "--patience",
        type=int,
        default=t.patience,
        help=f"early-stopping patience (default {t.patience})",
    )


def _add_common(p: argparse.ArgumentParser, seed: bool = True) -> None:
    if seed:
        p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars (drawn only when stderr is a terminal)")  # fmt: skip


def _add_overwrite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--overwrite", action="store_true",
                   help="replace existing output files (never an input, never a ROOT file by a model)")  # fmt: skip


def _read(args, path: str):
    from .io import read_candidates

    return read_candidates(
        path,
        tree=args.tree,
        objects=args.objects,
        branches=args.branches,
        collection=args.collection,
        n_objects=args.n_objects,
        entry_start=args.entry_start,
        entry_stop=args.entry_stop,
        cut=args.cut,
        weight=args.weight,
        strict=args.strict,
        daughters=_daughters(args),
    )


def _train(args, table):
    from .api import fit
    from .model.vae import VAEConfig
    from .training import TrainConfig

    config = VAEConfig(
        latent_dim=args.latent_dim, hidden=args.hidden, beta=args.beta, prior=args.prior
    )
    train = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        patience=args.patience,
    )
    return fit(table, representation=args.representation, masses=args.masses, config=config,
               train=train, phi=args.phi, exchange=args.exchange, seed=args.seed,
               device=args.device, progress=not args.quiet)  # fmt: skip


def _generate_to_root(model, n: int, out: str, *, seed: int, quiet: bool, original=None, tree=None,
                      precision: str = "fp32", chunk_size: int | None = None,
                      compile: bool = False, support: str = "reject") -> tuple[int, str]:  # fmt: skip
    """Write the sample; returns (candidates written, the support check's summary)."""
    from .model.support import SupportReport
    from .sampling.streaming import generate_to_root

    # generation, conversion and ROOT writing overlap in a bounded pipeline; the
    # originals (if any) keep weight 1 and the generated ones share their total
    report = SupportReport()
    n = generate_to_root(model, n, out, seed=seed, tree=tree, original=original,
                         progress=not quiet, precision=precision,
                         chunk_size=chunk_size, compile=compile,
                         support=support, report=report)  # fmt: skip
    note = "support check off" if support == "off" else report.summary()
    return n, note


def _cmd_train(args) -> str:
    from .io import check_output_path, refuse_overwriting_inputs

    refuse_overwriting_inputs(args.output, [args.input])
    check_output_path(args.output, model=True, overwrite=args.overwrite)
    table = _read(args, args.input)
    start = time.perf_counter()
    model = _train(args, table)
    model.save(args.output)
    return (f"trained {model.representation.name} VAE on {len(table)} candidates in "
            f"{time.perf_counter() - start:.1f} s ({len(model.history['val'])} epochs, kept epoch "
            f"{model.history.get('best_epoch')} with validation sample score "
            f"{min(model.history.get('score') or [float('nan')]):.4f}) -> {args.output}")  # fmt: skip


def _add_generate_options(p: argparse.ArgumentParser) -> None:
    from .sampling.engine import PRECISIONS
    from .sampling.streaming import DEFAULT_CHUNK, default_chunk

    g = p.add_argument_group("performance")
    g.add_argument(
        "--precision",
        default="fp32",
        choices=PRECISIONS,
        help="decoder precision: fp32, or bf16 for GPUs with bf16 units (default fp32)",
    )
    g.add_argument(
        "--chunk-size",
        type=int,
        metavar="N",
        help=f"events per chunk and ROOT basket (default {DEFAULT_CHUNK}, "
        f"{default_chunk('cuda')} on CUDA); memory grows with it",
    )
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the decoder (pays on GPUs for large -n)")  # fmt: skip
    _add_support_option(p)


def _add_support_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--support", default="reject", choices=("reject", "warn", "off"),
                   help="candidates outside the training support (e.g. the detector acceptance): "
                   "redraw them (reject, default), keep them with a warning (warn), or off")  # fmt: skip


def _cmd_generate(args) -> str:
    from .api import load
    from .io import check_output_path, refuse_overwriting_inputs

    if args.dask is not None:
        return _generate_dask(args)
    if args.partition_size is not None:
        raise InputError("--partition-size needs --dask (it sets the events per file written "
                         "by a worker); a plain generate writes one file")  # fmt: skip
    refuse_overwriting_inputs(args.output, [args.model])
    check_output_path(args.output, overwrite=args.overwrite)
    model = load(args.model, device=args.device)
    _check_free_space(model.layout, args.n, args.output, "-n")
    _output_format(model, args.format)
    start = time.perf_counter()
    n, note = _generate_to_root(model, args.n, args.output, seed=args.seed, quiet=args.quiet,
                                tree=args.tree, precision=args.precision,
                                chunk_size=args.chunk_size, compile=args.compile,
                                support=args.support)  # fmt: skip
    dt = time.perf_counter() - start
    return (f"generated {n} candidates in {dt:.1f} s ({n / dt:.3g} ev/s, {model.device.type}, "
            f"{args.precision}; {note}) -> {args.output} ({model.layout.format})")  # fmt: skip


#: Files of ``generate --dask``: ``<prefix>-part<i>.root`` in the output directory.
_DASK_PREFIX = "generated"
_DASK_PROTOCOLS = ("tcp", "tls", "ucx", "ws", "wss", "inproc")
#: ``--partition-size`` when not given.
DEFAULT_PARTITION = 1_000_000


def _parse_scheduler(text: str) -> int | str:
    """``--dask``: ``local:K`` -> K (worker processes to start); a scheduler address -> itself."""
    local = re.fullmatch(r"local:(\d+)", text)
    if local and int(local.group(1)) >= 1:
        return int(local.group(1))
    if re.fullmatch(rf"(?:{'|'.join(_DASK_PROTOCOLS)})://\S+", text):
        return text
    raise InputError(
        f"--dask must be local:K (K >= 1 worker processes started here) or a scheduler "
        f"address such as tcp://host:8786 (protocols {', '.join(_DASK_PROTOCOLS)}), got {text!r}"
    )


def _check_output_folder(path: str, overwrite: bool) -> Path:
    """Refuse an output directory of ``generate --dask`` before any work (as check_output_path
    does for files); an existing one is replaced only with -f and only when it holds nothing but
    ``generated-part<i>.root`` files (a previous output): never another directory."""
    from .io import check_output_dir

    if not str(path).strip():
        raise InputError("-o/--output is empty; give a directory name, e.g. generated")
    out = Path(path).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"-o/--output '{path}' is a file; with --dask -o names a directory "
                         "(one ROOT file per partition), created by the run")  # fmt: skip
    if out.is_dir():
        if not overwrite:
            raise InputError(f"-o/--output '{path}' exists; vaeaug does not replace a "
                             "directory unless --overwrite (-f) is given")  # fmt: skip
        own = re.compile(rf"{_DASK_PREFIX}-part\d+\.root")
        foreign = sorted(f.name for f in out.iterdir() if not own.fullmatch(f.name) or f.is_dir())
        if foreign:
            raise InputError(
                f"-o/--output '{path}' holds {', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}: -f replaces only a directory of "
                f"{_DASK_PREFIX}-part<i>.root files (a previous --dask output); choose another name"
            )
    if not out.parent.is_dir():
        raise InputError(f"output directory '{out.parent}' of -o/--output does not exist; "
                         "create it first")  # fmt: skip
    check_output_dir(out.parent, "-o/--output")  # writable
    return out


def _generate_dask(args) -> str:
    """``generate --dask``: one file per partition, written by the workers into a temporary
    directory beside the output, renamed to it when every partition is written."""
    import importlib.util

    import torch

    from .api import load
    from .io import atomic_output
    from .training import choose_device

    scheduler = _parse_scheduler(args.dask)
    missing = [m for m in ("distributed", "dask_awkward") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"--dask needs {' and '.join(missing)}: pip install 'vaeaug[coffea]'")
    # (the model file cannot be the output: -f replaces only a directory of part files)
    out = _check_output_folder(args.output, args.overwrite)
    if isinstance(scheduler, int):
        choose_device(args.device)  # the workers run here: the device must exist here
    elif args.device != "auto":
        try:
            torch.device(args.device)
        except RuntimeError as err:
            raise InputError(f"--device '{args.device}' is not valid; use auto, cpu, cuda or "
                             "cuda:N") from err  # fmt: skip
    model = load(args.model, device="cpu")  # the layout; each worker loads its own copy
    if (args.format or model.layout.format) != "ttree":
        why = ("" if args.format else " (this model writes its training input's RNTuple by "
               "default)")  # fmt: skip
        raise InputError(f"--format rntuple cannot combine with --dask, which writes TTrees "
                         f"(uproot.dask_write){why}: give --format ttree or drop --dask")  # fmt: skip
    _check_free_space(model.layout, args.n, str(out), "-n")
    import dask

    from .integrations.dask import client as dask_client
    from .integrations.dask import generate, write

    partition = args.partition_size or DEFAULT_PARTITION
    tree = args.tree or model.layout.tree
    # the client closes (a local cluster stops) before atomic_output removes a failed run's files
    with atomic_output(out) as tmp, dask_client(scheduler) as client:
        n_workers = len(client.scheduler_info()["workers"])
        sample = generate(args.model, args.n, seed=args.seed, partition_size=partition,
                          device=args.device, precision=args.precision, support=args.support,
                          compile=args.compile, chunk_size=args.chunk_size)  # fmt: skip
        start = time.perf_counter()
        with dask.config.set(scheduler=client):
            files = write(sample, tmp, tree=tree, prefix=_DASK_PREFIX)
        dt = time.perf_counter() - start
        if len(files) != sample.npartitions:
            raise InputError(
                f"--dask {args.dask}: {len(files)} of {sample.npartitions} files arrived in "
                f"'{tmp}'; the workers must share this machine's filesystem"
            )
    return (f"generated {args.n} candidates in {dt:.1f} s ({args.n / dt:.3g} ev/s, dask "
            f"{args.dask}: {n_workers} worker{'s' * (n_workers != 1)}, device {args.device}, "
            f"{args.precision}; support {args.support}) -> {args.output}/ ({len(files)} files "
            f"{_DASK_PREFIX}-part<i>.root, {partition} candidates each, ttree {tree})")  # fmt: skip


def _cmd_augment(args) -> str:
    from .io import FLAG_BRANCH, WEIGHT_BRANCH, check_output_path, refuse_overwriting_inputs

    refuse_overwriting_inputs(args.output, [args.input])
    check_output_path(args.output, overwrite=args.overwrite)
    if args.model_out:
        refuse_overwriting_inputs(args.model_out, [args.input, args.output])
        check_output_path(args.model_out, "--model-out", model=True, overwrite=args.overwrite)
    table = _read(args, args.input)
    n = args.n if args.n is not None else args.factor * len(table)
    extra = {FLAG_BRANCH: "int8", WEIGHT_BRANCH: "float32"} if args.combined else {}
    _check_free_space(table.layout, n + (len(table) if args.combined else 0), args.output,
                      "-n" if args.n is not None else "--factor", extra)  # fmt: skip
    model = _train(args, table)
    input_layout = model.layout
    _output_format(model, args.format)
    if args.combined:
        written, note = _write_combined(model, table, n, args.output, seed=args.seed + 1,
                                        quiet=args.quiet, support=args.support)  # fmt: skip
    else:
        written, note = _generate_to_root(model, n, args.output, seed=args.seed + 1,
                                          quiet=args.quiet, support=args.support)  # fmt: skip
    # saved last: an interrupted or failed generation leaves neither file behind
    if args.model_out:
        model.layout = input_layout  # the model file keeps the training input's format
        try:
            model.save(args.model_out)
        except BaseException:
            # nor does an interrupted or failed save: the two outputs come together
            Path(args.output).unlink(missing_ok=True)
            raise
    from .io import read_candidates
    from .kinematics import invariant_mass

    # the summary's mass check reads back what was written rather than generating again
    layout, first = model.layout, len(table) if args.combined else 0
    if layout.kind == "jagged":
        select = {"collection": layout.collection, "n_objects": layout.n_objects}
    elif layout.branches:
        select = {"daughters": dict(layout.branches)}
    else:
        select = {"objects": list(layout.objects)}
    written_p4 = read_candidates(args.output, tree=layout.tree, entry_start=first,
                                 entry_stop=first + 100_000, **select).p4  # fmt: skip
    gen_mass = np.median(invariant_mass(written_p4))

    return (f"augmented {len(table)} -> {written} candidates in {args.output} (parent mass median "
            f"{np.median(invariant_mass(table.p4)):.5f} original, {gen_mass:.5f} generated GeV; "
            f"{note})")  # fmt: skip


def _cmd_trainset(args) -> str:
    from .api import load
    from .io import RootWriter, check_output_path, read_candidates, refuse_overwriting_inputs
    from .model.vae import VAEConfig
    from .training import TrainConfig
    from .trainsets import augment_training_set

    background = args.background or args.signal
    refuse_overwriting_inputs(args.output, [args.signal, background, args.signal_model,
                                            args.background_model])  # fmt: skip
    check_output_path(args.output, overwrite=args.overwrite)
    if args.factor < 1:
        raise InputError(f"--factor must be an integer >= 1 (generated per real candidate), "
                         f"got {args.factor}")  # fmt: skip
    start = time.perf_counter()
    select = {"objects": args.objects, "entry_start": args.entry_start,
              "entry_stop": args.entry_stop}  # fmt: skip
    sig = read_candidates(args.signal, tree=args.signal_tree, **select)
    bkg = read_candidates(background, tree=args.background_tree, **select)
    models = {name: load(path, device=args.device) if path else None
              for name, path in (("signal", args.signal_model),
                                 ("background", args.background_model))}  # fmt: skip
    ts = augment_training_set(
        sig, bkg, factor=args.factor, classes=args.classes, seed=args.seed,
        config=VAEConfig(latent_dim=args.latent_dim, hidden=args.hidden, beta=args.beta,
                         prior=args.prior),
        train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size,
                          learning_rate=args.lr, patience=args.patience),
        device=args.device, progress=not args.quiet, signal_model=models["signal"],
        background_model=models["background"], representation=args.representation,
        masses=args.masses, phi=args.phi, exchange=args.exchange,
        identical=[[o.strip() for o in g.split(",")] for g in args.identical or []],
    )  # fmt: skip
    extra = {"label": "int8", "is_generated": "int8", "weight": "float64"}
    chunk = 1_000_000
    with RootWriter(args.output, sig.layout, tree=args.output_tree, extra=extra) as writer:
        for i in range(0, len(ts), chunk):
            sl = slice(i, i + chunk)
            writer.write(ts.p4[sl], label=ts.label[sl], is_generated=ts.is_generated[sl],
                         weight=ts.weight[sl])  # fmt: skip
    c = ts.counts()
    return (f"trainset: signal {c['signal']['real']} real + {c['signal']['generated']} "
            f"generated, background {c['background']['real']} real + "
            f"{c['background']['generated']} generated (x{args.factor}, classes {args.classes}; "
            f"each class weighs its real total) in {time.perf_counter() - start:.1f} s -> "
            f"{args.output} (tree {args.output_tree})")  # fmt: skip


def _write_combined(model, table, n: int, out: str, *, seed: int, quiet: bool,
                    support: str = "reject") -> tuple[int, str]:  # fmt: skip
    """The originals (weight w) then ``n`` generated candidates sharing their total weight.

    The rule of docs/quickstart.md, shared with ``Augment(mode="combined")``: the
    real rows keep their weights w_i, and each generated row gets W / n with
    W = sum(w_i), so the real part and the generated part each sum to W (the
    combined tree sums to 2W).
    """
    from .io import write_candidates
    from .model.support import SupportReport

    w = np.ones(len(table)) if table.weights is None else table.weights
    report = SupportReport()
    chunks = model.iter_samples(n, seed=seed, progress=not quiet, support=support, report=report)
    with contextlib.closing(chunks):
        written = write_candidates(out, chunks, model.layout, original=table.p4,
                                   original_weights=w,
                                   generated_weight=float(w.sum()) / max(n, 1))  # fmt: skip
    return written, ("support check off" if support == "off" else report.summary())


def _human(n_bytes: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n_bytes < 1000 or unit == "TB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1000
    raise AssertionError  # unreachable


def _check_free_space(layout, n: int, out: str, option: str, extra=None) -> None:
    """Refuse an output of ``n`` candidates that would not fit on the disk of ``out``."""
    from .io import estimate_bytes

    need = estimate_bytes(layout, n, extra)
    free = shutil.disk_usage(Path(out).resolve().parent).free
    if need > free:
        per = max(1, estimate_bytes(layout, 1, extra))
        raise InputError(
            f"{option}: {n} candidates would take about {_human(need)} ({per} bytes each) in "
            f"'{out}', but only {_human(free)} are free there; at most about {free // per} fit"
        )


def _cmd_info(args) -> str | None:
    from .api import load
    from .io.modelfile import read_model_file

    model = load(args.model)  # the complete check of the file, with its name in any error
    _, meta = read_model_file(args.model)
    if args.json:
        # JSON only on stdout, so that the output parses
        print(json.dumps(meta, indent=2))
        return None
    else:
        prov, cfg, rep, lay = (
            meta.get("provenance", {}),
            meta["vae_config"],
            meta["representation"],
            meta["layout"],
        )
        # parameters only: zuko's masked layers also store their masks as buffers
        n_params = sum(p.numel() for p in model.vae.parameters())
        lines = [
            f"model file      {args.model}",
            f"representation  {rep.get('name')}  ({', '.join(f'{k}={v}' for k, v in rep.items() if k != 'name')})",
            f"objects         {', '.join(lay['objects'])}  ({lay['kind']} layout, components {'/'.join(lay['components'])}, "
            f"{'RNTuple' if lay.get('format') == 'rntuple' else 'tree'} {lay['tree']})",
            f"network         latent {cfg['latent_dim']}, hidden {cfg['hidden']}, {cfg['activation']}, beta {cfg['beta']}, "
            f"prior {cfg['prior']} ({cfg.get('prior_flow')}), decoder {cfg.get('decoder')} ({cfg.get('decoder_flow')}); {n_params} parameters",
            f"choices         {prov.get('representation_choice')}; parent phi "
            f"{'drawn uniformly' if meta.get('phi_uniform') else 'learned'} (phi={prov.get('phi_choice')}, Kuiper p = {prov.get('phi_kuiper_pvalue')}); "
            f"{_exchange_words(meta.get('exchange', []), lay['objects'], prov.get('exchange_mode'))}",
            _support_line(meta.get("support")),
            f"trained on      {prov.get('n_events')} events from {prov.get('source', {}).get('file', 'arrays')} "
            f"(tree {prov.get('source', {}).get('tree')}), seed {prov.get('seed')}, {prov.get('epochs_run')} epochs, "
            f"{prov.get('train_seconds')} s on {prov.get('device')}",
            f"data sha256     {prov.get('data_sha256')}",
            f"written by      vaeaug {prov.get('vaeaug_version')}, torch {prov.get('torch_version')}, {prov.get('created')}",
        ]  # fmt: skip
        print("\n".join(lines))
    return f"{args.model}: vaeaug model, {meta['representation'].get('name')} representation"


def _exchange_words(groups: list, objects: list[str], mode: str | None) -> str:
    """How the model treats identical daughters, for ``info`` (``mode``: provenance's
    ``exchange_mode``; files written before it existed learned them symmetric)."""
    if not groups:
        return "no identical daughters ordered by pT"
    names = "; ".join(", ".join(objects[i] for i in g) for g in groups)
    learned = "as labelled" if mode == "sort" else "exchange-symmetric"
    return f"identical daughters {names}: learned {learned}, generated in decreasing pT"


def _support_line(support: dict | None) -> str:
    if not support:
        return "support         none stored"
    bounds = dict(zip(support["names"], zip(support["lo"], support["hi"])))
    cuts = [f"{n} [{lo:.3g}, {hi:.3g}]" for n, (lo, hi) in bounds.items()
            if n.endswith(("_pt", "_eta")) and not n.startswith(("parent", "feature:"))]  # fmt: skip
    return (f"support         {len(bounds)} intervals, real-vs-real outside rate "
            f"{support['expected_rate']:.2%}; acceptance: {', '.join(cuts)}")  # fmt: skip


def _cmd_validate(args) -> str:
    from .validation.command import run_validate

    return run_validate(args)


def _cmd_demo(args) -> str:
    from .api import fit
    from .datasets import OBJECTS, dplus_kpipi
    from .io import Layout, check_output_dir, write_candidates
    from .kinematics import invariant_mass
    from .training import TrainConfig

    out = check_output_dir(args.out, "--out")
    out.mkdir(parents=True, exist_ok=True)
    p4 = dplus_kpipi(args.n, seed=args.seed)
    layout = Layout.default(OBJECTS)
    write_candidates(out / "dplus_sample.root", p4, layout)
    model = fit(p4, objects=OBJECTS, train=TrainConfig(epochs=args.epochs), seed=args.seed,
                device=args.device, progress=not args.quiet)  # fmt: skip
    model.save(out / "dplus_model.safetensors")
    n_gen = args.factor * args.n
    # one generation serves the ROOT file, the printed summary and the validation
    gen = model.sample(n_gen, seed=args.seed + 1, progress=not args.quiet)
    write_candidates(out / "dplus_generated.root", gen.p4, layout)
    m_orig, m_gen = invariant_mass(p4) * 1e3, gen.mass * 1e3
    q = [16, 50, 84]
    o, g = np.percentile(m_orig, q), np.percentile(m_gen, q)
    print(f"parent mass (MeV): original median {o[1]:.1f}, half-width {(o[2] - o[0]) / 2:.1f}; "
          f"generated median {g[1]:.1f}, half-width {(g[2] - g[0]) / 2:.1f}")  # fmt: skip
    if not args.no_validate:
        from .validation.report import validate

        # judged against an independent sample of the built-in generator (another
        # seed), not the training sample: a model that memorised its training
        # events must not look perfect; the training sample feeds the memorisation check
        independent = dplus_kpipi(args.n, seed=args.seed + 1)
        validate(
            independent,
            gen.p4[: 4 * args.n],
            list(OBJECTS),
            out / "validation",
            training_p4=p4,
            history=model.history,
            seed=args.seed,
            progress=not args.quiet,
        )
    return (
        f"demo: {args.n} built-in D+ -> K- pi+ pi+ candidates multiplied x{args.factor} -> {out}/"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaeaug",
        description="Multiply decay-candidate samples with a variational autoencoder.",
    )
    parser.add_argument("--version", action="version", version=f"vaeaug {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train a model on a ROOT file",
        description="Train a VAE on the candidates of a ROOT tree and write a model file.",
    )
    p.add_argument("input", help="input ROOT file")
    p.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    _add_overwrite_option(p)
    _add_read_options(p)
    _add_train_options(p)
    _add_common(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "generate",
        help="generate candidates from a model file",
        description="Generate candidates from a model file into a ROOT tree, streamed in chunks.",
    )
    p.add_argument("model", help="model file")
    p.add_argument("-n", type=int, required=True, help="number of candidates")
    p.add_argument("-o", "--output", required=True,
                   help="ROOT file to write (with --dask: a directory, created)")  # fmt: skip
    _add_overwrite_option(p)
    p.add_argument("--tree", help="output tree name (default: the training input's)")
    _add_format_option(p)
    _add_generate_options(p)
    g = p.add_argument_group("scale-out")
    g.add_argument("--dask", metavar="SCHEDULER",
                   help="generate on a Dask cluster: local:K (K worker processes here) or a "
                   "scheduler address (tcp://host:8786); -o is then a directory of "
                   f"{_DASK_PREFIX}-part<i>.root files, one per partition")  # fmt: skip
    g.add_argument("--partition-size", type=int, metavar="P",
                   help=f"candidates per partition and file, with --dask (default "
                   f"{DEFAULT_PARTITION}); the events depend on it, never on the workers")  # fmt: skip
    _add_common(p)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser(
        "augment",
        help="train and generate in one go",
        description="Train on a ROOT file and write a multiplied sample.",
    )
    p.add_argument("input", help="input ROOT file")
    p.add_argument("-o", "--output", required=True, help="ROOT file to write")
    _add_overwrite_option(p)
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--factor", type=int, default=10, help="generate factor x the input size (default 10)"
    )
    size.add_argument("-n", type=int, help="number of candidates to generate")
    p.add_argument("--model-out", help="also save the model file here")
    p.add_argument(
        "--combined",
        action="store_true",
        help="write originals + generated with is_generated and weight branches",
    )
    _add_format_option(p)
    _add_read_options(p)
    _add_train_options(p)
    _add_support_option(p)
    _add_common(p)
    p.set_defaults(func=_cmd_augment)

    p = sub.add_parser(
        "trainset",
        help="a classifier's training set: real + generated signal and background",
        description="Fit one model per class and write real and generated signal and "
        "background candidates to one tree, with label (1 signal, 0 background), "
        "is_generated and weight branches: each class's weights sum to its real total "
        "(a real candidate w/(1+factor), a generated one W/(N(1+factor))). Pass only the "
        "training split of the real data: evaluate the classifier on real candidates "
        "that no model has seen.",
    )
    p.add_argument("signal", help="ROOT file with the real signal candidates")
    p.add_argument("--signal-tree", default="signal", help="signal tree (default signal)")
    p.add_argument("--background", help="ROOT file with the background (default: the signal file)")
    p.add_argument("--background-tree", default="background",
                   help="background tree (default background)")  # fmt: skip
    p.add_argument("-o", "--output", required=True, help="ROOT file to write")
    _add_overwrite_option(p)
    p.add_argument("--output-tree", default="trainset", help="output tree name (default trainset)")
    p.add_argument("--factor", type=int, default=5,
                   help="generated candidates per real one in each multiplied class (default 5)")  # fmt: skip
    p.add_argument("--classes", default="both", choices=("both", "signal", "background"),
                   help="classes to multiply; the others stay real only (default both)")  # fmt: skip
    p.add_argument("--objects", nargs="+", metavar="NAME",
                   help="daughters to use, e.g. K1 pi1 pi2 (default: all found)")  # fmt: skip
    p.add_argument("--entry-start", type=int, help="first entry read from both trees")
    p.add_argument("--entry-stop", type=int,
                   help="entry after the last one read from both trees (keep the rest for testing)")  # fmt: skip
    p.add_argument("--identical", nargs="+", metavar="A,B",
                   help="groups of identical daughters that the input orders by decreasing pT, "
                   "e.g. pi1,pi2: generated candidates are put in the same order")  # fmt: skip
    p.add_argument("--signal-model", help="model file to use for the signal instead of fitting")
    p.add_argument("--background-model",
                   help="model file to use for the background instead of fitting")  # fmt: skip
    _add_train_options(p)
    _add_common(p)
    p.set_defaults(func=_cmd_trainset)

    p = sub.add_parser(
        "info",
        help="show what a model file holds",
        description="Show the configuration and provenance in a model file.",
    )
    p.add_argument("model", help="model file")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "validate",
        help="compare original and generated samples",
        description="Fidelity metrics, plots and a report comparing original and generated candidates.",
    )
    p.add_argument("original", help="original ROOT file")
    p.add_argument("generated", help="generated ROOT file")
    p.add_argument("--model", help="model file (adds the loss curves)")
    p.add_argument(
        "--reference", help="large independent real sample (enables the amplification metric)"
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--tree", help="tree name in the original (and reference) file")
    p.add_argument("--generated-tree", help="tree name in the generated file (default: --tree)")
    p.add_argument("--objects", nargs="+", metavar="NAME", help="objects to compare")
    _add_daughter_option(p)
    p.add_argument(
        "--style", default="CMS", choices=("CMS", "LHCb2", "ATLAS", "ALICE"), help="mplhep style"
    )
    p.add_argument(
        "--max-events", type=int, default=100_000, help="events used per sample (default 100000)"
    )
    p.add_argument(
        "--formats",
        nargs="+",
        default=["png", "pdf"],
        choices=("png", "pdf", "svg"),
        help="plot formats (default png pdf)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the metrics' random draws")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "demo",
        help="run the whole chain on the built-in sample",
        description="Generate the built-in D+ -> K- pi+ pi+ sample, train, multiply and validate.",
    )
    p.add_argument("--out", default="vaeaug-demo", help="output directory (default vaeaug-demo)")
    p.add_argument("--n", type=int, default=10_000, help="built-in candidates (default 10000)")
    p.add_argument("--factor", type=int, default=10, help="multiplication factor (default 10)")
    p.add_argument("--epochs", type=int, default=200, help="maximum epochs (default 200)")
    p.add_argument("--no-validate", action="store_true", help="skip the validation report")
    _add_common(p)
    p.set_defaults(func=_cmd_demo)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, batch schedulers), handled like Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    # a second SIGTERM must not interrupt the clean-up of the first
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`_Terminated` in the main thread; the old handler is restored after."""
    handler = None
    if threading.current_thread() is threading.main_thread():
        handler = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


#: Settings of the model and training (api.check_settings) -> their options.
_SETTING_OPTIONS = {"seed": "--seed", "latent_dim": "--latent-dim", "hidden": "--hidden",
                    "beta": "--beta", "epochs": "--epochs", "batch_size": "--batch-size",
                    "learning_rate": "--lr", "patience": "--patience", "masses": "--masses"}  # fmt: skip
#: Counts that must be at least 1 (when given) -> their options.
_COUNT_OPTIONS = {"n": "-n", "factor": "--factor", "chunk_size": "--chunk-size",
                  "n_objects": "--n-objects", "max_events": "--max-events",
                  "partition_size": "--partition-size"}  # fmt: skip


def _check_options(args: argparse.Namespace) -> None:
    """Refuse invalid option values before any work, naming the option and its valid range."""
    from .api import check_settings

    values = {key: getattr(args, "lr" if key == "learning_rate" else key)
              for key in _SETTING_OPTIONS if hasattr(args, "lr" if key == "learning_rate" else key)}  # fmt: skip
    check_settings(values, _SETTING_OPTIONS)
    for key, option in _COUNT_OPTIONS.items():
        value = getattr(args, key, None)
        if value is not None and value < 1:
            option = "--n" if (key, args.command) == ("n", "demo") else option
            raise InputError(f"{option} must be an integer >= 1, got {value}")


_WRITE_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "a file-size limit (ulimit -f) was reached",
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vaeaug`` command; returns the exit code."""
    from .io.atomic import WRITE_ERRNOS

    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "quiet") and not sys.stderr.isatty():
        # a bar redrawn at every epoch or chunk fills a log file with kilobytes of \r lines
        args.quiet = True
    try:
        with _sigterm_as_interrupt():
            _check_options(args)
            summary = args.func(args)
    except InputError as err:
        print(f"vaeaug {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        hint = f" ({_WRITE_HINTS[err.errno]})" if err.errno in _WRITE_HINTS else ""
        print(f"vaeaug {args.command}: error: cannot write '{err.filename}': {err.strerror}{hint}; "
              "no partial file was left behind", file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt as err:
        what = "terminated (SIGTERM)" if isinstance(err, _Terminated) else "interrupted"
        print(f"vaeaug {args.command}: {what}; no output file was left behind", file=sys.stderr)
        return 143 if isinstance(err, _Terminated) else 130
    if summary is not None:
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
