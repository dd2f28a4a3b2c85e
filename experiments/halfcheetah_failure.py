"""Why models fail on halfcheetah-medium: the dataset's state coverage, and where each run's
own episodes leave it.

    python experiments/halfcheetah_failure.py RUN_DIR ... [--episodes 5] [--seed 10000]

halfcheetah-medium is one deterministic agent (zoo PPO, no action noise): its 100 episodes
differ only by the environment's initial-state noise. This prints

1. the data's spread: for each state dimension, the std across episodes at the same time step,
   averaged over time, against the std over all the data (a narrow tube of states has a small
   ratio), and how far each episode's states are from the *other* episodes' nearest states;
2. per run, at its highest target return (BC: its one condition), the normalized score, and
   how far the states of its own episodes get from the data: the distance of every visited
   state to its nearest data state (in the data's per-dimension std units; the median and 90th
   percentile over all steps, and the share of steps farther than the data's own 99th
   percentile from item 1), and the share of episodes that flip the torso over
   (|pitch| > 90 degrees, observation index 1 in HalfCheetah-v5) and the mean step of the flip.

3. per run, its imitation error where the episodes start and later: the policy (the one
   evaluate() runs) acts on the data's own first 8 episodes, fed the data's states and actions
   as its history, and its squared action error against the data's is averaged over steps
   0-39 (the start-up from rest, where failing runs flip) and 40-199.

Scores are evaluate()'s (the same seed as the sweeps' evaluation by default), so they repeat
each run's eval.json at that target.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

PITCH = 1  # HalfCheetah-v5 observation: qpos[1:] then qvel; qpos[2] (obs 1) is the torso's pitch


def nearest_distance(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Euclidean distance from each point to its nearest reference point (scikit-learn's tree)."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(points)[0][:, 0]


def data_coverage(dataset, episodes: int = 10) -> tuple[np.ndarray, float, float]:
    """(mean over time of the across-episode std per dim / overall std per dim, the median and
    the 99th percentile of the leave-one-episode-out nearest distance of `episodes` episodes)."""
    obs = dataset.observations
    mean, std = obs.mean(0), obs.std(0) + 1e-8
    z = (obs - mean) / std
    starts, ends = dataset.episode_starts, dataset.episode_ends
    length = int((ends - starts).min())
    stacked = np.stack([z[s:s + length] for s in starts])  # (E, T, obs_dim)
    ratio = stacked.std(0).mean(0)  # already in units of the overall std
    distances = []
    for e in range(min(episodes, len(starts))):
        others = np.ones(len(z), bool)
        others[starts[e]:ends[e]] = False
        distances.append(nearest_distance(z[starts[e]:ends[e]], z[others]))
    d = np.concatenate(distances)
    return ratio, float(np.median(d)), float(np.quantile(d, 0.99))


def teacher_forced_error(family, run, dataset, target, episodes: int = 8, steps: int = 200) -> np.ndarray:
    """(steps,) the policy's squared action error (mean over features and episodes) at each step
    of the data's first `episodes` episodes, with the data's own states and actions as history."""
    starts = dataset.episode_starts[:episodes]
    if int((dataset.episode_ends[:episodes] - starts).min()) < steps:
        raise SystemExit(f"the data's first {episodes} episodes must last {steps} steps")
    policy = family.make_policy(run.model.eval(), run.spec, run.config, target, device="cpu")
    rows = np.arange(len(starts))
    policy.reset(len(starts), seed=0)
    errors = np.zeros(steps)
    for t in range(steps):
        actions = policy.act(rows, dataset.observations[starts + t], np.full(len(starts), t))
        errors[t] = ((actions - dataset.actions[starts + t]) ** 2).mean()
        policy.observe(rows, dataset.actions[starts + t], dataset.rewards[starts + t])
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (all trained on halfcheetah-medium)")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=10000, help="evaluation seed (the runs' eval_seed default)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from seqrl.loading import load_run
    from seqrl.data.sources import load_dataset
    from seqrl.evaluation.evaluate import EpisodeRecord, evaluate
    from seqrl.families import get_family

    first = load_run(args.runs[0])
    dataset = load_dataset(first.spec.dataset)
    ratio, data_median, data_p99 = data_coverage(dataset)
    mean, std = dataset.observations.mean(0), dataset.observations.std(0) + 1e-8
    z_data = (dataset.observations - mean) / std
    print(f"## {first.spec.dataset}: {len(dataset.episode_starts)} episodes\n")
    print("across-episode std at the same step / overall std, per state dimension: "
          + " ".join(f"{r:.2f}" for r in ratio) + f" (mean {ratio.mean():.2f})")
    print(f"nearest other-episode data state, per step of 10 held-out episodes: median {data_median:.2f}, "
          f"99th percentile {data_p99:.2f} (std units)\n")
    print("| run | score | median distance to data | 90th percentile | steps beyond the data's 99th pct | "
          "episodes flipped | mean flip step | action error, steps 0-39 | steps 40-199 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run_dir in args.runs:
        run = load_run(run_dir)
        if run.spec.dataset != first.spec.dataset:
            raise SystemExit(f"{run_dir} was trained on {run.spec.dataset}, not {first.spec.dataset}")
        family = get_family(run.family)
        conditions = family.conditions(run.config, run.spec, None)
        top = [max(c for c in conditions if c is not None)] if any(c is not None for c in conditions) else None
        errors = teacher_forced_error(family, run, dataset, top[0] if top else None)
        records: list[EpisodeRecord] = []
        result = evaluate(run.model, run.spec, config=run.config, targets=top, episodes=args.episodes,
                          seed=args.seed, records=records)[0]
        visited = np.concatenate(records[0].observations)
        d = nearest_distance((visited - mean) / std, z_data)
        flips = [np.flatnonzero(np.abs(o[:, PITCH]) > np.pi / 2) for o in records[0].observations]
        flip_steps = [int(f[0]) for f in flips if len(f)]
        print(f"| {run_dir} | {result['score_mean']:.1f} | {np.median(d):.2f} | {np.quantile(d, 0.9):.2f} | "
              f"{(d > data_p99).mean():.0%} | {len(flip_steps)}/{len(flips)} | "
              f"{np.mean(flip_steps) if flip_steps else float('nan'):.0f} | {errors[:40].mean():.4f} | "
              f"{errors[40:].mean():.4f} |", flush=True)
    print("\n" + json.dumps({"runs": [str(Path(r)) for r in args.runs], "episodes": args.episodes, "seed": args.seed}))


if __name__ == "__main__":
    main()
