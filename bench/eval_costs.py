"""The costs behind docs/benchmarks.md's "where the evaluation time goes": FLOPs of one batched
`act`, the time of one `act` call at batch 1, and what Hopper environments cost to build and step.

    python bench/eval_costs.py --json docs/bench-results/eval_costs.json

Model: bench/evaluate.py's freshly initialised CORL-sized continuous DT (width 128, 3 layers,
context 20) on Hopper-v5 shapes. FLOPs are counted by torch.utils.flop_counter.FlopCounterMode
(matmuls and attention) for one `act` over full 20-step contexts. Environments: seqrl's
`make_vector_env` (a SyncVectorEnv with autoreset, as `evaluate` builds it), reset with seed 0
and stepped with zero actions; episodes that end are reset by the vector env and keep stepping,
so every one of the N x steps sub-env steps is a MuJoCo step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from _common import dump_json, machine, print_header, print_table
from evaluate import fresh_model


def act_args(batch: int, context: int, obs_dim: int, act_dim: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(batch, context, 1, generator=g), torch.randn(batch, context, obs_dim, generator=g),
            torch.rand(batch, context, act_dim, generator=g) * 2 - 1, torch.arange(context).repeat(batch, 1))


def act_flops(model, args) -> int:
    with FlopCounterMode(display=False) as counter:
        model.act(*args)
    return int(counter.get_total_flops())


def act_seconds(model, args, repeats: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of this process per call."""
    model.act(*args)  # first-call costs
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        model.act(*args)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def env_costs(env_id: str, n: int, steps: int) -> dict[str, float]:
    """Wall and CPU seconds to build `n` envs and to take `steps` vector steps of all of them."""
    from seqrl.collect.rollout import make_vector_env

    start, start_cpu = time.perf_counter(), time.process_time()
    envs = make_vector_env(env_id, n, autoreset_mode="same_step")
    out = {"build_wall": time.perf_counter() - start, "build_cpu": time.process_time() - start_cpu}
    envs.reset(seed=0)
    actions = np.zeros((n, envs.single_action_space.shape[0]), np.float32)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        envs.step(actions)
    out.update(step_wall=time.perf_counter() - start, step_cpu=time.process_time() - start_cpu)
    envs.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--envs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, spec, context = fresh_model(args.env, "continuous", 20)
    info = machine()
    print_header(f"Evaluation costs: {args.env}, fresh CORL-sized continuous DT, context {context}", info)
    rows, results = [], {}
    for batch in (args.envs, 1):
        a = act_args(batch, context, spec.obs_dim, spec.act_dim)
        flops = act_flops(model, a)
        wall, cpu = act_seconds(model, a, args.repeats)
        results[f"act_batch_{batch}"] = {"flops": flops, "wall_seconds": wall, "cpu_seconds": cpu}
        rows.append([f"`act`, batch {batch} x {context} steps", f"{flops / 1e9:.3f}", f"{1000 * wall:.2f}",
                     f"{1000 * cpu:.2f}"])
    print_table(["call", "GFLOP", "wall ms (median)", "CPU ms (median)"], rows)
    env = env_costs(args.env, args.envs, args.steps)
    n_steps = args.envs * args.steps
    results["envs"] = {"n": args.envs, "steps": args.steps, **env}
    print()
    print_table(["environments", "wall s", "CPU s", "per env step, wall", "per env step, CPU"], [
        [f"make {args.envs} {args.env} (SyncVectorEnv)", f"{env['build_wall']:.2f}", f"{env['build_cpu']:.2f}", "-", "-"],
        [f"{args.steps} vector steps of all {args.envs}", f"{env['step_wall']:.2f}", f"{env['step_cpu']:.2f}",
         f"{1e6 * env['step_wall'] / n_steps:.0f} µs", f"{1e6 * env['step_cpu'] / n_steps:.0f} µs"],
    ])
    print("\nCPU time is this process's (time.process_time): what an otherwise idle core would take; "
          "wall time includes waiting for the cores when the machine is shared.")
    dump_json(args.json, {"benchmark": "eval_costs", "machine": info, "env_id": args.env, "results": results})


if __name__ == "__main__":
    main()
