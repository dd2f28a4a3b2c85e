"""Tiny datasets in the (per-test) Minari store, recorded against real environments with short
episodes, so sweeps can train and evaluate for real in seconds."""

from __future__ import annotations

from typing import Any

import pytest

from seqrl.data.sources import save_dataset
from tests.helpers.dt import SWEEP_TINY_DEFAULTS as TINY_DEFAULTS, make_dataset  # noqa: F401 (the tests' name)

# Two tasks of different sizes (obs 4 and 9, one action): transfer between them needs new
# embeddings. An untrained policy drops the pole within a few dozen steps: evaluation is quick.
TINY_ENVS = {"pole": ("InvertedPendulum-v5", 4, 1), "double": ("InvertedDoublePendulum-v5", 9, 1)}

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
