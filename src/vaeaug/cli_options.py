"""The options of the ``vaeaug`` command line: the parser, the option -> config mapping, the checks.

One table (:data:`CONFIG_OPTIONS`) maps each model and training option to its field of
:class:`~vaeaug.VAEConfig` or :class:`~vaeaug.TrainConfig`: the parser takes the options'
defaults from it, :func:`model_configs` builds the configs from parsed arguments, and
:func:`check_options` names the options in the settings' error messages.
"""

from __future__ import annotations

import argparse

from ._version import __version__
from .errors import InputError

__all__ = [
    "CONFIG_OPTIONS",
    "DASK_PREFIX",
    "DEFAULT_PARTITION",
    "build_parser",
    "check_options",
    "model_configs",
]

#: Model and training option -> (config, field): "vae" is VAEConfig, "train" TrainConfig.
CONFIG_OPTIONS = {
    "--latent-dim": ("vae", "latent_dim"),
    "--hidden": ("vae", "hidden"),
    "--beta": ("vae", "beta"),
    "--prior": ("vae", "prior"),
    "--epochs": ("train", "epochs"),
    "--batch-size": ("train", "batch_size"),
    "--lr": ("train", "learning_rate"),
    "--patience": ("train", "patience"),
}
#: Counts that must be at least 1 (when given) -> their options.
_COUNT_OPTIONS = {"n": "-n", "factor": "--factor", "chunk_size": "--chunk-size",
                  "n_objects": "--n-objects", "max_events": "--max-events",
                  "partition_size": "--partition-size"}  # fmt: skip
#: Files of ``generate --dask``: ``<prefix>-part<i>.root`` in the output directory.
DASK_PREFIX = "generated"
#: ``--partition-size`` when not given.
DEFAULT_PARTITION = 1_000_000


def _dest(option: str) -> str:
    """The attribute of the parsed arguments that holds ``option`` (as argparse names it)."""
    return option.lstrip("-").replace("-", "_")


def _config_defaults() -> dict:
    from .model.vae import VAEConfig
    from .training import TrainConfig

    return {"vae": VAEConfig(), "train": TrainConfig()}


def model_configs(args: argparse.Namespace):
    """(VAEConfig, TrainConfig) from the parsed options; a command's missing options keep the
    configs' defaults."""
    from .model.vae import VAEConfig
    from .training import TrainConfig

    fields: dict[str, dict] = {"vae": {}, "train": {}}
    for option, (config, field) in CONFIG_OPTIONS.items():
        if hasattr(args, _dest(option)):
            fields[config][field] = getattr(args, _dest(option))
    return VAEConfig(**fields["vae"]), TrainConfig(**fields["train"])


def check_options(args: argparse.Namespace) -> None:
    """Refuse invalid option values before any work, naming the option and its valid range."""
    from .settings import check_settings

    # setting (the name check_settings knows) -> option, in the order of the checks
    options = {"seed": "--seed", **{field: option for option, (_, field) in CONFIG_OPTIONS.items()},
               "masses": "--masses"}  # fmt: skip
    values = {field: getattr(args, _dest(option)) for field, option in options.items()
              if hasattr(args, _dest(option))}  # fmt: skip
    check_settings(values, options)
    if hasattr(args, "representation"):
        from .representations import REPRESENTATIONS

        valid = ("auto", *REPRESENTATIONS)
        if args.representation not in valid:  # refused before any file is read
            raise InputError(
                f"--representation '{args.representation}' unknown; valid: {', '.join(valid)}"
            )
    if hasattr(args, "device"):
        from .training import check_device

        check_device(args.device, "--device")
    _check_sampling_options(args)
    for key, option in _COUNT_OPTIONS.items():
        value = getattr(args, key, None)
        if value is not None and value < 1:
            raise InputError(f"{option} must be an integer >= 1, got {value}")


def _check_sampling_options(args: argparse.Namespace) -> None:
    """``augment --sampling posterior``: partners per input candidate, so --factor, not -n,
    and not with --refine; --width only with it, in (0, 1]."""
    from .sampling.posterior import check_width

    sampling = getattr(args, "sampling", "prior")
    width = getattr(args, "width", None)
    if sampling != "posterior":
        if width is not None:
            raise InputError("--width sets the step of --sampling posterior; give both or neither")
        return
    if args.n is not None:
        raise InputError("--sampling posterior gives each input candidate --factor partners: "
                         "use --factor, not -n")  # fmt: skip
    if args.refine is not None:
        raise InputError("--sampling posterior and --refine do not combine (refinement redraws "
                         "from the model's distribution); drop one")  # fmt: skip
    if width is not None:
        try:
            check_width(width)
        except InputError as err:
            raise InputError(f"--{err}") from None


def _add_read_options(p: argparse.ArgumentParser, *, tree: bool = True) -> None:
    """The input selection; ``tree=False`` for a command that names its trees otherwise."""
    g = p.add_argument_group("input selection")
    if tree:
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
    g.add_argument("--cut", help="select entries, in uproot's cut syntax, on TTrees and RNTuples "
                   "alike, e.g. 'K1_E > 2' or '(nMuon == 2) & (Muon_pt[:, 0] > 20)'")  # fmt: skip
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


def _add_format_option(p: argparse.ArgumentParser) -> None:
    from .io.layout import FORMATS

    p.add_argument(
        "--format",
        choices=FORMATS,
        help="write a TTree or an RNTuple (default: the format of the training input)",
    )


def _add_config_option(g, defaults: dict, option: str, help: str, **kwargs) -> None:
    """An option of :data:`CONFIG_OPTIONS`, with its field's default (``{default}`` in ``help``)."""
    config, field = CONFIG_OPTIONS[option]
    default = getattr(defaults[config], field)
    default = list(default) if isinstance(default, tuple) else default
    g.add_argument(option, default=default, help=help.format(default=default), **kwargs)


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from .model.symmetry import EXCHANGE_CHOICES
    from .model.vae import PRIORS
    from .representations import REPRESENTATIONS

    d = _config_defaults()
    g = p.add_argument_group("model and training")
    g.add_argument(
        "--representation",
        default="auto",
        help=f"{', '.join(('auto', *REPRESENTATIONS))} (default auto)",
    )
    g.add_argument(
        "--masses", nargs="+", type=float, metavar="GEV", help="daughter mass hypotheses in GeV"
    )
    _add_config_option(g, d, "--latent-dim", "latent size (default {default})", type=int)
    _add_config_option(g, d, "--hidden", "hidden layer widths", type=int, nargs="+")
    _add_config_option(g, d, "--beta", "KL weight (default {default})", type=float)
    _add_config_option(g, d, "--prior", "latent prior: flow (learned) or standard "
                       "(default {default})", choices=PRIORS)  # fmt: skip
    g.add_argument("--phi", default="auto", choices=("auto", "uniform", "learn"),
                   help="parent azimuth: uniform when the data are (auto, Kuiper test at 1%%), "
                   "or forced (default auto)")  # fmt: skip
    g.add_argument("--exchange", default="auto", choices=EXCHANGE_CHOICES,
                   help="daughters of equal mass that the input orders by decreasing pT: "
                   "generated in that order, learned exchange-symmetric (symmetric) or as "
                   "labelled (sort); auto picks by the number of daughters; off leaves "
                   "the labels alone (default auto)")  # fmt: skip
    _add_config_option(g, d, "--epochs", "maximum epochs (default {default})", type=int)
    _add_config_option(g, d, "--batch-size", "events per step (default {default})", type=int)
    _add_config_option(g, d, "--lr", "learning rate (default {default})", type=float)
    _add_config_option(g, d, "--patience", "early-stopping patience (default {default})",
                       type=int)  # fmt: skip


def _add_common(p: argparse.ArgumentParser, seed: bool = True) -> None:
    if seed:
        p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument(
        "--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N, mps"
    )
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars (drawn only when stderr is a terminal)")  # fmt: skip


def _add_overwrite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--overwrite", action="store_true",
                   help="replace existing output files (never an input, never a ROOT file by a model)")  # fmt: skip


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


def _add_refine_option(p: argparse.ArgumentParser, *, real_file: bool) -> None:
    from .sampling.refine import MODES

    g = p.add_argument_group("refinement")
    real = "the --refine-with file" if real_file else "the input"
    g.add_argument("--refine", choices=MODES, metavar="MODE",
                   help="refine the generated candidates with a classifier trained on "
                   f"{real} against them: reject (keep each with probability proportional "
                   "to its density ratio real/generated: unweighted) or weight (keep all, "
                   "write the clipped ratio as the weight branch); default: no refinement")  # fmt: skip
    if real_file:
        g.add_argument("--refine-with", metavar="FILE",
                       help="the real candidates for --refine: the training file (read with "
                       "the model's branches and tree)")  # fmt: skip


def _add_support_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--support", default="reject", choices=("reject", "warn", "off"),
                   help="candidates outside the training support (e.g. the detector acceptance): "
                   "redraw them (reject, default), keep them with a warning (warn), or off")  # fmt: skip


def _train_parser(sub) -> argparse.ArgumentParser:
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
    p.add_argument("--ensemble", type=int, metavar="K",
                   help="train K >= 2 members on bootstrap replicas into one file (generate then "
                   "tags each candidate with its member; validate --model draws the band)")  # fmt: skip
    _add_common(p)
    return p


def _generate_parser(sub) -> argparse.ArgumentParser:
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
    # --output-tree as in trainset; --tree names the input tree everywhere else (kept here as
    # the old spelling)
    p.add_argument("--output-tree", "--tree", dest="tree", metavar="TREE",
                   help="output tree name (default: the training input's; --tree: old spelling)")  # fmt: skip
    _add_format_option(p)
    _add_generate_options(p)
    _add_refine_option(p, real_file=True)
    g = p.add_argument_group("scale-out")
    g.add_argument("--dask", metavar="SCHEDULER",
                   help="generate on a Dask cluster: local:K (K worker processes here) or a "
                   "scheduler address (tcp://host:8786); -o is then a directory of "
                   f"{DASK_PREFIX}-part<i>.root files, one per partition")  # fmt: skip
    g.add_argument("--partition-size", type=int, metavar="P",
                   help=f"candidates per partition and file, with --dask (default "
                   f"{DEFAULT_PARTITION}); the events depend on it, never on the workers")  # fmt: skip
    _add_common(p)
    return p


def _augment_parser(sub) -> argparse.ArgumentParser:
    from .sampling.posterior import DEFAULT_WIDTH

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
        help="write originals + generated with is_generated and weight branches, weighted to "
        "sum to the input's total W: a real candidate w/(1+f), a generated one W/(N(1+f)), "
        "f = n/N",
    )
    p.add_argument("--sampling", default="prior", choices=("prior", "posterior"),
                   help="prior: draw from the model's distribution (default); posterior: each "
                   "input candidate gets --factor partners near it (its neighbours: what a "
                   "selection kept stays kept), weighted like the input")  # fmt: skip
    p.add_argument("--width", type=float, default=None, metavar="W",
                   help="with --sampling posterior: how far partners step from their source, "
                   f"in (0, 1] (1: as far as prior sampling; default {DEFAULT_WIDTH})")  # fmt: skip
    _add_format_option(p)
    _add_read_options(p)
    _add_train_options(p)
    _add_support_option(p)
    _add_refine_option(p, real_file=False)
    _add_common(p)
    return p


def _trainset_parser(sub) -> argparse.ArgumentParser:
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
    _add_read_options(p, tree=False)  # the same selection of both trees
    _add_format_option(p)
    p.add_argument("--identical", nargs="+", metavar="A,B",
                   help="groups of identical daughters that the input orders by decreasing pT, "
                   "e.g. pi1,pi2: generated candidates are put in the same order")  # fmt: skip
    p.add_argument("--signal-model", help="model file to use for the signal instead of fitting")
    p.add_argument("--background-model",
                   help="model file to use for the background instead of fitting")  # fmt: skip
    _add_train_options(p)
    _add_support_option(p)
    _add_common(p)
    return p


def _info_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "info",
        help="show what a model file holds",
        description="Show the configuration and provenance in a model file.",
    )
    p.add_argument("model", help="model file")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    return p


def _validate_parser(sub) -> argparse.ArgumentParser:
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
    p.add_argument("-o", "--out", required=True, help="output directory")
    _add_overwrite_option(p)
    p.add_argument("--tree", help="tree name in the original (and reference) file")
    p.add_argument("--generated-tree", help="tree name in the generated file (default: --tree)")
    p.add_argument("--objects", nargs="+", metavar="NAME", help="objects to compare")
    p.add_argument("--collection", help="a jagged collection to compare in both files, e.g. "
                   "Muon (NanoAOD style and vaeaug's outputs of such inputs; with --n-objects)")  # fmt: skip
    p.add_argument("--n-objects", type=int, help="leading objects of --collection (default 2)")
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
    p.add_argument("--resonance", action="append", metavar="NAME=LO:HI",
                   help="a parent-mass window in GeV whose share of candidates the report "
                   "compares, beside the peak and its tails; repeat per resonance, e.g. "
                   "--resonance J/psi=2.9:3.3 --resonance Upsilon=9.2:9.7")  # fmt: skip
    return p


def _demo_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo",
        help="run the whole chain on the built-in sample",
        description="Generate the built-in D+ -> K- pi+ pi+ sample, train, multiply and validate.",
    )
    p.add_argument("-o", "--out", default="vaeaug-demo",
                   help="output directory (default vaeaug-demo)")  # fmt: skip
    _add_overwrite_option(p)
    p.add_argument("-n", "--n", type=int, default=10_000,
                   help="built-in candidates (default 10000)")  # fmt: skip
    p.add_argument("--factor", type=int, default=10, help="multiplication factor (default 10)")
    p.add_argument("--epochs", type=int, default=200, help="maximum epochs (default 200)")
    p.add_argument("--no-validate", action="store_true", help="skip the validation report")
    _add_common(p)
    return p


#: The subcommands, in the order of ``vaeaug --help`` -> the function adding their parser.
_PARSERS = {"train": _train_parser, "generate": _generate_parser, "augment": _augment_parser,
            "trainset": _trainset_parser, "info": _info_parser, "validate": _validate_parser,
            "demo": _demo_parser}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The ``vaeaug`` parser; the parsed arguments' ``command`` names the subcommand."""
    parser = argparse.ArgumentParser(
        prog="vaeaug",
        description="Multiply decay-candidate samples with a variational autoencoder.",
    )
    parser.add_argument("--version", action="version", version=f"vaeaug {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _PARSERS.values():
        add(sub)
    return parser
