"""Data-side throughput: ContextSampler windows/s and action-tokenizer encode throughput.

    python bench/sampler.py                 # 1M transitions of hopper-shaped data (table in docs)
    python bench/sampler.py --transitions 2000000 --json out.json

The dataset is synthetic with hopper's shapes (obs 11, act 3, float32) and episode lengths
drawn from 20..1000 steps, like a D4RL hopper-medium-replay mix; only sizes matter here. Rows:
sampling a batch (numpy gather), the batch's conversion to torch tensors, and encoding actions
with the numpy and torch tokenizers (256 quantile bins per feature), all timed with interleaved
repetitions, medians reported. The training step (bench/train_step.py) takes ~100-400 ms on
this class of machine, so the sampler's share of a step is the last column.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from _common import dump_json, interleaved, machine, median, print_header, print_table, spread
from seqrl.data.sampler import ContextSampler
from seqrl.data.tokenizer import ActionTokenizer, TorchActionTokenizer
from seqrl.data.trajectories import TrajectoryDataset


def hopper_shaped(transitions: int, obs_dim: int = 11, act_dim: int = 3, seed: int = 0) -> TrajectoryDataset:
    """Random episodes of 20..1000 steps adding up to `transitions` (the last one cut to fit)."""
    rng = np.random.default_rng(seed)
    lengths = []
    while sum(lengths) < transitions:
        lengths.append(int(rng.integers(20, 1001)))
    lengths[-1] -= sum(lengths) - transitions
    if lengths[-1] < 1:
        lengths.pop()
    episodes = []
    for t in lengths:
        terminated = np.zeros(t, bool)
        terminated[-1] = t < 1000
        episodes.append(dict(
            observations=rng.normal(size=(t + 1, obs_dim)).astype(np.float32),
            actions=np.clip(rng.normal(size=(t, act_dim)), -1, 1).astype(np.float32),
            rewards=rng.normal(size=t) + 3.0,
            terminations=terminated,
            truncations=~terminated & (np.arange(t) == t - 1),
        ))
    meta = {"name": "synthetic-hopper", "env_id": None, "action_low": [-1.0] * act_dim, "action_high": [1.0] * act_dim}
    return TrajectoryDataset.from_episodes(episodes, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--context", type=int, default=20)
    parser.add_argument("--bins", type=int, default=256)
    parser.add_argument("--encode-rows", type=int, default=100_000, help="actions per tokenizer encode call")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--inner", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    dataset = hopper_shaped(args.transitions)
    sampler = ContextSampler(dataset, args.context, rtg_scale=0.001)
    tokenizer = ActionTokenizer.fit(dataset.actions, args.bins)
    torch_tokenizer = TorchActionTokenizer(tokenizer)
    rng = np.random.default_rng(0)
    actions = dataset.actions[rng.integers(0, dataset.num_transitions, args.encode_rows)]
    actions_t = torch.from_numpy(actions)
    batch = sampler.sample(args.batch, rng)
    window_actions = torch.from_numpy(batch.actions)  # (B, K, act): what the model encodes per step

    cases = {
        "ContextSampler.sample": lambda: sampler.sample(args.batch, rng),
        "sample + Batch.to_torch": lambda: sampler.sample(args.batch, rng).to_torch(),
        "ActionTokenizer.encode (numpy)": lambda: tokenizer.encode(actions),
        "TorchActionTokenizer.encode": lambda: torch_tokenizer.encode(actions_t),
        "TorchActionTokenizer.encode, one batch": lambda: torch_tokenizer.encode(window_actions),
    }
    for fn in cases.values():
        fn()
    inner = {"ActionTokenizer.encode (numpy)": max(1, args.inner // 10), "TorchActionTokenizer.encode": max(1, args.inner // 10)}
    times = interleaved(cases, args.repeats, inner=args.inner, inner_for=inner)

    windows = args.batch
    rows, results = [], []
    for name, ts in times.items():
        t = median(ts)
        if "one batch" in name or "sample" in name:
            per = f"{windows / t:,.0f} windows/s" if "sample" in name else f"{window_actions.shape[0] * window_actions.shape[1] / t:,.0f} actions/s"
        else:
            per = f"{args.encode_rows / t / 1e6:.1f} M actions/s"
        results.append({"name": name, "seconds_per_call": t, "spread": spread(ts), "throughput": per})
        rows.append([name, t * 1e3, spread(ts), per])

    print_header("Data pipeline throughput", machine())
    print(f"dataset: {dataset.num_transitions:,} transitions in {dataset.num_episodes:,} episodes (obs 11, act 3); "
          f"batch {args.batch} x K {args.context}; tokenizer {args.bins} quantile bins/feature, encode calls of "
          f"{args.encode_rows:,} actions; {args.repeats} interleaved rounds, median\n")
    print_table(["operation", "ms/call", "IQR/med", "throughput"], rows)
    dump_json(args.json, {"benchmark": "sampler", "command": " ".join(sys.argv), "machine": machine(), "config": vars(args), "results": results})


if __name__ == "__main__":
    main()
