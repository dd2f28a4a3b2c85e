"""seqrl.collect.envs: every `seqrl/` environment registered in one place, without importing the
optional packages (gymnasium-robotics, minigrid) that making some of them needs."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym

from seqrl.collect.envs import register_envs
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.evaluation.rollout import resolve_env_id
from seqrl.models.spec import DataSpec


def test_every_seqrl_environment_is_registered_once_and_again_harmlessly():
    register_envs()
    register_envs()  # idempotent
    ids = {key for key in gym.registry if key.startswith("seqrl/")}
    assert {"seqrl/PointMazeFourRooms-v0", "seqrl/ShortestPathGraph-v0", "seqrl/DoorKey-5x5-v0",
            "seqrl/DoorKey-6x6-v0"} <= ids
    env = gym.make("seqrl/ShortestPathGraph-v0")  # one that needs no optional package
    obs, _ = env.reset(seed=0)
    assert env.action_space.n == len(obs)


def test_registering_imports_neither_optional_package():
    code = ("import sys\nfrom seqrl.collect.envs import register_envs\nregister_envs()\n"
            "print('LOADED', [m for m in ('minigrid', 'gymnasium_robotics') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out


def test_evaluation_finds_a_seqrl_environment_by_its_id():
    spec = DataSpec.from_dataset(TrajectoryDataset.from_episodes(
        [{"observations": [[1.0, 0.0]], "actions": [[0.0]], "rewards": [0.0]}],
        metadata={"name": "x", "env_id": "seqrl/ShortestPathGraph-v0"}), rtg_scale=1.0, targets=(0.0,))
    assert resolve_env_id(spec) == "seqrl/ShortestPathGraph-v0"
