"""The generation engine: determinism, precision flags, streaming to ROOT, interruption, CLI."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import uproot

from vaeaug.cli import main
from vaeaug.errors import InputError
from vaeaug.sampling import sizes, streaming
from vaeaug.sampling.engine import Engine
from vaeaug.sampling.sizes import BLOCK
from vaeaug.sampling.streaming import generate_to_root

#: Spans two random-number blocks, the second one partial.
N = BLOCK + 3_001


def _no_worker_threads() -> bool:
    names = [t.name for t in threading.enumerate()]
    return not any(n.startswith(("vaeaug-generate", "vaeaug-convert")) for n in names)


@pytest.fixture(scope="module")
def reference(tiny_model) -> np.ndarray:
    return tiny_model.sample(N, seed=11).p4


@pytest.mark.outside_support
def test_events_do_not_depend_on_the_chunk_size(tiny_model, reference):
    assert reference.shape == (N, 3, 4) and np.isfinite(reference).all()
    chunks = list(tiny_model.iter_samples(N, seed=11, chunk_size=9_999))
    assert [len(c) for c in chunks] == [9_999] * 6 + [N - 6 * 9_999]
    np.testing.assert_array_equal(np.concatenate(chunks), reference)
    np.testing.assert_array_equal(tiny_model.sample(N, seed=11, chunk_size=BLOCK + 1).p4, reference)
    # block 0 is the same in any sample of at least BLOCK events with this seed
    np.testing.assert_array_equal(tiny_model.sample(BLOCK, seed=11).p4, reference[:BLOCK])
    assert not np.array_equal(tiny_model.sample(1_000, seed=12).p4, reference[:1_000])
    assert _no_worker_threads()


def test_engine_decodes_like_the_vae(tiny_model):
    """The engine's batched path is the VAE's one sampling path (prior transform, decoder)."""
    eps = torch.randn(40_000, tiny_model.noise_width, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = Engine(tiny_model).features(eps)
        vae = tiny_model.vae.generate(eps[:, : tiny_model.vae.noise_width])
        # the decoder's noise is the base of p(x|z): it inverts the flow's transform
        z = tiny_model.vae.prior.from_noise(eps[:, : tiny_model.config.latent_dim])
        noise = tiny_model.vae.decode(z).transform(vae)
    torch.testing.assert_close(ours[:, : vae.shape[1]], vae)
    eps_x = eps[:, tiny_model.config.latent_dim : tiny_model.vae.noise_width]
    torch.testing.assert_close(noise, eps_x, atol=1e-4, rtol=1e-4)


def test_gaussian_decoder_noise_enters_as_loc_plus_scale_times_eps():
    from vaeaug.model.vae import VAE, VAEConfig

    vae = VAE(6, VAEConfig(decoder="gaussian", latent_dim=3, hidden=(16,)))
    eps = torch.randn(100, vae.noise_width, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        loc, scale = vae.decoder_params(vae.prior.from_noise(eps[:, :3]))
        torch.testing.assert_close(vae.generate(eps), loc + scale * eps[:, 3:])


@pytest.mark.outside_support
def test_bf16_changes_the_decoder_arithmetic_not_the_physics(tiny_model, reference):
    bf16 = tiny_model.sample(20_000, seed=11, precision="bf16").p4
    fp32 = reference[:20_000]
    assert np.isfinite(bf16).all()
    assert not np.array_equal(bf16, fp32)  # the flag reaches the decoder
    # same latent draws and noise: event by event, the parent mass moves by a
    # small fraction of the peak width
    m32 = np.sqrt(np.maximum(fp32.sum(1)[:, 3] ** 2 - (fp32.sum(1)[:, :3] ** 2).sum(-1), 0))
    m16 = np.sqrt(np.maximum(bf16.sum(1)[:, 3] ** 2 - (bf16.sum(1)[:, :3] ** 2).sum(-1), 0))
    width = 0.5 * np.subtract(*np.percentile(m32, [84, 16]))
    assert abs(np.median(m16) - np.median(m32)) < 0.05 * width
    with pytest.raises(InputError, match="precision 'fp16' unknown; valid: fp32, bf16"):
        tiny_model.sample(10, precision="fp16")


@pytest.mark.outside_support
def test_compile_flag_compiles_the_decoder(tiny_model, monkeypatch):
    compiled = []

    def fake_compile(fn, **kwargs):
        compiled.append(kwargs)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    out = tiny_model.sample(1_000, seed=11, compile=True).p4
    assert compiled == [{"dynamic": False}]
    np.testing.assert_array_equal(out, tiny_model.sample(1_000, seed=11).p4)


@pytest.mark.outside_support
def test_streamed_root_file_equals_the_in_memory_sample(tiny_model, reference, tmp_path):
    out = tmp_path / "gen.root"
    assert generate_to_root(tiny_model, N, out, seed=11, chunk_size=20_000) == N
    arrays = uproot.open(out)["candidates"].arrays(library="np")
    for j, obj in enumerate(tiny_model.objects):
        for i, comp in enumerate(("px", "py", "pz", "E")):
            np.testing.assert_array_equal(arrays[f"{obj}_{comp}"], reference[:, j, i].astype("f4"))


def test_failure_while_writing_leaves_no_file_and_no_thread(tiny_model, tmp_path, monkeypatch):
    from vaeaug.io import RootWriter

    real_write = RootWriter.write
    calls = []

    def failing_write(self, p4, **extra):
        calls.append(len(p4))
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real_write(self, p4, **extra)

    monkeypatch.setattr(RootWriter, "write", failing_write)
    out = tmp_path / "gen.root"
    with pytest.raises(RuntimeError, match="disk full"):
        generate_to_root(tiny_model, 50_000, out, seed=1, chunk_size=5_000)
    assert calls == [5_000, 5_000]
    assert list(tmp_path.iterdir()) == []
    assert _no_worker_threads()


def test_failure_in_the_producer_reaches_the_caller(tiny_model, tmp_path, monkeypatch):
    real = Engine.features
    calls = []

    def failing_features(self, eps):
        calls.append(len(eps))
        if len(calls) == 2:
            raise RuntimeError("device lost")
        return real(self, eps)

    monkeypatch.setattr(Engine, "features", failing_features)
    out = tmp_path / "gen.root"
    with pytest.raises(RuntimeError, match="device lost"):
        generate_to_root(tiny_model, 2 * BLOCK + 10, out, seed=1, chunk_size=1_000)
    assert list(tmp_path.iterdir()) == []
    assert _no_worker_threads()


def test_stream_bounds_the_chunks_in_flight(tiny_model, monkeypatch):
    made = []
    real_empty = torch.empty

    def counting_empty(*args, **kwargs):
        t = real_empty(*args, **kwargs)
        if t.shape == (1_000, Engine(tiny_model).n_features):
            made.append(t.shape)
        return t

    monkeypatch.setattr(streaming.torch, "empty", counting_empty)
    chunks = streaming.stream(tiny_model, 40_000, 3, chunk_size=1_000, converters=1)
    assert sum(len(c) for c in chunks) == 40_000
    # one chunk being filled, one being converted, one spare: 40 chunks, 3 buffers
    assert len(made) == 3


@pytest.mark.outside_support
def test_default_chunk_is_the_devices(tiny_model, monkeypatch):
    # without chunk_size: DEFAULT_CHUNK (memory: docs/performance.md), or the device type's
    assert streaming.default_chunk("cpu") == streaming.DEFAULT_CHUNK
    assert streaming.default_chunk("cuda") > streaming.DEFAULT_CHUNK
    monkeypatch.setattr(streaming, "DEFAULT_CHUNK", 1_000)
    assert [len(c) for c in tiny_model.iter_samples(2_500, seed=1)] == [1_000, 1_000, 500]
    monkeypatch.setitem(sizes.DEVICE_CHUNK, "cpu", 700)
    assert [len(c) for c in tiny_model.iter_samples(1_500, seed=1)] == [700, 700, 100]


@pytest.mark.outside_support
def test_generate_command_end_to_end(tiny_model, tmp_path, capsys):
    model_file = tmp_path / "m.safetensors"
    tiny_model.save(model_file)
    out = tmp_path / "g.root"
    argv = ["generate", str(model_file), "-n", "7000", "-o", str(out), "--seed", "4"]
    argv += ["--chunk-size", "3000", "--precision", "fp32", "--device", "cpu", "-q"]
    assert main(argv) == 0
    assert "generated 7000 candidates" in capsys.readouterr().out
    k1_px = uproot.open(out)["candidates"]["K1_px"].array(library="np")
    np.testing.assert_array_equal(k1_px, tiny_model.sample(7_000, seed=4).p4[:, 0, 0].astype("f4"))

    bad = tmp_path / "bad.root"
    assert main([*argv[:5], str(bad), "--chunk-size", "0", "-q"]) == 2
    assert "--chunk-size must be an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv[:5], str(bad), "--precision", "fp16"])
    assert "invalid choice: 'fp16'" in capsys.readouterr().err
    assert not bad.exists()
