"""The example's processor with Augment on a real file, under every way coffea runs it.

Iterative and futures executors (coffea.processor.Runner, virtual NanoEvents),
dask mode (apply_to_fileset) on the local scheduler and on a real LocalCluster:
the generated candidates must be identical, whatever the executor or chunking.
"""

from __future__ import annotations

import awkward as ak
import dask
import numpy as np
import pytest
from needs import need_file

import vaeaug
from vaeaug.integrations.awkward import candidate_p4

pytestmark = pytest.mark.testdata

FACTOR, SEED = 3, 11


def _sorted_p4(records) -> np.ndarray:
    """Generated 4-momenta, (M, 8), rows sorted: comparable whatever the chunk order."""
    flat = ak.flatten(records)
    cols = [
        ak.to_numpy(getattr(flat[o], c)) for o in ("mu1", "mu2") for c in ("px", "py", "pz", "E")
    ]
    rows = np.stack(cols, -1)
    return rows[np.lexsort(rows.T[::-1])]


@pytest.fixture(scope="module")
def augment(dimuon_model_file):
    return vaeaug.Augment(dimuon_model_file, factor=FACTOR, seed=SEED, device="cpu")


@pytest.fixture(scope="module")
def reference(example, hzz, augment):
    return example.run(hzz, augment, executor="iterative", chunksize=1000, keep_arrays=True)


def _check_same(out, reference):
    np.testing.assert_array_equal(_sorted_p4(out["arrays"]), _sorted_p4(reference["arrays"]))
    np.testing.assert_allclose(
        out["generated"].values(), reference["generated"].values(), rtol=1e-12
    )
    np.testing.assert_array_equal(out["original"].values(), reference["original"].values())


def test_reference_run_is_sane(reference):
    arrays = reference["arrays"]
    n_pairs = reference["original"].sum(flow=True).value
    assert ak.sum(ak.num(arrays)) == FACTOR * n_pairs > 1000
    assert ak.sum(arrays.weight) == pytest.approx(n_pairs)
    mass = ak.to_numpy(ak.flatten((arrays.mu1 + arrays.mu2).mass))
    assert 70 < np.median(mass) < 110  # the Z peak
    in_range = (mass >= 60) & (mass < 120)
    weights = ak.to_numpy(ak.flatten(arrays.weight))
    assert reference["generated"].sum().value == pytest.approx(weights[in_range].sum(), rel=1e-9)


def test_futures_executor_other_chunking(example, hzz, augment, reference):
    out = example.run(hzz, augment, executor="futures", chunksize=300, workers=2, keep_arrays=True)
    _check_same(out, reference)


def test_dask_mode_local_scheduler(example, hzz, augment, reference):
    with dask.config.set(scheduler="sync"):
        out = example.run(hzz, augment, executor="dask", chunksize=700, keep_arrays=True)
    _check_same(out, reference)


def test_dask_mode_on_a_local_cluster(example, hzz, augment, reference, cluster):
    out = example.run(hzz, augment, executor="dask", chunksize=500, keep_arrays=True,
                      scheduler=cluster.scheduler.address)  # fmt: skip
    _check_same(out, reference)
    # the arrays came back from worker processes: the vector behavior came with them, and
    # its pair mass is the one of the summed 4-momenta
    flat = ak.flatten(out["arrays"])
    p4 = {c: ak.to_numpy(flat["mu1", c]).astype(np.float64) + ak.to_numpy(flat["mu2", c])
          for c in ("px", "py", "pz", "E")}  # fmt: skip
    expected = np.sqrt(p4["E"] ** 2 - p4["px"] ** 2 - p4["py"] ** 2 - p4["pz"] ** 2)
    np.testing.assert_allclose(ak.to_numpy((flat.mu1 + flat.mu2).mass), expected, rtol=1e-4)


def test_dask_mode_reads_only_the_needed_branches(example, hzz, augment):
    import dask_awkward as dak
    from coffea.nanoevents import BaseSchema, NanoEventsFactory

    events = NanoEventsFactory.from_root(
        {hzz: "events"}, schemaclass=BaseSchema, mode="dask"
    ).events()
    gen = augment(example.dimuon_pairs(events))
    mass = (gen.mu1 + gen.mu2).mass
    (columns,) = dak.report_necessary_columns(mass).values()
    # of the file's 51 branches, the muon momenta and the charge of the pair selection
    assert set(columns) == {"Muon_Px", "Muon_Py", "Muon_Pz", "Muon_E", "Muon_Charge"}
    eager = augment(example.dimuon_pairs(events.compute(scheduler="sync")))
    np.testing.assert_array_equal(
        ak.flatten(mass.compute(scheduler="sync")), ak.flatten((eager.mu1 + eager.mu2).mass)
    )


@pytest.fixture(scope="module")
def nanoaod(testdata):
    return {str(need_file(testdata / "nanoAOD_2015_CMS_Open_Data_ttbar.root")): "Events"}


@pytest.fixture(scope="module")
def jets_and_model(nanoaod):
    """The events' jets (virtual mode) and a 1-epoch model of jet pairs."""
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    jets = (
        NanoEventsFactory.from_root(nanoaod, schemaclass=NanoAODSchema, mode="virtual").events().Jet
    )
    pairs = vaeaug.candidates(jets, n=2, charge=None)
    model = vaeaug.fit(candidate_p4(pairs).p4, objects=["Jet0", "Jet1"], representation="collider",
                       config=vaeaug.VAEConfig(hidden=(8,), latent_dim=2, prior="standard"),
                       train=vaeaug.TrainConfig(epochs=1), progress=False)  # fmt: skip
    return jets, model


@pytest.mark.filterwarnings("ignore:Missing cross-reference (index|target):RuntimeWarning")
@pytest.mark.filterwarnings("ignore:Branch .* already exists:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::vaeaug.integrations.coffea.DroppedFieldsWarning")
@pytest.mark.parametrize("mode", ["eager", "virtual", "dask"])
def test_nanoaod_collection(nanoaod, jets_and_model, mode):
    """Pairs of events.Jet (pt/eta/phi/mass) of CMS NanoAOD, in every NanoEvents mode."""
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    jets, model = jets_and_model
    aug = vaeaug.Augment(model, factor=2, seed=1)
    # eager mode reads every branch it is given: give it the jets only
    options = (
        {"iteritems_options": {"filter_name": ["run", "luminosityBlock", "event", "nJet", "Jet_*"]}}
        if mode == "eager"
        else {}
    )
    events = NanoEventsFactory.from_root(
        nanoaod, schemaclass=NanoAODSchema, mode=mode, **options
    ).events()
    gen = aug(vaeaug.candidates(events.Jet, n=2, charge=None))
    if mode == "dask":
        import dask_awkward as dak

        (columns,) = dak.report_necessary_columns(gen).values()
        assert set(columns) == {"nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass"}
        gen = gen.compute(scheduler="sync")
    n_jets = ak.to_numpy(ak.num(jets))
    assert ak.num(gen).tolist() == (2 * n_jets * (n_jets - 1) // 2).tolist() and n_jets.max() > 5
    assert gen.fields == ["Jet0", "Jet1", "weight", "is_generated"]
    assert ak.parameters(gen.Jet0[0]).get("__record__") == "Jet"  # coffea's type, kept
    reference = aug(vaeaug.candidates(jets, n=2, charge=None))
    np.testing.assert_array_equal(ak.flatten(gen.Jet1.pt), ak.flatten(reference.Jet1.pt))


@pytest.mark.parametrize("executor", ["iterative", "futures"])
def test_the_report_reaches_the_runner_output(example, hzz, augment, reference, executor):
    """Augment.report() returned by process() is added up over the chunks by coffea's Runner
    (each chunk works on a copy of the processor, whose attributes never come back)."""
    out = example.run(hzz, augment, executor=executor, chunksize=300, workers=2)
    report, pairs = out["vaeaug"], reference["original"].sum(flow=True).value
    assert report.candidates == pairs and report.support.n == FACTOR * pairs
    assert report.support.outside > 0 and report.support.expected_rate > 0
    # the same partners, so the same support counts, whatever the executor or chunking
    again = example.run(hzz, augment, executor="iterative", chunksize=1000)["vaeaug"]
    assert (again.support.outside, again.support.edges) == (report.support.outside,
                                                            report.support.edges)  # fmt: skip
    assert "generated" in report.summary()


def test_one_support_warning_per_process_not_per_chunk(dimuon_model_file, hzz, example,
                                                       monkeypatch):  # fmt: skip
    """Nine chunks, each with candidates outside a tiny model's support: one SupportWarning."""
    import warnings

    from vaeaug.integrations import coffea as integration
    from vaeaug.model.support import SupportWarning

    monkeypatch.setattr(integration, "_WARNED", set())  # a new process
    fresh = vaeaug.Augment(dimuon_model_file, factor=FACTOR, seed=SEED + 1, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = example.run(hzz, fresh, executor="iterative", chunksize=300)
    support = [w for w in caught if issubclass(w.category, SupportWarning)]
    assert out["vaeaug"].support.excess() and len(support) == 1
