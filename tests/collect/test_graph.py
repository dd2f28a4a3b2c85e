"""The shortest-path graph (the DT paper's stitching example): the fixed random graph, its
breadth-first distances, the environment's moves and rewards, the random-walk and shortest-path
policies, and the `graph-random-walks` recipe's dataset (Discrete(20), returns, references)."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

from seqrl.collect.graph import (
    EDGE_PROB, ENV_ID, GOAL, MAX_EPISODE_STEPS, N_NODES, RandomWalk, ShortestPath, distances_to, is_connected,
    make_graph_policy, random_graph, register_envs,
)


@pytest.fixture
def env():
    register_envs()
    env = gym.make(ENV_ID)
    yield env
    env.close()


def floyd_warshall(adjacency: np.ndarray) -> np.ndarray:
    """All-pairs distances by another algorithm than the module's BFS."""
    n = len(adjacency)
    dist = np.where(adjacency, 1.0, np.inf)
    np.fill_diagonal(dist, 0.0)
    for k, i, j in itertools.product(range(n), repeat=3):
        dist[i, j] = min(dist[i, j], dist[i, k] + dist[k, j])
    return dist


def test_the_graph_is_a_fixed_connected_sparse_undirected_draw():
    adjacency, seed = random_graph()
    again, _ = random_graph()
    assert (adjacency == again).all() and adjacency.shape == (N_NODES, N_NODES)
    assert (adjacency == adjacency.T).all() and not adjacency.diagonal().any()
    assert is_connected(adjacency)
    # The draw is G(20, 0.1): about 19 edges expected; the first seeds' draws are not connected.
    assert 10 <= adjacency.sum() // 2 <= 40 and seed > 0
    for earlier in range(seed):  # the draws before the fixed one (same recipe) were disconnected
        upper = np.triu(np.random.default_rng(earlier).random((N_NODES, N_NODES)) < EDGE_PROB, k=1)
        assert not is_connected(upper | upper.T)
    with pytest.raises(ValueError, match="no connected"):
        random_graph(N_NODES, EDGE_PROB, 0, max_tries=seed)
    assert np.isfinite(floyd_warshall(adjacency)).all()


def test_breadth_first_distances_are_the_shortest_path_lengths():
    adjacency, _ = random_graph()
    exact = floyd_warshall(adjacency)
    for goal in (GOAL, 7):
        assert distances_to(adjacency, goal).tolist() == exact[:, goal].astype(int).tolist()
    # A disconnected graph: unreachable nodes are -1.
    two = np.zeros((3, 3), bool)
    two[0, 1] = two[1, 0] = True
    assert distances_to(two, 0).tolist() == [0, 1, -1] and not is_connected(two)


def test_moves_rewards_and_the_end_of_an_episode(env):
    graph = env.unwrapped
    assert env.observation_space.shape == (N_NODES,) and env.action_space == gym.spaces.Discrete(N_NODES)
    assert env.spec.max_episode_steps == MAX_EPISODE_STEPS
    far = int(np.argmax(graph.distances))
    obs, info = env.reset(seed=0, options={"start": far})
    assert obs.tolist() == np.eye(N_NODES)[far].tolist() and info["distance"] == graph.distances[far] >= 3
    # A move to a non-neighbour keeps the agent in place and costs -1.
    stranger = next(k for k in range(N_NODES) if not graph.adjacency[far, k] and k != far)
    obs, reward, terminated, truncated, _ = env.step(stranger)
    assert np.argmax(obs) == far and reward == -1.0 and not terminated and not truncated
    # Following the shortest path: -1 per step, 0 on the step that reaches the goal, then it terminates.
    policy, rewards = ShortestPath(graph.adjacency, graph.goal), []
    while True:
        obs, reward, terminated, truncated, info = env.step(int(policy(obs[None])[0]))
        rewards.append(reward)
        if terminated or truncated:
            break
    assert terminated and info["success"] and np.argmax(obs) == GOAL
    assert len(rewards) == graph.distances[far] and rewards == [-1.0] * (len(rewards) - 1) + [0.0]
    # Standing still is truncated at the cap with return -cap.
    env.reset(seed=1, options={"start": far})
    total, steps, done = 0.0, 0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(far)
        total, steps, done = total + reward, steps + 1, terminated or truncated
    assert truncated and steps == MAX_EPISODE_STEPS and total == -MAX_EPISODE_STEPS


def test_resets_start_anywhere_but_the_goal(env):
    starts = {int(np.argmax(env.reset(seed=s)[0])) for s in range(300)}
    assert starts == set(range(N_NODES)) - {GOAL}


def test_random_walks_step_to_neighbours_and_shortest_path_is_optimal_from_every_node():
    adjacency, _ = random_graph()
    eye = np.eye(N_NODES, dtype=np.float32)
    walk = RandomWalk(adjacency, seed=0)
    moves = walk(np.repeat(eye, 50, axis=0)).reshape(N_NODES, 50)
    for node in range(N_NODES):
        assert set(moves[node].tolist()) == set(np.flatnonzero(adjacency[node]).tolist())  # every neighbour, only them
    dist = distances_to(adjacency, GOAL)
    step = ShortestPath(adjacency, GOAL)(eye)
    for node in range(N_NODES):
        if node != GOAL:
            assert adjacency[node, step[node]] and dist[step[node]] == dist[node] - 1
    assert make_graph_policy("random-walk", seed=3).spec == {"kind": "random-walk"}
    from seqrl.errors import ConfigError

    with pytest.raises(ConfigError, match="walks seqrl/ShortestPathGraph-v0 only"):
        make_graph_policy("random-walk", "CartPole-v1")


def test_the_recipe_collects_random_walks_with_discrete_actions_and_reference_returns(minari_root):
    from seqrl.cli import main
    from seqrl.collect.graph import nodes_of
    from seqrl.data.sources import load_dataset

    main(["collect", "graph-random-walks", "--transitions", "1500"])
    data = load_dataset("graph-random-walks")
    assert data.metadata["env_id"] == ENV_ID and data.discrete and data.num_actions == N_NODES
    assert data.num_transitions == 1500 and data.obs_dim == N_NODES
    adjacency, _ = random_graph()
    nodes = nodes_of(data.observations)
    # Every recorded action is a move to a neighbour (a random walk, never a wasted move).
    assert adjacency[nodes, data.actions.reshape(-1)].all()
    # Returns: -(length - 1) for walks reaching the goal, -length otherwise; -cap at worst.
    reached = data.terminations[data.episode_ends - 1].astype(bool)
    lengths, returns = data.episode_lengths, data.episode_returns
    assert reached.any() and (~reached).any()
    assert np.array_equal(returns[reached], -(lengths[reached] - 1.0))
    assert np.array_equal(returns[~reached], -lengths[~reached].astype(float))
    assert returns.min() >= -MAX_EPISODE_STEPS and returns.max() <= 0
    # References: the random walks' mean return and the shortest path's (mean over starts of -(d - 1)).
    low, high = data.metadata["ref_min_score"], data.metadata["ref_max_score"]
    dist = distances_to(adjacency, GOAL)
    assert -MAX_EPISODE_STEPS < low < -10 and high == pytest.approx(-(dist[1:].mean() - 1), abs=0.6)
    assert data.metadata["reference_expert"] == "shortest-path"
