"""Datasets of Discrete(n) actions: (N, 1) int64 indices in memory, Minari's Discrete space on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqrl.data.minari_io import load_minari, save_dataset
from seqrl.data.sampler import ContextSampler
from seqrl.data.trajectories import TrajectoryDataset, discrete_action_space
from seqrl.errors import DatasetError


def discrete_dataset(lengths=(5, 3, 7), n=4, seed=0, **meta) -> TrajectoryDataset:
    rng = np.random.default_rng(seed)
    episodes = []
    for t in lengths:
        terminations = np.zeros(t, bool)
        terminations[-1] = True
        episodes.append(
            {
                "observations": rng.normal(size=(t + 1, 3)).astype(np.float32),
                "actions": rng.integers(0, n, size=t),  # (T,) as an env's step takes them
                "rewards": rng.normal(size=t),
                "terminations": terminations,
                "truncations": np.zeros(t, bool),
            }
        )
    return TrajectoryDataset.from_episodes(episodes, metadata={"name": "disc", "action_space": discrete_action_space(n), **meta})


def test_discrete_actions_are_int64_indices_in_one_column():
    data = discrete_dataset()
    assert data.discrete and data.num_actions == 4
    assert data.actions.dtype == np.int64 and data.actions.shape == (15, 1) and data.act_dim == 1
    assert set(np.unique(data.actions)) <= {0, 1, 2, 3}
    assert data.episode(1)["actions"].shape == (3, 1)


def test_continuous_datasets_are_unchanged(make_dataset):
    data = make_dataset()
    assert not data.discrete and data.num_actions is None
    assert data.actions.dtype == np.float32 and data.act_dim == 2
    assert data.action_low.tolist() == [-1.0, -1.0]


def test_whole_float_actions_become_indices_and_others_are_refused():
    meta = {"name": "f", "action_space": {"type": "Discrete", "n": 3}}
    episode = {"observations": np.zeros((3, 1)), "rewards": np.zeros(3)}
    data = TrajectoryDataset.from_episodes([{**episode, "actions": np.array([0.0, 2.0, 1.0])}], metadata=meta)
    assert data.actions.dtype == np.int64 and data.actions[:, 0].tolist() == [0, 2, 1]
    with pytest.raises(DatasetError, match=r"must be integer indices, but action\[1\] = \[0.5\]"):
        TrajectoryDataset.from_episodes([{**episode, "actions": np.array([0.0, 0.5, 1.0])}], metadata=meta)
    with pytest.raises(DatasetError, match=r"action\[2\] = 3 is not an index of the Discrete\(3\) action space \(0..2\)"):
        TrajectoryDataset.from_episodes([{**episode, "actions": np.array([0, 1, 3])}], metadata=meta)
    with pytest.raises(DatasetError, match=r"action\[0\] = -1 is not an index"):
        TrajectoryDataset.from_episodes([{**episode, "actions": np.array([-1, 1, 2])}], metadata=meta)
    with pytest.raises(DatasetError, match="one action index per step"):
        TrajectoryDataset.from_episodes([{**episode, "actions": np.zeros((3, 2), np.int64)}], metadata=meta)


def test_bad_declarations_are_named():
    episode = {"observations": np.zeros((2, 1)), "actions": np.array([0, 1]), "rewards": np.zeros(2)}
    with pytest.raises(DatasetError, match="MultiDiscrete action spaces are not supported"):
        TrajectoryDataset.from_episodes([episode], metadata={"action_space": {"type": "MultiDiscrete", "nvec": [2, 2]}})
    with pytest.raises(DatasetError, match="n >= 1, got 0"):
        TrajectoryDataset.from_episodes([episode], metadata={"action_space": {"type": "Discrete", "n": 0}})
    with pytest.raises(DatasetError, match="has no action bounds, but its metadata has action_low"):
        TrajectoryDataset.from_episodes(
            [episode], metadata={"action_space": discrete_action_space(2), "action_low": [0], "action_high": [1]}
        )


def test_discrete_data_has_no_bounds_for_continuous_code():
    data = discrete_dataset()
    with pytest.raises(DatasetError, match=r"disc has Discrete\(4\) actions, which have no bounds"):
        data.action_low
    with pytest.raises(DatasetError, match="continuous"):
        data.action_high


def test_concatenate_keeps_discrete_and_refuses_mixed_spaces(make_dataset):
    a, b = discrete_dataset(seed=0), discrete_dataset(lengths=(4,), seed=1)
    both = TrajectoryDataset.concatenate([a, b], metadata={"name": "both"})  # metadata without the space
    assert both.discrete and both.num_actions == 4 and both.actions.dtype == np.int64
    assert both.actions[15:].tolist() == b.actions.tolist()
    with pytest.raises(DatasetError, match=r"different action spaces: Discrete\(3\), Discrete\(4\)"):
        TrajectoryDataset.concatenate([a, discrete_dataset(n=3)])
    continuous = make_dataset(obs_dim=3, act_dim=1)
    with pytest.raises(DatasetError, match=r"different action spaces: Discrete\(4\), continuous"):
        TrajectoryDataset.concatenate([a, continuous])


def test_sampler_gathers_integer_actions_with_masked_padding():
    data = discrete_dataset(lengths=(2, 3))
    batch = ContextSampler(data, context_len=4).sample(64, np.random.default_rng(0))
    assert batch.actions.dtype == np.int64 and batch.actions.shape == (64, 4, 1)
    assert np.all(batch.actions[~batch.mask] == 0)
    real = batch.actions[batch.mask][:, 0]
    assert set(real.tolist()) <= set(data.actions[:, 0].tolist())
    assert batch.to_torch().actions.dtype.is_floating_point is False


def test_minari_round_trip_keeps_the_discrete_space_and_integer_actions(minari_root):
    import minari

    data = discrete_dataset()
    path = save_dataset(data, "seqrl/disc-v0", "LunarLander-v3", ref_min_score=-190.0, ref_max_score=250.0)
    # Minari's own reader: a Discrete(4) action space, one int64 index per step as its collector stores them.
    raw = json.loads((path / "data" / "metadata.json").read_text())
    assert json.loads(raw["action_space"]) == {"type": "Discrete", "dtype": "int64", "start": 0, "n": 4}
    theirs = minari.load_dataset("seqrl/disc-v0")
    assert str(theirs.action_space) == "Discrete(4)"
    episodes = list(theirs.iterate_episodes())
    assert [ep.actions.dtype for ep in episodes] == [np.dtype(np.int64)] * 3
    assert episodes[2].actions.shape == (7,)
    assert np.concatenate([ep.actions for ep in episodes]).tolist() == data.actions[:, 0].tolist()
    # seqrl's reader: the same indices, the dataset says it is discrete, no bounds invented.
    back = load_minari("seqrl/disc-v0")
    assert back.discrete and back.num_actions == 4
    assert back.actions.dtype == np.int64 and np.array_equal(back.actions, data.actions)
    assert back.metadata["action_space"] == {"type": "Discrete", "n": 4}
    assert "action_low" not in back.metadata and "action_high" not in back.metadata
    assert np.allclose(back.rewards, data.rewards) and np.array_equal(back.episode_starts, data.episode_starts)
    assert back.metadata["ref_min_score"] == -190.0
