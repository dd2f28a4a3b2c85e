"""Goal reaching in a continuous four-rooms maze (the Trajectory Transformer paper's goal-reaching
task), built from gymnasium-robotics' PointMaze, with D4RL maze2d's waypoint controller.

`seqrl/PointMazeFourRooms-v0` is PointMaze (a force-actuated ball, 2-D actions in [-1, 1]) on the
`FOUR_ROOMS` grid below, with:
- a flat observation `[x, y, vx, vy, goal_x, goal_y]`, so any policy (and the rollout loop) sees
  the goal it must reach;
- start and goal cells drawn uniformly among the free cells at every reset (PointMaze's own
  draw, distinct cells, with its small position noise);
- the sparse reward (1 on reaching the goal, within 0.45) and the episode ending there
  (`continuing_task=False`), so an episode's return is its success, and its length the steps to
  the goal; `MAX_EPISODE_STEPS` otherwise.

`WaypointController` is D4RL maze2d's recipe for the data: breadth-first search over the maze
grid from the ball's cell to the goal's, and a PD controller (gains 10 and -1, D4RL's) towards
the centre of the next cell on the path, or towards the goal itself in the goal's cell.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from seqrl.errors import ConfigError

ENV_ID = "seqrl/PointMazeFourRooms-v0"
MAX_EPISODE_STEPS = 500
# 1: wall, 0: free. Four 3x3 rooms joined by four one-cell doorways.
FOUR_ROOMS = [
    [1, 1, 1, 1, 1, 1, 1, 1, 1],
    [1, 0, 0, 0, 1, 0, 0, 0, 1],
    [1, 0, 0, 0, 0, 0, 0, 0, 1],
    [1, 0, 0, 0, 1, 0, 0, 0, 1],
    [1, 1, 0, 1, 1, 1, 0, 1, 1],
    [1, 0, 0, 0, 1, 0, 0, 0, 1],
    [1, 0, 0, 0, 0, 0, 0, 0, 1],
    [1, 0, 0, 0, 1, 0, 0, 0, 1],
    [1, 1, 1, 1, 1, 1, 1, 1, 1],
]

# The grid of each maze environment seqrl registers (what `seqrl eval --plot` draws the paths on).
MAZE_MAPS = {ENV_ID: FOUR_ROOMS}


def _require_robotics() -> Any:
    import contextlib
    import io
    import warnings

    try:
        # Its import prints a notice about Adroit hand versions, unrelated to the maze.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            import gymnasium_robotics
    except ImportError:
        raise ConfigError(
            "the maze task needs gymnasium-robotics: pip install 'seqrl[maze]' (or pip install gymnasium-robotics)"
        ) from None
    return gymnasium_robotics


def make_four_rooms(render_mode: str | None = None, max_episode_steps: int = MAX_EPISODE_STEPS, **kwargs: Any) -> Any:
    """The flat-observation four-rooms PointMaze (what `gym.make(ENV_ID)` builds)."""
    import gymnasium as gym

    gym.register_envs(_require_robotics())
    env = gym.make("PointMaze_UMaze-v3", maze_map=FOUR_ROOMS, continuing_task=False, reset_target=False,
                   render_mode=render_mode, max_episode_steps=max_episode_steps, **kwargs)
    return FlatGoalObservation(env)


def register_envs() -> None:
    """Register the four-rooms maze with gymnasium (idempotent; seqrl.collect.envs registers every `seqrl/` task)."""
    import gymnasium as gym

    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="seqrl.collect.maze:make_four_rooms")  # a string: Minari stores the spec


def _wrapper_base() -> type:
    import gymnasium as gym

    return gym.ObservationWrapper


class FlatGoalObservation(_wrapper_base()):  # type: ignore[misc]
    """PointMaze's dict observation as one vector: `[observation (4), desired_goal (2)]`."""

    def __init__(self, env: Any) -> None:
        import gymnasium as gym

        super().__init__(env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float64)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([observation["observation"], observation["desired_goal"]])


class WaypointController:
    """D4RL maze2d's waypoint controller, for a batch of `[x, y, vx, vy, goal_x, goal_y]` rows.

    The shortest paths between every pair of free cells are found once by breadth-first search
    (the grid is small), so each call is a table lookup and a PD step per row.
    """

    spec: dict[str, Any] = {"kind": "waypoint", "source": "D4RL maze2d WaypointController (BFS + PD, gains 10, -1)"}

    def __init__(self, maze_map: list[list[int]] = FOUR_ROOMS, scaling: float = 1.0, p_gain: float = 10.0,
                 d_gain: float = -1.0) -> None:
        self.grid = np.asarray(maze_map) == 1  # True at walls
        self.scaling, self.p_gain, self.d_gain = scaling, p_gain, d_gain
        rows, cols = self.grid.shape
        # PointMaze's layout: the map's centre at the origin, row 0 at the top (largest y).
        self.x_center, self.y_center = cols / 2 * scaling, rows / 2 * scaling
        self.free = [(r, c) for r in range(rows) for c in range(cols) if not self.grid[r, c]]
        self.next_cell = {goal: self._bfs(goal) for goal in self.free}

    def _bfs(self, goal: tuple[int, int]) -> dict[tuple[int, int], tuple[int, int]]:
        """For every free cell, the next cell on a shortest path to `goal` (searched from the goal)."""
        nxt = {goal: goal}
        queue = deque([goal])
        while queue:
            r, c = queue.popleft()
            for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                n = (r + dr, c + dc)
                if n not in nxt and 0 <= n[0] < self.grid.shape[0] and 0 <= n[1] < self.grid.shape[1] \
                        and not self.grid[n]:
                    nxt[n] = (r, c)
                    queue.append(n)
        return nxt

    def cell_of(self, xy: np.ndarray) -> tuple[int, int]:
        row = int(np.floor((self.y_center - xy[1]) / self.scaling))
        col = int(np.floor((xy[0] + self.x_center) / self.scaling))
        rows, cols = self.grid.shape
        row, col = min(max(row, 0), rows - 1), min(max(col, 0), cols - 1)
        if self.grid[row, col]:  # a ball pressed against a wall can read as inside it: take the nearest free cell
            centres = np.array([self.centre((r, c)) for r, c in self.free])
            row, col = self.free[int(np.argmin(((centres - xy) ** 2).sum(1)))]
        return row, col

    def centre(self, cell: tuple[int, int]) -> np.ndarray:
        return np.array([(cell[1] + 0.5) * self.scaling - self.x_center, self.y_center - (cell[0] + 0.5) * self.scaling])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.atleast_2d(np.asarray(obs, np.float64))
        actions = np.empty((len(obs), 2))
        for i, row in enumerate(obs):
            position, velocity, goal = row[:2], row[2:4], row[4:6]
            here, there = self.cell_of(position), self.cell_of(goal)
            # In the goal's cell, head for the goal itself; elsewhere for the next cell's centre.
            waypoint = goal if here == there else self.centre(self.next_cell[there][here])
            actions[i] = self.p_gain * (waypoint - position) + self.d_gain * velocity
        return np.clip(actions, -1.0, 1.0)
