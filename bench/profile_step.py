"""Where a seqrl training step's time goes: torch.profiler over a few steps, ops grouped.

    python bench/profile_step.py                    # continuous, CORL-sized, as in docs/benchmarks.md
    python bench/profile_step.py --model tokenized-spread --threads 1

Same step as bench/train_step.py (forward, loss, backward, clip 0.25, AdamW). Prints the share
of self CPU time per group of ops (matmuls, dropout RNG, GELU, ...) and the matmuls' achieved
GFLOP/s, then torch.profiler's own top-20 table.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from _common import machine, print_header, print_table
from seqrl.families.dt.config import VARIANTS
from seqrl.data.sampler import ContextSampler
from seqrl.models.spec import DataSpec
from train_step import build_seqrl, synthetic_dataset

GROUPS = {
    "matmul (mm, addmm, bmm)": ("aten::mm", "aten::addmm", "aten::bmm"),
    "dropout RNG (bernoulli_)": ("aten::bernoulli_",),
    "GELU fwd+bwd": ("aten::gelu", "aten::gelu_backward"),
    "LayerNorm fwd+bwd": ("aten::native_layer_norm", "aten::native_layer_norm_backward"),
    "AdamW": ("aten::_fused_adamw_", "Optimizer.step#AdamW.step"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="continuous", choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = argparse.Namespace(batch=64, context=20, embed=128, layers=3, heads=1, dropout=0.1, obs_dim=11, act_dim=3)
    dataset = synthetic_dataset(shape.obs_dim, shape.act_dim, 50_000)
    spec = DataSpec.from_dataset(dataset, rtg_scale=0.001, targets=(1.0,))
    sampler = ContextSampler(dataset, shape.context, rtg_scale=spec.rtg_scale)
    batch = sampler.sample(shape.batch, np.random.default_rng(0)).to_torch()
    impl = build_seqrl(args.model, shape, dataset, spec, "fp32")
    for _ in range(3):
        impl.step(batch)
    counter = FlopCounterMode(display=False)
    with counter:
        impl.loss(batch).backward()
    flops = counter.get_total_flops()

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            impl.step(batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    by_group: dict[str, float] = defaultdict(float)
    for e in events:
        group = next((g for g, names in GROUPS.items() if e.key in names), "everything else")
        by_group[group] += e.self_cpu_time_total
    step_ms = total / 1e3 / args.steps

    print_header(f"Profile of one seqrl {args.model} training step", machine())
    print(f"{args.steps} profiled steps; {step_ms:.0f} ms/step of self CPU time under the profiler; {flops / 1e9:.1f} GFLOP/step\n")
    rows = []
    for group in [*GROUPS, "everything else"]:
        ms = by_group[group] / 1e3 / args.steps
        extra = f"{flops / 1e9 / (ms / 1e3):.0f} GFLOP/s" if group.startswith("matmul") else ""
        rows.append([group, ms, f"{100 * by_group[group] / total:.0f}%", extra])
    print_table(["ops", "ms/step", "share", "note"], rows)
    print()
    print(events.table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    sys.exit(main())
