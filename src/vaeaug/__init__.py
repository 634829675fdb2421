"""vaeaug: multiply decay-candidate samples with a variational autoencoder.

Public API::

    import vaeaug
    table = vaeaug.read_candidates("dplus.root", tree="signal")
    model = vaeaug.fit(table, seed=1)
    generated = model.sample(100_000, seed=2)
    refined = vaeaug.refine(model, table, 100_000, seed=3)  # a classifier's density ratio
    model.save("dplus.safetensors"); model = vaeaug.load("dplus.safetensors")
    ens = vaeaug.fit(table, seed=1, ensemble=5)  # vaeaug.Ensemble: 5 bootstrap members
    ts = vaeaug.augment_training_set(train_signal, train_background, factor=5, seed=3)
    X, y, w = ts.features("physics")   # a classifier's multiplied training set
    pairs = vaeaug.candidates(events.Muon, n=2, charge="opposite")  # explicit candidates

``vaeaug.Augment`` (the coffea step) is imported lazily: coffea stays optional.

The packages follow the data, and imports only run forward::

    io/ -> representations/ -> model/ -> training -> sampling/ -> ensemble -> api (fit, load, Model)
        -> validation/ -> trainsets -> integrations/ (awkward, coffea, dask) -> cli

with :mod:`vaeaug.kinematics` (shared kinematics and the feature table),
:mod:`vaeaug.binning` (normalised histograms), :mod:`vaeaug.errors` and
:mod:`vaeaug.settings` (the valid values of every setting) below them all.
"""

from __future__ import annotations

from ._version import __version__
from .api import Model, fit, load, refine
from .ensemble import Ensemble
from .errors import InputError, ModelFileError, SupportLimitError
from .integrations.awkward import candidates
from .io import Candidates, read_candidates, write_candidates
from .model.vae import VAEConfig
from .sampling.guard import SupportGuard
from .sampling.refine import Refiner
from .training import TrainConfig
from .trainsets import TrainingSet, augment_training_set

__all__ = [
    "Augment",
    "Candidates",
    "Ensemble",
    "InputError",
    "Model",
    "ModelFileError",
    "Refiner",
    "SupportGuard",
    "SupportLimitError",
    "TrainConfig",
    "TrainingSet",
    "VAEConfig",
    "__version__",
    "augment_training_set",
    "candidates",
    "fit",
    "load",
    "read_candidates",
    "refine",
    "write_candidates",
]


def __getattr__(name: str):
    if name == "Augment":
        from .integrations.coffea import Augment

        return Augment
    raise AttributeError(f"module 'vaeaug' has no attribute {name!r}")
