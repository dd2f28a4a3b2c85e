"""A tiny registered image env and its datasets: the correct action is drawn in the frame.

`seqrl-test/BandImage-v0` shows a 36x36 uint8 frame (the Nature-DQN encoder's smallest input)
with one bright horizontal band out of three; action k (Discrete(3)) pays 1 when band k is lit,
else 0. Frames are stacked 4 deep by gymnasium's FrameStackObservation (reset padding, its
default), so observations are (4, 36, 36) uint8 like Atari's (4, 84, 84). Episodes last 6 to 9
steps (the reset seed decides), so a model reading the image scores ~7.5 and random actions ~2.5.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from seqrl.data.trajectories import TrajectoryDataset, discrete_action_space

ENV_ID = "seqrl-test/BandImage-v0"
SIDE, STACK, ACTIONS = 36, 4, 3


class BandImageEnv(gym.Env):
    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (SIDE, SIDE), np.uint8)
        self.action_space = gym.spaces.Discrete(ACTIONS)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.length = 6 + int(self.np_random.integers(0, 4))
        self.t = 0
        return self._draw(), {}

    def _draw(self) -> np.ndarray:
        self.band = int(self.np_random.integers(0, ACTIONS))
        frame = self.np_random.integers(0, 40, (SIDE, SIDE), dtype=np.uint8)  # noise, so frames differ
        frame[self.band * 12 : self.band * 12 + 12] = 200 + self.t
        return frame

    def step(self, action):
        reward = float(int(action) == self.band)
        self.t += 1
        return self._draw(), reward, self.t >= self.length, False, {}


def make_env(**kwargs) -> gym.Env:
    return gym.wrappers.FrameStackObservation(BandImageEnv(), STACK, **kwargs)


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="tests.helpers.images:make_env")  # a string: Minari records it


def band_of(stack: np.ndarray) -> int:
    """The correct action for a (4, 36, 36) stack: the lit band of its newest frame."""
    return int(np.argmax([stack[-1, k * 12 : k * 12 + 12].mean() for k in range(ACTIONS)]))


def image_episodes(episodes: int = 12, epsilon: float = 0.3, seed: int = 0, padding: str = "reset") -> list[dict]:
    """Episodes of the stacked env under an epsilon-greedy scripted policy, stacks as emitted."""
    register()
    env = make_env(padding_type=padding)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed * 1000 + i)
        observations, actions, rewards, terms = [obs], [], [], []
        done = False
        while not done:
            action = int(rng.integers(ACTIONS)) if rng.random() < epsilon else band_of(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terms.append(terminated)
            done = terminated or truncated
        out.append(dict(observations=np.stack(observations), actions=np.array(actions, np.int64),
                        rewards=np.array(rewards, np.float32), terminations=np.array(terms)))
    env.close()
    return out


def image_dataset(episodes: int = 12, epsilon: float = 0.3, seed: int = 0, name: str = "bandimage") -> TrajectoryDataset:
    meta = {"name": name, "env_id": ENV_ID, "action_space": discrete_action_space(ACTIONS),
            "ref_min_score": 2.5, "ref_max_score": 7.5}
    return TrajectoryDataset.from_episodes(image_episodes(episodes, epsilon, seed), meta)
