"""Estimate how long a sweep spec takes on this machine, from measured training speed.

For every distinct training shape in the spec (environment dimensions x model variant x model
size), trains on synthetic data of the environment's dimensions for a few steps in one thread
and times a batched `act` call of the evaluation's size, both in CPU time (what an unloaded
core gives: the machines here are shared); then sums steps / speed (+ evaluation)
over the spec's runs and divides by the number of workers.

    python bench/sweep_budget.py experiments/paper.yaml --workers 2

Datasets need not exist: dimensions come from the dataset recipe's environment (or the dataset
itself, when it is on disk). The numbers are per worker with one torch thread each; on a shared
machine they move with the load, so read them as an estimate, not a promise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from seqrl.data.trajectories import TrajectoryDataset
from seqrl.experiments.spec import RunSpec, load_spec

# Shape-relevant fields: runs equal in these train at the same speed.
# (num_bins and binning change only small embedding tables and the tokenizer: not the speed.)
SHAPE_FIELDS = ("model", "head", "embed_dim", "n_layers", "n_heads", "context_len", "batch_size", "precision",
                "action_index_embedding")
EVAL_STEPS_PER_EPISODE = 1000  # MuJoCo's time limit: the worst case of an evaluation episode


def env_dims(dataset: str) -> tuple[int, int]:
    """(obs_dim, act_dim) of a dataset name, from its recipe's environment or the data itself."""
    import gymnasium as gym

    from seqrl.collect.recipes import RECIPES

    if dataset in RECIPES:
        env = gym.make(RECIPES[dataset].env_id)
        dims = env.observation_space.shape[0], env.action_space.shape[0]
        env.close()
        return dims
    from seqrl.data.sources import load_dataset

    data = load_dataset(dataset)
    return data.obs_dim, data.act_dim


def synthetic(obs_dim: int, act_dim: int, transitions: int = 20_000, seed: int = 0) -> TrajectoryDataset:
    rng = np.random.default_rng(seed)
    episodes, left = [], transitions
    while left > 0:
        t = min(left, int(rng.integers(200, 1000)))
        left -= t
        episodes.append(dict(
            observations=rng.normal(size=(t + 1, obs_dim)), actions=np.clip(rng.normal(size=(t, act_dim)) * 0.5, -1, 1),
            rewards=rng.normal(size=t) + 3, terminations=np.zeros(t, bool), truncations=np.arange(t) == t - 1,
        ))
    return TrajectoryDataset.from_episodes(episodes, {"name": "synthetic", "env_id": None,
                                                      "action_low": [-1.0] * act_dim, "action_high": [1.0] * act_dim})


def measure(run: RunSpec, dims: tuple[int, int], steps: int) -> dict[str, float]:
    """Training steps/s and seconds per batched `act` call, in CPU time of this (one-thread)
    process, which is what an unloaded core would give; wall-clock steps/s is reported beside
    it, since the machine may be shared."""
    from seqrl.train import train

    data = synthetic(*dims)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(run.config(tmp), dataset="synthetic", steps=steps, log_every=max(1, steps // 5),
                                  checkpoint_every=10**9, eval_every=0, warmup_steps=10, rtg_scale=0.001,
                                  targets=(1.0,), device="cpu")
        if getattr(cfg, "init", "scratch") != "scratch":
            # An LM-initialised run trains the same trunk shape from the LM's weights; the LM need
            # not exist yet to time it. Alignment and co-training add their own cost (not timed).
            cfg = dataclasses.replace(cfg, init="scratch", align_weight=0.0, cotrain_weight=0.0, cotrain_corpus=None)
        warm = train(dataclasses.replace(cfg, steps=5, warmup_steps=1, run_dir=f"{tmp}/warm"), dataset=data)  # first-call costs
        del warm
        cpu = time.process_time()
        result = train(cfg, dataset=data)
        cpu_speed = steps / (time.process_time() - cpu)
        lines = [json.loads(x) for x in (Path(tmp) / run.name / "metrics.jsonl").read_text().splitlines()]
        wall_speed = statistics.median(x["steps_per_sec"] for x in lines[1:] or lines)
        model = result.model.eval()
        episodes = max(1, run.eval_episodes)
        K, (obs_dim, act_dim) = cfg.context_len, dims
        args = (torch.zeros(episodes, K, 1), torch.zeros(episodes, K, obs_dim), torch.zeros(episodes, K, act_dim),
                torch.arange(K).repeat(episodes, 1), torch.full((episodes,), K))
        with torch.no_grad():
            model.act(*args)
            tick = time.process_time()
            for _ in range(10):
                model.act(*args)
        act_seconds = (time.process_time() - tick) / 10
    return {"steps_per_sec": cpu_speed, "wall_steps_per_sec": wall_speed, "act_seconds": act_seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--measure-steps", type=int, default=60, help="training steps timed per shape")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    sweep = load_spec(args.spec)
    # The estimate times the Decision Transformer's training step and `act`; other families'
    # runs (TT, BC, multi-task, LM, dynamics) are listed as not estimated instead of guessed.
    skipped = [r for r in sweep.runs if getattr(r.config("runs"), "family", "dt") != "dt"]
    sweep.runs = [r for r in sweep.runs if r not in skipped]
    dims = {d: env_dims(d) for d in sorted({r.dataset for r in sweep.runs})}
    speeds: dict[tuple, dict[str, float]] = {}
    key_of: dict[str, tuple] = {}  # run name -> its shape key
    print(f"command: python bench/sweep_budget.py {args.spec} --workers {args.workers} "
          f"--measure-steps {args.measure_steps} --threads {args.threads}")
    print(f"{'dims':>8} {'model':<18} {'shape':<48} {'steps/s':>8} {'(wall)':>7} {'act ms':>7}")
    for run in sweep.runs:
        cfg = run.config("runs")
        key = (dims[run.dataset], *(getattr(cfg, f) for f in SHAPE_FIELDS), run.eval_episodes)
        if key not in speeds:
            speeds[key] = measure(run, dims[run.dataset], args.measure_steps)
            shape = f"D={cfg.embed_dim} L={cfg.n_layers} K={cfg.context_len} B={cfg.batch_size} head={cfg.head}"
            print(f"{'%dx%d' % dims[run.dataset]:>8} {cfg.model:<18} {shape:<48} "
                  f"{speeds[key]['steps_per_sec']:8.1f} {speeds[key]['wall_steps_per_sec']:7.1f} {1000 * speeds[key]['act_seconds']:7.2f}", flush=True)
        key_of[run.name] = key

    total_train = total_eval = 0.0
    per_experiment: dict[str, float] = {}
    for run in sweep.runs:
        cfg = run.config("runs")
        speed = speeds[key_of[run.name]]
        train_s = cfg.steps / speed["steps_per_sec"]
        targets = len(cfg.targets) if cfg.targets else 2
        # The final evaluation (every target), plus one every eval_every steps during training
        # (every target, or the highest alone with eval_targets: highest).
        during = (cfg.steps // cfg.eval_every if cfg.eval_every else 0) * (1 if cfg.eval_targets == "highest" else targets)
        rollouts = (targets if run.eval_episodes else 0) + during
        eval_s = rollouts * EVAL_STEPS_PER_EPISODE * speed["act_seconds"] * 1.5  # +50%: env steps
        total_train += train_s
        total_eval += eval_s
        per_experiment[run.experiment] = per_experiment.get(run.experiment, 0.0) + train_s + eval_s
    print(f"\n{len(sweep.runs)} runs; per experiment (worker-hours): "
          + ", ".join(f"{k} {v / 3600:.2f}" for k, v in per_experiment.items()))
    print(f"training {total_train / 3600:.2f} h + evaluation {total_eval / 3600:.2f} h of worker time; "
          f"with {args.workers} workers about {(total_train + total_eval) / args.workers / 3600:.2f} h wall-clock")
    if skipped:
        families: dict[str, int] = {}
        for run in skipped:
            family = run.config("runs").family
            families[family] = families.get(family, 0) + 1
        print(f"not estimated (not DT runs): {len(skipped)} runs: "
              + ", ".join(f"{n} {family}" for family, n in sorted(families.items())))


if __name__ == "__main__":
    sys.exit(main())
