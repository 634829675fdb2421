"""vaeaug.Augment on awkward arrays: weights, modes, determinism, shipping, bad input."""

from __future__ import annotations

import pickle
import warnings

import awkward as ak
import numpy as np
import pytest
from fidelity_check import MAX_AUC, c2st_auc, reference_sample
from scipy import stats

import vaeaug
import vaeaug.integrations.coffea
from vaeaug import InputError
from vaeaug.datasets import dplus_kpipi
from vaeaug.integrations.awkward import to_awkward
from vaeaug.integrations.coffea import CandidateAccumulator, candidate_noise, generate_from_noise
from vaeaug.io.candidates import Candidates
from vaeaug.kinematics import invariant_mass
from vaeaug.model.support import SupportWarning

OBJECTS = ("K1", "pi1", "pi2")


@pytest.fixture(scope="module")
def candidates():
    """300 toy D+ candidates in 100 events (3 per event)."""
    return to_awkward(dplus_kpipi(300, seed=5), OBJECTS, counts=np.full(100, 3))


def _p4(records) -> np.ndarray:
    flat = ak.flatten(records) if records.ndim == 2 else records
    return np.stack([np.stack([ak.to_numpy(getattr(flat[o], c)) for c in ("px", "py", "pz", "E")], -1)
                     for o in OBJECTS], 1)  # fmt: skip


def test_generated_mode_shape_weights_and_vector_behavior(toy_model, candidates):
    _, path = toy_model
    gen = vaeaug.Augment(path, factor=4, seed=1)(candidates)
    assert ak.num(gen).tolist() == [12] * 100
    assert gen.fields == [*OBJECTS, "weight", "is_generated"] and ak.all(gen.is_generated)
    assert ak.parameters(gen.K1[0]).get("__record__") == "Momentum4D"  # plain input: vector
    np.testing.assert_allclose(ak.flatten(gen.weight), 0.25)
    assert ak.sum(gen.weight) == pytest.approx(300)
    # the generated candidates pass the suite's fidelity check (an untrained model fails it)
    assert c2st_auc(_p4(gen), reference_sample()) < MAX_AUC
    assert np.all(np.isfinite(ak.to_numpy(ak.flatten(gen.K1.deltaR(gen.pi1)))))


def test_combined_mode_keeps_inputs_with_flag_and_normalisation(toy_model, candidates):
    model, _ = toy_model
    weights = np.linspace(0.5, 2.0, 100)  # one per event
    out = vaeaug.Augment(model, factor=3, seed=1, mode="combined")(candidates, weights)
    assert ak.num(out).tolist() == [12] * 100
    flag = ak.to_numpy(ak.flatten(out.is_generated))
    assert flag.sum() == 900 and not flag[::4].any()  # each input, then its 3 partners
    np.testing.assert_array_equal(_p4(out)[~flag], _p4(candidates))
    # the rule shared with `vaeaug augment --combined`: an input and its 3 partners share its
    # weight w, w / 4 each, so the whole sums to the input's weighted yield
    w = ak.to_numpy(ak.flatten(out.weight))
    per_candidate = np.repeat(weights, 3)  # 3 candidates per event
    np.testing.assert_allclose(w[~flag], per_candidate / 4)
    np.testing.assert_allclose(w[flag], np.repeat(per_candidate / 4, 3))
    assert w.sum() == pytest.approx(per_candidate.sum())
    assert w[flag].sum() == pytest.approx(3 * w[~flag].sum())
    keyword = vaeaug.Augment(model, factor=3, seed=1, mode="combined")(candidates, weight=weights)
    np.testing.assert_array_equal(ak.flatten(keyword.weight), ak.flatten(out.weight))
    with pytest.raises(InputError, match=r"weight=\.\.\. or weights=\.\.\., not both"):
        vaeaug.Augment(model, factor=3)(candidates, weights, weight=weights)


def test_same_candidates_same_partners_whatever_the_chunking(toy_model, candidates):
    """The random numbers are keyed by each candidate: chunk size and order do not matter."""
    _, path = toy_model
    aug = vaeaug.Augment(path, factor=2, seed=9)
    whole = _p4(aug(candidates))
    shipped = pickle.loads(pickle.dumps(aug))  # as a worker gets it
    pieces = [shipped(candidates[s : s + 7]) for s in range(0, 100, 7)][::-1]
    np.testing.assert_array_equal(_p4(ak.concatenate(pieces[::-1])), whole)
    flat = shipped(ak.flatten(candidates)[::-1])  # one candidate per entry, reversed
    np.testing.assert_array_equal(_p4(flat).reshape(300, 2, 3, 4)[::-1].reshape(-1, 3, 4), whole)
    other_seed = _p4(vaeaug.Augment(path, factor=2, seed=10)(candidates))
    assert not np.allclose(other_seed, whole)


def _coffea_candidates(candidates):
    """The same candidates with coffea PtEtaPhiMCandidate daughters (pt, eta, phi, mass, charge)."""
    from vaeaug.integrations.awkward import behavior_of

    behavior = behavior_of(("coffea.nanoevents.methods.candidate",))
    daughters = {o: ak.zip({"pt": candidates[o].pt, "eta": candidates[o].eta, "phi": candidates[o].phi,
                            "mass": candidates[o].mass, "charge": ak.ones_like(candidates[o].pt)},
                           with_name="PtEtaPhiMCandidate", behavior=behavior) for o in OBJECTS}  # fmt: skip
    return ak.zip(daughters, behavior=behavior)


@pytest.fixture
def decoder_calls(monkeypatch) -> list[int]:
    """The rows of every network call (``sampling.decode.features_from_noise``), in call order."""
    import vaeaug.sampling.decode

    seen: list[int] = []
    decode = vaeaug.sampling.decode.features_from_noise

    def spy(model, eps, **kwargs):
        seen.append(len(eps))
        return decode(model, eps, **kwargs)

    monkeypatch.setattr(vaeaug.sampling.decode, "features_from_noise", spy)
    return seen


@pytest.mark.parametrize("style", ["vector", "coffea"])
@pytest.mark.parametrize("mode", ["generated", "combined"])
def test_blocks_bound_the_decoder_calls_and_keep_the_events(toy_model, candidates, monkeypatch,
                                                            decoder_calls, style, mode):  # fmt: skip
    """Augment decodes at most BLOCK_ROWS rows at once; the events are those of one big block."""
    _, path = toy_model
    cands = candidates if style == "vector" else _coffea_candidates(candidates)
    weights = np.linspace(0.5, 2.0, 100)
    factor, block_rows = 7, 300  # 42 candidates (294 rows) per block: 8 blocks for 300 candidates
    monkeypatch.setitem(vaeaug.integrations.coffea.DECODE_ROWS, "cpu", 1 << 16)  # a block: one call
    aug = vaeaug.Augment(path, factor=factor, seed=4, mode=mode, support="reject")
    whole = aug(cands, weight=weights)  # BLOCK_ROWS = 65536: one block of 2100 rows
    assert max(decoder_calls) == 300 * factor  # the spy sees the decoder's calls
    decoder_calls.clear()
    monkeypatch.setattr(vaeaug.integrations.coffea, "BLOCK_ROWS", block_rows)
    monkeypatch.setattr(vaeaug.integrations.coffea, "_WARNED", set())  # a new process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blocked = aug(cands, weight=weights)
    # every decoder call, first draws and the redraws of candidates outside the support
    # (256 rows each), stays within a block
    assert max(decoder_calls) <= block_rows and decoder_calls.count(42 * factor) == 300 // 42
    assert ak.to_list(blocked) == ak.to_list(whole)  # bit for bit, every field
    assert blocked.layout.form == whole.layout.form
    # the blocks' support reports add up to one per call, and one warning at most (per process)
    assert aug.support_report.n == 2 * 300 * factor
    support = [w for w in caught if issubclass(w.category, SupportWarning)]
    assert len(support) == 1 and support[0].filename == __file__


def test_decode_rows_bound_the_network_calls_within_a_block(toy_model, candidates, monkeypatch,
                                                            decoder_calls):  # fmt: skip
    """On the CPU a block is decoded DECODE_ROWS rows per network call; the events stay."""
    _, path = toy_model
    monkeypatch.setitem(vaeaug.integrations.coffea.DECODE_ROWS, "cpu", 1 << 16)
    aug = vaeaug.Augment(path, factor=7, seed=4)
    whole = aug(candidates)  # 2100 rows: one block, one call
    assert max(decoder_calls) == 2100
    decoder_calls.clear()
    monkeypatch.setitem(vaeaug.integrations.coffea.DECODE_ROWS, "cpu", 100)
    assert ak.to_list(aug(candidates)) == ak.to_list(whole)
    # first draws 100 rows at a time (21 calls); redraws go in their own 256-row groups
    assert decoder_calls.count(100) == 21 and set(decoder_calls) <= {100, 256}


def test_noise_decoding_matches_model_sample(toy_model):
    """Augment's counter-based noise gives the distribution of Model.sample."""
    model, _ = toy_model
    p4 = dplus_kpipi(4000, seed=3)
    # (the keys' uniqueness and the normals' distribution: tests/core/test_keyed_rng.py)
    keys, eps = candidate_noise(p4, seed=1, factor=1, n_normal=model.noise_width)
    ours, _ = generate_from_noise(model, keys, eps)
    ref = model.sample(4000, seed=2).p4
    for obj in range(3):
        for comp in (0, 2, 3):
            assert stats.ks_2samp(ours[:, obj, comp], ref[:, obj, comp]).pvalue > 1e-3, (obj, comp)


def test_model_is_shipped_as_bytes_and_loaded_lazily(toy_model, candidates):
    _, path = toy_model
    aug = vaeaug.Augment(path, factor=2, seed=1, device="cpu")
    aug(candidates[:2])
    state = aug.__getstate__()
    assert state["_model"] is None and isinstance(state["model_bytes"], bytes)
    assert b"torch" not in pickle.dumps(aug).split(b"model_bytes")[0]  # no pickled torch object
    worker = pickle.loads(pickle.dumps(aug))
    assert worker._model is None
    empty = worker(candidates[:0])  # short-circuits: no model load
    assert (
        worker._model is None
        and len(empty) == 0
        and empty.fields == [*OBJECTS, "weight", "is_generated"]
    )
    no_cands = worker(candidates[:5][ak.num(candidates[:5]) < 0])
    assert worker._model is None and ak.num(no_cands, axis=0) == 0
    worker(candidates[:1])
    assert worker._model is not None and str(worker.model.device) == "cpu"


def test_typetracer_gives_the_output_form(toy_model, candidates):
    _, path = toy_model
    aug = vaeaug.Augment(path, factor=2, seed=1, mode="combined")
    tt = ak.Array(candidates.layout.to_typetracer(forget_length=True))
    out = aug(tt)
    real = aug(candidates[:3])
    assert ak.backend(out) == "typetracer" and out.layout.form == real.layout.form


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"factor": 0}, "factor must be an integer >= 1"), ({"mode": "both"}, "mode 'both' unknown; valid: generated"),
     ({"objects": ["a", "b"]}, "names 2 daughters, but the model was trained on 3"),
     ({"seed": -1}, "seed must be an integer >= 0, got -1"), ({"seed": 1.5}, "seed must be an integer")],
)  # fmt: skip
def test_bad_arguments(toy_model, kwargs, match):
    with pytest.raises(InputError, match=match):
        vaeaug.Augment(toy_model[1], **kwargs)


def test_bad_model_file(tmp_path):
    with pytest.raises(vaeaug.ModelFileError, match="does not exist"):
        vaeaug.Augment(tmp_path / "missing.safetensors")


def test_candidates_that_do_not_fit_the_model(toy_model, candidates):
    aug = vaeaug.Augment(toy_model[1], factor=2)
    pairs = ak.zip({"mu1": candidates.K1, "mu2": candidates.pi1})
    with pytest.raises(InputError, match="trained on 3 objects but the candidates have 2"):
        aug(pairs)
    swapped = ak.zip({"K1": candidates.pi1, "pi1": candidates.K1, "pi2": candidates.pi2})
    with pytest.raises(
        InputError, match=r"do not match the model's decay representation \(K1: model 0\.4937"
    ):
        aug(swapped)
    holes = ak.mask(candidates, ak.local_index(candidates) < 2)
    with pytest.raises(InputError, match="missing"):
        aug(holes)


def test_candidate_accumulator_trains_whatever_the_order(candidates):
    chunks = [CandidateAccumulator.from_awkward(candidates[s : s + 30]) for s in range(0, 100, 30)]
    forward = chunks[0] + chunks[1] + chunks[2] + chunks[3]
    backward = CandidateAccumulator()
    for c in chunks[::-1]:
        backward += c
    assert len(forward) == 300 and forward.objects == OBJECTS
    collected = forward.candidates
    assert isinstance(collected, Candidates) and collected.objects == list(OBJECTS)
    np.testing.assert_array_equal(collected.p4, backward.candidates.p4)
    # every candidate once, whatever the order the chunks arrived in
    np.testing.assert_array_equal(np.sort(collected.mass), np.sort(invariant_mass(_p4(candidates))))
    model = forward.fit(config=vaeaug.VAEConfig(hidden=(8,), latent_dim=2, prior="standard"),
                        train=vaeaug.TrainConfig(epochs=1), progress=False)  # fmt: skip
    assert model.objects == list(OBJECTS) and model.provenance["n_events"] == 300
    with pytest.raises(InputError, match="nothing to train on"):
        CandidateAccumulator().fit()
