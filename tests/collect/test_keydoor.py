"""Key-to-Door on minigrid's DoorKey (issue 28, section 4): the flat-observation env, the scripted
solver, and the `keydoor-*` recipes' Discrete datasets."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("minigrid")

import gymnasium as gym  # noqa: E402

from seqrl.collect.keydoor import (  # noqa: E402
    ACTION_NAMES, ENV_ID, ENV_IDS, OBS_DIM, KeyDoorSolver, register_envs, scripted_policy,
)
from seqrl.collect.recipes import build_recipe, get_recipe, parse_source  # noqa: E402
from seqrl.collect.rollout import collect  # noqa: E402
from seqrl.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def env():
    register_envs()
    env = gym.make(ENV_ID)
    yield env
    env.close()


def run_episode(env, policy, seed: int, epsilon: float = 0.0, rng=None):
    obs, info = env.reset(seed=seed)
    assert info["success"] is False
    total, steps, done, actions = 0.0, 0, False, []
    while not done:
        action = int(rng.integers(5)) if rng is not None and rng.random() < epsilon else int(policy(obs)[0])
        actions.append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        total, steps, done = total + reward, steps + 1, terminated or truncated
    return total, steps, info, actions, obs


def test_observation_is_the_flat_full_state(env):
    obs, _ = env.reset(seed=5)
    inner = env.unwrapped
    assert obs.shape == (OBS_DIM,) == env.observation_space.shape and obs.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(5) and len(ACTION_NAMES) == 5
    assert tuple(obs[:2]) == tuple(inner.agent_pos)
    assert obs[2:6].sum() == 1 and obs[2 + inner.agent_dir] == 1
    assert obs[6] == 0 and obs[7] == 0  # no key carried, door locked
    assert inner.grid.get(*obs[8:10].astype(int)).type == "key"
    assert inner.grid.get(*obs[10:12].astype(int)).type == "door"
    assert tuple(obs[12:14]) == (3, 3) and inner.grid.get(3, 3).type == "goal"
    assert env.observation_space.contains(obs)


def test_actions_are_minigrids_useful_five(env):
    obs, _ = env.reset(seed=0)
    direction = env.unwrapped.agent_dir
    obs, *_ = env.step(0)  # left
    assert env.unwrapped.agent_dir == (direction - 1) % 4 and obs[2 + (direction - 1) % 4] == 1
    obs, *_ = env.step(1)  # right
    assert env.unwrapped.agent_dir == direction
    with pytest.raises(ValueError, match="outside Discrete"):
        env.step(5)


def test_scripted_solver_with_epsilon_0_always_succeeds(env):
    solver = KeyDoorSolver()
    for seed in range(40):
        total, steps, info, actions, obs = run_episode(env, solver, seed)
        assert info["success"] is True and total > 0, seed
        assert steps <= 20 and total == pytest.approx(1 - 0.9 * steps / 250)
        assert actions.count(3) == 1 and actions.count(4) == 1  # one pickup, one toggle: no wasted use
        assert obs[6] == 1 and obs[7] == 1 and tuple(obs[:2]) == (3, 3)  # key carried, door open, on the goal


def test_solver_works_on_6x6_and_refuses_other_envs():
    register_envs()
    env = gym.make(ENV_IDS[6])
    try:
        assert all(run_episode(env, KeyDoorSolver(), seed)[2]["success"] for seed in range(15))
    finally:
        env.close()
    with pytest.raises(ConfigError, match="scripted solver drives"):
        scripted_policy("CartPole-v1")


def test_random_walks_fail_and_succeed_without_success_in_between(env):
    rng = np.random.default_rng(0)
    results = [run_episode(env, KeyDoorSolver(), seed, epsilon=1.0, rng=rng) for seed in range(20)]
    for total, steps, info, _, _ in results:
        assert info["success"] == (total > 0)
        assert info["success"] or steps == 250  # an episode ends at the goal or at minigrid's limit
    assert any(r[2]["success"] for r in results) and not all(r[2]["success"] for r in results)


def test_collect_writes_discrete_actions(env):
    data = collect(ENV_ID, KeyDoorSolver(), 200, n_envs=2, seed=0, epsilon=0.1)
    assert data.metadata["action_space"] == {"type": "Discrete", "n": 5} and data.metadata["epsilon"] == 0.1
    assert data.observations.shape[1] == OBS_DIM
    assert data.actions.shape == (200, 1) and set(np.unique(data.actions)) <= set(range(5))


def test_recipes_and_the_scripted_source():
    assert parse_source("scripted:0.5", discrete=True).epsilon == 0.5
    random, mixed = get_recipe("keydoor-random"), get_recipe("keydoor-mixed")
    assert random.env_id == mixed.env_id == ENV_ID
    assert [s.policy for s in random.sources] == ["random"]
    assert [(s.policy, s.epsilon) for s in mixed.sources] == [("random", 0.0), ("scripted", 0.9), ("scripted", 0.5)]


def test_recipe_datasets_are_ordered_random_below_scripted(minari_root):
    random, _ = build_recipe("keydoor-random", 3000, seed=1, n_envs=4, reference_episodes=5)
    mixed, save_args = build_recipe("keydoor-mixed", 3000, seed=1, n_envs=4, reference_episodes=5)
    for data in (random, mixed):
        assert data.metadata["action_space"] == {"type": "Discrete", "n": 5} and data.actions.shape[1] == 1
        assert data.observations.shape[1] == OBS_DIM
    # the reference returns: random walks below the noise-free solver (about 0.96 on 5x5)
    assert 0 <= mixed.metadata["ref_min_score"] < 0.5 < mixed.metadata["ref_max_score"] <= 1
    assert mixed.metadata["reference_expert"] == "scripted" and save_args["ref_max_score"] > 0.9
    sources = {(s["policy"]["kind"], s.get("epsilon")): s for s in mixed.metadata["sources"]}
    walk, noisy, less_noisy = sources[("random", 0.0)], sources[("scripted", 0.9)], sources[("scripted", 0.5)]
    assert walk["return_mean"] < noisy["return_mean"] < less_noisy["return_mean"]
    # success = return > 0; random walks succeed less often than the scripted solver's episodes
    ends = np.cumsum(mixed.episode_lengths)
    success = mixed.episode_returns > 0
    assert success.sum() > 0 and random.episode_returns.mean() < mixed.episode_returns.mean()
    n_walks = walk["episodes"]
    assert success[:n_walks].mean() < success[n_walks:].mean() and len(ends) == mixed.num_episodes
