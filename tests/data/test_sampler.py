"""ContextSampler: shapes, right padding, returns-to-go, timesteps and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrl.data.sampler import ContextSampler


class FixedStarts:
    """Stands in for np.random.Generator so a test chooses the windows' start transitions."""

    def __init__(self, starts):
        self.starts = np.asarray(starts)

    def integers(self, low, high, size):
        assert (low, high, size) == (0, high, len(self.starts)) and self.starts.max() < high
        return self.starts


def test_shapes_and_dtypes(make_dataset):
    ds = make_dataset(lengths=(5, 3, 4), obs_dim=3, act_dim=2)
    batch = ContextSampler(ds, context_len=4).sample(16, np.random.default_rng(0))
    assert batch.returns_to_go.shape == (16, 4, 1)
    assert batch.states.shape == (16, 4, 3)
    assert batch.actions.shape == (16, 4, 2)
    assert batch.timesteps.shape == (16, 4) and batch.timesteps.dtype == np.int64
    assert batch.mask.shape == (16, 4) and batch.mask.dtype == bool
    assert batch.states.dtype == batch.actions.dtype == batch.returns_to_go.dtype == np.float32
    t = batch.to_torch("cpu")
    assert t.states.dtype == torch.float32 and t.mask.dtype == torch.bool and t.timesteps.dtype == torch.int64
    torch.testing.assert_close(t.actions, torch.from_numpy(batch.actions))


def test_right_padding_after_the_episode_end(make_dataset):
    ds = make_dataset(lengths=(5, 3, 4))  # episodes [0,5), [5,8), [8,12)
    sampler = ContextSampler(ds, context_len=4)
    # Start 3: two real steps of episode 0 then padding; 5: episode 1 whole, one pad; 8: no pad.
    batch = sampler.sample(3, FixedStarts([3, 5, 8]))
    np.testing.assert_array_equal(batch.mask, [[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]])
    pad = ~batch.mask
    for field in (batch.states, batch.actions, batch.returns_to_go):
        assert np.all(field[pad] == 0)
    assert np.all(batch.timesteps[pad] == 0)
    # The real steps are the dataset's own, never the next episode's.
    np.testing.assert_array_equal(batch.actions[0, :2], ds.actions[3:5])
    np.testing.assert_array_equal(batch.actions[1, :3], ds.actions[5:8])
    np.testing.assert_array_equal(batch.actions[2], ds.actions[8:12])


def test_padding_is_only_on_the_right(make_dataset):
    ds = make_dataset(lengths=(2, 7, 1, 4), seed=4)
    batch = ContextSampler(ds, context_len=5).sample(256, np.random.default_rng(1))
    mask = batch.mask
    assert mask[:, 0].all()  # a window always starts on a real step
    assert not np.any(~mask[:, :-1] & mask[:, 1:])  # never a real step after a padded one
    # Episodes of length 1 and 2 (and every episode's tail) make short windows.
    assert (mask.sum(1) < 5).any()


@pytest.mark.parametrize("discount", [1.0, 0.9])
def test_returns_to_go_and_timesteps(make_dataset, discount):
    ds = make_dataset(lengths=(6, 4), seed=2)
    scale = 0.001
    sampler = ContextSampler(ds, context_len=3, rtg_scale=scale, discount=discount)
    batch = sampler.sample(2, FixedStarts([2, 7]))
    # Plain-loop returns-to-go of the real steps, scaled.
    def rtg(t, end):
        return sum(discount ** (k - t) * float(ds.rewards[k]) for k in range(t, end)) * scale

    np.testing.assert_allclose(batch.returns_to_go[0, :, 0], [rtg(t, 6) for t in (2, 3, 4)], rtol=1e-5)
    np.testing.assert_allclose(batch.returns_to_go[1, :, 0], [rtg(t, 10) for t in (7, 8, 9)], rtol=1e-5)
    np.testing.assert_array_equal(batch.timesteps, [[2, 3, 4], [1, 2, 3]])


def test_observation_normalisation(make_dataset):
    ds = make_dataset(lengths=(6, 4), seed=5)
    batch = ContextSampler(ds, context_len=2).sample(1, FixedStarts([1]))
    expected = (ds.observations[1:3] - ds.observations.mean(0)) / ds.observations.std(0)
    np.testing.assert_allclose(batch.states[0], expected, rtol=1e-5, atol=1e-6)

    mean, std = np.full(3, 0.5, np.float32), np.full(3, 2.0, np.float32)
    batch = ContextSampler(ds, context_len=2, state_mean=mean, state_std=std).sample(1, FixedStarts([1]))
    np.testing.assert_allclose(batch.states[0], (ds.observations[1:3] - 0.5) / 2.0, rtol=1e-6)
    # Normalised states over the whole dataset have zero mean and unit variance.
    all_states = ContextSampler(ds, context_len=1).sample(ds.num_transitions, FixedStarts(np.arange(ds.num_transitions))).states[:, 0]
    np.testing.assert_allclose(all_states.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(all_states.std(0), 1, atol=1e-4)


def test_sampling_is_reproducible_with_a_seeded_generator(make_dataset):
    ds = make_dataset(lengths=(9, 5))
    sampler = ContextSampler(ds, context_len=4)
    a = sampler.sample(8, np.random.default_rng(42))
    b = sampler.sample(8, np.random.default_rng(42))
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.mask, b.mask)


def test_context_len_must_be_positive(make_dataset):
    with pytest.raises(ValueError, match="context_len must be >= 1"):
        ContextSampler(make_dataset(), context_len=0)
