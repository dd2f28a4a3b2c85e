"""A tiny registered gymnasium env for evaluation tests: episode length depends on the reset seed.

Smooth dynamics and reward (no chaos), so the vectorized and sequential loops, which feed the
model identical inputs but in batches of different sizes, give the same returns to float
round-off.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from seqrl.train import train
from tests.helpers.dt import make_dataset, tiny_config

ENV_ID = "seqrl-test/SeedLength-v0"
OBS_DIM, ACT_DIM = 4, 3


class SeedLengthEnv(gym.Env):
    """Episode length 3 + (first draw of the seeded RNG) % 9; reward = -|action - goal|^2."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)
        self.render_mode = render_mode

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.length = 3 + int(self.np_random.integers(0, 9))
        self.t = 0
        self.goal = self.np_random.uniform(-0.5, 0.5, ACT_DIM).astype(np.float32)
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.array([self.t / 10, *self.goal], np.float32)

    def step(self, action):
        reward = -float(np.sum((np.asarray(action) - self.goal) ** 2))
        self.t += 1
        self.goal = (0.9 * self.goal).astype(np.float32)
        return self._obs(), reward, self.t >= self.length, False, {}

    def render(self):
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[:, : self.t % 16] = 255
        return frame


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=SeedLengthEnv)


def expected_lengths(seed: int, n: int) -> list[int]:
    env = SeedLengthEnv()
    return [(env.reset(seed=seed + i), env.length)[1] for i in range(n)]


# A tiny DT trained on data of this env (what evaluation tests evaluate).
K = 5  # tiny_config's context_len


def env_dataset(seed: int = 0):
    data = make_dataset(obs_dim=OBS_DIM, act_dim=ACT_DIM, seed=seed, name="seedlength")
    data.metadata.update(env_id=ENV_ID, ref_min_score=-3.0, ref_max_score=0.0)
    return data


def trained(tmp_path, name="run", **overrides):
    overrides = {"steps": 4, "checkpoint_every": 4, **overrides}
    cfg = tiny_config(tmp_path, run_dir=str(tmp_path / name), **overrides)
    return train(cfg, dataset=env_dataset())
