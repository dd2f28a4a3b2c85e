"""Evaluation on Discrete(n) action spaces (issue 28): the env's space is checked against the
model's (a mismatch named), integer actions reach the env unclipped, finished slots of an async
vector env get a valid action, and MultiDiscrete is refused by name."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from seqrl.errors import ConfigError
from seqrl.evaluation.reference import evaluate_sequential
from seqrl.evaluation.rollout import EnvActions, check_spaces, evaluate
from seqrl.models.spec import DataSpec
from seqrl.train import train
from tests.helpers.discrete import MAX_STEPS, cartpole_dataset
from tests.helpers.dt import make_dataset, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    # Barely trained (4 steps): its episodes end at different steps, so finished slots get stepped.
    run = tmp_path_factory.mktemp("discrete") / "dt"
    cfg = tiny_config(run_dir=str(run), num_bins=256, model="tokenized", steps=4, targets=(40.0,), rtg_scale=0.05)
    return train(cfg, dataset=cartpole_dataset())


def test_spaces_are_checked_and_mismatches_named():
    spec = DataSpec.from_dataset(cartpole_dataset(episodes=3), rtg_scale=1.0, targets=(1.0,))
    box = gym.spaces.Box(-1, 1, (4,), np.float32)
    obs = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    assert check_spaces(spec, "CartPole-v1", obs, gym.spaces.Discrete(2)) == EnvActions(num_actions=2)
    with pytest.raises(ConfigError, match=r"Discrete\(3\) actions, but the model was trained on .* Discrete\(2\)"):
        check_spaces(spec, "X", obs, gym.spaces.Discrete(3))
    with pytest.raises(ConfigError, match=r"Discrete\(2\) starting at 1 actions"):
        check_spaces(spec, "X", obs, gym.spaces.Discrete(2, start=1))
    with pytest.raises(ConfigError, match=r"Box\(4,\) actions, but the model was trained on .* Discrete\(2\)"):
        check_spaces(spec, "X", obs, box)
    continuous = DataSpec.from_dataset(make_dataset(obs_dim=4, act_dim=1), rtg_scale=1.0, targets=(1.0,))
    with pytest.raises(ConfigError, match=r"Discrete\(2\) actions, but the model was trained on tiny .* Box\(1\)"):
        check_spaces(continuous, "CartPole-v1", obs, gym.spaces.Discrete(2))
    with pytest.raises(ConfigError, match=r"MultiDiscrete\(\[3, 2\]\) actions: multi-dimensional discrete"):
        check_spaces(spec, "X", obs, gym.spaces.MultiDiscrete([3, 2]))


def test_env_actions_pass_indices_unclipped_and_refuse_what_is_not_an_action():
    actions = EnvActions(num_actions=4)
    stepped, observed = actions.to_env(np.array([[3.0], [0.0]], np.float32))
    assert stepped.tolist() == [3, 0] and stepped.dtype == np.int64 and observed.shape == (2, 1)
    assert actions.neutral(3).tolist() == [0, 0, 0]
    for bad in (np.array([[4]]), np.array([[-1]]), np.array([[1.5]]), np.array([[1, 2]])):
        with pytest.raises(ValueError, match=r"Discrete\(4\)"):
            actions.to_env(bad)
    box = EnvActions(np.array([-1.0], np.float32), np.array([1.0], np.float32))
    assert box.to_env(np.array([[2.0]]))[0].tolist() == [[1.0]] and box.neutral(2).tolist() == [[0.0], [0.0]]


def test_vectorized_sync_async_and_sequential_loops_agree_in_cartpole(trained):
    """Async envs step finished slots with the neutral action (action 0): valid, never counted;
    the sequential reference loop feeds the same actions one episode at a time."""
    kw = dict(config=trained.config, episodes=5, seed=11, progress=False)
    sync = evaluate(trained.model, trained.spec, **kw)[0]
    spawned = evaluate(trained.model, trained.spec, vectorization="async", **kw)[0]
    sequential = evaluate_sequential(trained.model, trained.spec, context_len=trained.config.context_len, episodes=5,
                                     seed=11)[0]
    assert sync["returns"] == spawned["returns"] == sequential["returns"]
    assert len(set(sync["lengths"])) > 1  # episodes ended at different steps: finished slots were stepped
    assert all(1 <= r <= MAX_STEPS for r in sync["returns"])


def test_evaluating_a_discrete_model_in_a_box_env_names_the_mismatch(trained):
    with pytest.raises(ConfigError, match=r"Box\(1,\) actions, but the model was trained on cartpole-tiny"):
        evaluate(trained.model, trained.spec, config=trained.config, episodes=1, env_id="MountainCarContinuous-v0",
                 progress=False)
