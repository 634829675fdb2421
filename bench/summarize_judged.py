"""Summaries and Markdown tables of the sealed judging runs (no data is read, no model trained).

    python bench/summarize_judged.py fidelity 1k     # judged_fidelity_1k -> judged_fidelity_1k_summary
    python bench/summarize_judged.py classifier      # the table of judged_classifier

The summary is a results record of its own (``<source>_summary/latest.json``, with the
source's provenance inside), so that every number of the tables in docs/benchmarks.md
cites one value of one file; the tables are printed with those citations
(``0.579<!--@#/datasets/dplus/vaeaug/c2st_hgb/mean-->``), ready to paste.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import RESULTS, record

__all__ = ["classifier_table", "fidelity_summary", "fidelity_tables", "main"]

#: Every generator a judging run may hold, in table order; a run's own are those it has.
GENERATORS = ("vaeaug", "vaeaug, refined", "vaeaug, no guard", "nsf", "nsf, refined",
              "nsf, no guard")  # fmt: skip
GENERATOR_LABELS = {"vaeaug": "vaeaug", "vaeaug, refined": "vaeaug, refined",
                    "vaeaug, no guard": "vaeaug, no guard", "nsf": "spline flow, guarded",
                    "nsf, refined": "spline flow, guarded, refined",
                    "nsf, no guard": "spline flow, no guard"}  # fmt: skip
KEYS = {"c2st_hgb": "c2st_auc", "c2st_mlp": "c2st_mlp", "floor_hgb": "c2st_floor",
        "floor_mlp": "c2st_mlp_floor", "fit_s": "fit_s", "sample_rate": "sample_rate",
        "amplification": "amplification", "peak_shift_mev": "peak_shift_mev",
        "width_ratio": "width_ratio", "outside_first": "outside_first",
        "epochs": "epochs", "c2st_hgb_weighted": "c2st_auc_weighted",
        "c2st_mlp_weighted": "c2st_mlp_weighted", "refine_ess": "refine_ess_fraction",
        "refine_acceptance": "refine_acceptance", "refine_fit_s": "refine_fit_s"}  # fmt: skip


def generators_of(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The generators of :data:`GENERATORS` that ``rows`` hold, in table order."""
    present = {r["generator"] for r in rows}
    return tuple(g for g in GENERATORS if g in present)


DATASET_LABELS = {"dplus": "D⁺ → K⁻π⁺π⁺", "lambdac": "Λc⁺ → pK⁻π⁺", "d0_k3pi": "D⁰ → K⁻π⁺π⁺π⁻",
                  "dplus_5body": "D⁺ → K⁻π⁺π⁺π⁺π⁻", "dimuon": "dimuon spectrum",
                  "hzz_mumu": "HZZ muon pairs"}  # fmt: skip


BASE = ("vaeaug", "nsf")  # a seed counts when both base generators were judged on it


def fidelity_summary(source: dict[str, Any]) -> dict[str, Any]:
    """Per dataset (and training size, keyed ``<dataset>_N<size>`` when a run has several)
    and generator, over the seeds: mean, min and max of each key; the number of seeds where
    each generator has the lowest C2ST of each judge family; and per row the ratios of
    vaeaug's training time and sampling rate to the flow's.

    A seed counts when both base generators were judged on it (a time budget can stop a
    run between them); a generator that only some seeds have (runs merged from two
    releases) is summarised over its own seeds, listed under its ``seeds``."""
    out: dict[str, Any] = {}
    generators = generators_of(source["rows"])
    for name in dict.fromkeys(r["dataset"] for r in source["rows"]):
        sizes = sorted({r["n_train"] for r in source["rows"] if r["dataset"] == name})
        for size in sizes:
            key = name if len(sizes) == 1 else f"{name}_N{size}"
            entry = _fidelity_entry([r for r in source["rows"]
                                     if r["dataset"] == name and r["n_train"] == size],
                                    generators)  # fmt: skip
            if entry is not None:
                out[key] = entry
    return out


def _fidelity_entry(rows: list[dict[str, Any]], generators: tuple[str, ...]) -> dict | None:
    """:func:`fidelity_summary`'s entry of one dataset and training size."""
    complete = [seed for seed in {r["seed"] for r in rows}
                if {r["generator"] for r in rows if r["seed"] == seed} >= set(BASE)]  # fmt: skip
    rows = [r for r in rows if r["seed"] in complete]
    if not rows:
        return None
    generators = tuple(g for g in generators if any(r["generator"] == g for r in rows))
    entry: dict[str, Any] = {"n_train": rows[0]["n_train"], "seeds": sorted(complete),
                             "generators": list(generators)}  # fmt: skip
    for gen in generators:
        mine = [r for r in rows if r["generator"] == gen]
        stats: dict[str, Any] = {"seeds": sorted(r["seed"] for r in mine)}
        for key, field in KEYS.items():
            v = np.array([r[field] for r in mine if r.get(field) is not None], dtype=float)
            if len(v):
                stats[key] = {"mean": float(v.mean()), "min": float(v.min()),
                              "max": float(v.max())}  # fmt: skip
        for res in mine[0].get("resonances") or {}:
            v = np.array([r["resonances"][res]["ratio_gen"] for r in mine])
            err = np.array([r["resonances"][res].get("ratio_gen_err", np.nan) for r in mine])
            # stat_err: the binomial error of the mean over the seeds
            stats[f"share_ratio:{res}"] = {"mean": float(v.mean()), "min": float(v.min()),
                                           "max": float(v.max()),
                                           "stat_err": float(np.sqrt(np.sum(err**2)) / len(err))}  # fmt: skip
        entry[gen] = stats
    for family, field in (("hgb", "c2st_auc"), ("mlp", "c2st_mlp")):
        wins = dict.fromkeys(generators, 0)
        for seed in entry["seeds"]:
            best = min((r for r in rows if r["seed"] == seed), key=lambda r: r[field])
            wins[best["generator"]] += 1
        entry[f"lowest_{family}"] = wins
    fit, rate = [], []
    for seed in entry["seeds"]:
        by = {r["generator"]: r for r in rows if r["seed"] == seed}
        fit.append(by["vaeaug"]["fit_s"] / by["nsf"]["fit_s"])
        rate.append(by["vaeaug"]["sample_rate"] / by["nsf"]["sample_rate"])
    entry["fit_ratio_vaeaug_to_nsf"] = float(np.mean(fit))
    entry["sample_rate_ratio_vaeaug_to_nsf"] = float(np.mean(rate))
    for base in BASE:  # refinement's cost, side by side with its base generator's
        refined = f"{base}, refined"
        seeds = [seed for seed in entry["seeds"]
                 if any(r["seed"] == seed and r["generator"] == refined for r in rows)]  # fmt: skip
        if seeds:
            by = [{r["generator"]: r for r in rows if r["seed"] == seed} for seed in seeds]
            # per candidate: refined sampling (rejection included) against the plain sample's
            entry[f"refine_slowdown:{base}"] = float(np.mean(
                [b[base]["sample_rate"] / b[refined]["sample_rate"] for b in by]))  # fmt: skip
            if not all("refine_fit_s" in b[refined] for b in by):
                continue
            # the refiner's fit (its draws, classifier and calibration) against the model's fit
            entry[f"refine_fit_share:{base}"] = float(np.mean(
                [b[refined]["refine_fit_s"] / b[base]["fit_s"] for b in by]))  # fmt: skip
    return entry


def _pointer(path: str | tuple[str, ...]) -> str:
    """The RFC 6901 pointer, in URI-fragment form, of ``"/a/b c"`` or of the keys
    ``("a", "J/psi(1S)")`` (a key holding "/" must come as a tuple)."""
    from urllib.parse import quote

    keys = path if isinstance(path, tuple) else tuple(path.strip("/").split("/"))
    return "/" + "/".join(
        quote(k.replace("~", "~0").replace("/", "~1"), safe="~:(),") for k in keys
    )


def _cite(value: float, pointer: str | tuple[str, ...], spec: str, suffix: str = "") -> str:
    """``value`` printed with ``spec`` and ``suffix`` ("%": the value is a fraction, printed
    x100), then its citation: the JSON pointer of the value in the summary file."""
    shown = 100 * value if suffix == "%" else value
    return f"{shown:{spec}}{suffix}<!--@#{_pointer(pointer)}-->"


def _label(key: str, entry: dict[str, Any] | None = None) -> str:
    """The printed name of a summary entry (``dimuon_N400`` -> the dimuon spectrum's); with
    the ``entry`` of a key that names its size, the size too: "dimuon spectrum (400)"."""
    import re

    base = re.sub(r"_N\d+$", "", key)
    label = DATASET_LABELS.get(base, base)
    return f"{label} ({entry['n_train']:,})" if entry is not None and base != key else label


def _generators(entry: dict[str, Any]) -> list[str]:
    """A summary entry's generators (older summaries list none: those of GENERATORS it has)."""
    return entry.get("generators") or [g for g in GENERATORS if g in entry]


def fidelity_tables(summary: dict[str, Any]) -> str:
    """Three Markdown tables with a citation after every number: C2ST by both judges;
    peak, amplification, refinement and cost; resonance shares."""
    ds = summary["datasets"]
    gens = _generators(next(iter(ds.values())))
    lines = ["| dataset (N) | floor: boosting / network | "
             + " | ".join(GENERATOR_LABELS[g] for g in gens) + " |",
             "|---|---|" + "---|" * len(gens)]  # fmt: skip
    for name, e in ds.items():
        p = f"/datasets/{name}"
        cells = [f"{_label(name)} ({e['n_train']:,})",
                 _cite(e["vaeaug"]["floor_hgb"]["mean"], f"{p}/vaeaug/floor_hgb/mean", ".3f")
                 + " / " + _cite(e["vaeaug"]["floor_mlp"]["mean"],
                                 f"{p}/vaeaug/floor_mlp/mean", ".3f")]  # fmt: skip
        mine = [g for g in gens if g in e]  # a run may miss a generator on some dataset
        best = {f: min(mine, key=lambda g: e[g][f"c2st_{f}"]["mean"]) for f in ("hgb", "mlp")}
        for gen in gens:
            if gen not in e:
                cells.append("–")
                continue
            q = f"{p}/{gen}"
            parts = []
            for f in ("hgb", "mlp"):
                text = _cite(e[gen][f"c2st_{f}"]["mean"], f"{q}/c2st_{f}/mean", ".3f")
                parts.append(f"**{text}**" if best[f] == gen else text)
            cells.append(" / ".join(parts))
        lines.append("| " + " | ".join(cells) + " |")
    out = "\n".join(lines) + "\n\n"
    shown = [g for g in gens if "no guard" not in g]  # per entry: those it has
    lines = ["| dataset | generator | peak − ref [MeV] | width / ref | amplification | "
             "first draws redrawn | refinement: acceptance / ESS | weighted C2ST "
             "| fit time, vaeaug / flow | sampling rate, vaeaug / flow |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, e in ds.items():
        p = f"/datasets/{name}"
        for i, gen in enumerate(g for g in shown if g in e):
            q, g = f"{p}/{gen}", e[gen]
            redrawn = g.get("outside_first")
            refined = "refine_acceptance" in g
            cells = [_label(name, e) if i == 0 else "", GENERATOR_LABELS[gen],
                     _cite(g["peak_shift_mev"]["mean"], f"{q}/peak_shift_mev/mean", "+.2f"),
                     _cite(g["width_ratio"]["mean"], f"{q}/width_ratio/mean", ".3f"),
                     _cite(g["amplification"]["mean"], f"{q}/amplification/mean", ".2f"),
                     "" if redrawn is None else
                     _cite(redrawn["mean"], f"{q}/outside_first/mean", ".1f", "%"),
                     "" if not refined else
                     _cite(g["refine_acceptance"]["mean"], f"{q}/refine_acceptance/mean", ".2f")
                     + " / " + _cite(g["refine_ess"]["mean"], f"{q}/refine_ess/mean", ".2f"),
                     "" if not refined else
                     _cite(g["c2st_hgb_weighted"]["mean"], f"{q}/c2st_hgb_weighted/mean", ".3f")
                     + " / " + _cite(g["c2st_mlp_weighted"]["mean"],
                                     f"{q}/c2st_mlp_weighted/mean", ".3f")]  # fmt: skip
            if i == 0:
                cells += [_cite(e["fit_ratio_vaeaug_to_nsf"], f"{p}/fit_ratio_vaeaug_to_nsf",
                                ".1f", "×"),
                          _cite(e["sample_rate_ratio_vaeaug_to_nsf"],
                                f"{p}/sample_rate_ratio_vaeaug_to_nsf", ".2f", "×")]  # fmt: skip
            else:
                cells += ["", ""]
            lines.append("| " + " | ".join(cells) + " |")
    out += "\n".join(lines) + "\n\n"
    lines = ["| dataset | window | " + " | ".join(GENERATOR_LABELS[g] for g in gens) + " |",
             "|---|---|" + "---|" * len(gens)]  # fmt: skip
    for name, e in ds.items():
        names = [k.split(":", 1)[1] for k in e["vaeaug"] if k.startswith("share_ratio:")]
        for res in names:
            key = f"share_ratio:{res}"
            cells = [_label(name, e), res]
            for gen in gens:
                if gen not in e:
                    cells.append("–")
                    continue
                v = e[gen][key]
                text = _cite(v["mean"], ("datasets", name, gen, key, "mean"), ".2f")
                if np.isfinite(v.get("stat_err", np.nan)):
                    text += " ± " + _cite(v["stat_err"], ("datasets", name, gen, key, "stat_err"),
                                          ".2f")  # fmt: skip
                cells.append(text)
            lines.append("| " + " | ".join(cells) + " |")
    return out + "\n".join(lines) + "\n"


def classifier_table(result: dict[str, Any]) -> str:
    """The classifier study's table: every set's mean efficiency at 1% background and its
    paired gain over the real-only classifier, each task."""
    lines = ["| task | training set | sig. eff. @ 1% bkg | gain over real | share of the oracle's gain "
             "| ROC AUC |", "|---|---|---|---|---|---|"]  # fmt: skip
    for task, methods in result["summary"].items():
        for i, (method, e) in enumerate(methods.items()):
            p = f"/summary/{task}/{method}"
            eff = e["eff_1pct"]
            share = eff.get("oracle_share")
            cells = [task if i == 0 else "", method,
                     _cite(eff["mean"], f"{p}/eff_1pct/mean", ".3f") + " ± "
                     + _cite(eff["sem"], f"{p}/eff_1pct/sem", ".3f"),
                     "" if method == "real" else
                     _cite(eff["gain"], f"{p}/eff_1pct/gain", "+.3f") + " ± "
                     + _cite(eff["gain_sem"], f"{p}/eff_1pct/gain_sem", ".3f"),
                     "" if share is None or method == "real" else
                     _cite(share, f"{p}/eff_1pct/oracle_share", ".0f", "%"),
                     _cite(e["auc"]["mean"], f"{p}/auc/mean", ".4f")]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=["fidelity", "classifier"])
    parser.add_argument("tags", nargs="*", default=["1k"],
                        help="fidelity: judged_fidelity_<tag>; several tags merge their rows "
                        "(e.g. seed 1 and seeds 2-3 of one size run apart)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.study == "classifier":
        result = json.loads((RESULTS / "judged_classifier" / "latest.json").read_text())
        print("<!-- numbers: bench/results/judged_classifier/latest.json -->\n")
        print(classifier_table(result))
        return 0
    names = [f"judged_fidelity_{tag}" for tag in args.tags]
    sources = [json.loads((RESULTS / n / "latest.json").read_text()) for n in names]
    name = "_".join([names[0], *args.tags[1:]])
    merged = {"rows": [r for src in sources for r in src["rows"]]}
    summary = {"source": [f"bench/results/{n}/latest.json" for n in names],
               "source_provenance": [src["provenance"] for src in sources],
               "flow_config": sources[0]["flow_config"],
               "refinement": sources[-1].get("refinement"),
               "datasets": fidelity_summary(merged)}  # fmt: skip
    if len(names) == 1:  # the form of the records before merging existed
        summary["source"], summary["source_provenance"] = (
            summary["source"][0],
            sources[0]["provenance"],
        )
    path = record(f"{name}_summary", summary, argv=sys.argv)
    print(f"<!-- numbers: {path.relative_to(RESULTS.parents[1]).as_posix()} -->\n")
    print(fidelity_tables(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
