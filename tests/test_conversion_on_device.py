"""Features to 4-momenta on the generating device: ``Model.to_p4`` on tensors, and the stream's
device-side converter (the default on CUDA).

No GPU is needed: ``convert_on_device=True`` forces on the CPU the torch path that CUDA takes
by default, so the same code is exercised. It must give the numpy path's events to 1e-9
relative (the comparison of ``tests/representations/test_decay_torch.py``), while the CPU
default stays numpy, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from vaeaug.model.support import SupportReport
from vaeaug.sampling import sizes, streaming
from vaeaug.sampling.engine import Engine

RTOL = 1e-9


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Max of |a - b| / max(|a|, 1e-5 E) over events, daughters and components.

    a, b: 4-momenta (N, k, 4) GeV, ``a`` the numpy reference; ``E`` the event's summed
    energy (see tests/representations/test_decay_torch.py for the floor).
    """
    scale = 1e-5 * a[..., 3].sum(axis=1)[:, None, None]
    return float((np.abs(a - b) / np.maximum(np.abs(a), scale)).max())


@pytest.fixture
def to_p4_inputs(tiny_model, monkeypatch) -> list[str]:
    """The kinds of array the stream decodes (``sampling.decode.to_p4``): "numpy" or "tensor"."""
    kinds: list[str] = []
    original = streaming.to_p4

    def spy(model, x):
        kinds.append("tensor" if torch.is_tensor(x) else "numpy")
        return original(model, x)

    monkeypatch.setattr(streaming, "to_p4", spy)
    return kinds


def test_to_p4_of_a_tensor_is_float64_on_its_device_and_matches_numpy(tiny_model):
    assert tiny_model.phi_uniform  # so the uniform azimuth (ndtr) is covered too
    x = 2.0 * torch.randn(20_000, Engine(tiny_model).n_features)  # float32, as generated
    p4, full = tiny_model.to_p4(x)
    assert p4.dtype == full.dtype == torch.float64
    assert p4.device == full.device == x.device
    ref_p4, ref_full = tiny_model.to_p4(x.numpy())
    np.testing.assert_allclose(full.numpy(), ref_full, rtol=RTOL, atol=1e-15)
    assert relative_difference(ref_p4, p4.numpy()) < RTOL


class _Ops(TorchDispatchMode):
    """Records the aten operators that run inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


def test_to_p4_of_a_tensor_makes_no_tensor_from_host_data(tiny_model):
    """On a GPU, a number or list turned into a tensor is a host-to-device copy that waits
    for the device: none may happen per call (after the first, which caches the scaling)."""
    x = torch.randn(1_000, Engine(tiny_model).n_features)
    tiny_model.to_p4(x)
    with torch.inference_mode(), _Ops() as ops:
        tiny_model.to_p4(x)
    assert "aten.lift_fresh.default" not in ops.names
    assert len(ops.names) > 100  # the decoding ran under the recorder


def test_stream_converts_on_the_device_when_asked(tiny_model, to_p4_inputs, monkeypatch):
    # several device-side slices per chunk, and chunks that cut random-number blocks
    monkeypatch.setitem(sizes.DEVICE_ROWS, "cpu", 7_000)
    n, seed = 50_000, 5
    ref_report, report = SupportReport(), SupportReport()
    ref = streaming.sample_into(tiny_model, n, seed, report=ref_report)
    to_p4_inputs.clear()
    out = streaming.sample_into(tiny_model, n, seed, chunk_size=20_000, convert_on_device=True,
                                report=report)  # fmt: skip
    assert to_p4_inputs[0] == "tensor"
    assert to_p4_inputs.count("tensor") == sum(-(-r // 7_000) for r in (20_000, 20_000, 10_000))
    assert relative_difference(ref, out) < RTOL
    # the support check ran on the device path's events too, with the same outcome
    assert report.outside == ref_report.outside > 0
    assert report.n == ref_report.n == n


def test_cpu_default_converts_with_numpy_bit_for_bit(tiny_model, to_p4_inputs):
    n, seed = 30_000, 6
    out = tiny_model.sample(n, seed=seed, support="off").p4
    assert set(to_p4_inputs) == {"numpy"}
    with torch.inference_mode():
        x = torch.cat(list(Engine(tiny_model).batches(n, seed)))
    p4, _ = tiny_model.to_p4(x.numpy())
    np.testing.assert_array_equal(out, p4)
