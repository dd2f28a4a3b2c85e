"""Collection throughput: batched policy inference over a vector env vs one env at a time.

Collects `hopper-medium` data (the zoo's SAC agent on Hopper-v5) with `seqrl.collect.collect`
under several layouts, all with the same policy and the same rollout loop:

- `single`: one environment;
- `batched`: n environments, ONE policy call per vector step on an (n, obs_dim) batch;
- `per-env`: n environments, n policy calls per vector step, one observation each
  (what a rollout loop that does not batch inference costs);
- `async`: batched, with AsyncVectorEnv (one process per environment) instead of SyncVectorEnv;
- `torch-threads`: batched, with inference on torch's default thread count instead of the
  single thread `load_zoo_policy` uses by default.

Reports transitions per second (best of --repeats, since the machine is shared) and the ratio
to `single`. Usage:

    python bench/collect.py --zoo ../shared/zoo [--transitions 5000] [--envs 4 8 16] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
import warnings

import numpy as np


class PerEnvPolicy:
    """Calls the wrapped policy once per environment (batch of one) instead of once per step."""

    def __init__(self, policy):
        self.policy = policy
        self.spec = dict(policy.spec, per_env_calls=True)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([self.policy(obs[i : i + 1]) for i in range(len(obs))])


def measure(policy, n_envs: int, transitions: int, repeats: int, vectorization: str = "sync") -> float:
    """Best transitions/s over `repeats` runs (the same seed each time)."""
    from seqrl.collect.rollout import collect

    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        collect("Hopper-v5", policy, transitions, n_envs=n_envs, seed=0, vectorization=vectorization)
        best = max(best, transitions / (time.perf_counter() - start))
    return best


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoo", default=os.environ.get("SEQRL_ZOO"), help="rl-baselines3-zoo folder (default $SEQRL_ZOO)")
    parser.add_argument("--transitions", type=int, default=5000, help="transitions per measurement")
    parser.add_argument("--envs", type=int, nargs="+", default=[4, 8, 16], help="vector sizes to try")
    parser.add_argument("--repeats", type=int, default=2, help="runs per layout; the best is kept")
    parser.add_argument("--no-async", action="store_true", help="skip the AsyncVectorEnv rows")
    parser.add_argument("--no-threads", action="store_true", help="skip the torch-default-threads rows")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    import torch

    from seqrl.collect.recipes import get_recipe
    from seqrl.collect.policies import load_zoo_policy

    algo = get_recipe("hopper-medium").sources[0].policy
    policy = load_zoo_policy(args.zoo, algo, "Hopper-v5")
    threaded = load_zoo_policy(args.zoo, algo, "Hopper-v5", num_threads=None)
    measure(policy, 1, 200, 1)  # warm-up: imports, first MuJoCo model compile

    rows = []
    single = measure(policy, 1, args.transitions, args.repeats)
    rows.append({"layout": "single", "n_envs": 1, "policy_calls_per_step": 1, "transitions_per_s": single})
    for n in args.envs:
        layouts = [("batched", policy, 1, "sync"), ("per-env", PerEnvPolicy(policy), n, "sync")]
        if not args.no_async:
            layouts.append(("async", policy, 1, "async"))
        if not args.no_threads:
            layouts.append(("torch-threads", threaded, 1, "sync"))
        for name, pol, calls, vectorization in layouts:
            rate = measure(pol, n, args.transitions, args.repeats, vectorization)
            rows.append({"layout": name, "n_envs": n, "policy_calls_per_step": calls, "transitions_per_s": rate})
    for row in rows:
        row["vs_single"] = row["transitions_per_s"] / single

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    machine = f"{cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads; policy inference on 1)"
    if args.json:
        print(json.dumps({"command": command, "machine": machine, "policy": f"zoo {algo} Hopper-v5", "rows": rows}, indent=2))
        return
    print(f"$ {command}")
    print(f"machine: {machine}; policy: zoo {algo} on Hopper-v5; {args.transitions} transitions, best of {args.repeats}")
    print()
    print("| layout | envs | policy calls / step | transitions/s | vs single env |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        calls = "n" if row["layout"] == "per-env" else "1"
        print(f"| {row['layout']} | {row['n_envs']} | {calls} | {row['transitions_per_s']:.0f} | {row['vs_single']:.2f}x |")


if __name__ == "__main__":
    main()
