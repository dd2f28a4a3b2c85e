"""Success rates of uniform random actions and of the scripted solver (epsilon 0, 0.5, 0.9) on the
evaluation episodes of experiments/keydoor.yaml (seqrl/DoorKey-5x5-v0, seeds 10000-10049, the
sweep's eval_seed and 50 episodes), written to baselines.json beside this script.

    PYTHONPATH=src python docs/results/keydoor/baselines.py
"""
import json
from pathlib import Path

import gymnasium as gym
import numpy as np

from seqrl.collect.envs import register_envs
from seqrl.collect.keydoor import ENV_ID, KeyDoorSolver

SEED, EPISODES = 10_000, 50


def run(epsilon: float) -> dict:
    env, solver, rng = gym.make(ENV_ID), KeyDoorSolver(), np.random.default_rng(0)
    successes, returns, lengths = [], [], []
    for i in range(EPISODES):
        obs, _ = env.reset(seed=SEED + i)
        total, steps, done = 0.0, 0, False
        while not done:
            action = int(rng.integers(5)) if rng.random() < epsilon else int(solver(obs)[0])
            obs, reward, terminated, truncated, info = env.step(action)
            total, steps, done = total + reward, steps + 1, terminated or truncated
        successes.append(bool(info["success"]))
        returns.append(total)
        lengths.append(steps)
    return {"success_rate": float(np.mean(successes)), "return_mean": float(np.mean(returns)),
            "length_mean": float(np.mean(lengths))}


if __name__ == "__main__":
    register_envs()
    out = {"env_id": ENV_ID, "seeds": f"{SEED}-{SEED + EPISODES - 1}",
           "random": run(1.0), **{f"scripted_eps{e:g}": run(e) for e in (0.9, 0.5, 0.0)}}
    (Path(__file__).parent / "baselines.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
