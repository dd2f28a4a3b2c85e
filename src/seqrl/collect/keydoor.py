"""Key-to-Door (the Decision Transformer paper's credit-assignment task) on minigrid's DoorKey.

The DT paper's Key-to-Door is a gridworld in three phases: pick up a key, later open a door,
then reach the goal; the reward comes only at the end, so the actions that earned it (picking
up the key) lie many steps before it. minigrid's DoorKey is the available form: a locked door
in a wall splits the room, the key lies on the agent's side, the goal is in the far corner.

`seqrl/DoorKey-5x5-v0` (and `-6x6-v0`) is minigrid's `MiniGrid-DoorKey-NxN-v0` with:
- a flat, fully observable observation of 14 numbers, for seqrl's linear state embedding
  (minigrid's own observation is a 7x7x3 egocentric grid of object codes, not pixels: seqrl
  reads uint8 frames through the Nature-DQN encoder (docs/images.md), but a channels-last 7x7
  view is refused by it and is below its 36x36 minimum; and the task's state is this small):
  `[agent_x, agent_y, dir_right, dir_down, dir_left, dir_up, carrying_key, door_open,
    key_x, key_y, door_x, door_y, goal_x, goal_y]` (grid coordinates; the key's position is
  (0, 0), a wall cell, once it is carried);
- five actions instead of minigrid's seven, the ones that matter here:
  `0 left, 1 right, 2 forward, 3 pickup, 4 toggle` (minigrid's `drop` and `done` do nothing
  useful in DoorKey and are left out);
- `info["success"]`: True on the step that reaches the goal (minigrid's reward > 0 there), so
  evaluation reports a success rate;
- minigrid's own reward, `1 - 0.9 * steps / max_steps` on reaching the goal and 0 otherwise,
  and its time limit, `max_steps = 10 * size**2` (250 steps on 5x5).

`KeyDoorSolver` is the scripted policy for the data: breadth-first search on the grid (rebuilt
from the observation: DoorKey's only inner wall is the door's column) to the key, pick it up,
to the door, toggle it open, to the goal. With epsilon-greedy noise (`seqrl.collect` adds it)
it makes the graded, noisy scripted trajectories; `RandomPolicy` makes the random walks.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from seqrl.errors import ConfigError

ENV_IDS = {5: "seqrl/DoorKey-5x5-v0", 6: "seqrl/DoorKey-6x6-v0"}
ENV_ID = ENV_IDS[5]
OBS_DIM = 14
# seqrl's action index -> minigrid's (left, right, forward, pickup, toggle).
ACTIONS = (0, 1, 2, 3, 5)
ACTION_NAMES = ("left", "right", "forward", "pickup", "toggle")
LEFT, RIGHT, FORWARD, PICKUP, TOGGLE = range(5)
# minigrid's directions: 0 right (+x), 1 down (+y), 2 left (-x), 3 up (-y).
DIRECTIONS = ((1, 0), (0, 1), (-1, 0), (0, -1))


def _require_minigrid() -> Any:
    try:
        import minigrid
    except ImportError:
        raise ConfigError(
            "the Key-to-Door task needs minigrid: pip install 'seqrl[keydoor]' (or pip install minigrid)"
        ) from None
    return minigrid


def make_doorkey(size: int = 5, max_steps: int | None = None, render_mode: str | None = None, **kwargs: Any) -> Any:
    """The flat-observation, five-action DoorKey of side `size` (what `gym.make(ENV_IDS[size])` builds)."""
    _require_minigrid()
    from minigrid.envs.doorkey import DoorKeyEnv

    return FlatDoorKey(DoorKeyEnv(size=size, max_steps=max_steps, render_mode=render_mode, **kwargs))


def register_envs() -> None:
    """Register seqrl's Key-to-Door environments with gymnasium (idempotent; minigrid is imported
    only when one is made)."""
    import gymnasium as gym

    for size, env_id in ENV_IDS.items():
        if env_id not in gym.registry:
            # a string entry point: Minari stores the spec. The time limit is minigrid's own.
            gym.register(id=env_id, entry_point="seqrl.collect.keydoor:make_doorkey", kwargs={"size": size})


def _wrapper_base() -> type:
    import gymnasium as gym

    return gym.Wrapper


class FlatDoorKey(_wrapper_base()):  # type: ignore[misc]
    """DoorKey with the flat observation, the five actions and `info["success"]` (module docstring)."""

    def __init__(self, env: Any) -> None:
        import gymnasium as gym

        super().__init__(env)
        size = max(env.unwrapped.width, env.unwrapped.height)
        self.observation_space = gym.spaces.Box(-1.0, float(size), (OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Discrete(len(ACTIONS))

    def observation(self) -> np.ndarray:
        from minigrid.core.world_object import Door, Goal, Key

        env = self.env.unwrapped
        obs = np.zeros(OBS_DIM, np.float32)
        obs[0:2] = env.agent_pos
        obs[2 + int(env.agent_dir)] = 1.0
        carrying = isinstance(env.carrying, Key)
        obs[6] = float(carrying)
        for x in range(env.width):
            for y in range(env.height):
                cell = env.grid.get(x, y)
                if isinstance(cell, Key):
                    obs[8:10] = (x, y)
                elif isinstance(cell, Door):
                    obs[7] = float(cell.is_open)
                    obs[10:12] = (x, y)
                elif isinstance(cell, Goal):
                    obs[12:14] = (x, y)
        return obs

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        _, info = self.env.reset(**kwargs)
        return self.observation(), {**info, "success": False}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        index = int(np.asarray(action).reshape(-1)[0])
        if not 0 <= index < len(ACTIONS):
            raise ValueError(f"action {index} is outside Discrete({len(ACTIONS)})")
        _, reward, terminated, truncated, info = self.env.step(ACTIONS[index])
        return self.observation(), float(reward), terminated, truncated, {**info, "success": bool(reward > 0)}


class KeyDoorSolver:
    """The scripted DoorKey solver, for a batch of flat observations (module docstring): to the key,
    pick up, to the door, toggle, to the goal, each leg a shortest path found by breadth-first search
    on the grid the observation describes (outer walls, the door's column, the key and a closed
    door as obstacles). Deterministic; epsilon-greedy noise is added by the collector."""

    spec: dict[str, Any] = {"kind": "scripted", "source": "seqrl.collect.keydoor.KeyDoorSolver (BFS: key, pickup, "
                                                           "door, toggle, goal)"}

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.atleast_2d(np.asarray(obs))
        return np.array([self.act(row) for row in obs], dtype=np.int64)

    def act(self, row: np.ndarray) -> int:
        r = np.rint(np.asarray(row, np.float64)).astype(int)
        agent, direction = (r[0], r[1]), int(np.argmax(row[2:6]))
        carrying, door_open = bool(r[6]), bool(r[7])
        key, door, goal = (r[8], r[9]), (r[10], r[11]), (r[12], r[13])
        width, height = goal[0] + 2, goal[1] + 2  # the goal is in the bottom-right inner corner

        def free(cell: tuple[int, int]) -> bool:
            x, y = cell
            if not (0 < x < width - 1 and 0 < y < height - 1):
                return False
            if x == door[0]:  # DoorKey's splitting wall: passable at an open door only
                return y == door[1] and door_open
            return carrying or cell != key

        if not carrying:
            return self._approach(agent, direction, key, free, PICKUP)
        if not door_open:
            return self._approach(agent, direction, door, free, TOGGLE)
        return self._approach(agent, direction, goal, free, None)

    @staticmethod
    def _approach(agent: tuple[int, int], direction: int, target: tuple[int, int], free: Any, use: int | None) -> int:
        """The next action towards `target`: stand next to it and `use` it, or (use None) step onto it."""
        dx, dy = DIRECTIONS[direction]
        if use is not None and (agent[0] + dx, agent[1] + dy) == target:
            return use
        # Breadth-first search from the agent; the first step of a shortest path to the target
        # (onto it with use None, else to any free cell next to it).
        first: dict[tuple[int, int], tuple[int, int] | None] = {agent: None}
        queue = deque([agent])
        end = None
        while queue:
            cell = queue.popleft()
            if (use is None and cell == target) or (
                use is not None and abs(cell[0] - target[0]) + abs(cell[1] - target[1]) == 1
            ):
                end = cell
                break
            for ddx, ddy in DIRECTIONS:
                nxt = (cell[0] + ddx, cell[1] + ddy)
                if nxt not in first and (free(nxt) or (use is None and nxt == target)):
                    first[nxt] = first[cell] or nxt
                    queue.append(nxt)
        if end is None:  # unreachable (not in DoorKey's layouts): turn and look again
            return RIGHT
        if end == agent:  # next to the target: face it
            want = (target[0] - agent[0], target[1] - agent[1])
        else:
            step = first[end]
            want = (step[0] - agent[0], step[1] - agent[1])
        wanted = DIRECTIONS.index(want)
        if wanted == direction:
            return FORWARD
        return RIGHT if (wanted - direction) % 4 == 1 else LEFT


def scripted_policy(env_id: str) -> KeyDoorSolver:
    """The scripted solver, for one of seqrl's DoorKey environments only."""
    if env_id not in ENV_IDS.values():
        raise ConfigError(f"the scripted solver drives {', '.join(ENV_IDS.values())} only, not {env_id}")
    return KeyDoorSolver()


def keydoor_recipes() -> list[tuple[str, str, tuple[dict[str, Any], ...], str]]:
    """The Key-to-Door recipes as (name, env_id, sources as `Source` keyword arguments, description),
    for seqrl.collect.recipes. Measured on 100 episodes of seqrl/DoorKey-5x5-v0 (seeds 0-99):
    random walks reach the goal in 28% of episodes (mean length 227 of 250 steps, return 0.11);
    the solver in 100% (10 steps, return 0.96), with epsilon 0.5 in 100% (26 steps, 0.91) and
    with epsilon 0.9 in 81% (150 steps, 0.44).
    - `keydoor-random`: random walks only, as in the DT paper's Key-to-Door data;
    - `keydoor-mixed`: half the transitions random walks, a quarter each the solver with
      epsilon 0.9 and 0.5 (graded quality, like D4RL's mixed data)."""
    return [
        ("keydoor-random", ENV_ID, ({"policy": "random"},), "uniform random actions (random walks)"),
        (
            "keydoor-mixed", ENV_ID,
            ({"policy": "random", "share": 0.5}, {"policy": "scripted", "epsilon": 0.9, "share": 0.25},
             {"policy": "scripted", "epsilon": 0.5, "share": 0.25}),
            "half random walks, a quarter each scripted solver + epsilon 0.9 and + epsilon 0.5",
        ),
    ]
