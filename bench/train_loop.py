"""Milliseconds per step of the whole training loop (`seqrl.train.train`): sampling, the
model's loss, backward, clipping, AdamW, the scheduler, logging and the final checkpoint.

What bench/train_step.py leaves out; used with bench/against_commit.py to show that the model
families refactor did not slow the DT's loop down. Times are process CPU time on one torch
thread (`--threads`), which other processes on a shared machine inflate far less than
wall-clock time.

    python bench/train_loop.py --steps 200 --variants continuous,tokenized-spread --json out.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import dump_json, machine, print_header, print_table  # noqa: E402


def dataset(obs_dim: int = 11, act_dim: int = 3, episodes: int = 50, length: int = 200):
    from seqrl.data.trajectories import TrajectoryDataset

    rng = np.random.default_rng(0)
    eps = []
    for _ in range(episodes):
        obs = rng.normal(size=(length + 1, obs_dim)).astype(np.float32)
        actions = np.clip(rng.normal(size=(length, act_dim)), -1, 1).astype(np.float32)
        done = np.zeros(length, bool)
        done[-1] = True
        eps.append(dict(observations=obs, actions=actions, rewards=rng.normal(size=length), terminations=done,
                        truncations=np.zeros(length, bool)))
    meta = {"name": "synthetic-hopper", "env_id": None, "action_low": [-1.0] * act_dim, "action_high": [1.0] * act_dim}
    return TrajectoryDataset.from_episodes(eps, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--variants", default="continuous,tokenized-spread")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from seqrl.families.dt.config import TrainConfig
    from seqrl.train import train

    torch.set_num_threads(args.threads)
    data = dataset()
    results = []
    for variant in args.variants.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(dataset="synthetic-hopper", model=variant, embed_dim=64, n_layers=2, context_len=10,
                              batch_size=64, steps=args.steps, warmup_steps=10, log_every=50, checkpoint_every=args.steps,
                              progress=False, precision="fp32", device="cpu", rtg_scale=0.001, targets=(1.0,),
                              run_dir=str(Path(tmp) / "run"))
            start = time.process_time()
            train(cfg, dataset=data)
            ms = (time.process_time() - start) * 1000 / args.steps
        results.append({"name": variant, "precision": "fp32", "ms_per_step": ms})
    info = machine()
    print_header("the DT training loop: CPU ms per step (width 64, 2 layers, context 10, batch 64)", info)
    print_table(["variant", "ms/step"], [[r["name"], r["ms_per_step"]] for r in results])
    dump_json(args.json, {"benchmark": "train_loop", "machine": info, "config": vars(args), "results": results})


if __name__ == "__main__":
    main()
