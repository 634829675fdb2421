"""The ``vaeaug`` command line: train, generate, augment, info, validate, demo.

Each command is a thin layer over the library; it prints a one-line summary
at the end and exits with 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
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
    g.add_argument("--tree", help="tree name (needed when the file holds several)")
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


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from .model.vae import VAEConfig
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
    g.add_argument(
        "--prior", default=v.prior, choices=("gmm", "standard"), help="sampling prior (default gmm)"
    )
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
    return fit(table, representation=args.representation, masses=args.masses, config=config, train=train,
               seed=args.seed, device=args.device, progress=not args.quiet)  # fmt: skip


def _generate_to_root(model, n: int, out: str, *, seed: int, quiet: bool, original=None, tree=None,
                      precision: str = "fp32", chunk_size: int | None = None,
                      compile: bool = False) -> int:  # fmt: skip
    from .generation import DEFAULT_CHUNK, generate_to_root

    # generation, conversion and ROOT writing overlap in a bounded pipeline; the
    # originals (if any) keep weight 1 and the generated ones share their total
    return generate_to_root(model, n, out, seed=seed, tree=tree, original=original,
                            progress=not quiet, precision=precision,
                            chunk_size=chunk_size or DEFAULT_CHUNK, compile=compile)  # fmt: skip


def _cmd_train(args) -> str:
    from .io import check_output_path, refuse_overwriting_inputs

    refuse_overwriting_inputs(args.output, [args.input])
    check_output_path(args.output, model=True)
    table = _read(args, args.input)
    start = time.perf_counter()
    model = _train(args, table)
    model.save(args.output)
    return (f"trained {model.representation.name} VAE on {len(table)} candidates in "
            f"{time.perf_counter() - start:.1f} s ({len(model.history['val'])} epochs, best val loss "
            f"{min(model.history['val']):.3f}) -> {args.output}")  # fmt: skip


def _add_generate_options(p: argparse.ArgumentParser) -> None:
    from .generation import DEFAULT_CHUNK, PRECISIONS

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
        default=DEFAULT_CHUNK,
        metavar="N",
        help=f"events per chunk and ROOT basket (default {DEFAULT_CHUNK}); memory grows with it",
    )
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the decoder (pays on GPUs for large -n)")  # fmt: skip


def _cmd_generate(args) -> str:
    from .api import load
    from .io import check_output_path, refuse_overwriting_inputs

    refuse_overwriting_inputs(args.output, [args.model])
    check_output_path(args.output)
    model = load(args.model, device=args.device)
    _check_free_space(model.layout, args.n, args.output, "-n")
    start = time.perf_counter()
    n = _generate_to_root(model, args.n, args.output, seed=args.seed, quiet=args.quiet,
                          tree=args.tree, precision=args.precision, chunk_size=args.chunk_size,
                          compile=args.compile)  # fmt: skip
    dt = time.perf_counter() - start
    return (f"generated {n} candidates in {dt:.1f} s ({n / dt:.3g} ev/s, {model.device.type}, "
            f"{args.precision}) -> {args.output}")  # fmt: skip


def _cmd_augment(args) -> str:
    from .io import FLAG_BRANCH, WEIGHT_BRANCH, check_output_path, refuse_overwriting_inputs

    refuse_overwriting_inputs(args.output, [args.input])
    check_output_path(args.output)
    if args.model_out:
        refuse_overwriting_inputs(args.model_out, [args.input, args.output])
        check_output_path(args.model_out, "--model-out", model=True)
    table = _read(args, args.input)
    n = args.n if args.n is not None else args.factor * len(table)
    extra = {FLAG_BRANCH: "int8", WEIGHT_BRANCH: "float32"} if args.combined else {}
    _check_free_space(table.layout, n + (len(table) if args.combined else 0), args.output,
                      "-n" if args.n is not None else "--factor", extra)  # fmt: skip
    model = _train(args, table)
    if args.combined:
        written = _write_combined(model, table, n, args.output, seed=args.seed + 1,
                                  quiet=args.quiet)  # fmt: skip
    else:
        written = _generate_to_root(model, n, args.output, seed=args.seed + 1, quiet=args.quiet)
    # saved last: an interrupted or failed generation leaves neither file behind
    if args.model_out:
        try:
            model.save(args.model_out)
        except BaseException:
            # nor does an interrupted or failed save: the two outputs come together
            Path(args.output).unlink(missing_ok=True)
            raise
    from .candidates import invariant_mass
    from .io import read_candidates

    # the summary's mass check reads back what was written rather than generating again
    layout, first = model.layout, len(table) if args.combined else 0
    select = ({"collection": layout.collection, "n_objects": layout.n_objects}
              if layout.kind == "jagged" else {"objects": list(layout.objects)})  # fmt: skip
    written_p4 = read_candidates(args.output, tree=layout.tree, entry_start=first,
                                 entry_stop=first + 100_000, **select).p4  # fmt: skip
    gen_mass = np.median(invariant_mass(written_p4))

    return (f"augmented {len(table)} -> {written} candidates in {args.output} (parent mass median "
            f"{np.median(invariant_mass(table.p4)):.5f} original, {gen_mass:.5f} generated GeV)")  # fmt: skip


def _write_combined(model, table, n: int, out: str, *, seed: int, quiet: bool) -> int:
    """The originals (weight w) then ``n`` generated candidates sharing their total weight.

    The rule of docs/quickstart.md, shared with ``Augment(mode="combined")``: the
    real rows keep their weights w_i, and each generated row gets W / n with
    W = sum(w_i), so the real part and the generated part each sum to W (the
    combined tree sums to 2W).
    """
    from .io import write_candidates

    w = np.ones(len(table)) if table.weights is None else table.weights
    chunks = model.iter_samples(n, seed=seed, progress=not quiet)
    with contextlib.closing(chunks):
        return write_candidates(out, chunks, model.layout, original=table.p4, original_weights=w,
                                generated_weight=float(w.sum()) / max(n, 1))  # fmt: skip


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
    from .modelfile import read_model_file

    load(args.model)  # the complete check of the file, with its name in any error
    tensors, meta = read_model_file(args.model)
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
        n_params = sum(
            t.numel() for k, t in tensors.items() if k.startswith("vae.") and "prior" not in k
        )
        lines = [
            f"model file      {args.model}",
            f"representation  {rep.get('name')}  ({', '.join(f'{k}={v}' for k, v in rep.items() if k != 'name')})",
            f"objects         {', '.join(lay['objects'])}  ({lay['kind']} layout, components {'/'.join(lay['components'])}, tree {lay['tree']})",
            f"network         latent {cfg['latent_dim']}, hidden {cfg['hidden']}, {cfg['activation']}, beta {cfg['beta']}, prior {cfg['prior']}; {n_params} parameters",
            f"trained on      {prov.get('n_events')} events from {prov.get('source', {}).get('file', 'arrays')} "
            f"(tree {prov.get('source', {}).get('tree')}), seed {prov.get('seed')}, {prov.get('epochs_run')} epochs, "
            f"{prov.get('train_seconds')} s on {prov.get('device')}",
            f"data sha256     {prov.get('data_sha256')}",
            f"written by      vaeaug {prov.get('vaeaug_version')}, torch {prov.get('torch_version')}, {prov.get('created')}",
        ]  # fmt: skip
        print("\n".join(lines))
    return f"{args.model}: vaeaug model, {meta['representation'].get('name')} representation"


def _cmd_validate(args) -> str:
    from .validation.command import run_validate

    return run_validate(args)


def _cmd_demo(args) -> str:
    from .api import fit
    from .candidates import invariant_mass
    from .datasets import OBJECTS, dplus_kpipi
    from .io import Layout, check_output_dir, write_candidates
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
    p.add_argument("-o", "--output", required=True, help="ROOT file to write")
    p.add_argument("--tree", help="output tree name (default: the training input's)")
    _add_generate_options(p)
    _add_common(p)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser(
        "augment",
        help="train and generate in one go",
        description="Train on a ROOT file and write a multiplied sample.",
    )
    p.add_argument("input", help="input ROOT file")
    p.add_argument("-o", "--output", required=True, help="ROOT file to write")
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
    _add_read_options(p)
    _add_train_options(p)
    _add_common(p)
    p.set_defaults(func=_cmd_augment)

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
                  "n_objects": "--n-objects", "max_events": "--max-events"}  # fmt: skip


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
