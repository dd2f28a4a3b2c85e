"""Behaviour policies: batched heuristic equals gymnasium's, seeded random and noise, zoo loading."""

from __future__ import annotations

import dataclasses
import os
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.box2d.lunar_lander import heuristic

from seqrl.collect.policies import (
    GaussianNoise,
    LunarLanderHeuristic,
    ObservationNormalizer,
    RandomPolicy,
    load_vecnormalize,
    load_zoo_policy,
    zoo_env_name,
)
from seqrl.errors import ConfigError, DatasetError

BOX2 = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32))


def test_heuristic_matches_gymnasium_row_by_row():
    env = gym.make("LunarLanderContinuous-v3")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(500, 8)) * [1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 0, 0]
    obs[:, 6:] = rng.integers(0, 2, size=(500, 2))  # leg contacts, both ways
    expected = np.stack([heuristic(env, o) for o in obs])
    np.testing.assert_allclose(LunarLanderHeuristic()(obs), expected, atol=1e-12)
    env.close()


def test_random_policy_is_uniform_in_bounds_and_seeded():
    obs = np.zeros((4000, 3))
    a = RandomPolicy(BOX2, seed=1)(obs)
    assert a.shape == (4000, 2)
    assert np.all(a >= BOX2.low) and np.all(a <= BOX2.high)
    np.testing.assert_allclose(a.mean(axis=0), [0.0, 1.0], atol=0.05)
    np.testing.assert_array_equal(a, RandomPolicy(BOX2, seed=1)(obs))
    assert not np.array_equal(a, RandomPolicy(BOX2, seed=2)(obs))
    with pytest.raises(ConfigError, match="bounded"):
        RandomPolicy(gym.spaces.Box(-np.inf, np.inf, (2,)), seed=0)


def test_gaussian_noise_has_its_std_is_clipped_and_seeded():
    base = lambda obs: np.tile([0.0, 1.0], (len(obs), 1))  # noqa: E731 - mid-box actions
    obs = np.zeros((20000, 3))
    noisy = GaussianNoise(base, 0.1, BOX2, seed=0)(obs)
    np.testing.assert_allclose(noisy.std(axis=0), [0.1, 0.1], rtol=0.05)
    np.testing.assert_array_equal(noisy, GaussianNoise(base, 0.1, BOX2, seed=0)(obs))
    wide = GaussianNoise(base, 5.0, BOX2, seed=0)(obs)
    assert np.all(wide >= BOX2.low) and np.all(wide <= BOX2.high)
    assert (wide == BOX2.high).any()  # clipping, not rejection
    with pytest.raises(ConfigError, match="std"):
        GaussianNoise(base, -0.1, BOX2)


def test_observation_normalizer_is_vecnormalize_formula():
    norm = ObservationNormalizer(np.array([1.0, -1.0]), np.array([4.0, 0.25]), clip_obs=3.0, epsilon=1e-8)
    out = norm(np.array([[3.0, -1.0], [1.0, 10.0]]))
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.0, 3.0]], atol=1e-6)  # 22 clipped to 3


def test_vecnormalize_unpickler_refuses_foreign_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "vecnormalize.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(DatasetError, match="refusing"):
        load_vecnormalize(path)


def test_zoo_env_name_maps_gymnasium_versions_to_v3():
    assert zoo_env_name("Hopper-v5") == "Hopper-v3"
    assert zoo_env_name("HalfCheetah-v4") == "HalfCheetah-v3"


def test_zoo_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="--zoo DIR or set SEQRL_ZOO"):
        load_zoo_policy(None, "sac", "Hopper-v5")
    with pytest.raises(DatasetError, match="does not exist"):
        load_zoo_policy(tmp_path / "nope", "sac", "Hopper-v5")
    with pytest.raises(ConfigError, match="unknown algorithm 'ddpg'"):
        load_zoo_policy(tmp_path, "ddpg", "Hopper-v5")


@pytest.mark.zoo
def test_zoo_missing_agent_and_unknown_env(zoo_dir):
    with pytest.raises(DatasetError, match="no ppo agent for Walker2d-v5.*sac"):
        load_zoo_policy(zoo_dir, "ppo", "Walker2d-v5")
    with pytest.raises(ConfigError, match="unknown environment"):
        load_zoo_policy(zoo_dir, "sac", "Hoppper-v5")


@pytest.mark.zoo
def test_zoo_vecnormalize_loads_without_gym(zoo_dir):
    norm = load_vecnormalize(zoo_dir / "trpo" / "Hopper-v3_1" / "Hopper-v3" / "vecnormalize.pkl")
    assert norm.mean.shape == (11,) and norm.var.shape == (11,)
    assert np.all(norm.var > 0) and norm.clip_obs > 0


@pytest.mark.zoo
@pytest.mark.parametrize("algo", ["sac", "tqc", "ppo", "a2c", "trpo", "ars"])
def test_zoo_policy_is_batched_and_deterministic(zoo_dir, algo):
    policy = load_zoo_policy(zoo_dir, algo, "Hopper-v5")
    obs = np.random.default_rng(0).normal(size=(5, 11)) * 0.1
    obs[:, 0] += 1.25  # torso height of a standing hopper
    actions = policy(obs)
    assert actions.shape == (5, 3)
    assert np.all(np.abs(actions) <= 1.0)
    np.testing.assert_array_equal(actions, policy(obs))
    assert policy.spec["algo"] == algo and policy.spec["deterministic"]
    assert policy.spec["obs_normalization"] == (algo in {"ppo", "a2c", "trpo", "ars"})


@pytest.mark.zoo
def test_zoo_policy_applies_observation_normalisation(zoo_dir):
    policy = load_zoo_policy(zoo_dir, "trpo", "Hopper-v5")
    obs = np.random.default_rng(0).normal(size=(4, 11))
    expected, _ = policy.model.predict(policy.normalizer(obs), deterministic=True)
    raw, _ = policy.model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(policy(obs), expected)
    assert not np.allclose(expected, raw)


@pytest.mark.zoo
def test_stochastic_zoo_policy_is_seeded(zoo_dir):
    import torch

    obs = np.zeros((3, 11))
    first = load_zoo_policy(zoo_dir, "sac", "Hopper-v5", deterministic=False, seed=4)
    second = load_zoo_policy(zoo_dir, "sac", "Hopper-v5", deterministic=False, seed=4)
    state = torch.random.get_rng_state()  # after loading, which initialises networks from it
    a, b = first(obs), second(obs)
    mean = load_zoo_policy(zoo_dir, "sac", "Hopper-v5")(obs)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, first(obs))  # a fresh draw on every call
    assert not np.allclose(a, mean)
    torch.random.set_rng_state(state)
    first(obs)
    assert torch.equal(state, torch.random.get_rng_state())  # sampling leaves torch's global RNG alone


# --------------------------------------------------------------------------- features held in training
def _stats(var: np.ndarray) -> "ObservationNormalizer":
    from seqrl.collect.policies import ObservationNormalizer

    return ObservationNormalizer(mean=np.zeros_like(var), var=var, clip_obs=10.0, epsilon=1e-8)


def test_a_v3_agents_block_of_zero_variance_features_is_held_at_its_training_value():
    from seqrl.collect.policies import HELD_BLOCK, held_features

    var = np.ones(30)
    var[10:10 + HELD_BLOCK + 4] = 1e-10  # a block, as the zoo's Ant-v3 contact forces
    var[2] = 1e-10  # one constant feature alone: not a block
    held = held_features(_stats(var), "Ant-v3")
    assert held is not None and np.flatnonzero(held).tolist() == list(range(10, 10 + HELD_BLOCK + 4))
    assert held_features(_stats(var), "Ant-v4") is None  # only the -v3 agents were trained without contacts
    short = np.ones(30)
    short[5:5 + HELD_BLOCK - 1] = 1e-10
    assert held_features(_stats(short), "Ant-v3") is None
    normalizer = dataclasses.replace(_stats(var), held=held)
    obs = np.random.default_rng(0).normal(size=(4, 30)) * 50.0  # real contact forces: large
    scaled = normalizer(obs)
    assert np.all(scaled[:, held] == 0.0)  # what the agent saw in training: (0 - mean) / sqrt(var + eps)
    assert np.array_equal(scaled[:, ~held], _stats(var)(obs)[:, ~held])
    assert np.abs(_stats(var)(obs)[:, held]).max() == 10.0  # unheld: scaled by 1e4 and clipped


@pytest.mark.zoo
def test_a_loaded_v3_agent_with_a_constant_block_acts_the_same_whatever_those_features_are(zoo_dir, monkeypatch):
    """Through the loader: a real -v3 agent whose statistics (here made so) have a constant block."""
    from seqrl.collect import policies

    real = policies.load_vecnormalize

    def with_a_dead_block(path):
        stats = real(path)
        var = stats.var.copy()
        var[3:3 + policies.HELD_BLOCK] = 1e-10
        return dataclasses.replace(stats, var=var)

    monkeypatch.setattr(policies, "load_vecnormalize", with_a_dead_block)
    policy = policies.load_zoo_policy(zoo_dir, "ppo", "Hopper-v5")
    held = policy.spec["held_features"]
    assert (held["count"], held["first"], held["last"]) == (policies.HELD_BLOCK, 3, 3 + policies.HELD_BLOCK - 1)
    assert "Hopper-v3" in held["why"]
    obs = np.random.default_rng(1).normal(size=(3, 11))
    moved = obs.copy()
    moved[:, 3:3 + policies.HELD_BLOCK] += 100.0
    policies.reset_episodes(policy, np.ones(3, bool))  # the same time feature for both calls
    first = policy(obs)
    policies.reset_episodes(policy, np.ones(3, bool))
    assert np.array_equal(first, policy(moved))
