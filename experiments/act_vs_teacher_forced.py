"""How far a trained run's own action generation (`act`) is from its teacher-forced predictions,
on windows of its training data: a check that a low score is not a decoding bug.

    python experiments/act_vs_teacher_forced.py /work/paper-runs/main/halfcheetah-medium/*/s0

For each run: the final training loss (metrics.jsonl), and on 256 training windows (fixed
seed) the squared error against the data's action at each window's last step of
- `act`: the model generates the action itself (feature by feature for spread variants),
- teacher-forced: one forward pass that sees the data's earlier action features,
averaged over features, and `act`'s error per action feature.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from seqrl.loading import load_run
from seqrl.data.sampler import ContextSampler
from seqrl.data.sources import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("--windows", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| run | final loss | act MSE | teacher-forced MSE | act MSE per feature |")
    print("|---|---:|---:|---:|---|")
    for run_dir in args.runs:
        run = load_run(run_dir)
        spec, model = run.spec, run.model.eval()
        losses = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
        final_loss = [r["loss"] for r in losses if "loss" in r][-1]
        sampler = ContextSampler(load_dataset(spec.dataset), run.config.context_len, rtg_scale=spec.rtg_scale,
                                 state_mean=np.asarray(spec.state_mean, np.float32),
                                 state_std=np.asarray(spec.state_std, np.float32))
        batch = sampler.sample(args.windows, np.random.default_rng(0)).to_torch()
        lengths = batch.mask.sum(1).long()
        rows, last = torch.arange(len(lengths)), lengths - 1
        target = batch.actions[rows, last]
        with torch.no_grad():
            acted = model.act(batch.returns_to_go, batch.states, batch.actions, batch.timesteps, lengths=lengths)
            hidden, _ = model(batch.returns_to_go, batch.states, batch.actions, batch.timesteps)
            forced = model.codec.head.decode(model.codec.head(hidden), mode=model.decode_mode)[rows, last]
        per_feature = ((acted - target) ** 2).mean(0)
        print(f"| {run_dir} | {final_loss:.4f} | {float(per_feature.mean()):.4f} | "
              f"{float(((forced - target) ** 2).mean()):.4f} | {' / '.join(f'{x:.3f}' for x in per_feature.tolist())} |")


if __name__ == "__main__":
    main()
