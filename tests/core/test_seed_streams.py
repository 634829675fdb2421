"""Every use of a seed draws from its own sub-stream of vaeaug.noise."""

from __future__ import annotations

import numpy as np
import pytest

from vaeaug.model.support import Support
from vaeaug.noise import Stream, child_seed, seed_words
from vaeaug.sampling.engine import block_seed
from vaeaug.training import _split


@pytest.mark.parametrize("seed", [0, 3, 2**40 + 1])
def test_two_sub_streams_of_one_seed_differ(seed):
    words = {stream: tuple(seed_words(seed, stream, n=4)) for stream in Stream}
    assert len(set(words.values())) == len(Stream)
    # and none is a block stream of a generated sample (path (b,)) or the seed's own
    blocks = {child_seed(seed, b) for b in range(64)} | {child_seed(seed)}
    assert not blocks & {child_seed(seed, stream) for stream in Stream}
    assert block_seed(seed, 0) != block_seed(seed, 1)


def test_stream_tags_are_distinct():
    assert len({int(s) for s in Stream}) == len(Stream)


def test_the_training_split_and_the_support_halves_are_different_permutations():
    # both once used np.random.default_rng(seed): the same permutation of the same events
    n, seed = 1000, 3
    val_idx, train_idx = _split(n, 0.5, seed)
    split_order = np.concatenate([val_idx, train_idx])
    train_order = np.random.default_rng(child_seed(seed, Stream.TRAIN_SPLIT)).permutation(n)
    support_order = np.random.default_rng(child_seed(seed, Stream.SUPPORT_SPLIT)).permutation(n)
    assert np.array_equal(split_order, train_order)
    assert not np.array_equal(split_order, support_order)
    assert not np.array_equal(split_order, np.random.default_rng(seed).permutation(n))

    # the support's halves come from their own stream: its rate is that of those halves
    x = np.random.default_rng(1).standard_normal((n, 6))
    a, b = x[support_order[: n // 2]], x[support_order[n // 2 :]]
    lo, hi = Support._bounds(a)
    rate = float(np.mean(((b < lo) | (b > hi)).any(axis=1)))
    assert Support.fit(x, list("abcdef"), seed=seed).expected_rate == rate
