"""Normalized score = 100 * (return - random) / (expert - random).

D4RL's reference returns are used for the MuJoCo tasks D4RL covers (whatever the gymnasium
version suffix: the -v5 tasks keep the -v2 layouts); every other task takes the random and
expert returns measured when its dataset was collected and stored in the dataset's metadata
(`ref_min_score` / `ref_max_score`, Minari's names).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from seqrl.errors import DatasetError

# (random, expert) returns, from D4RL's infos.py.
D4RL_REFERENCE_RETURNS: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "halfcheetah": (-280.178953, 12135.0),
    "walker2d": (1.629008, 4592.3),
    "ant": (-325.6, 3879.7),
}


def task_family(env_id: str) -> str:
    """'Hopper-v5' -> 'hopper', 'hopper-medium-v2' -> 'hopper', 'LunarLanderContinuous-v3' -> 'lunarlandercontinuous'."""
    base = env_id.split("/")[-1].lower()
    return base.split("-")[0]


def reference_returns(env_id: str | None, metadata: Mapping[str, Any] | None = None) -> tuple[float, float]:
    """(random, expert) returns for normalising scores on `env_id`."""
    if env_id and task_family(env_id) in D4RL_REFERENCE_RETURNS:
        return D4RL_REFERENCE_RETURNS[task_family(env_id)]
    metadata = metadata or {}
    low, high = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    if low is None or high is None:
        raise DatasetError(
            f"no reference returns for {env_id!r}: not a D4RL task and the dataset's metadata has "
            "no ref_min_score/ref_max_score"
        )
    if float(high) == float(low):
        raise DatasetError(f"reference returns for {env_id!r} are equal ({low}); cannot normalise")
    return float(low), float(high)


def normalized_score(returns: np.ndarray | float, random_return: float, expert_return: float) -> np.ndarray | float:
    return 100.0 * (np.asarray(returns, dtype=np.float64) - random_return) / (expert_return - random_return)
