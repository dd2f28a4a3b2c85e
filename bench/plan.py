"""Milliseconds per planning step per environment, and peak memory, of the TT's beam search.

Compares, at the authors' default settings (H 15, beam 128, expansion 2, context 5) and at the
CPU-scale settings (H 5, beam 16, expansion 2):
- (a) the reference planner, which re-encodes the window for every token as the authors' does
  (`use_cache=False`, the same function), for 1 environment;
- (b) seqrl's planner (key/value cache) for 1, 8 and 25 environments planned in one batch.
Every case runs in a fresh subprocess so its peak RSS is its own (CPU; on CUDA the peak
allocated memory). On the CPU each case runs on one torch thread (`--threads`) and the table
reports its process CPU time, which other processes sharing the machine inflate far less than
wall-clock time (the wall-clock time is in the JSON too). Plans are checked equal: (a) against (b) for one environment, and the first
environment of each batch against planning it alone.

The model is the authors' default size (width 128, 4 layers, 4 heads, 100 bins) with random
weights, on Hopper's dimensions (11 + 3 + 2 = 16 tokens per transition): planning cost does not
depend on what the weights learned.

    python bench/plan.py                       # both settings, the table of docs/benchmarks.md
    python bench/plan.py --settings cpu --envs 1 8 25 --json out.json
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _common import dump_json, machine, print_header, print_table  # noqa: E402

SETTINGS = {
    "default": dict(horizon=15, beam_width=128, expansion=2, context_transitions=5),
    "cpu": dict(horizon=5, beam_width=16, expansion=2, context_transitions=5),
}


def build(obs_dim: int, act_dim: int, seed: int = 0):
    import numpy as np

    from seqrl.data.tokenizer import TorchActionTokenizer
    from seqrl.families.tt.config import TTConfig
    from seqrl.families.tt.data import fit_discretizer
    from seqrl.families.tt.model import TrajectoryTransformer
    from seqrl.models.spec import DataSpec

    rng = np.random.default_rng(seed)
    T = obs_dim + act_dim + 2
    joined = rng.normal(size=(20_000, T)).astype(np.float32)
    discretizer = fit_discretizer(joined, 100, "quantile")
    spec = DataSpec(dataset="bench", env_id=None, obs_dim=obs_dim, act_dim=act_dim, max_timestep=1000,
                    state_mean=(0.0,) * obs_dim, state_std=(1.0,) * obs_dim, action_low=(-1.0,) * act_dim,
                    action_high=(1.0,) * act_dim, rtg_scale=1.0, targets=(), ref_min_score=None, ref_max_score=None)
    torch.manual_seed(seed)
    model = TrajectoryTransformer(TTConfig(dataset="bench"), spec, TorchActionTokenizer(discretizer)).eval()
    # A prefix as the policy builds it: 5 context transitions, then the current observation.
    dims = torch.arange(5 * T + obs_dim) % T
    local = torch.randint(0, 10_000, (25, len(dims)), generator=torch.Generator().manual_seed(seed))
    prefix = local % discretizer.bins_per_feature[dims] + torch.from_numpy(discretizer.offsets.copy())[dims]
    return model, prefix


def case(args: tuple) -> dict:
    """One measurement, in its own process: seconds per plan, peak memory, the plan of env 0."""
    settings_name, n_envs, use_cache, repeats, obs_dim, act_dim, device, threads = args
    from seqrl.families.tt.planner import PlannerSettings, beam_plan

    if threads:
        torch.set_num_threads(threads)
    model, prefix = build(obs_dim, act_dim)
    model.to(device)
    prefix = prefix[:n_envs].to(device)
    settings = PlannerSettings(**SETTINGS[settings_name], use_cache=use_cache)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times, cpu_times, plan = [], [], None
    for _ in range(repeats):
        generators = [torch.Generator(device=device).manual_seed(i) for i in range(n_envs)]
        start, cpu_start = time.perf_counter(), time.process_time()
        plan = beam_plan(model, prefix, settings, generators)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
               else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024)
    return {"settings": settings_name, "envs": n_envs, "planner": "seqrl (cached)" if use_cache else "reference (re-encode)",
            "wall_seconds": min(times), "cpu_seconds": min(cpu_times),
            "seconds": min(times) if device.startswith("cuda") else min(cpu_times),
            "peak_mb": peak_mb, "plan0": plan[0].cpu().tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=["cpu", "default"], choices=sorted(SETTINGS))
    parser.add_argument("--envs", nargs="+", type=int, default=[1, 8, 25])
    parser.add_argument("--max-envs-default", type=int, default=8,
                        help="largest batch at the default settings (25 x beam 128 x expansion 2 needs minutes per step on 2 cores)")
    parser.add_argument("--repeats", type=int, default=2, help="plans per case (the fastest counts)")
    parser.add_argument("--obs-dim", type=int, default=11)
    parser.add_argument("--act-dim", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per case (0: torch's default)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    info = machine()
    cases = []
    for name in args.settings:
        cases.append((name, 1, False, 1, args.obs_dim, args.act_dim, args.device, args.threads))
        for n in args.envs:
            if name == "default" and n > args.max_envs_default:
                continue
            cases.append((name, n, True, args.repeats if n == 1 else 1, args.obs_dim, args.act_dim, args.device,
                          args.threads))
    ctx = mp.get_context("spawn")
    results = []
    for c in cases:
        with ctx.Pool(1) as pool:
            results.append(pool.apply(case, (c,)))
        r = results[-1]
        print(f"  {r['settings']:>7} {r['planner']:<22} envs={r['envs']:<3} {r['seconds']:.2f} s/plan "
              f"(wall {r['wall_seconds']:.2f} s)", file=sys.stderr)
    rows, checks = [], []
    for name in args.settings:
        mine = [r for r in results if r["settings"] == name]
        reference = next(r for r in mine if r["planner"].startswith("reference"))
        ref_ms = reference["seconds"] * 1000
        for r in mine:
            per_env = r["seconds"] * 1000 / r["envs"]
            rows.append([name, r["planner"], r["envs"], round(r["seconds"] * 1000, 1), round(per_env, 1),
                         round(ref_ms / per_env, 1), round(r["peak_mb"], 1)])
            if r is not reference:
                checks.append((name, r["envs"], r["plan0"] == reference["plan0"]))
    s = SETTINGS
    print_header("TT beam-search planning: ms per planning step", info)
    print("settings: " + "; ".join(f"{k}: H {v['horizon']}, beam {v['beam_width']}, expansion {v['expansion']}, "
                                     f"context {v['context_transitions']}" for k, v in s.items() if k in args.settings))
    print(f"model: width 128, 4 layers, 4 heads, 100 bins, obs {args.obs_dim} + act {args.act_dim} (T = "
          f"{args.obs_dim + args.act_dim + 2}), random weights\n")
    clock = "wall-clock" if args.device.startswith("cuda") else f"CPU time, {args.threads or 'default'} thread(s)"
    print(f"times: {clock}; peak MB: the case's own peak resident memory above the model's\n")
    print_table(["settings", "planner", "envs", "ms per step", "ms per step per env", "x reference per env",
                 "peak MB"], rows)
    print()
    for name, n, equal in checks:
        print(f"plan of env 0 ({name}, {n} envs) equals the reference's: {equal}")
    dump_json(args.json, {"machine": info, "args": vars(args), "results": results, "checks": checks})
    if not all(equal for _, _, equal in checks):
        raise SystemExit("plans differ")


if __name__ == "__main__":
    main()
