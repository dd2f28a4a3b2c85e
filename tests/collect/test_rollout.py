"""Vectorized rollout: episodes never merge, autoreset modes agree, counts and seeds hold."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from seqrl.collect.policies import RandomPolicy
from seqrl.collect.rollout import collect, evaluate_returns, finished_episode_mask
from seqrl.errors import ConfigError

from .conftest import COUNTER_TIME_LIMIT


class CountingPolicy:
    """Uniform random actions; records the batch shape of every call."""

    spec = {"kind": "counting"}

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.calls.append(obs.shape)
        return self.rng.uniform(-1, 1, size=(len(obs), 1))


def assert_episodes_are_whole(dataset) -> None:
    """Every episode: one tag, step counts 0..T, final obs at T, an ending only at its last step."""
    finals = dataset.final_observations
    assert finals is not None
    finished = finished_episode_mask(dataset)
    for i, ep in enumerate(dataset.episodes()):
        obs = np.vstack([ep["observations"], finals[i][None]])
        assert np.all(obs[:, 0] == obs[0, 0]), f"episode {i} mixes episode tags"
        np.testing.assert_array_equal(obs[:, 1], np.arange(len(obs)), err_msg=f"episode {i}")
        ends = ep["terminations"] | ep["truncations"]
        assert not ends[:-1].any(), f"episode {i} ends before its last step"
        assert ends[-1], f"episode {i} has no ending flag"
        if finished[i]:
            # Truncated exactly at the time limit (possibly terminated on the same step too, which
            # gymnasium reports as both), terminated otherwise.
            assert ep["truncations"][-1] == (len(ep["actions"]) == COUNTER_TIME_LIMIT)
            assert ep["terminations"][-1] or ep["truncations"][-1]
        else:
            assert ep["truncations"][-1] and not ep["terminations"][-1]


@pytest.mark.parametrize("autoreset_mode", ["same_step", "next_step"])
def test_vectorized_rollout_never_merges_episodes(counter_env_id, autoreset_mode):
    data = collect(counter_env_id, CountingPolicy(), 500, n_envs=5, seed=3, autoreset_mode=autoreset_mode)
    assert data.num_transitions == 500
    assert_episodes_are_whole(data)
    # Rewards are the executed actions: transitions keep their own action.
    np.testing.assert_allclose(data.rewards, data.actions[:, 0], rtol=1e-6)
    assert data.terminations.any() and data.truncations.any()
    assert data.metadata["unfinished_episodes"] == 5


def test_autoreset_modes_give_the_same_episodes(counter_env_id):
    """SAME_STEP and NEXT_STEP see the same episodes (each env's stream is seeded); only where
    collection stops differs, since NEXT_STEP spends a vector step on every reset."""

    def finished_by_tag(mode):
        data = collect(counter_env_id, CountingPolicy(0), 300, n_envs=4, seed=1, autoreset_mode=mode)
        keep = finished_episode_mask(data)
        return {
            float(ep["observations"][0, 0]): (len(ep["actions"]), bool(ep["terminations"][-1]), bool(ep["truncations"][-1]))
            for ep, k in zip(data.episodes(), keep)
            if k
        }

    same, nxt = finished_by_tag("same_step"), finished_by_tag("next_step")
    common = same.keys() & nxt.keys()
    assert len(common) >= 0.8 * min(len(same), len(nxt)) > 20
    assert all(same[tag] == nxt[tag] for tag in common)


def test_one_batched_policy_call_per_step(counter_env_id):
    policy = CountingPolicy()
    collect(counter_env_id, policy, 64, n_envs=8, seed=0)
    assert policy.calls == [(8, 2)] * 8


def test_drop_partial_episodes_keeps_only_finished_ones(counter_env_id):
    data = collect(counter_env_id, CountingPolicy(), 200, n_envs=4, seed=0, partial_episodes="drop")
    assert data.num_transitions < 200
    assert data.metadata["unfinished_episodes"] == 0
    assert finished_episode_mask(data).all()
    assert_episodes_are_whole(data)


def test_same_seed_same_data_other_seed_other_data(counter_env_id):
    def run(seed):
        space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        return collect(counter_env_id, RandomPolicy(space, seed=seed), 200, n_envs=3, seed=seed, noise_std=0.2)

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.episode_starts, b.episode_starts)
    assert not np.array_equal(a.observations[:50], c.observations[:50])


def test_actions_are_clipped_and_metadata_records_the_run(counter_env_id):
    data = collect(counter_env_id, lambda obs: np.full((len(obs), 1), 5.0), 20, n_envs=2, seed=0, noise_std=0.5)
    assert data.actions.max() <= 1.0 and data.actions.min() >= -1.0
    meta = data.metadata
    assert meta["env_id"] == counter_env_id and meta["noise_std"] == 0.5 and meta["seed"] == 0
    assert meta["policy"]["noise_std"] == 0.5
    assert meta["action_low"] == [-1.0] and meta["action_high"] == [1.0]


def test_evaluate_returns_scores_one_whole_episode_per_env(counter_env_id):
    returns = evaluate_returns(counter_env_id, lambda obs: np.ones((len(obs), 1)), 6, seed=0)
    # Reward 1 per step: each return is one episode's length, between 3 and the time limit.
    assert returns.shape == (6,)
    assert np.all((returns >= 3) & (returns <= COUNTER_TIME_LIMIT))
    assert np.all(returns == np.round(returns))


def test_bad_inputs_give_clear_errors(counter_env_id):
    with pytest.raises(ConfigError, match="unknown environment"):
        collect("NoSuchEnv-v0", CountingPolicy(), 10)
    with pytest.raises(ConfigError, match="n_transitions"):
        collect(counter_env_id, CountingPolicy(), 0)
    with pytest.raises(ConfigError, match="n_envs"):
        collect(counter_env_id, CountingPolicy(), 10, n_envs=0)
    with pytest.raises(ConfigError, match="shape"):
        collect(counter_env_id, lambda obs: np.zeros((len(obs), 3)), 10)
    with pytest.raises(ConfigError, match="NaN"):
        collect(counter_env_id, lambda obs: np.full((len(obs), 1), np.nan), 10)
    with pytest.raises(ConfigError, match="autoreset_mode"):
        collect(counter_env_id, CountingPolicy(), 10, autoreset_mode="disabled")
    with pytest.raises(ConfigError, match="noise"):
        collect(counter_env_id, CountingPolicy(), 10, noise_std=-1.0)
