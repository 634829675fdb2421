"""Is the learned prior the bottleneck? Judge z drawn three ways, on validation data only.

A model is trained with the defaults on N candidates of a training file (as in
``bench/model_selection.py``: the validation part is other candidates of the
same training file; no reference file is read). Its samples are then judged
(C2ST on the physics and raw features) with the latent point z drawn

- ``prior``: from the prior trained jointly in the ELBO (what ``Model.sample`` does);
- ``posterior``: from q(z|x) of the N training candidates (the aggregate
  posterior itself; a diagnostic, not a generator: it reuses the training events);
- ``refit``: from the same prior architecture refitted after training, by
  maximum likelihood on draws of the aggregate posterior (fresh draws every
  epoch, early stopping on held-out training candidates' draws).

If ``posterior`` is much closer than ``prior``, the decoder is good and the prior
misses regions of latent space ("holes"); ``refit`` shows how much a post-hoc
prior recovers::

    OMP_NUM_THREADS=1 python bench/latent_prior.py --datasets dplus \\
        --benchmark latent_prior_dplus   # -> bench/results/latent_prior_dplus/latest.json
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, markdown_table, one_thread
from _record import add_results_arguments, record
from model_selection import judge, load_dataset

from vaeaug.model.flows import flow_inverse

__all__ = ["main", "refit_prior"]


def _training_x(model, p4: np.ndarray) -> torch.Tensor:
    """Standardized learned features (N, D) of 4-momenta (N, k, 4) GeV."""
    features = model.representation.to_features(p4)
    x = model.standardizer.transform(features[:, model.learned])
    return torch.as_tensor(x, dtype=torch.float32)


def refit_prior(model, x: torch.Tensor, *, seed: int, epochs: int = 200, patience: int = 20,
                batch: int = 512, lr: float = 1e-3) -> dict[str, Any]:  # fmt: skip
    """Refit ``model.vae.prior`` in place by maximum likelihood on z ~ q(z|x), x (N, D)."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=gen)
    n_val = max(1, len(x) // 7)
    x_val, x_fit = x[order[:n_val]], x[order[n_val:]]
    vae = model.vae
    vae.eval()
    with torch.no_grad():
        q_fit, q_val = vae.encode(x_fit), vae.encode(x_val)
        z_val = q_val.mean + q_val.stddev * torch.randn(q_val.mean.shape, generator=gen)
    prior = vae.prior
    opt = torch.optim.Adam(prior.parameters(), lr=lr)
    best, best_state, since, history = np.inf, None, 0, []
    for _ in range(epochs):
        prior.train()
        with torch.no_grad():
            z = q_fit.mean + q_fit.stddev * torch.randn(q_fit.mean.shape, generator=gen)
        perm = torch.randperm(len(z), generator=gen)
        for s in range(0, len(z), batch):
            loss = -prior().log_prob(z[perm[s : s + batch]]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        prior.eval()
        with torch.no_grad():
            val = float(-prior().log_prob(z_val).mean())
        history.append(val)
        if val < best - 1e-4:
            best, best_state, since = val, copy.deepcopy(prior.state_dict()), 0
        else:
            since += 1
            if since >= patience:
                break
    prior.load_state_dict(best_state)
    return {"epochs": len(history), "best_nll": best}


def _decode(model, z: torch.Tensor, seed: int) -> np.ndarray:
    """4-momenta (N, k, 4) GeV decoded from latent points z (N, L) with fresh decoder noise."""
    gen = torch.Generator().manual_seed(seed)
    vae = model.vae
    n = len(z)
    with torch.no_grad():
        dist = vae.decode(z)
        eps = torch.randn(n, vae.n_features, generator=gen)
        flow = vae.config.decoder == "flow"
        x = flow_inverse(vae.decoder, eps, z) if flow else dist.mean + dist.stddev * eps
        if model.phi_uniform:
            x = torch.cat([x, torch.randn(n, 1, generator=gen)], dim=1)
    p4, _ = model.to_p4(x.double().numpy())
    return p4


def run(
    datasets: list[str],
    size: int,
    seed: int,
    n_val: int,
    data: str | None,
    epochs: int | None = None,
) -> list[dict]:
    import vaeaug

    rows = []
    for spec in datasets:
        name, p4, objects, masses = load_dataset(spec, data)
        order = np.random.default_rng(12345).permutation(len(p4))
        validation, pool = p4[order[-n_val:]], p4[order[:-n_val]]
        training = pool[np.random.default_rng([seed, size]).permutation(len(pool))[:size]]
        t0 = time.perf_counter()
        train = vaeaug.TrainConfig() if epochs is None else vaeaug.TrainConfig(epochs=epochs)
        model = vaeaug.fit(training, objects=objects, masses=masses, train=train, seed=seed,
                           device="cpu", progress=False)  # fmt: skip
        fit_s = time.perf_counter() - t0
        n_gen = min(4 * size, 40_000)
        base = {"dataset": name, "n_train": size, "seed": seed, "fit_s": fit_s,
                "epochs": model.provenance["epochs_run"]}  # fmt: skip

        def judged(how: str, gen_p4: np.ndarray, base=base, validation=validation,
                   training=training, objects=objects, **extra) -> None:  # fmt: skip
            row = {**base, "z_from": how, **extra}
            row.update(judge(gen_p4, validation, training, objects, seed))
            print(row, flush=True)
            rows.append(row)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            judged("prior", model.sample(n_gen, seed=seed + 100, support="off").p4)
            x = _training_x(model, training)
            with torch.no_grad():
                q = model.vae.encode(x)
                reps = -(-n_gen // len(x))
                gen = torch.Generator().manual_seed(seed + 200)
                mu, sd = q.mean.repeat(reps, 1)[:n_gen], q.stddev.repeat(reps, 1)[:n_gen]
                z = mu + sd * torch.randn(mu.shape, generator=gen)
            judged("posterior", _decode(model, z, seed + 300))
            refitted = copy.deepcopy(model)
            t0 = time.perf_counter()
            info = refit_prior(refitted, x, seed=seed + 400)
            info["refit_s"] = time.perf_counter() - t0
            judged("refit", refitted.sample(n_gen, seed=seed + 100, support="off").p4, **info)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = ["dataset", "N", "seed", "z from", "C2ST AUC (val)", "outside gen/real", "epochs"]
    body = [[r["dataset"], f"{r['n_train']:,}", str(r["seed"]), r["z_from"],
             f"{r['c2st_auc']:.3f} ± {r['c2st_err']:.3f}",
             f"{r['outside_gen']:.4f} / {r['outside_real']:.4f}",
             str(r.get("epochs"))] for r in rows]  # fmt: skip
    return markdown_table(header, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["dplus"])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--val", type=int, default=10_000, help="validation candidates")
    parser.add_argument("--data", default=None, help="folder of the shared ROOT files")
    parser.add_argument("--epochs", type=int, default=None, help="cap (smoke runs)")
    add_results_arguments(parser, "latent_prior")
    args = parser.parse_args(argv)
    one_thread()
    rows = run(args.datasets, args.size, args.seed, args.val, args.data, args.epochs)
    path = record(
        args.benchmark,
        {"machine": machine(), "rows": rows},
        results=Path(args.results),
        argv=["bench/latent_prior.py", *(sys.argv[1:] if argv is None else argv)],
    )
    print(table(rows))
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
