"""Normalized score = 100 * (return - random) / (expert - random).

D4RL's reference returns are used for the MuJoCo tasks D4RL covers (whatever the gymnasium
version suffix: the -v5 tasks keep the -v2 layouts), the random and professional-gamer returns
for the Atari games of the Decision Transformer paper (`seqrl/Atari-v0` with its `game`); every
other task takes the random and
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


# (random, professional gamer) returns of the Atari games the Decision Transformer paper reports,
# keyed by ALE's game name: the table DeepMind's dqn_zoo (atari_data.py) and rliable use, random
# and human scores as in Mnih et al. 2015 (Nature) and its successors (Breakout's gamer score is
# 30.5 there; the Nature table has 31.8). The DT paper normalises with these (its Table 1: "100
# represents a professional gamer and 0 a random policy").
ATARI_REFERENCE_RETURNS: dict[str, tuple[float, float]] = {
    "Breakout": (1.7, 30.5),
    "Qbert": (163.9, 13455.0),
    "Pong": (-20.7, 9.3),
    "Seaquest": (68.4, 42054.7),
}
ATARI_ENV_ID = "seqrl/Atari-v0"  # seqrl.collect.atari's env; the game is its `game` keyword


def atari_reference_returns(game: str) -> tuple[float, float] | None:
    """(random, gamer) returns of an Atari game (ALE's name, any case), or None if not in the table."""
    names = {name.lower(): name for name in ATARI_REFERENCE_RETURNS}
    name = names.get(str(game).lower())
    return None if name is None else ATARI_REFERENCE_RETURNS[name]


def atari_game(env_id: str | None, env_kwargs: Mapping[str, Any] | None) -> str | None:
    """The Atari game an env id and its kwargs name (ALE's name, as given), or None if they are not
    seqrl's Atari env or name no game."""
    if env_id != ATARI_ENV_ID:
        return None
    game = (env_kwargs or {}).get("game")
    return str(game) if game else None


def task_family(env_id: str) -> str:
    """'Hopper-v5' -> 'hopper', 'hopper-medium-v2' -> 'hopper', 'LunarLanderContinuous-v3' -> 'lunarlandercontinuous'."""
    base = env_id.split("/")[-1].lower()
    return base.split("-")[0]


def reference_returns(env_id: str | None, metadata: Mapping[str, Any] | None = None) -> tuple[float, float]:
    """(random, expert) returns for normalising scores on `env_id`."""
    if env_id and task_family(env_id) in D4RL_REFERENCE_RETURNS:
        return D4RL_REFERENCE_RETURNS[task_family(env_id)]
    metadata = metadata or {}
    game = atari_game(env_id, metadata.get("env_kwargs"))
    if game is not None and atari_reference_returns(game) is not None:
        return atari_reference_returns(game)
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
