"""Tiny datasets and configs for DT tests: real TrajectoryDatasets, small enough for CPU."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from seqrl.families.dt.config import TrainConfig
from seqrl.data.trajectories import TrajectoryDataset

# Every representation x head the paper and the issue name, plus the two ablations.
VARIANT_CASES = [
    pytest.param(dict(model="continuous"), id="continuous"),
    pytest.param(dict(model="tokenized"), id="tokenized"),
    pytest.param(dict(model="tokenized-spread"), id="tokenized-spread"),
    pytest.param(dict(model="continuous-spread"), id="continuous-spread"),
    pytest.param(dict(model="continuous", head="categorical"), id="continuous-categorical"),
    pytest.param(dict(model="tokenized", head="categorical"), id="tokenized-categorical"),
    pytest.param(dict(model="tokenized-spread", head="categorical"), id="tokenized-spread-categorical"),
    pytest.param(dict(model="tokenized", token_offsets=False), id="tokenized-shared-range"),
    pytest.param(dict(model="tokenized-spread", token_offsets=False, action_index_embedding=True),
                 id="tokenized-spread-shared-range-index"),
    # Issue 12: sum pooling, and the environment-agnostic spread codecs (one shared head, a
    # vocabulary sized for up to 8 action features).
    pytest.param(dict(model="tokenized", pool="sum"), id="tokenized-sum"),
    pytest.param(dict(model="tokenized-spread", spread_head="shared", max_action_features=8),
                 id="tokenized-spread-agnostic"),
    pytest.param(dict(model="tokenized-spread", head="categorical", spread_head="shared", max_action_features=8,
                      token_offsets=False, action_index_embedding=True), id="tokenized-spread-agnostic-categorical"),
    pytest.param(dict(model="continuous-spread", spread_head="shared", max_action_features=8),
                 id="continuous-spread-agnostic"),
]


def make_dataset(obs_dim: int = 4, act_dim: int = 3, episodes: int = 6, seed: int = 0, name: str = "tiny") -> TrajectoryDataset:
    """Episodes of a made-up linear system; actions clipped to [-1, 1] (so bins see repeated values)."""
    rng = np.random.default_rng(seed)
    eps = []
    for i in range(episodes):
        t = int(rng.integers(8, 30))
        obs = rng.normal(size=(t + 1, obs_dim)).cumsum(0) * 0.1
        actions = np.clip(rng.normal(size=(t, act_dim)) * 0.8, -1, 1)
        rewards = -np.abs(actions).sum(1) + rng.normal(size=t) * 0.1
        terminated = np.zeros(t, bool)
        terminated[-1] = i % 2 == 0
        eps.append(dict(observations=obs, actions=actions, rewards=rewards, terminations=terminated,
                        truncations=~terminated & (np.arange(t) == t - 1)))
    meta = {"name": name, "env_id": None, "action_low": [-1.0] * act_dim, "action_high": [1.0] * act_dim}
    return TrajectoryDataset.from_episodes(eps, meta)


def tiny_config(tmp_path=None, **overrides) -> TrainConfig:
    base = dict(
        dataset="tiny", embed_dim=32, n_layers=2, n_heads=2, context_len=5, batch_size=8,
        num_bins=16, steps=10, warmup_steps=2, learning_rate=1e-3, log_every=2, checkpoint_every=5,
        progress=False, rtg_scale=0.1, targets=(1.0,), precision="fp32",
        run_dir=str(tmp_path / "run") if tmp_path is not None else None,
    )
    base.update(overrides)
    return TrainConfig(**base)


def replace(cfg: TrainConfig, **kw) -> TrainConfig:
    return dataclasses.replace(cfg, **kw)


# A model small enough that a run (a few steps plus evaluation) takes a second or two.
SWEEP_TINY_DEFAULTS: dict[str, Any] = dict(
    steps=4, warmup_steps=1, embed_dim=16, n_layers=1, n_heads=1, context_len=4, batch_size=4, num_bins=8,
    log_every=2, checkpoint_every=2, precision="fp32", device="cpu", rtg_scale=0.1, targets=[10.0, 5.0],
    eval_seed=0, learning_rate=1e-3,
)
