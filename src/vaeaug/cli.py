"""The ``vaeaug`` command line: train, generate, augment, info, validate, demo.

Each command is a thin layer over the library; it prints a one-line summary
at the end and exits with 0 on success, 2 on bad input. The options, their
mapping to the configs and their checks are in :mod:`vaeaug.cli_options`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .cli_options import DASK_PREFIX, DEFAULT_PARTITION, build_parser, check_options, model_configs
from .errors import InputError
from .noise import Stream, child_seed

__all__ = ["main"]

#: What ``vaeaug demo`` writes into ``--out`` (refused without -f when already there).
DEMO_FILES = ("dplus_sample.root", "dplus_model.safetensors", "dplus_generated.root",
              "validation")  # fmt: skip


def _daughters(args) -> dict | None:
    from .io.layout import parse_daughters

    return parse_daughters(args.daughter) if getattr(args, "daughter", None) else None


def _output_format(model, fmt: str | None) -> None:
    """Make ``model`` write ``fmt`` (the CLI's --format); None keeps the input's."""
    if fmt is not None:
        model.layout = dataclasses.replace(model.layout, format=fmt)


def _read(args, path: str, tree: str | None = None):
    """The candidates of ``path`` selected by the input-selection options (``tree``: in
    place of ``--tree``, for commands that name their trees otherwise)."""
    from .io import read_candidates

    return read_candidates(
        path,
        tree=tree or getattr(args, "tree", None),
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


def _check_model_room(args, n_objects: int, out, option: str) -> None:
    """Refuse, before training, a model file of ``n_objects`` daughters that would not fit on
    the disk of ``out`` (every representation has at most 4 features per daughter)."""
    from .io.paths import check_model_space
    from .model.vae import network_bytes

    config, _ = model_configs(args)
    members = getattr(args, "ensemble", None) or 1  # an ensemble file holds K networks
    check_model_space(members * network_bytes(4 * n_objects, config), out, option)


def _train(args, table):
    from .api import fit

    config, train = model_configs(args)
    return fit(table, representation=args.representation, masses=args.masses, config=config,
               train=train, phi=args.phi, exchange=args.exchange, seed=args.seed,
               device=args.device, progress=not args.quiet,
               ensemble=getattr(args, "ensemble", None))  # fmt: skip


def _generate_to_root(model, n: int, out: str, *, seed: int, quiet: bool, tree=None,
                      precision: str = "fp32", chunk_size: int | None = None,
                      compile: bool = False, support: str = "reject",
                      overwrite: bool = True) -> tuple[int, str]:  # fmt: skip
    """Write the sample; returns (candidates written, the support check's summary)."""
    from .model.support import SupportReport
    from .sampling.streaming import generate_to_root

    # generation, conversion and ROOT writing overlap in a bounded pipeline
    report = SupportReport()
    n = generate_to_root(model, n, out, seed=seed, tree=tree, progress=not quiet,
                         precision=precision, chunk_size=chunk_size, compile=compile,
                         support=support, report=report, overwrite=overwrite)  # fmt: skip
    note = "support check off" if support == "off" else report.summary()
    return n, note


def _cmd_train(args) -> str:
    from .io import check_output_path, refuse_overwriting_inputs

    refuse_overwriting_inputs(args.output, [args.input])
    check_output_path(args.output, model=True, overwrite=args.overwrite)
    table = _read(args, args.input)
    _check_model_room(args, len(table.objects), args.output, "-o/--output")
    start = time.perf_counter()
    model = _train(args, table)
    model.save(args.output, overwrite=args.overwrite)
    best, scores = model.history.get("best_epoch"), model.history.get("score") or []
    kept = (f"kept epoch {best} with validation sample score {min(scores):.4f}"
            if best is not None and scores else "too few epochs for a validation sample score")  # fmt: skip
    if args.ensemble:
        kept = f"ensemble of {args.ensemble} members on bootstrap replicas; member 0 {kept}"
    return (f"trained {model.representation.name} VAE on {len(table)} candidates in "
            f"{time.perf_counter() - start:.1f} s ({len(model.history['val'])} epochs, {kept}) "
            f"-> {args.output}")  # fmt: skip


def _generate_ensemble(args, ens) -> str:
    """``generate`` of an ensemble file: the members' shares, with a ``member`` branch."""
    from .model.support import SupportReport
    from .sampling.options import SamplingOptions

    _output_format(ens, args.format)
    options = SamplingOptions(chunk_size=args.chunk_size, precision=args.precision,
                              compile=args.compile, support=args.support)  # fmt: skip
    report = SupportReport()
    start = time.perf_counter()
    n = ens.generate_to_root(args.n, args.output, seed=args.seed, tree=args.tree, options=options,
                             report=report, overwrite=args.overwrite,
                             progress=not args.quiet)  # fmt: skip
    dt = time.perf_counter() - start
    note = "support check off" if args.support == "off" else report.summary()
    return (f"generated {n} candidates from an ensemble of {len(ens)} members (branch member) "
            f"in {dt:.1f} s ({n / dt:.3g} ev/s, {ens.device.type}, {args.precision}; {note}) "
            f"-> {args.output} ({ens.layout.format})")  # fmt: skip


def _cmd_generate(args) -> str:
    from .api import load
    from .ensemble import Ensemble
    from .io import check_output_path, refuse_overwriting_inputs
    from .io.paths import check_free_space

    if (args.refine is None) != (args.refine_with is None):
        raise InputError("--refine MODE and --refine-with FILE go together: refinement needs "
                         "the real candidates (the training file) and a mode (reject or weight)")  # fmt: skip
    if args.dask is not None:
        if args.refine is not None:
            raise InputError("--refine cannot be combined with --dask: refinement runs in one "
                             "process; generate without --dask")  # fmt: skip
        return _generate_dask(args)
    if args.partition_size is not None:
        raise InputError("--partition-size needs --dask (it sets the events per file written "
                         "by a worker); a plain generate writes one file")  # fmt: skip
    refuse_overwriting_inputs(args.output, [args.model, *filter(None, [args.refine_with])])
    check_output_path(args.output, overwrite=args.overwrite)
    model = load(args.model, device=args.device)
    check_free_space(model.layout, args.n, args.output, "-n")
    if isinstance(model, Ensemble):
        if args.refine is not None:
            raise InputError(f"--refine needs one model; '{args.model}' is an ensemble of "
                             f"{len(model)} members (generate from it without --refine)")  # fmt: skip
        return _generate_ensemble(args, model)
    if args.refine is not None:
        from .io import read_candidates

        real = read_candidates(args.refine_with, tree=model.layout.tree,
                               **model.layout.read_selection())  # fmt: skip
        _output_format(model, args.format)
        start = time.perf_counter()
        n, note = _write_refined(model, real, args.n, args.output, seed=args.seed,
                                 mode=args.refine, support=args.support, tree=args.tree,
                                 overwrite=args.overwrite)  # fmt: skip
        dt = time.perf_counter() - start
        return (f"generated {n} refined candidates in {dt:.1f} s ({model.device.type}; {note}) "
                f"-> {args.output} ({model.layout.format})")  # fmt: skip
    _output_format(model, args.format)
    start = time.perf_counter()
    n, note = _generate_to_root(model, args.n, args.output, seed=args.seed, quiet=args.quiet,
                                tree=args.tree, precision=args.precision,
                                chunk_size=args.chunk_size, compile=args.compile,
                                support=args.support, overwrite=args.overwrite)  # fmt: skip
    dt = time.perf_counter() - start
    return (f"generated {n} candidates in {dt:.1f} s ({n / dt:.3g} ev/s, {model.device.type}, "
            f"{args.precision}; {note}) -> {args.output} ({model.layout.format})")  # fmt: skip


_DASK_PROTOCOLS = ("tcp", "tls", "ucx", "ws", "wss", "inproc")


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


def _generate_dask(args) -> str:
    """``generate --dask``: one file per partition, written by the workers into a temporary
    directory beside the output, renamed to it when every partition is written."""
    import importlib.util

    from .api import load
    from .io import atomic_output
    from .io.paths import check_free_space, check_parts_dir
    from .training import choose_device

    scheduler = _parse_scheduler(args.dask)
    missing = [m for m in ("distributed", "dask_awkward") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"--dask needs {' and '.join(missing)}: pip install 'vaeaug[coffea]'")
    # (the model file cannot be the output: -f replaces only a directory of part files)
    out = check_parts_dir(args.output, DASK_PREFIX, args.overwrite)
    if isinstance(scheduler, int):
        choose_device(args.device)  # the workers run here: the device must exist here
    model = load(args.model, device="cpu")  # the layout; each worker loads its own copy
    if not hasattr(model, "vae"):
        raise InputError(f"--dask generates from one model; '{args.model}' is an ensemble: "
                         "generate from it without --dask")  # fmt: skip
    if (args.format or model.layout.format) != "ttree":
        why = ("" if args.format else " (this model writes its training input's RNTuple by "
               "default)")  # fmt: skip
        raise InputError(f"--format rntuple cannot combine with --dask, which writes TTrees "
                         f"(uproot.dask_write){why}: give --format ttree or drop --dask")  # fmt: skip
    check_free_space(model.layout, args.n, str(out), "-n")
    import dask

    from .integrations.dask import client as dask_client
    from .integrations.dask import generate, write

    partition = args.partition_size or DEFAULT_PARTITION
    tree = args.tree or model.layout.tree
    # the client closes (a local cluster stops) before atomic_output removes a failed run's files
    with atomic_output(out, directory=True) as tmp, dask_client(scheduler) as client:
        n_workers = len(client.scheduler_info()["workers"])
        sample = generate(args.model, args.n, seed=args.seed, partition_size=partition,
                          device=args.device, precision=args.precision, support=args.support,
                          compile=args.compile, chunk_size=args.chunk_size)  # fmt: skip
        start = time.perf_counter()
        with dask.config.set(scheduler=client):
            files = write(sample, tmp, tree=tree, prefix=DASK_PREFIX)
        dt = time.perf_counter() - start
        if len(files) != sample.npartitions:
            raise InputError(
                f"--dask {args.dask}: {len(files)} of {sample.npartitions} files arrived in "
                f"'{tmp}'; the workers must share this machine's filesystem"
            )
    return (f"generated {args.n} candidates in {dt:.1f} s ({args.n / dt:.3g} ev/s, dask "
            f"{args.dask}: {n_workers} worker{'s' * (n_workers != 1)}, device {args.device}, "
            f"{args.precision}; support {args.support}) -> {args.output}/ ({len(files)} files "
            f"{DASK_PREFIX}-part<i>.root, {partition} candidates each, ttree {tree})")  # fmt: skip


def _cmd_augment(args) -> str:
    from .io import WEIGHT_BRANCH, check_output_path, flag_branch, refuse_overwriting_inputs
    from .io.paths import check_free_space

    refuse_overwriting_inputs(args.output, [args.input])
    check_output_path(args.output, overwrite=args.overwrite)
    if args.model_out:
        refuse_overwriting_inputs(args.model_out, [args.input, args.output])
        check_output_path(args.model_out, "--model-out", model=True, overwrite=args.overwrite)
    table = _read(args, args.input)
    n = args.n if args.n is not None else args.factor * len(table)
    extra = {flag_branch(table.layout): "int8", WEIGHT_BRANCH: "float32"} if args.combined else {}
    check_free_space(table.layout, n + (len(table) if args.combined else 0), args.output,
                     "-n" if args.n is not None else "--factor", extra)  # fmt: skip
    if args.model_out:
        _check_model_room(args, len(table.objects), args.model_out, "--model-out")
    model = _train(args, table)
    input_layout = model.layout
    _output_format(model, args.format)
    # the model trained with --seed; its sample draws from a sub-stream of it
    seed = child_seed(args.seed, Stream.GENERATED)
    if args.sampling == "posterior":
        written, note = _write_partners(model, table, args.factor, args.output, seed=seed,
                                        support=args.support, combined=args.combined,
                                        width=args.width, overwrite=args.overwrite)  # fmt: skip
    elif args.refine is not None:
        written, note = _write_refined(model, table, n, args.output, seed=seed, mode=args.refine,
                                       support=args.support, combined=args.combined,
                                       overwrite=args.overwrite)  # fmt: skip
    elif args.combined:
        written, note = _write_combined(model, table, n, args.output, seed=seed,
                                        quiet=args.quiet, support=args.support,
                                        overwrite=args.overwrite)  # fmt: skip
    else:
        written, note = _generate_to_root(model, n, args.output, seed=seed, quiet=args.quiet,
                                          support=args.support, overwrite=args.overwrite)  # fmt: skip
    # saved last: an interrupted or failed generation leaves neither file behind
    if args.model_out:
        model.layout = input_layout  # the model file keeps the training input's format
        try:
            model.save(args.model_out, overwrite=args.overwrite)
        except BaseException:
            # nor does an interrupted or failed save: the two outputs come together
            Path(args.output).unlink(missing_ok=True)
            raise
    from .kinematics import invariant_mass

    # the summary's mass check reads back what was written rather than generating again
    written_p4 = _read_back(args.output, model.layout, len(table) if args.combined else 0)
    gen_mass = np.median(invariant_mass(written_p4))
    return (f"augmented {len(table)} -> {written} candidates in {args.output} (parent mass median "
            f"{np.median(invariant_mass(table.p4)):.5f} original, {gen_mass:.5f} generated GeV; "
            f"{note})")  # fmt: skip


def _read_back(path: str, layout, first: int, n: int = 100_000) -> np.ndarray:
    """Up to ``n`` candidates written to ``path`` with ``layout``, from entry ``first``: (n, k, 4) GeV."""
    from .io import read_candidates

    return read_candidates(path, tree=layout.tree, entry_start=first, entry_stop=first + n,
                           **layout.read_selection()).p4  # fmt: skip


def _write_refined(model, real, n: int, out: str, *, seed: int, mode: str, support: str,
                   combined: bool = False, tree: str | None = None,
                   overwrite: bool = True) -> tuple[int, str]:  # fmt: skip
    """Write ``n`` candidates refined against ``real`` (:func:`vaeaug.refine`), held in memory.

    With ``combined`` the originals come first and the weights follow the combined rule
    (:func:`vaeaug.sampling.weights.combined_weights`), the generated weight times the
    refinement weight (mean 1) in weight mode.
    """
    from .api import refine
    from .io import write_candidates
    from .sampling.weights import combined_weights

    refined = refine(model, real, n, seed=seed, mode=mode, support=support)
    weights = refined.weights
    kwargs: dict = {}
    if combined:
        w = np.ones(len(real)) if real.weights is None else real.weights
        real_w, generated_w = combined_weights(w, n)
        kwargs = {"original": real.p4, "original_weights": real_w,
                  "original_labels": real.labels, "original_event_ids": real.event_ids,
                  "generated_weight": float(generated_w[0])}  # fmt: skip
    written = write_candidates(out, refined.p4, model.layout, generated_weights=weights, tree=tree,
                               seed=seed, overwrite=overwrite, **kwargs)  # fmt: skip
    return written, refined.refine_report.summary()


def _write_partners(model, table, factor: int, out: str, *, seed: int, support: str,
                    combined: bool, width: float | None, overwrite: bool) -> tuple[int, str]:  # fmt: skip
    """Each input candidate's ``factor`` partners, near it (``--sampling posterior``), after the
    originals with ``combined``; returns (candidates written, the support check's summary).

    A partner keeps its source's labels (charge) and weighs ``w / factor`` (``w / (1 +
    factor)`` in a combined file, as its source does): the weight branch is written when
    the input has weights or the file is combined.
    """
    from .integrations.coffea import iter_partners
    from .io import WEIGHT_BRANCH, RootWriter, flag_branch
    from .model.support import SupportReport
    from .sampling.posterior import DEFAULT_WIDTH
    from .sampling.weights import combined_weights

    m = len(table)
    w = np.ones(m) if table.weights is None else table.weights
    if combined:
        real_w, partner_w = combined_weights(w, m * factor, partners=True)
    else:
        real_w, partner_w = None, np.repeat(w / factor, factor)
    flag = flag_branch(model.layout)
    extra = {flag: "int8"} if combined else {}
    if combined or table.weights is not None:
        extra[WEIGHT_BRANCH] = "float32"
    report = SupportReport(expected_rate=model.support.expected_rate if model.support else 0.0)
    partners = iter_partners(model, table.p4, factor=factor, seed=seed, support=support,
                             sampling="posterior",
                             width=DEFAULT_WIDTH if width is None else width)  # fmt: skip
    with RootWriter(out, model.layout, extra=extra, seed=seed, overwrite=overwrite) as writer:
        if combined:
            writer.write(table.p4, real=True, labels=table.labels, event_ids=table.event_ids,
                         **{flag: np.zeros(m), WEIGHT_BRANCH: real_w})  # fmt: skip
        for start, p4, part in partners:
            report.add(part)
            sources = slice(start, start + len(p4) // factor)
            rows = slice(start * factor, start * factor + len(p4))
            labels = None if table.labels is None else {
                f: np.repeat(v[sources], factor, axis=0) for f, v in table.labels.items()}  # fmt: skip
            columns = {flag: np.ones(len(p4))} if combined else {}
            if WEIGHT_BRANCH in extra:
                columns[WEIGHT_BRANCH] = partner_w[rows]
            writer.write(p4, labels=labels, **columns)
    report.warn_if_excess(support)
    return writer.n_written, ("support check off" if support == "off" else report.summary())


def _write_combined(model, table, n: int, out: str, *, seed: int, quiet: bool,
                    support: str = "reject", overwrite: bool = True) -> tuple[int, str]:  # fmt: skip
    """The originals, then ``n`` generated candidates, weighted to sum to the input's total.

    The one rule of combined outputs (:func:`vaeaug.sampling.weights.combined_weights`,
    shared with ``Augment(mode="combined")``): with N originals of weights w_i summing
    to W and f = n / N, a real row weighs w_i / (1 + f) and a generated one
    W / (N (1 + f)); the real part sums to W / (1 + f), the generated part to
    W f / (1 + f), the whole tree to W.
    """
    from .io import write_candidates
    from .model.support import SupportReport
    from .sampling.weights import combined_weights

    w = np.ones(len(table)) if table.weights is None else table.weights
    real, generated = combined_weights(w, n)
    report = SupportReport()
    chunks = model.iter_samples(n, seed=seed, progress=not quiet, support=support, report=report)
    with contextlib.closing(chunks):
        written = write_candidates(out, chunks, model.layout, original=table.p4,
                                   original_weights=real, original_labels=table.labels,
                                   original_event_ids=table.event_ids, seed=seed,
                                   generated_weight=float(generated[0]),
                                   overwrite=overwrite)  # fmt: skip
    return written, ("support check off" if support == "off" else report.summary())


def _cmd_trainset(args) -> str:
    from .api import load
    from .io import RootWriter, check_output_path, flag_branch, refuse_overwriting_inputs
    from .trainsets import augment_training_set

    background = args.background or args.signal
    refuse_overwriting_inputs(args.output, [args.signal, background, args.signal_model,
                                            args.background_model])  # fmt: skip
    check_output_path(args.output, overwrite=args.overwrite)
    start = time.perf_counter()
    sig = _read(args, args.signal, tree=args.signal_tree)
    bkg = _read(args, background, tree=args.background_tree)
    models = {name: load(path, device=args.device) if path else None
              for name, path in (("signal", args.signal_model),
                                 ("background", args.background_model))}  # fmt: skip
    config, train = model_configs(args)
    ts = augment_training_set(
        sig, bkg, factor=args.factor, classes=args.classes, seed=args.seed, config=config,
        train=train, device=args.device, progress=not args.quiet, signal_model=models["signal"],
        background_model=models["background"], representation=args.representation,
        masses=args.masses, phi=args.phi, exchange=args.exchange, support=args.support,
        identical=[[o.strip() for o in g.split(",")] for g in args.identical or []],
    )  # fmt: skip
    # a training set holds momenta and classes: no per-object labels or event ids (real and
    # generated candidates of both classes mix)
    layout = dataclasses.replace(sig.layout, labels=None)
    flag = flag_branch(layout)
    extra = {"label": "int8", flag: "int8", "weight": "float64"}
    chunk = 1_000_000
    with RootWriter(args.output, layout, tree=args.output_tree, extra=extra,
                    format=args.format, overwrite=args.overwrite) as writer:  # fmt: skip
        for i in range(0, len(ts), chunk):
            sl = slice(i, i + chunk)
            writer.write(ts.p4[sl], real=True, label=ts.label[sl], weight=ts.weight[sl],
                         **{flag: ts.is_generated[sl]})  # fmt: skip
    c = ts.counts()
    return (f"trainset: signal {c['signal']['real']} real + {c['signal']['generated']} "
            f"generated, background {c['background']['real']} real + "
            f"{c['background']['generated']} generated (x{args.factor}, classes {args.classes}; "
            f"each class weighs its real total) in {time.perf_counter() - start:.1f} s -> "
            f"{args.output} (tree {args.output_tree})")  # fmt: skip


def _out_of_bag_line(oob: dict | None) -> str:
    """``info``'s line on an ensemble's shared error (:func:`vaeaug.ensemble.out_of_bag_check`)."""
    if oob is None or oob.get("shared_variance") is None:
        return "none (the validation band is the members' spread alone)"
    if not oob["shared_variance"]:
        return "no error shared beyond the members' spread"
    shared = oob["shared_variance"]  # checked on load; n_shared is derived from it
    return (f"the members share an error of {shared:.3g} x p(1-p) per bin, that of a real "
            f"sample of {1 / shared:.0f} candidates")  # fmt: skip


def _cmd_info(args) -> str | None:
    from .api import load
    from .io.modelfile import read_model_file

    model = load(args.model)  # the complete check of the file, with its name in any error
    _, meta = read_model_file(args.model)
    ensemble = meta.get("ensemble")
    if ensemble and not args.json:
        # every member has the same decay and settings: the first one's lines, with its seed
        n = meta["members"][0]["provenance"].get("ensemble", {}).get("n_events", "?")
        print(f"ensemble of {ensemble} members on bootstrap replicas of {n} candidates (the "
              "lines below: member 0, trained on the candidates its replica drew)")  # fmt: skip
        print(f"out-of-bag check: {_out_of_bag_line(model.out_of_bag)}")
        model, meta = model.members[0], meta["members"][0]
    if args.json:
        # JSON only on stdout, so that the output parses
        from .validation.report import jsonable

        # strict JSON: a non-finite number (a score of NaN) is null, never the token NaN
        print(json.dumps(jsonable(meta), indent=2, allow_nan=False))
        return None
    else:
        # the loaded (checked) model's settings: defaults filled in for fields a file predates
        prov, cfg, rep, lay = (
            model.provenance,
            model.config.to_dict(),
            model.representation.to_dict(),
            model.layout.to_dict(),
        )
        source = prov.get("source") or {}
        # parameters only: zuko's masked layers also store their masks as buffers
        n_params = sum(p.numel() for p in model.vae.parameters())
        lines = [
            f"model file      {args.model}",
            f"representation  {rep.get('name')}  ({', '.join(f'{k}={_short(v)}' for k, v in rep.items() if k != 'name')})",
            f"objects         {', '.join(lay['objects'])}  ({lay['kind']} layout, components {'/'.join(lay['components'])}, "
            f"{'RNTuple' if lay.get('format') == 'rntuple' else 'tree'} {lay['tree']})",
            f"network         latent {cfg['latent_dim']}, hidden {cfg['hidden']}, {cfg['activation']}, beta {cfg['beta']}, "
            f"prior {cfg['prior']} ({cfg.get('prior_flow')}), decoder {cfg.get('decoder')} ({cfg.get('decoder_flow')}); {n_params} parameters",
            f"choices         {prov.get('representation_choice')}; parent phi "
            f"{'drawn uniformly' if meta.get('phi_uniform') else 'learned'} (phi={prov.get('phi_choice')}, Kuiper p = {_short(prov.get('phi_kuiper_pvalue'))}); "
            f"{_exchange_words(meta.get('exchange', []), lay['objects'], prov.get('exchange_mode'))}",
            _support_line(meta.get("support")),
            f"trained on      {prov.get('n_events')} events from {source.get('file', 'arrays')} "
            f"(tree {source.get('tree')}), seed {prov.get('seed')}, {prov.get('epochs_run')} epochs, "
            f"{prov.get('train_seconds')} s on {prov.get('device')}",
            f"data sha256     {prov.get('data_sha256')}",
            f"written by      vaeaug {prov.get('vaeaug_version')}, torch {prov.get('torch_version')}, {prov.get('created')}",
        ]  # fmt: skip
        print("\n".join(lines))
    what = f"ensemble of {ensemble} members" if ensemble else "vaeaug model"
    return f"{args.model}: {what}, {meta['representation'].get('name')} representation"


def _short(value):
    """A number, or a list of them, at 6 significant digits (0.49367700000000003 -> 0.493677)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.6g}" for v in value) + "]"
    return value


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
    from .training import check_enough_events

    out = check_output_dir(args.out, "--out", writes=DEMO_FILES, overwrite=args.overwrite)
    config, train = model_configs(args)  # --epochs; the other settings keep their defaults
    check_enough_events(args.n, train, "-n")
    _check_model_room(args, len(OBJECTS), out / DEMO_FILES[1], "--out")
    p4 = dplus_kpipi(args.n, seed=args.seed)
    layout = Layout.default(OBJECTS)
    model = fit(p4, objects=OBJECTS, config=config, train=train, seed=args.seed,
                device=args.device, progress=not args.quiet)  # fmt: skip
    n_gen = args.factor * args.n
    # one generation serves the ROOT file, the printed summary and the validation
    gen = model.sample(n_gen, seed=child_seed(args.seed, Stream.GENERATED),
                       progress=not args.quiet)  # fmt: skip
    # written once the work that can fail on the input is done: a failed demo leaves nothing
    out.mkdir(parents=True, exist_ok=True)
    write_candidates(out / "dplus_sample.root", p4, layout, overwrite=args.overwrite)
    model.save(out / "dplus_model.safetensors", overwrite=args.overwrite)
    write_candidates(out / "dplus_generated.root", gen.p4, layout, overwrite=args.overwrite)
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
        independent = dplus_kpipi(args.n, seed=child_seed(args.seed, Stream.DEMO_REFERENCE))
        validate(
            independent,
            gen.p4[: 4 * args.n],
            list(OBJECTS),
            out / "validation",
            training_p4=p4,
            history=model.history,
            seed=args.seed,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    return (
        f"demo: {args.n} built-in D+ -> K- pi+ pi+ candidates multiplied x{args.factor} -> {out}/"
    )


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


#: Subcommand -> the function that runs it (returns the summary line, or None).
_COMMANDS = {"train": _cmd_train, "generate": _cmd_generate, "augment": _cmd_augment,
             "trainset": _cmd_trainset, "info": _cmd_info, "validate": _cmd_validate,
             "demo": _cmd_demo}  # fmt: skip


_WRITE_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EFBIG: "a file-size limit (ulimit -f) was reached",
}


@contextlib.contextmanager
def _one_line_warnings(command: str) -> Iterator[None]:
    """Warnings shown as ``vaeaug CMD: warning: ...`` lines, each text once, without the
    Python source line they came from. Only the format changes (``warnings.formatwarning``):
    a caller that records warnings (pytest, ``catch_warnings(record=True)``) still gets them."""
    import warnings

    seen: set[str] = set()
    original = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None) -> str:
        text = str(message)
        if text in seen:
            return ""
        seen.add(text)
        return f"vaeaug {command}: warning: {text}\n"

    warnings.formatwarning = one_line
    try:
        yield
    finally:
        warnings.formatwarning = original


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vaeaug`` command; returns the exit code.

    A reader of the standard output that goes away (``vaeaug info MODEL | head -1``) ends
    the command quietly with 141 (128 + SIGPIPE, as a shell reports a command the signal
    ended), without a traceback: Python's "Note on SIGPIPE".
    """
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit, where a broken pipe cannot be caught
    except BrokenPipeError:
        # stdout is flushed once more at exit: point it at /dev/null so that this is silent
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return code


def _main(argv: list[str] | None) -> int:
    from .io.atomic import WRITE_ERRNOS

    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "quiet") and not sys.stderr.isatty():
        # a bar redrawn at every epoch or chunk fills a log file with kilobytes of \r lines
        args.quiet = True
    try:
        with _sigterm_as_interrupt(), _one_line_warnings(args.command):
            check_options(args)
            summary = _COMMANDS[args.command](args)
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
