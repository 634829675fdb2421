"""The suite's fidelity check passes a trained model and rejects broken ones.

Issue: range checks (``0 <= AUC <= 1``, a median mass within 30 MeV) passed for
an untrained decoder. The check of tests/fidelity_check.py must fail on a model
whose networks are re-initialised and on one whose feature scale is ten times
too wide, and pass on the trained tiny model.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import pytest
import torch
from fidelity_check import MAX_AUC, c2st_auc, reference_sample

from vaeaug.errors import SupportLimitError
from vaeaug.model.support import SupportWarning


@pytest.fixture(scope="module")
def reference():
    return reference_sample()


def test_the_trained_tiny_model_passes(tiny_model, reference):
    with warnings.catch_warnings():
        # the tiny model, trained for a few epochs, leaks out of the support more than real
        # samples do (redrawn: the output is inside); what is judged here is the C2ST
        warnings.simplefilter("ignore", SupportWarning)
        generated = tiny_model.sample(2_000, seed=1).p4
    assert c2st_auc(generated, reference) < MAX_AUC


def test_an_untrained_model_is_rejected(tiny_model, reference):
    untrained = copy.deepcopy(tiny_model)
    torch.manual_seed(0)  # the re-initialisation draws from torch's global stream
    reset = 0
    for module in untrained.vae.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
            reset += 1
    assert reset > 0
    with pytest.warns(SupportWarning, match="fell outside the training support"):
        generated = untrained.sample(2_000, seed=1).p4
    assert c2st_auc(generated, reference) > MAX_AUC


@pytest.mark.parametrize("support", ["warn", "off"])
def test_a_ten_times_too_wide_decoder_is_rejected(tiny_model, reference, support):
    wide = copy.deepcopy(tiny_model)
    wide.standardizer.scale = wide.standardizer.scale * 10.0
    # with the check on, the model's excess outside the support is reported too
    expected = pytest.warns(SupportWarning) if support != "off" else contextlib.nullcontext()
    with expected:
        generated = wide.sample(2_000, seed=1, support=support).p4
    assert c2st_auc(generated, reference) > MAX_AUC
    # under "reject" such a model returns nothing: its redraws cannot fill the sample
    with pytest.raises(SupportLimitError, match="still outside the training support"):
        wide.sample(2_000, seed=1, support="reject")
