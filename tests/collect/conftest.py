"""Fixtures for collection tests: a toy counter environment whose observations reveal which
episode they belong to, and the path of the trained-agent zoo."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

COUNTER_ENV_ID = "seqrl-test/Counter-v0"
COUNTER_TIME_LIMIT = 7


class CounterEnv(gym.Env):
    """obs = [episode tag, step count]: the tag is drawn at reset, so any transition that joined
    two episodes shows a change of tag or a step count that does not go up by one.

    Terminates after a length drawn at reset (3..9 steps); the TimeLimit of 7 truncates the
    longer ones, so both endings occur. Reward = the action (to check actions are recorded).
    """

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._tag = float(self.np_random.uniform(1.0, 2.0))
        self._length = int(self.np_random.integers(3, 10))
        self._t = 0
        return np.array([self._tag, 0.0]), {}

    def step(self, action):
        self._t += 1
        obs = np.array([self._tag, float(self._t)])
        return obs, float(np.asarray(action).reshape(-1)[0]), self._t >= self._length, False, {}


@pytest.fixture(scope="session")
def counter_env_id() -> str:
    if COUNTER_ENV_ID not in gym.registry:
        gym.register(COUNTER_ENV_ID, entry_point=CounterEnv, max_episode_steps=COUNTER_TIME_LIMIT)
    return COUNTER_ENV_ID


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    """The rl-baselines3-zoo agents: $SEQRL_ZOO, else ../shared/zoo beside the checkout."""
    default = Path(__file__).resolve().parents[2].parent / "shared" / "zoo"
    path = Path(os.environ.get("SEQRL_ZOO", default))
    if not path.is_dir():
        pytest.skip(f"no trained-agent zoo at {path} (set SEQRL_ZOO)")
    return path


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temporary folder: MuJoCo writes MUJOCO_LOG.TXT into the working directory
    when a model file uses deprecated attributes (HalfCheetah-v5 does)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
