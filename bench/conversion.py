"""Features to 4-momenta on the CPU: numpy against torch float64, side by side in one run.

The conversion that generation ends with, ``Model.to_p4`` (inverse standardisation in
float64, uniform parent azimuth, ``DecayRepresentation.from_features``), runs the same
code on numpy arrays and on torch tensors. This measures its rate (events/s, one
thread, best of ``--repeats``, the variants alternating so that a busy machine slows
them alike; see below) for the D+ -> K- pi+ pi+ model features:

- ``numpy, 65,536-row slices``: what the stream's converter does on the CPU (default);
- ``torch float64, 65,536-row slices``: the same slicing through torch;
- ``numpy, whole array`` and ``torch float64, whole array``: one call on all ``--n``
  rows, as the device-side converter does (up to 1,048,576 rows per call).

The two sliced variants are timed slice by slice in alternation, so that both see the
same load of the shared machine; the whole-array ones alternate per repeat.

The model is built as ``vaeaug.fit`` builds it on the training file (decay
representation, standardizer, uniform azimuth when Kuiper's test allows it) with an
untrained network: the conversion does not touch the network. Its input is what the
engine hands over: standardized features in float32, here the training candidates'
(bootstrap-resampled to ``--n`` rows) and a standard normal for the azimuth.

It also records how far the two agree: the largest relative difference of any
component, with components below 1e-5 of the event's summed energy compared on that
scale (as ``tests/representations/test_decay_torch.py`` does), for these events and
for 2- to 5-body decays from random features. Command::

    OMP_NUM_THREADS=1 python bench/conversion.py   # -> bench/results/conversion/latest.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    OBJECTS,
    data_dir,
    infer_masses,
    load_p4,
    machine,
    markdown_table,
    one_thread,
)
from _record import add_results_arguments, record

FLOOR = 1e-5
VARIANTS = ("numpy, 65,536-row slices", "torch float64, 65,536-row slices", "numpy, whole array",
            "torch float64, whole array")  # fmt: skip
# torch must beat numpy by this factor before the CPU should switch: switching changes the
# last bits of every CPU event, and smaller gaps are within this machine's noise
_SWITCH = 1.1
#: Daughter masses (GeV) of the decays of the precision table, by number of bodies.
_PRECISION_DECAYS = {
    2: (0.1056583755, 0.1056583755),
    3: (0.493677, 0.13957039, 0.13957039),
    4: (0.493677, 0.13957039, 0.13957039, 0.13957039),
    5: (0.93827208816, 0.493677, 0.13957039, 0.1056583755, 0.1056583755),
}


def dplus_model(p4: np.ndarray):
    """A :class:`vaeaug.Model` for D+ -> K- pi+ pi+ built as ``vaeaug.fit`` builds it,
    with an untrained network."""
    import vaeaug
    from vaeaug.io.layout import Layout
    from vaeaug.model.standardize import Standardizer
    from vaeaug.model.symmetry import PHI_TEST_LEVEL, kuiper_uniform_pvalue
    from vaeaug.model.vae import VAE
    from vaeaug.representations import DecayRepresentation

    rep = DecayRepresentation(3, infer_masses(p4, OBJECTS), object_names=OBJECTS)
    features = rep.to_features(p4)
    phi_uniform = kuiper_uniform_pvalue(np.arctan2(features[:, 3], features[:, 2])) > PHI_TEST_LEVEL
    learned = [i for i in range(rep.n_features) if not (phi_uniform and i in (2, 3))]
    standardizer = Standardizer.fit(features[:, learned])
    vae = VAE(len(learned), vaeaug.VAEConfig())
    model = vaeaug.Model(vae, rep, standardizer, Layout.default(OBJECTS), learned=learned,
                         phi_uniform=phi_uniform)  # fmt: skip
    return model, standardizer.transform(features[:, learned])


def engine_output(z: np.ndarray, phi_uniform: bool, n: int, seed: int) -> np.ndarray:
    """(n, D_learned [+ 1]) float32: rows of ``z`` drawn with replacement [+ a normal]."""
    rng = np.random.default_rng(seed)
    x = z[rng.integers(0, len(z), n)]
    if phi_uniform:
        x = np.concatenate([x, rng.standard_normal((n, 1))], axis=1)
    return np.ascontiguousarray(x, dtype=np.float32)


def torch_ops_per_call(model, x) -> dict[str, int]:
    """Torch operators one ``model.to_p4(x)`` call runs: all, and those that make no view
    (on a GPU, each of these is a kernel launch, whatever the number of rows)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.__name__)
            return func(*args, **(kwargs or {}))

    model.to_p4(x)  # the first call caches the scaling on the device
    with Record() as record:
        model.to_p4(x)
    views = ("select", "slice", "unsqueeze", "view", "expand", "alias")
    computing = [n for n in record.names if not n.startswith(views)]
    return {"operators": len(record.names), "non_view": len(computing)}


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Max over events, daughters and components of |a - b| / max(|a|, 1e-5 E_event)."""
    scale = FLOOR * a[..., 3].sum(axis=1)[:, None, None]
    return float((np.abs(a - b) / np.maximum(np.abs(a), scale)).max())


def precision_table(n: int, seed: int) -> list[dict]:
    """numpy vs torch-float64 decoding of 2- to 5-body decays from random features
    (standard normals times 1, 5 and 40: 40 reaches the decoding guards)."""
    import torch

    from vaeaug.representations import DecayRepresentation

    rows = []
    rng = np.random.default_rng(seed)
    for k, masses in _PRECISION_DECAYS.items():
        rep = DecayRepresentation(k, masses)
        for spread in (1.0, 5.0, 40.0):
            x = rng.standard_normal((n, rep.n_features)) * spread
            ref, out = rep.from_features(x), rep.from_features(torch.from_numpy(x)).numpy()
            rows.append({"bodies": k, "features": f"normal x {spread:g}",
                         "max_rel_diff": relative_difference(ref, out)})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="events per timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default=None, help="folder of the shared ROOT files")
    parser.add_argument("--seed", type=int, default=1)
    add_results_arguments(parser)
    args = parser.parse_args(argv)
    one_thread()
    import torch

    from vaeaug.sampling.sizes import BLOCK

    p4 = load_p4(data_dir(args.data), "train", "signal")
    model, z = dplus_model(p4)
    x = engine_output(z, model.phi_uniform, args.n, args.seed)
    xt = torch.from_numpy(x)

    def sliced() -> tuple[float, float]:
        """Seconds of the numpy and of the torch conversion of all slices, timed slice by
        slice in alternation (order swapped every slice): both see the same machine load."""
        spent = [0.0, 0.0]
        for b, i in enumerate(range(0, args.n, BLOCK)):
            order = (0, 1) if b % 2 == 0 else (1, 0)
            for which in order:
                features = (x, xt)[which][i : i + BLOCK]
                start = time.perf_counter()
                model.to_p4(features)
                spent[which] += time.perf_counter() - start
        return spent[0], spent[1]

    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with torch.inference_mode():
        for _ in range(args.repeats):
            seconds = dict(zip(VARIANTS[:2], sliced()))
            for name, features in zip(VARIANTS[2:], (x, xt)):
                start = time.perf_counter()
                model.to_p4(features)
                seconds[name] = time.perf_counter() - start
            for name in VARIANTS:
                rates[name].append(args.n / seconds[name])
        ref, _ = model.to_p4(x)
        out, _ = model.to_p4(xt)
        ops = torch_ops_per_call(model, xt[:1000])
    best = {k: max(v) for k, v in rates.items()}
    numpy_best = max(v for k, v in best.items() if k.startswith("numpy"))
    torch_best = max(v for k, v in best.items() if k.startswith("torch"))
    result = {
        "benchmark": "conversion",
        "machine": machine(),
        "numpy": np.__version__,
        "model": {
            "decay": "D+ -> K- pi+ pi+ (dplus_kpipi_train.root, tree signal)",
            "candidates": len(p4),
            "features": model.representation.n_features,
            "phi_uniform": model.phi_uniform,
            "network": "untrained (not used by the conversion)",
        },
        "n": args.n,
        "repeats": args.repeats,
        "rates": rates,
        "best_rate": best,
        "torch_over_numpy": torch_best / numpy_best,
        # the paired figure: the sliced variants of one repeat saw the same load
        "torch_over_numpy_sliced_per_repeat": [
            t / n for n, t in zip(rates[VARIANTS[0]], rates[VARIANTS[1]])
        ],
        "decision_rule": f"the CPU keeps numpy (bit for bit the events it always gave) unless "
        f"torch is faster by more than {_SWITCH - 1:.0%}",
        "cpu_keeps_numpy": torch_best / numpy_best <= _SWITCH,
        "max_rel_diff_dplus": relative_difference(ref, out.numpy()),
        "torch_ops_per_call": ops,
        "precision": precision_table(100_000, args.seed),
        "gpu": "owed: no GPU was lent",
    }
    path = record(
        "conversion",
        result,
        results=Path(args.results),
        argv=["bench/conversion.py", *(sys.argv[1:] if argv is None else argv)],
    )
    print(markdown(result))
    print(json.dumps({k: result[k] for k in ("best_rate", "torch_over_numpy")}, indent=1))
    print(f"-> {path}")
    return 0


def markdown(result: dict) -> str:
    numpy_best = result["best_rate"]["numpy, 65,536-row slices"]
    rows = [[name, f"{rate:.3g}", f"{rate / numpy_best:.2f}"]
            for name, rate in result["best_rate"].items()]  # fmt: skip
    precision = [[str(r["bodies"]), r["features"], f"{r['max_rel_diff']:.1e}"]
                 for r in result["precision"]]  # fmt: skip
    m = result["machine"]
    return "\n\n".join([
        f"# Features to 4-momenta: numpy vs torch float64 on the CPU\n\n"
        f"{m['cpu']}, {m['cores']} cores, one thread; torch {m['torch']}, numpy "
        f"{result['numpy']}. `Model.to_p4` of {result['n']:,} D+ model feature rows, "
        f"best of {result['repeats']}.",
        markdown_table(["variant", "events/s", "ratio to numpy (slices)"], rows),
        f"torch / numpy (best variant of each): {result['torch_over_numpy']:.2f}; per repeat, "
        f"sliced, timed in alternation: "
        f"{', '.join(f'{r:.2f}' for r in result['torch_over_numpy_sliced_per_repeat'])}. Rule: "
        f"{result['decision_rule']}; so the CPU "
        f"{'keeps numpy' if result['cpu_keeps_numpy'] else 'should switch to torch'}. "
        f"Largest relative difference on these events: {result['max_rel_diff_dplus']:.1e}. "
        f"One torch call runs {result['torch_ops_per_call']['non_view']} operators that are "
        f"not views (kernel launches on a GPU, whatever the number of rows).",
        markdown_table(["bodies", "features", "max relative difference"], precision),
        f"GPU: {result['gpu']}.",
    ]) + "\n"  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
