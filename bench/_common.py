"""Helpers shared by the benchmarks: data, canonical ordering, metrics, tables, timing.

Samples are float64 arrays ``p4`` of shape (N, 3, 4), the daughters (K, pi1, pi2) with
(px, py, pz, E) in GeV. The training file trains, the reference file judges; nothing from
the reference file ever reaches a model or a classifier's training set.
"""

from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "OBJECTS",
    "data_dir",
    "fidelity_metrics",
    "load_p4",
    "machine",
    "markdown_table",
    "one_thread",
    "pt_order_pions",
    "timer",
    "write_json",
]

OBJECTS = ["K1", "pi1", "pi2"]
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


def pt_order_pions(p4: np.ndarray) -> np.ndarray:
    """Copy of ``p4`` (N, 3, 4) with the two pions (objects 1, 2) ordered by decreasing pT.

    The shared files order the signal pions by pT but not the background ones; a
    classifier would otherwise separate the classes by the ordering alone, and a
    generator need not respect it either. Every sample is canonicalised the same way.
    """
    out = np.array(p4, dtype=np.float64, copy=True)
    pt1 = np.hypot(out[:, 1, 0], out[:, 1, 1])
    pt2 = np.hypot(out[:, 2, 0], out[:, 2, 1])
    swap = pt2 > pt1
    out[swap, 1], out[swap, 2] = p4[swap, 2], p4[swap, 1]
    return out


def _features(p4: np.ndarray) -> tuple[list[str], np.ndarray]:
    from vaeaug.validation import feature_table

    names, table = feature_table(p4, OBJECTS)
    return names, table


def fidelity_metrics(
    generated: np.ndarray,
    training: np.ndarray,
    reference: np.ndarray,
    real_same_size: np.ndarray,
    *,
    seed: int,
    n_bootstrap: int = 50,
    c2st_max_events: int = 40_000,
) -> dict[str, Any]:
    """Every fidelity metric of ``generated`` (M, 3, 4) against ``reference`` (R, 3, 4).

    training: the model's training sample (N, 3, 4), for the amplification curve and the
        real-vs-real Spearman floor at the training size.
    real_same_size: real candidates (M', 3, 4), M' ~ M, not from the reference file: the
        C2ST floor (a real sample of the generated sample's size against the reference).

    The feature table is :func:`vaeaug.validation.feature_table`: the 12 raw components
    plus the parent and pair masses and the parent's and daughters' pT and eta (24).
    Masses in the result are in MeV.
    """
    from vaeaug.validation import amplification, c2st, correlation_comparison, robust_peak
    from vaeaug.validation.features import parent_mass
    from vaeaug.validation.metrics import one_d_metrics

    finite = np.isfinite(generated).all(axis=(1, 2))
    generated = generated[finite]
    names, fg = _features(generated)
    _, fr = _features(reference)
    _, ft = _features(training)
    _, fs = _features(real_same_size)

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
    from vaeaug.validation.report import _jsonable

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
