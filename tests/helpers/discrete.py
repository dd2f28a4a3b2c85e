"""Tiny datasets of Discrete(n) actions from a real gymnasium env (CartPole-v1, Discrete(2)).

A hand-written balancing rule (push towards the side the pole falls to) with epsilon-greedy
noise gives episodes of graded quality in a fraction of a second, so DT, TT, BC and evaluation
tests train and act on the real environment's data. Episodes are capped at `MAX_STEPS` (the
datasets record it in `env_kwargs`, so evaluation makes the same capped env).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from seqrl.data.trajectories import TrajectoryDataset, discrete_action_space

ENV_ID = "CartPole-v1"
MAX_STEPS = 40  # CartPole pays 1 a step: the rule alone reaches the cap, random actions ~20 steps


def balance(obs: np.ndarray) -> int:
    """The rule: push right (1) when the pole leans or turns right, else left (0)."""
    return int(obs[2] + 0.5 * obs[3] > 0)


def cartpole_dataset(episodes: int = 24, epsilons: tuple[float, ...] = (0.0, 0.5, 1.0), seed: int = 0,
                     name: str = "cartpole-tiny") -> TrajectoryDataset:
    """`episodes` CartPole episodes, cycling through the epsilons (1.0: uniform random actions)."""
    env = gym.make(ENV_ID, max_episode_steps=MAX_STEPS)
    rng = np.random.default_rng(seed)
    eps = []
    try:
        for i in range(episodes):
            epsilon = epsilons[i % len(epsilons)]
            obs, _ = env.reset(seed=seed * 1000 + i)
            observations, actions, rewards, terms, truncs = [obs], [], [], [], []
            done = False
            while not done:
                action = int(rng.integers(2)) if rng.random() < epsilon else balance(obs)
                obs, reward, terminated, truncated, _ = env.step(action)
                observations.append(obs)
                actions.append(action)
                rewards.append(reward)
                terms.append(terminated)
                truncs.append(truncated)
                done = terminated or truncated
            eps.append(dict(observations=np.array(observations), actions=np.array(actions, np.int64),
                            rewards=np.array(rewards), terminations=np.array(terms), truncations=np.array(truncs)))
    finally:
        env.close()
    meta = {"name": name, "env_id": ENV_ID, "action_space": discrete_action_space(2),
            "env_kwargs": {"max_episode_steps": MAX_STEPS}, "ref_min_score": 10.0, "ref_max_score": float(MAX_STEPS)}
    return TrajectoryDataset.from_episodes(eps, meta)
