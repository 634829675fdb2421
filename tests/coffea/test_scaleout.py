"""A generated sample partitioned by seed, written by uproot.dask_write on a LocalCluster."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import uproot

from vaeaug.integrations.dask import generate, partition_seeds, write


def test_generate_and_write_on_a_cluster(toy_model, cluster, tmp_path):
    model, path = toy_model
    sample = generate(path, 2500, seed=4, partition_size=1000, device="cpu")
    assert sample.npartitions == 3 and sample.divisions == (0, 1000, 2000, 2500)
    with dask.config.set(scheduler=cluster):
        files = write(sample, tmp_path / "out", tree="signal", prefix="dplus")
    assert [f.rsplit("/", 1)[1] for f in files] == [f"dplus-part{i}.root" for i in range(3)]
    seeds = partition_seeds(4, 3)
    for i, (file, n) in enumerate(zip(files, (1000, 1000, 500), strict=True)):
        with uproot.open(file) as f:
            got = f["signal"].arrays(library="np")
        # the training input's branches and types, and partition i = Model.sample(n_i, seed=s_i)
        assert list(got) == model.layout.branch_names() and got["K1_px"].dtype == np.float32
        expect = model.sample(n, seed=seeds[i]).to_numpy()
        for name in got:
            np.testing.assert_array_equal(got[name], expect[name])
    # a second run on the cluster gives the same events
    again = generate(path, 2500, seed=4, partition_size=1000, device="cpu").compute(
        scheduler=cluster
    )
    np.testing.assert_array_equal(again["pi2_E"][2000:], expect["pi2_E"])


def test_vectors_form_and_bad_input(toy_model):
    model, _ = toy_model
    sample = generate(model, 300, seed=1, partition_size=200, form="vectors").compute(
        scheduler="sync"
    )
    mass = (sample.K1 + sample.pi1 + sample.pi2).mass
    assert len(mass) == 300 and abs(float(np.median(mass)) - 1.8697) < 0.03
    with pytest.raises(ValueError, match="form 'tree' unknown; valid: branches, vectors"):
        generate(model, 10, form="tree")
    with pytest.raises(ValueError, match="must be >= 1"):
        generate(model, 0)
