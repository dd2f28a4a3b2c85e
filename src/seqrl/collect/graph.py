"""Shortest paths on a fixed random graph: the Decision Transformer paper's stitching example
(Chen et al. 2021, section 5, "shortest path").

`seqrl/ShortestPathGraph-v0` is a fixed random graph (Erdos-Renyi, `N_NODES` = 20 nodes, edge
probability `EDGE_PROB` = 0.1, as in the paper) with a fixed goal node:
- the graph is drawn with `numpy.random.default_rng(seed)` for seed = `GRAPH_SEED`,
  `GRAPH_SEED + 1`, ... until it is connected (at p = 0.1 most draws of 20 nodes are not), so
  every start node has a path to the goal; the default graph is the first connected draw from
  seed 0 (seed 54: 27 edges, shortest distances to the goal node 0 of 1 to 5, mean 2.9);
- observation: the current node, one-hot (Box(0, 1, (n_nodes,)), float32);
- action: Discrete(n_nodes), "move to node k"; a move to a node that is not a neighbour (or to
  the current node) keeps the agent in place;
- reward -1 per step, 0 on the step that reaches the goal; the episode terminates at the goal
  (info["success"] is True there) and is truncated after `MAX_EPISODE_STEPS` = 20 steps. So an
  episode that reaches the goal in L steps returns -(L - 1), and one that does not returns -20;
- every reset draws the start node uniformly among the nodes other than the goal.

The cap: the paper caps its random walks at 10 steps. Random walks over this sparse graph
(average degree about 2) take far longer than that to hit the goal from most nodes, so with 10
steps about 22% of them reach it; 20 steps (twice the paper's) lets about 39% reach it, in 9.4
steps on average against a mean shortest distance of 2.9: the data the stitching needs (see `docs/RESULTS.md`, "Shortest-path stitching").

Policies (batched: (n, n_nodes) one-hot observations -> (n,) int64 actions):
- `RandomWalk`: a uniformly random neighbour of the current node (the paper's data);
- `ShortestPath`: the next node on a shortest path to the goal (breadth-first search; the
  reference expert).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

ENV_ID = "seqrl/ShortestPathGraph-v0"
N_NODES = 20
EDGE_PROB = 0.1
GRAPH_SEED = 0
GOAL = 0
MAX_EPISODE_STEPS = 20
DEFAULT_TRANSITIONS = 20_000  # about 1500 random walks


def random_graph(n_nodes: int = N_NODES, edge_prob: float = EDGE_PROB, seed: int = GRAPH_SEED,
                 max_tries: int = 100_000) -> tuple[np.ndarray, int]:
    """(adjacency (n, n) bool, the seed that drew it): the first connected Erdos-Renyi draw G(n, p)
    from `seed`, `seed + 1`, ... (no self-loops, undirected)."""
    if n_nodes < 2:
        raise ValueError(f"a graph needs at least 2 nodes, got {n_nodes}")
    if not 0 < edge_prob <= 1:
        raise ValueError(f"edge_prob must be in (0, 1], got {edge_prob}")
    for draw in range(seed, seed + max_tries):
        rng = np.random.default_rng(draw)
        upper = np.triu(rng.random((n_nodes, n_nodes)) < edge_prob, k=1)
        adjacency = upper | upper.T
        if is_connected(adjacency):
            return adjacency, draw
    raise ValueError(f"no connected G({n_nodes}, {edge_prob}) in {max_tries} draws from seed {seed}")


def distances_to(adjacency: np.ndarray, goal: int) -> np.ndarray:
    """(n,) shortest-path distance (edges) from every node to `goal`, by breadth-first search; -1 where none."""
    dist = np.full(len(adjacency), -1, np.int64)
    dist[goal] = 0
    queue = deque([goal])
    while queue:
        node = queue.popleft()
        for other in np.flatnonzero(adjacency[node]):
            if dist[other] < 0:
                dist[other] = dist[node] + 1
                queue.append(int(other))
    return dist


def is_connected(adjacency: np.ndarray) -> bool:
    return bool((distances_to(adjacency, 0) >= 0).all())


def _env_base() -> type:
    import gymnasium as gym

    return gym.Env


class ShortestPathGraphEnv(_env_base()):  # type: ignore[misc]
    """Walk a fixed random graph to its goal node (see the module docstring)."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n_nodes: int = N_NODES, edge_prob: float = EDGE_PROB, graph_seed: int = GRAPH_SEED,
                 goal: int = GOAL) -> None:
        import gymnasium as gym

        self.adjacency, self.graph_seed = random_graph(n_nodes, edge_prob, graph_seed)
        if not 0 <= goal < n_nodes:
            raise ValueError(f"goal must be a node 0..{n_nodes - 1}, got {goal}")
        self.n_nodes, self.goal = n_nodes, goal
        self.distances = distances_to(self.adjacency, goal)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (n_nodes,), np.float32)
        self.action_space = gym.spaces.Discrete(n_nodes)
        self.node = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.n_nodes, np.float32)
        obs[self.node] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        start = (options or {}).get("start")
        if start is None:
            start = int(self.np_random.integers(self.n_nodes - 1))
            start += start >= self.goal  # uniform over the nodes other than the goal
        self.node = int(start)
        return self._obs(), {"node": self.node, "distance": int(self.distances[self.node])}

    def step(self, action: Any):
        target = int(action)
        if 0 <= target < self.n_nodes and self.adjacency[self.node, target]:
            self.node = target
        success = self.node == self.goal
        return self._obs(), (0.0 if success else -1.0), success, False, {"node": self.node, "success": success}


def make_graph_env(max_episode_steps: int = MAX_EPISODE_STEPS, **kwargs: Any) -> Any:
    """The graph env capped at `max_episode_steps` (what `gym.make(ENV_ID)` builds)."""
    from gymnasium.wrappers import TimeLimit

    return TimeLimit(ShortestPathGraphEnv(**kwargs), max_episode_steps=max_episode_steps)


def register_envs() -> None:
    """Register the graph environment with gymnasium (idempotent)."""
    import gymnasium as gym

    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="seqrl.collect.graph:make_graph_env")  # a string: Minari stores the spec


def nodes_of(obs: np.ndarray) -> np.ndarray:
    """(n,) node indices of a batch of one-hot observations."""
    return np.argmax(np.atleast_2d(np.asarray(obs)), axis=-1)


class RandomWalk:
    """A uniformly random neighbour of the current node, from a seeded generator."""

    def __init__(self, adjacency: np.ndarray, seed: Any = None) -> None:
        self.neighbours = [np.flatnonzero(row) for row in np.asarray(adjacency, bool)]
        self._rng = np.random.default_rng(seed)
        self.spec = {"kind": "random-walk"}

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.array([self._rng.choice(self.neighbours[node]) for node in nodes_of(obs)], np.int64)


class ShortestPath:
    """The neighbour closest to the goal (the lowest-numbered one among ties): a shortest path."""

    def __init__(self, adjacency: np.ndarray, goal: int = GOAL) -> None:
        dist = distances_to(adjacency, goal)
        self.next_node = np.array([
            node if node == goal else min(np.flatnonzero(row), key=lambda k: (dist[k], k))
            for node, row in enumerate(np.asarray(adjacency, bool))
        ], np.int64)
        self.spec = {"kind": "shortest-path"}

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.next_node[nodes_of(obs)]


POLICIES = ("random-walk", "shortest-path")


def make_graph_policy(name: str, env_id: str = ENV_ID, seed: Any = None, env_kwargs: dict[str, Any] | None = None) -> Any:
    """The policy `name` (one of POLICIES) on the graph `env_id` builds with `env_kwargs`."""
    import gymnasium as gym

    from seqrl.errors import ConfigError

    register_envs()
    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        graph = env.unwrapped
        if not isinstance(graph, ShortestPathGraphEnv):
            raise ConfigError(f"the {name} policy walks {ENV_ID} only, not {env_id}")
        if name == "random-walk":
            return RandomWalk(graph.adjacency, seed)
        if name == "shortest-path":
            return ShortestPath(graph.adjacency, graph.goal)
    finally:
        env.close()
    raise ConfigError(f"unknown graph policy {name!r} ({', '.join(POLICIES)})")
