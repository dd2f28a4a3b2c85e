"""A Minari dataset written by another tool (minari's own writer, no seqrl metadata): what
seqrl reads from minari's own fields, and the episode layout. (Mutation testing showed no test
loaded such a dataset with an env spec, reference scores or a truncation.)"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from seqrl.data.sources import load_dataset


def write_foreign(dataset_id: str, *, env_id: str | None, low=-1.0, high=1.0, **kwargs):
    import minari
    from minari.data_collector import EpisodeBuffer

    rng = np.random.default_rng(0)
    buffers = [
        EpisodeBuffer(observations=rng.normal(size=(4, 3)).astype(np.float32),
                      actions=rng.uniform(-0.5, 0.5, size=(3, 1)).astype(np.float32),
                      rewards=np.array([1.0, 2.0, 3.0]), terminations=[False, False, True],
                      truncations=[False, False, False]),
        EpisodeBuffer(observations=rng.normal(size=(3, 3)).astype(np.float32),
                      actions=rng.uniform(-0.5, 0.5, size=(2, 1)).astype(np.float32),
                      rewards=np.array([0.5, 0.25]), terminations=[False, False], truncations=[False, True]),
    ]
    env = gym.make(env_id) if env_id else None
    with pytest.warns(UserWarning):  # minari asks for an algorithm name and a description
        minari.create_dataset_from_buffers(
            dataset_id, buffers, env=env,
            observation_space=None if env else gym.spaces.Box(-5, 5, (3,), np.float32),
            action_space=None if env else gym.spaces.Box(low, high, (1,), np.float32),
            **kwargs,
        )
    return buffers


def test_a_foreign_dataset_with_an_env_and_reference_scores(minari_root):
    buffers = write_foreign("ext/pendulum-v0", env_id="Pendulum-v1", ref_min_score=-1500.0, ref_max_score=-150.0)
    data = load_dataset("ext/pendulum-v0")
    meta = data.metadata
    assert meta["source"] == "minari"
    assert meta["env_id"] == "Pendulum-v1"
    assert (meta["ref_min_score"], meta["ref_max_score"]) == (-1500.0, -150.0)
    assert meta["action_low"] == [-2.0] and meta["action_high"] == [2.0]  # Pendulum's action space
    assert meta["name"] == meta["dataset_id"] == "ext/pendulum-v0"
    # Episodes as written: lengths, rewards, where they end and how.
    assert data.num_episodes == 2 and data.episode_lengths.tolist() == [3, 2]
    np.testing.assert_allclose(data.episode_returns, [6.0, 0.75])
    assert data.terminations.tolist() == [False, False, True, False, False]
    assert data.truncations.tolist() == [False, False, False, False, True]
    np.testing.assert_array_equal(data.actions, np.concatenate([b.actions for b in buffers]))
    np.testing.assert_array_equal(data.observations, np.concatenate([b.observations[:-1] for b in buffers]))
    np.testing.assert_array_equal(data.final_observations, np.stack([b.observations[-1] for b in buffers]))


def test_a_foreign_dataset_without_env_or_scores(minari_root):
    write_foreign("ext/plain-v0", env_id=None, low=-3.0, high=3.0)
    meta = load_dataset("ext/plain-v0").metadata
    assert meta["source"] == "minari" and meta["env_id"] is None
    assert meta["ref_min_score"] is None and meta["ref_max_score"] is None
    assert meta["action_low"] == [-3.0] and meta["action_high"] == [3.0]


def test_unbounded_action_spaces_give_no_bounds(minari_root):
    write_foreign("ext/unbounded-v0", env_id=None, low=-np.inf, high=np.inf)
    meta = load_dataset("ext/unbounded-v0").metadata
    assert meta["action_low"] is None and meta["action_high"] is None


def test_half_bounded_action_space_gives_no_bounds(minari_root):
    write_foreign("ext/half-v0", env_id=None, low=-1.0, high=np.inf)
    meta = load_dataset("ext/half-v0").metadata
    assert meta["action_low"] is None and meta["action_high"] is None
