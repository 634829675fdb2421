"""Shared fixtures: one tiny toy model, one dimuon model and one Dask cluster per session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from needs import need_file, need_module

import vaeaug
from vaeaug.datasets import dplus_kpipi

need_module("coffea")
need_module("dask_awkward")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "coffea_augment.py"
OBJECTS = ("K1", "pi1", "pi2")
#: This folder's models, trained for a few epochs, put many candidates outside the training
#: support: the tests that use one (these fixtures, directly or not; the example's training
#: run) take ``outside_support`` (tests/conftest.py).
TINY_MODELS = {"toy_model", "dimuon_model_file", "jets_and_model", "augment"}
TINY_MODEL_TESTS = {"test_example_trains_then_loads_and_plots"}


def pytest_collection_modifyitems(items):
    """Mark this folder's tests that use a tiny model ``outside_support``."""
    here = Path(__file__).parent
    for item in items:
        if Path(item.path).parent != here:
            continue
        if TINY_MODELS & set(getattr(item, "fixturenames", ())) or (
            getattr(item, "originalname", None) in TINY_MODEL_TESTS
        ):
            item.add_marker(pytest.mark.outside_support)


@pytest.fixture(scope="session")
def toy_model(tmp_path_factory) -> tuple[vaeaug.Model, Path]:
    """A tiny D+ -> K pi pi model (decay representation, 3-component mixture prior) and its file."""
    torch.set_num_threads(1)
    model = vaeaug.fit(
        dplus_kpipi(2000, seed=1),
        objects=OBJECTS,
        config=vaeaug.VAEConfig(hidden=(32, 32), latent_dim=4),
        train=vaeaug.TrainConfig(epochs=5),
        seed=1,
        progress=False,
    )
    path = tmp_path_factory.mktemp("model") / "toy.vaeaug.safetensors"
    model.save(path)
    return model, path


@pytest.fixture(scope="session")
def example():
    """examples/coffea_augment.py as a module, pickled by value so workers need not import it."""
    import cloudpickle

    spec = importlib.util.spec_from_file_location("coffea_augment", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # cloudpickle registers only imported modules
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    return module


@pytest.fixture(scope="session")
def hzz(testdata) -> str:
    return str(need_file(testdata / "uproot-HZZ.root"))


@pytest.fixture(scope="session")
def dimuon_model_file(example, hzz, tmp_path_factory) -> Path:
    """A tiny dimuon model trained from a coffea run over the HZZ file (the example's training pass)."""
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("dimuon") / "dimuon.vaeaug.safetensors"
    example.train(hzz, epochs=3, seed=1, model_out=path)
    return path


@pytest.fixture(scope="session")
def cluster():
    """A client of a real distributed.LocalCluster: 2 worker processes, 1 thread each."""
    distributed = need_module("distributed")
    # dashboard_address=None turns the dashboard off, but the scheduler's HTTP server still
    # tries port 8787 and warns (an error here) when another cluster holds it: a free port
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, env={"OMP_NUM_THREADS": "1"},
    ) as cl, distributed.Client(cl, set_as_default=False) as client:  # fmt: skip
        # not the session's default: tests opt in with dask.config.set(scheduler=client)
        yield client
