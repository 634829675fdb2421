"""Classifier two-sample test (C2ST): can a classifier tell generated from original candidates?

A classifier is trained on original (label 0) versus generated (label 1) feature
tables, balanced by subsampling the larger one, and its ROC AUC
is measured on held-out candidates: 0.5 means indistinguishable. The same test
between two halves of the original gives the floor that finite statistics allow.

Two classifier families judge (``family``): ``"hgb"``, histogram gradient boosting
(scikit-learn's ``HistGradientBoostingClassifier``), and ``"mlp"``, a neural network
(``MLPClassifier``, two hidden layers of 64, on quantile-normalised inputs). A generator
tuned against one family must also hold under the other: they see different things
(trees cut one feature at a time, a network sees smooth combinations).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..noise import Stream, child_seed, seed_words

__all__ = ["FAMILIES", "c2st", "c2st_with_floor"]


def c2st(
    original: np.ndarray,
    generated: np.ndarray,
    *,
    original_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
    seed: int = 0,
    test_fraction: float = 0.5,
    n_bootstrap: int = 200,
    max_events: int | None = 200_000,
    classifier_kwargs: dict[str, Any] | None = None,
    n_threads: int | None = None,
    family: str = "hgb",
) -> dict[str, float]:
    """C2ST AUC of feature tables ``original`` (N, F) versus ``generated`` (M, F).

    Both classes are subsampled to min(N, M, max_events) candidates so the
    classifier cannot win by predicting the majority class. ``classifier_kwargs``
    are forwarded to the classifier of ``family`` (one of :data:`FAMILIES`).
    ``n_threads`` caps its OpenMP threads (None: the library default); on a busy
    machine one thread can be several times faster than oversubscribed ones.

    ``seed``'s sub-streams ``Stream.C2ST`` (subsamples, split, bootstrap) and
    ``Stream.C2ST_CLASSIFIER`` (the classifier's ``random_state``) are used.

    Returns ``auc`` on the held-out ``test_fraction``, ``auc_err`` (bootstrap
    standard deviation over held-out candidates), ``auc_lo``/``auc_hi`` (16th/84th
    bootstrap percentiles), ``n_train`` and ``n_test`` (candidates, both classes).
    """
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    if original.shape[1] != generated.shape[1]:
        raise ValueError(
            f"feature tables differ in width: original {original.shape}, generated {generated.shape}"
        )
    rng = np.random.default_rng(child_seed(seed, Stream.C2ST))
    n = min(len(original), len(generated))
    if max_events is not None:
        n = min(n, max_events)
    if n < 20:
        raise ValueError(f"C2ST needs at least 20 candidates per class; got {n}")
    io = rng.choice(len(original), n, replace=False)
    ig = rng.choice(len(generated), n, replace=False)
    x = np.concatenate([original[io], generated[ig]])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    w = np.concatenate(
        [
            np.ones(n) if original_weights is None else original_weights[io],
            np.ones(n) if generated_weights is None else generated_weights[ig],
        ]
    )
    perm = rng.permutation(2 * n)
    n_test = round(test_fraction * 2 * n)
    test, train = perm[:n_test], perm[n_test:]
    random_state = int(seed_words(seed, Stream.C2ST_CLASSIFIER, dtype=np.uint32)[0])
    clf = _classifier(family, random_state, classifier_kwargs or {})
    with threadpool_limits(limits=n_threads, user_api="openmp"):
        fit_params = {"sample_weight": w[train]}
        if family == "mlp":
            fit_params = {"mlpclassifier__sample_weight": w[train]}
        clf.fit(x[train], y[train], **fit_params)
        score = clf.predict_proba(x[test])[:, 1]
    yt, wt = y[test], w[test]
    auc = float(roc_auc_score(yt, score, sample_weight=wt))
    boot = []
    for _ in range(n_bootstrap):
        idx = rng.integers(0, n_test, n_test)
        if 0 < yt[idx].sum() < n_test:
            boot.append(roc_auc_score(yt[idx], score[idx], sample_weight=wt[idx]))
    boot_arr = np.asarray(boot) if boot else np.array([auc])
    return {
        "auc": auc,
        "auc_err": float(np.std(boot_arr)),
        "auc_lo": float(np.quantile(boot_arr, 0.16)),
        "auc_hi": float(np.quantile(boot_arr, 0.84)),
        "n_train": len(train),
        "n_test": n_test,
    }


#: The judge families: histogram gradient boosting and a neural network.
FAMILIES = ("hgb", "mlp")


def _classifier(family: str, seed: int, overrides: dict[str, Any]):
    """The classifier of a judge family, with keyword ``overrides`` of its defaults."""
    if family == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        kwargs = {"max_iter": 200, "early_stopping": True, "random_state": seed}
        return HistGradientBoostingClassifier(**{**kwargs, **overrides})
    if family == "mlp":
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import QuantileTransformer

        # quantile-scaled inputs: heavy tails (pT, masses) would dominate a mean/std scaling
        kwargs = {"hidden_layer_sizes": (64, 64), "early_stopping": True, "max_iter": 300,
                  "random_state": seed}  # fmt: skip
        return make_pipeline(
            QuantileTransformer(output_distribution="normal", random_state=seed),
            MLPClassifier(**{**kwargs, **overrides}),
        )
    raise ValueError(f"C2ST family must be one of {', '.join(FAMILIES)}, got {family!r}")


def c2st_with_floor(
    original: np.ndarray,
    generated: np.ndarray,
    *,
    original_weights: np.ndarray | None = None,
    generated_weights: np.ndarray | None = None,
    seed: int = 0,
    n_bootstrap: int = 200,
    n_sigma: float = 2.0,
    **kwargs: Any,
) -> dict[str, Any]:
    """C2ST of original vs generated beside the floor from two halves of the original.

    ``kwargs`` are forwarded to :func:`c2st`. Returns ``{"test": ..., "floor": ...,
    "within_floor": bool}`` where ``test`` and ``floor`` are :func:`c2st` results
    and ``within_floor`` is true when auc <= floor auc + n_sigma * (combined error).
    The floor uses N/2 candidates per class against min(N, M) for the test, so
    its AUC spread is somewhat larger than the test's.
    """
    test = c2st(
        original,
        generated,
        original_weights=original_weights,
        generated_weights=generated_weights,
        seed=seed,
        n_bootstrap=n_bootstrap,
        **kwargs,
    )
    perm = np.random.default_rng(child_seed(seed, Stream.C2ST_FLOOR_SPLIT)).permutation(
        len(original)
    )
    half = len(original) // 2
    ia, ib = perm[:half], perm[half : 2 * half]
    floor = c2st(
        original[ia],
        original[ib],
        original_weights=None if original_weights is None else original_weights[ia],
        generated_weights=None if original_weights is None else original_weights[ib],
        seed=child_seed(seed, Stream.C2ST_FLOOR),
        n_bootstrap=n_bootstrap,
        **kwargs,
    )
    err = float(np.hypot(test["auc_err"], floor["auc_err"]))
    return {
        "test": test,
        "floor": floor,
        "within_floor": bool(test["auc"] <= max(floor["auc"], 0.5) + n_sigma * err),
    }
