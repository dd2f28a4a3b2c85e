"""Goal-conditioned Trajectory Transformer (the paper's goal reaching, section 4.3): which
observation dimensions the model sees as its state, which make its goal, and the goal each
training window is relabelled with.

A goal-conditioned TT models sequences `[g_0 .. g_{k-1}, s_0, a_0, r_0, V_0, s_1, ...]`: the goal
(k state dimensions) first, so every later token attends to it under the ordinary causal mask.
The goal is relabelled in hindsight from the window's own episode, so any reached state is a
goal the data shows how to reach; at evaluation it is the environment's goal, read from the
observation dimensions that hold it. Those dimensions are left out of the modelled state:
otherwise the model could read the data's goal from every state and ignore the relabelled one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from seqrl.errors import ConfigError

# Tasks whose observations carry their goal, by task family: (goal_dims, observation_goal_dims).
GOAL_PRESETS: dict[str, dict[str, tuple[int, ...]]] = {
    # seqrl/PointMazeFourRooms-v0: [x, y, vx, vy, goal_x, goal_y] (seqrl.collect.maze)
    "pointmaze": {"goal_dims": (0, 1), "observation_goal_dims": (4, 5)},
}


@dataclass(frozen=True)
class GoalLayout:
    """Where a TT's state and goal come from in an observation of `obs_dim` dimensions."""

    state_columns: tuple[int, ...]  # observation dims the model tokenizes as its state, in order
    goal_positions: tuple[int, ...]  # the goal's dims, as positions within the modelled state
    observation_goal: tuple[int, ...]  # observation dims holding the environment's goal (may be empty)

    @property
    def goal_dim(self) -> int:
        return len(self.goal_positions)

    def states(self, observations: np.ndarray) -> np.ndarray:
        """(..., obs_dim) observations -> (..., n_state) the modelled state."""
        return observations[..., list(self.state_columns)]

    def environment_goal(self, observations: np.ndarray) -> np.ndarray:
        """(..., obs_dim) observations -> (..., goal_dim) the goal they hold (evaluation's goal)."""
        if not self.observation_goal:
            raise ConfigError("this task's observations hold no goal to plan towards: a goal-conditioned TT plans "
                              "for the goal its environment puts in the observation (--observation-goal-dims)")
        return observations[..., list(self.observation_goal)]


def goal_layout(cfg: Any, obs_dim: int) -> GoalLayout:
    """The layout of a TT run (`cfg.goal`, `goal_dims`, `observation_goal_dims`, else the task's preset)."""
    if getattr(cfg, "goal", "none") == "none":
        return GoalLayout(tuple(range(obs_dim)), (), ())
    from seqrl.config import task_preset

    preset = task_preset(cfg.dataset, GOAL_PRESETS)
    goal_dims = cfg.goal_dims if cfg.goal_dims is not None else preset.get("goal_dims", tuple(range(obs_dim)))
    hidden = cfg.observation_goal_dims if cfg.observation_goal_dims is not None else preset.get("observation_goal_dims", ())
    for name, dims in (("--goal-dims", goal_dims), ("--observation-goal-dims", hidden)):
        if any(d >= obs_dim for d in dims):
            raise ConfigError(f"{name} {list(dims)} name dimensions past the observation's {obs_dim}")
    if set(goal_dims) & set(hidden):
        raise ConfigError(f"--goal-dims {list(goal_dims)} must be state dimensions, not the environment's goal "
                          f"(--observation-goal-dims {list(hidden)})")
    if hidden and len(hidden) != len(goal_dims):
        raise ConfigError(f"the environment's goal has {len(hidden)} dimensions (--observation-goal-dims) but the "
                          f"goal is made of {len(goal_dims)} (--goal-dims)")
    state_columns = tuple(d for d in range(obs_dim) if d not in set(hidden))
    if not state_columns:
        raise ConfigError("--observation-goal-dims leaves no state dimension to model")
    return GoalLayout(state_columns, tuple(state_columns.index(d) for d in goal_dims), tuple(hidden))


def relabelled_goal_rows(
    mode: str, starts: np.ndarray, last: np.ndarray, episode_end: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(B,) dataset indices of each window's goal state.

    `starts` are the windows' first transitions, `last` their last real ones, `episode_end` one
    past their episode's last transition.
    """
    if mode == "episode-end":
        return episode_end - 1
    if mode == "window-end":
        return last
    if mode == "future":  # uniform over [last, episode_end - 1]: hindsight, never before the window ends
        return last + (rng.random(len(starts)) * (episode_end - last)).astype(np.int64)
    raise ConfigError(f"unknown goal relabelling {mode!r}; choose episode-end, window-end or future")


def first_action_cross_entropy(model: Any, tokens: Any, goal: Any) -> float:
    """Mean teacher-forced cross-entropy of the first transition's action tokens of windows
    `tokens` (B, L) under goals `goal` (B, G): where no earlier action in the window can stand
    in for the goal (experiments/tt_goal_use.py compares it with other windows' goals)."""
    import torch

    n, m = model.observation_dim, model.action_dim
    with torch.no_grad():
        logits = model(tokens[:, : n + m - 1], goal=goal)  # position i predicts token i + 1
        targets = tokens[:, n : n + m] - model.discretizer.offsets[n : n + m]
        picked = logits[:, n - 1 : n + m - 1].log_softmax(-1).gather(2, targets[..., None])[..., 0]
    return float(-picked.mean())
