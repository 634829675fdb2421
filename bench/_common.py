"""Helpers shared by the benchmarks: data, canonical ordering, metrics, tables, timing.

Samples are float64 arrays ``p4`` of shape (N, k, 4), the daughters with (px, py, pz, E)
in GeV: by default the shared D+ -> K- pi+ pi+ files (objects K1, pi1, pi2), or any
decay given as a :class:`Dataset` (:func:`load_dataset`). The training file trains, the
reference file judges; nothing from the reference file ever reaches a model or a
classifier's training set.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "OBJECTS",
    "Dataset",
    "canonical_order",
    "data_dir",
    "efficiency_at",
    "fidelity_metrics",
    "infer_masses",
    "load_dataset",
    "load_p4",
    "machine",
    "markdown_table",
    "one_thread",
    "pt_order_pions",
    "timer",
    "write_json",
]

OBJECTS = ["K1", "pi1", "pi2"]
#: The identical particles of the shared D+ files, ordered by decreasing pT there.
IDENTICAL = [("pi1", "pi2")]
#: Parent masses within this distance (GeV) of the sum of the daughter masses are
#: counted as piled up at the kinematic threshold.
THRESHOLD_GEV = 1e-4
#: The shared data beside the repository (as .ci/run and the README set it up).
_DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def one_thread() -> None:
    """Pin torch and the BLAS/OpenMP pools to one thread.

    The benchmark machine has 2 cores shared by several people; oversubscribed
    threads made one training 20x slower, and one thread also makes timings comparable.
    """
    import torch

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # threadpoolctl comes with scikit-learn; harmless without it
        pass


def data_dir(path: str | None = None) -> Path:
    """The shared data folder: ``path``, else ``$VAEAUG_TESTDATA``, else ../shared/data."""
    folder = Path(path or os.environ.get("VAEAUG_TESTDATA") or _DEFAULT_DATA)
    for name in ("dplus_kpipi_train.root", "dplus_kpipi_reference.root"):
        if not (folder / name).exists():
            raise SystemExit(
                f"'{folder / name}' not found: pass --data DIR or set VAEAUG_TESTDATA to the "
                "folder holding dplus_kpipi_train.root and dplus_kpipi_reference.root"
            )
    return folder


def load_p4(folder: Path, which: str, tree: str) -> np.ndarray:
    """4-momenta (N, 3, 4) in GeV of ``dplus_kpipi_{which}.root`` tree ``tree``.

    which: "train" or "reference"; tree: "signal" or "background".
    """
    import vaeaug

    table = vaeaug.read_candidates(folder / f"dplus_kpipi_{which}.root", tree=tree, objects=OBJECTS)
    return np.ascontiguousarray(table.p4, dtype=np.float64)


def read_p4(path: str | os.PathLike, tree: str | None, objects: Sequence[str] | None):
    """4-momenta (N, k, 4) in GeV of ``objects`` (all the file's objects when None) and
    the object names, from the flat branches ``<object>_px/_py/_pz/_E`` (or pt/eta/phi/mass)
    of ``tree`` (may be None when the file holds one tree)."""
    import vaeaug

    table = vaeaug.read_candidates(path, tree=tree, objects=objects)
    return np.ascontiguousarray(table.p4, dtype=np.float64), table.objects


def canonical_order(p4: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Copy of ``p4`` (N, k, 4) with each group of identical particles ordered by
    decreasing pT.

    groups: object indices, one sequence per group of identical particles (e.g.
    ``[(1, 2)]`` for the D+ pions). Ties keep their order (a stable sort).

    The label of an identical particle is a convention of the file (the shared D+
    signal orders its pions by pT, its background does not); a classifier would
    otherwise separate samples by the ordering alone, and a generator need not
    respect it either. Every sample, real or generated, is canonicalised the same way.
    """
    from vaeaug.model.symmetry import order_by_pt

    return order_by_pt(np.array(p4, dtype=np.float64, copy=True), groups)


def pt_order_pions(p4: np.ndarray) -> np.ndarray:
    """Copy of D+ ``p4`` (N, 3, 4) with the two pions (objects 1, 2) ordered by decreasing pT
    (:func:`canonical_order` with the D+ group)."""
    return canonical_order(p4, [(1, 2)])


def infer_masses(p4: np.ndarray, objects: Sequence[str]) -> list[float]:
    """The daughters' fixed masses (GeV) from ``p4`` (N, k, 4): :func:`vaeaug.representations.choice.infer_masses`,
    with its tolerance widened to the rounding of float32 storage when every value of
    ``p4`` is a float32.

    In float32, m = sqrt(E^2 - p^2) of a 50 GeV muon carries a rounding error of about
    eps32 E^2 / m = 1.4 MeV (1.3% of its mass) although the mass is exact; the allowance
    is twice the median relative rounding scale. Raises InputError when a mass still varies.
    """
    from vaeaug.representations.choice import infer_masses as _infer

    rtol = 1e-3
    if np.array_equal(p4, p4.astype(np.float32)):
        e2 = p4[..., 3] ** 2
        m = np.sqrt(np.maximum(e2 - (p4[..., :3] ** 2).sum(-1), 0.0))
        mass = np.maximum(np.median(m, axis=0), 1e-3)
        rounding = np.median(np.finfo(np.float32).eps * e2, axis=0) / mass**2
        rtol = max(rtol, 2.0 * float(rounding.max()))
    return _infer(p4, objects, rtol=rtol)


@dataclasses.dataclass
class Dataset:
    """A training/reference pair of one decay, as the benchmarks use it.

    Attributes:
        name: the label stored in the result rows.
        train, reference: 4-momenta (N, k, 4) and (R, k, 4) in GeV, identical particles
            already in canonical order.
        objects: the daughters' names (branch prefixes), length k.
        masses: the daughters' masses in GeV (given or inferred from the training
            file, :func:`infer_masses`), or None when they are not fixed (then the decay-representation peers
            cannot run and the threshold metrics are NaN).
        identical: groups of object names of identical particles, ordered by
            decreasing pT (see :func:`canonical_order`).
        source: where the samples came from (files, tree), for the results.
    """

    name: str
    train: np.ndarray
    reference: np.ndarray
    objects: list[str]
    masses: list[float] | None
    identical: list[tuple[str, ...]]
    source: dict[str, Any]

    @property
    def groups(self) -> list[list[int]]:
        """The identical groups as object indices."""
        return [[self.objects.index(o) for o in g] for g in self.identical]

    def order(self, p4: np.ndarray) -> np.ndarray:
        """``p4`` with the identical particles in the files' canonical order."""
        return canonical_order(p4, self.groups) if self.identical else np.asarray(p4)

    def describe(self) -> dict[str, Any]:
        """The dataset's description stored in the results (no arrays)."""
        return {
            "name": self.name,
            "objects": self.objects,
            "masses": self.masses,
            "identical": [list(g) for g in self.identical],
            "n_train_file": len(self.train),
            "n_reference_file": len(self.reference),
            **self.source,
        }


def parse_identical(groups: Sequence[str] | None, objects: Sequence[str]) -> list[tuple[str, ...]]:
    """``["pi1,pi2", ...]`` -> ``[("pi1", "pi2"), ...]``, checked against ``objects``."""
    out: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for text in groups or []:
        group = tuple(x.strip() for x in text.split(",") if x.strip())
        if len(group) < 2:
            raise SystemExit(f"--identical '{text}': a group needs two or more comma-separated "
                             "object names, e.g. pi1,pi2")  # fmt: skip
        unknown = [o for o in group if o not in objects]
        if unknown:
            raise SystemExit(f"--identical '{text}': {', '.join(unknown)} not among the "
                             f"objects {', '.join(objects)}")  # fmt: skip
        if seen & set(group) or len(set(group)) < len(group):
            raise SystemExit(f"--identical '{text}': an object is in more than one group")
        seen |= set(group)
        out.append(group)
    return out


def load_dataset(
    data: str | os.PathLike | None = None,
    *,
    reference: str | os.PathLike | None = None,
    tree: str | None = None,
    objects: Sequence[str] | None = None,
    masses: Sequence[float] | None = None,
    identical: Sequence[str] | None = None,
    name: str | None = None,
) -> Dataset:
    """The training and reference samples of one decay.

    data: a training ROOT file, or a folder holding the shared
        ``dplus_kpipi_train.root`` and ``dplus_kpipi_reference.root`` (default:
        ``$VAEAUG_TESTDATA``, see :func:`data_dir`).
    reference: the judging ROOT file; required with a training file, and replaces the
        folder's reference file otherwise.
    tree: the tree of both files (default ``signal`` for the shared D+ files; for other
        files it may be omitted when the file holds one tree).
    objects: the daughters (branch prefixes ``<name>_px/_py/_pz/_E``); default K1 pi1
        pi2 for the shared D+ files, else every object of the training file.
    masses: the daughters' masses in GeV; default: inferred from the training file
        (:func:`infer_masses`), None when they are not fixed.
    identical: groups ``"a,b"`` of identical particles ordered by decreasing pT in the
        files; default ``pi1,pi2`` for the shared D+ files, none otherwise; an empty list
        switches the ordering off.
    name: the dataset's label; default ``dplus_kpipi`` for the shared files, else the
        training file's name without ``.root`` and a trailing ``_train``.
    """
    from vaeaug.errors import InputError

    path = Path(data) if data is not None else None
    if path is None or path.is_dir():
        folder = data_dir(None if path is None else str(path))
        train_file = folder / "dplus_kpipi_train.root"
        reference_file = Path(reference) if reference else folder / "dplus_kpipi_reference.root"
        tree = tree or "signal"
        objects = list(objects) if objects else list(OBJECTS)
        default_identical = (
            [",".join(g) for g in IDENTICAL] if set(objects) >= {"pi1", "pi2"} else []
        )
        name = name or "dplus_kpipi"
    else:
        if not path.exists():
            raise SystemExit(f"--data '{path}' not found (a training ROOT file or a folder)")
        if reference is None:
            raise SystemExit("--data FILE needs --reference FILE (the file that judges)")
        train_file, reference_file = path, Path(reference)
        default_identical = []
        stem = path.name.removesuffix(".root")
        name = name or (stem.removesuffix("_train") or stem)
    if not reference_file.exists():
        raise SystemExit(f"--reference '{reference_file}' not found")
    try:
        train, objects = read_p4(train_file, tree, objects)
        ref, _ = read_p4(reference_file, tree, objects)
    except (InputError, OSError, KeyError) as err:
        raise SystemExit(f"cannot read the candidates: {err}") from err
    if masses is not None:
        masses = [float(m) for m in masses]
        if len(masses) != len(objects):
            raise SystemExit(f"--masses: {len(masses)} values for {len(objects)} objects "
                             f"({', '.join(objects)})")  # fmt: skip
    else:
        try:
            masses = infer_masses(train, objects)
        except InputError as err:
            print(f"note: {err}; the threshold metrics and nsf-decay need --masses",
                  file=sys.stderr)  # fmt: skip
            masses = None
    groups = parse_identical(default_identical if identical is None else identical, objects)
    ds = Dataset(name, train, ref, list(objects), masses, groups, {
        "data": str(train_file), "reference": str(reference_file), "tree": tree})  # fmt: skip
    # The files' convention applied to the real samples too (a no-op where they follow it).
    ds.train, ds.reference = ds.order(train), ds.order(ref)
    return ds


def _features(p4: np.ndarray, objects: Sequence[str]) -> tuple[list[str], np.ndarray]:
    from vaeaug.validation import feature_table

    names, table = feature_table(p4, list(objects))
    return names, table


def support_metrics(
    generated: np.ndarray,
    training: np.ndarray,
    reference: np.ndarray,
    objects: Sequence[str],
    masses: Sequence[float] | None,
) -> dict[str, float]:
    """Acceptance, support and threshold fractions of ``generated`` and ``reference``.

    The acceptance and the support are learned from ``training`` (N, k, 4) by
    :class:`vaeaug.model.support.Support` on the lab-frame observables
    (:func:`vaeaug.model.support.observables`): ``outside_acceptance_*`` is the fraction
    of candidates with a daughter whose pT or eta is outside the training interval,
    ``outside_support_*`` the fraction outside any of them (daughters' pT and eta, the
    parent's pT, eta and mass). ``*_real`` is the reference file: a second real sample.
    ``outside_support_expected`` is the support's own real-vs-real estimate (two halves
    of the training sample). ``at_threshold_*``: parent mass within
    :data:`THRESHOLD_GEV` of the sum of the daughter masses (NaN without masses).
    """
    from vaeaug.model.support import Support, observables

    names, ot = observables(training, objects)
    support = Support.fit(ot, names)
    daughters = np.arange(len(names)) < 2 * len(objects)  # <object>_pt, <object>_eta first
    acceptance = Support(
        [n for n, d in zip(names, daughters) if d], support.lo[daughters], support.hi[daughters]
    )
    out: dict[str, float] = {"outside_support_expected": support.expected_rate}
    threshold = float(np.sum(masses)) if masses is not None else None
    for key, p4 in (("gen", generated), ("real", reference)):
        _, values = observables(p4, objects)
        out[f"outside_acceptance_{key}"] = float(np.mean(~acceptance.inside(values[:, daughters])))
        out[f"outside_support_{key}"] = float(np.mean(~support.inside(values)))
        mass = values[:, names.index("parent_mass")]
        out[f"at_threshold_{key}"] = (
            float(np.mean(np.abs(mass - threshold) < THRESHOLD_GEV))
            if threshold is not None
            else float("nan")
        )
    return out


#: Half-width of a resonance's mass window, relative to its PDG mass (the dimuon
#: sample's 1% momentum smearing gives a mass resolution of about 0.7%).
RESONANCE_WINDOW = 0.03


def resonance_mass(name: str) -> float:
    """The PDG mass in GeV of a particle named as the ``particle`` package spells it."""
    from particle import Particle

    try:
        (found,) = Particle.findall(name=name)
    except ValueError:
        raise SystemExit(f"--resonances: '{name}' is not one particle name of the 'particle' "
                         "package (e.g. 'J/psi(1S)', 'Upsilon(1S)', 'Z0')") from None  # fmt: skip
    return found.mass / 1e3


def resonance_fractions(
    generated: np.ndarray,
    training: np.ndarray,
    reference: np.ndarray,
    resonances: Sequence[str | tuple[str, float, float]],
    window: float = RESONANCE_WINDOW,
) -> dict[str, dict[str, float]]:
    """Share of candidates in each resonance's mass window, generated against real.

    Each entry of ``resonances`` is a ``particle`` name (the window is ``window`` x its
    PDG mass either side) or ``(label, lo_gev, hi_gev)``. Per window: the fractions of the
    generated (M, k, 4), training (N, k, 4) and reference (R, k, 4) candidates whose
    parent mass lies in it, their binomial errors, and the ratios generated/reference and
    training/reference (the real-vs-real scatter at the training size), counted by
    :func:`vaeaug.validation.mass_regions`.
    """
    from vaeaug.validation import mass_regions
    from vaeaug.validation.features import parent_mass

    windows: dict[str, tuple[float, float]] = {}
    for entry in resonances:
        if isinstance(entry, str):
            m0 = resonance_mass(entry)
            windows[entry] = (m0 * (1 - window), m0 * (1 + window))
        else:
            label, lo, hi = entry
            windows[label] = (float(lo), float(hi))
    ref = parent_mass(reference)
    against = {k: {r["name"]: r for r in mass_regions(ref, parent_mass(p4), resonances=windows,
                                                      min_fraction=0.0)["regions"]}
               for k, p4 in (("gen", generated), ("train", training))}  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    for name, (lo, hi) in windows.items():
        g, t = against["gen"][name], against["train"][name]
        out[name] = {
            "lo_gev": lo, "hi_gev": hi,
            "frac_gen": g["generated_fraction"], "frac_gen_err": g["generated_err"],
            "frac_train": t["generated_fraction"], "frac_train_err": t["generated_err"],
            "frac_ref": g["real_fraction"], "frac_ref_err": g["real_err"],
            "ratio_gen": g["ratio"], "ratio_gen_err": g["ratio_err"],
            "ratio_train": t["ratio"], "ratio_train_err": t["ratio_err"],
        }  # fmt: skip
    return out


def fidelity_metrics(
    generated: np.ndarray,
    training: np.ndarray,
    reference: np.ndarray,
    real_same_size: np.ndarray,
    *,
    seed: int,
    objects: Sequence[str] = tuple(OBJECTS),
    masses: Sequence[float] | None = None,
    n_bootstrap: int = 50,
    c2st_max_events: int = 40_000,
    resonances: Sequence[str | tuple[str, float, float]] = (),
) -> dict[str, Any]:
    """Every fidelity metric of ``generated`` (M, k, 4) against ``reference`` (R, k, 4).

    training: the model's training sample (N, k, 4), for the amplification curve, the
        real-vs-real Spearman floor at the training size, and the acceptance/support.
    real_same_size: real candidates (M', k, 4), M' ~ M, not from the reference file: the
        C2ST floor (a real sample of the generated sample's size against the reference).
    objects: the daughters' names (default the D+ ones); masses: their masses in GeV,
        for the threshold fractions (NaN without).

    The feature table is :func:`vaeaug.validation.feature_table`: the 4k raw components
    plus the parent and pair masses and the parent's and daughters' pT and eta. The
    mass-peak metrics (median and 16-84% half-width of the parent mass) are reported
    for a broad continuum too, where they describe its bulk; ``resonances`` adds
    :func:`resonance_fractions` under ``"resonances"``. Masses in the result are
    in MeV; the acceptance, support and threshold fractions are those of
    :func:`support_metrics`.
    """
    from vaeaug.validation import amplification, c2st, correlation_comparison, robust_peak
    from vaeaug.validation.features import parent_mass
    from vaeaug.validation.metrics import one_d_metrics

    finite = np.isfinite(generated).all(axis=(1, 2))
    generated = generated[finite]
    names, fg = _features(generated, objects)
    _, fr = _features(reference, objects)
    _, ft = _features(training, objects)
    _, fs = _features(real_same_size, objects)

    out: dict[str, Any] = {"n_generated": len(generated), "n_nonfinite": int((~finite).sum())}
    test = c2st(fr, fg, seed=seed, n_bootstrap=n_bootstrap, max_events=c2st_max_events, n_threads=1)
    floor = c2st(
        fr, fs, seed=seed, n_bootstrap=n_bootstrap, max_events=c2st_max_events, n_threads=1
    )
    out["c2st_auc"], out["c2st_err"] = test["auc"], test["auc_err"]
    out["c2st_floor"], out["c2st_floor_err"] = floor["auc"], floor["auc_err"]

    pr, pg = robust_peak(parent_mass(reference)), robust_peak(parent_mass(generated))
    out["peak_ref_mev"] = 1e3 * pr["median"]
    out["width_ref_mev"] = 1e3 * pr["half_width"]
    out["peak_mev"] = 1e3 * pg["median"]
    out["width_mev"] = 1e3 * pg["half_width"]
    out["peak_shift_mev"] = out["peak_mev"] - out["peak_ref_mev"]
    out["width_ratio"] = pg["half_width"] / pr["half_width"]

    corr = correlation_comparison(fr, fg, seed=seed)["spearman"]
    out["spearman_max_diff"] = corr["max_abs_diff"]
    # Real-vs-real at the training size: the largest difference the training sample
    # itself shows against the reference (the generated sample inherits that noise).
    out["spearman_max_diff_real"] = correlation_comparison(fr, ft, seed=seed)["spearman"][
        "max_abs_diff"
    ]
    one_d = one_d_metrics(fr, fg, names, seed=seed)
    out["w1_norm_mean"] = float(np.mean([v["w1_norm"] for v in one_d.values()]))
    one_d_real = one_d_metrics(fr, ft, names, seed=seed)
    out["w1_norm_mean_real"] = float(np.mean([v["w1_norm"] for v in one_d_real.values()]))

    amp = amplification(fg, ft, fr, seed=seed)
    out["amplification"] = amp["amplification"]
    out["amplification_err"] = amp["amplification_err"]
    out["amplification_extrapolated"] = amp["extrapolated"]
    out.update(support_metrics(generated, training, reference, objects, masses))
    if resonances:
        out["resonances"] = resonance_fractions(generated, training, reference, resonances)
    return out


@contextmanager
def timer(result: dict[str, Any], key: str):
    """Store the wall time (s) of the block in ``result[key]``."""
    start = time.perf_counter()
    yield
    result[key] = time.perf_counter() - start


def machine() -> dict[str, Any]:
    """A short description of the machine and the library versions, for the docs."""
    import sklearn
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads_used": 1,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
    }


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON (NaN/inf as null) atomically."""
    # the report's JSON conversion and atomic writer, so both write JSON alike
    from vaeaug.io.atomic import atomic_output
    from vaeaug.validation.report import jsonable

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def efficiency_at(score_sig, score_bkg, w_bkg, eps: float) -> float:
    """Signal efficiency where the (weighted) background efficiency is ``eps``, on the ROC
    curve interpolated linearly across tied scores: a classifier whose top background
    score is shared by many candidates gets the efficiency of the matching share of the
    tie, not 0 (a strict cut) or 1."""
    order = np.argsort(-score_bkg, kind="stable")
    s_b, cum = score_bkg[order], np.cumsum(w_bkg[order]) / w_bkg.sum()
    t = s_b[min(np.searchsorted(cum, eps), len(s_b) - 1)]  # the score where eps is reached
    b_gt = w_bkg[score_bkg > t].sum() / w_bkg.sum()
    b_ge = w_bkg[score_bkg >= t].sum() / w_bkg.sum()
    s_gt, s_ge = np.mean(score_sig > t), np.mean(score_sig >= t)
    share = (eps - b_gt) / (b_ge - b_gt) if b_ge > b_gt else 0.0
    return float(s_gt + share * (s_ge - s_gt))
