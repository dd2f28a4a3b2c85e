"""The four-rooms PointMaze task: its geometry, the waypoint controller reaching its goals, and
the `pointmaze-fourrooms` recipe written in Minari format."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gymnasium_robotics")

import gymnasium as gym  # noqa: E402

from seqrl.collect.maze import ENV_ID, FOUR_ROOMS, WaypointController, register_envs  # noqa: E402


@pytest.fixture(scope="module")
def env():
    register_envs()
    env = gym.make(ENV_ID)
    yield env
    env.close()


def test_observation_is_position_velocity_and_goal(env):
    obs, _ = env.reset(seed=3)
    inner = env.unwrapped
    assert obs.shape == (6,) and env.observation_space.shape == (6,)
    np.testing.assert_allclose(obs[4:], inner.goal)
    assert np.array_equal(np.asarray(inner.maze.maze_map), np.asarray(FOUR_ROOMS))  # the four-rooms grid, 9 x 9


def test_controller_geometry_is_pointmazes(env):
    controller, maze = WaypointController(), env.unwrapped.maze
    for cell in controller.free:
        np.testing.assert_allclose(controller.centre(cell), maze.cell_rowcol_to_xy(np.array(cell)))
        assert controller.cell_of(controller.centre(cell)) == cell
    # every free cell reaches every other (the four rooms are connected by their doorways)
    assert all(len(table) == len(controller.free) for table in controller.next_cell.values())


def test_waypoint_controller_reaches_its_goals(env):
    controller = WaypointController()
    reached, lengths = 0, []
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        done, total, steps = False, 0.0, 0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(controller(obs)[0])
            total, steps, done = total + reward, steps + 1, terminated or truncated
        reached += total > 0
        lengths.append(steps)
    assert reached == 30  # every start/goal pair, well inside the 500-step limit
    assert max(lengths) < 400
    # a random policy mostly does not
    rng = np.random.default_rng(0)
    random_reached = 0
    for seed in range(10):
        env.reset(seed=100 + seed)
        done, total = False, 0.0
        while not done:
            _, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 2))
            total, done = total + reward, terminated or truncated
        random_reached += total > 0
    assert random_reached <= 5


def test_recipe_collects_a_minari_dataset_with_reference_returns(minari_root):
    from seqrl.cli import main
    from seqrl.data.sources import load_dataset

    main(["collect", "pointmaze-fourrooms", "--transitions", "1500"])
    data = load_dataset("pointmaze-fourrooms")
    assert data.metadata["env_id"] == ENV_ID and data.obs_dim == 6 and data.act_dim == 2
    assert data.num_transitions == 1500
    assert set(np.unique(data.rewards)) <= {0.0, 1.0}
    low, high = data.metadata["ref_min_score"], data.metadata["ref_max_score"]
    assert high == pytest.approx(1.0) and 0.0 <= low < 0.6  # the noise-free controller always arrives
    goals = [ep["observations"][0, 4:] for ep in data.episodes()]
    assert len({tuple(np.round(g, 3)) for g in goals}) > len(goals) // 2  # goals vary between episodes


def test_collect_by_env_id_registers_the_maze_and_takes_the_waypoint_source_with_its_noise(minari_root):
    from seqrl.cli import main
    from seqrl.data.sources import load_dataset

    main(["collect", "--env", ENV_ID, "--policy", "waypoint:0.1", "--transitions", "400", "--name", "maze-low-noise"])
    data = load_dataset("maze-low-noise")
    assert data.metadata["env_id"] == ENV_ID and data.num_transitions == 400 and data.obs_dim == 6
    assert np.abs(data.actions).max() <= 1.0
