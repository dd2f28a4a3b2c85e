"""Tiny datasets in the (per-test) Minari store, recorded against real environments with short
episodes, so sweeps can train and evaluate for real in seconds."""

from __future__ import annotations

from typing import Any

import pytest

from seqrl.data.sources import save_dataset
from tests.models.conftest import make_dataset

# Two tasks of different sizes (obs 4 and 9, one action): transfer between them needs new
# embeddings. An untrained policy drops the pole within a few dozen steps: evaluation is quick.
TINY_ENVS = {"pole": ("InvertedPendulum-v5", 4, 1), "double": ("InvertedDoublePendulum-v5", 9, 1)}

# A model small enough that a run (a few steps plus evaluation) takes a second or two.
TINY_DEFAULTS: dict[str, Any] = dict(
    steps=4, warmup_steps=1, embed_dim=16, n_layers=1, n_heads=1, context_len=4, batch_size=4, num_bins=8,
    log_every=2, checkpoint_every=2, precision="fp32", device="cpu", rtg_scale=0.1, targets=[10.0, 5.0],
    eval_seed=0, learning_rate=1e-3,
)


@pytest.fixture
def tiny_datasets(minari_root) -> dict[str, str]:
    """Saves `pole-tiny` and `double-tiny` (seqrl/<name>-v0) and returns {task: dataset name}."""
    names = {}
    for i, (task, (env_id, obs_dim, act_dim)) in enumerate(TINY_ENVS.items()):
        name = f"{task}-tiny"
        data = make_dataset(obs_dim=obs_dim, act_dim=act_dim, episodes=4, seed=i, name=name)
        save_dataset(data, f"seqrl/{name}-v0", env_id, ref_min_score=0.0, ref_max_score=1000.0)
        names[task] = name
    return names
