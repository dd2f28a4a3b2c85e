"""Evaluation speed: seqrl's vectorized `evaluate` against the one-env-at-a-time
`evaluate_sequential`, 100 episodes of a MuJoCo task, the same model and seeds.

    python bench/evaluate.py                       # fresh CORL-sized DT on Hopper-v5 (table in docs)
    python bench/evaluate.py --run runs/hopper-medium-continuous-s0 --json out.json
    python bench/evaluate.py --model tokenized-spread --ablations   # + act without the key/value cache

The model is a freshly initialised CORL-sized Decision Transformer (width 128, 3 layers, 1 head,
context 20) unless --run names a trained run directory. A fresh model's hopper falls within tens
of steps, so episodes are short: the table reports the episode lengths next to the times, and
per-env-step throughput, which is what carries over to longer episodes. Decoding is
deterministic, so both loops produce the same episodes up to matmul rounding (the largest
per-episode return difference is Repetitions alternate the two loops; medians are reported, with the share of the
vectorized loop's time spent inside `model.act`.
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
import time
from typing import Any

import numpy as np
import torch

from _ablations import all_positions
from _common import dump_json, machine, median, print_header, print_table
from seqrl.loading import build_model
from seqrl.families.dt.config import VARIANTS, TrainConfig
from seqrl.evaluation.evaluate import evaluate, evaluate_sequential
from seqrl.models.spec import DataSpec


def fresh_model(env_id: str, variant: str, context: int) -> tuple[Any, DataSpec, int]:
    import gymnasium as gym

    env = gym.make(env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = env.action_space.low, env.action_space.high
    env.close()
    spec = DataSpec(
        dataset=f"fresh-{env_id}", env_id=env_id, obs_dim=obs_dim, act_dim=act_dim, max_timestep=1000,
        state_mean=(0.0,) * obs_dim, state_std=(1.0,) * obs_dim,
        action_low=tuple(float(x) for x in low), action_high=tuple(float(x) for x in high),
        rtg_scale=0.001, targets=(3600.0,), ref_min_score=None, ref_max_score=None,
    )
    cfg = TrainConfig(dataset=spec.dataset, model=variant, context_len=context)
    tokenizer = None
    if cfg.uses_tokenizer:
        from seqrl.data.tokenizer import ActionTokenizer

        # Uniform bins over the action box: a fresh model has no data to take quantiles from.
        samples = np.random.default_rng(0).uniform(low, high, size=(10_000, act_dim)).astype(np.float32)
        tokenizer = ActionTokenizer.fit(samples, cfg.num_bins, strategy="uniform", low=low, high=high)
    torch.manual_seed(0)
    return build_model(cfg, spec, tokenizer).eval(), spec, context


class ActTimer:
    """Wraps `model.act` to add up the time spent in it."""

    def __init__(self, model: Any) -> None:
        self.model, self.seconds, self.calls = model, 0.0, 0
        self._act = model.act

        def timed(*args: Any, **kwargs: Any) -> torch.Tensor:
            start = time.perf_counter()
            out = self._act(*args, **kwargs)
            self.seconds += time.perf_counter() - start
            self.calls += 1
            return out

        model.act = timed

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--model", default="continuous", choices=VARIANTS, help="action representation of the fresh model")
    parser.add_argument("--context", type=int, default=20)
    parser.add_argument("--run", default=None, help="evaluate this trained run directory's model instead of a fresh one")
    parser.add_argument("--target", type=float, default=3600.0)
    parser.add_argument("--repeats", type=int, default=3, help="alternating repetitions of both loops (median reported)")
    parser.add_argument("--ablations", action="store_true", help="also time the vectorized loop with the last block at every position "
                        "(before pruning), and for spread models with act re-running the context per feature (before the key/value cache)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.run:
        from seqrl.loading import load_run

        loaded = load_run(args.run)
        model, spec, context = loaded.model.eval(), loaded.spec, loaded.config.context_len
        described = f"trained run {args.run} ({loaded.config.model}, step {loaded.step})"
    else:
        model, spec, context = fresh_model(args.env, args.model, args.context)
        described = f"freshly initialised CORL-sized DT ({args.model}, width 128, 3 layers, context {context}, seed 0)"
    env_id = args.env if not args.run else None
    common = dict(context_len=context, targets=(args.target,), episodes=args.episodes, seed=0, device="cpu", env_id=env_id)
    spread = model.codec.tokens_per_step > 1
    # Copied before ActTimer wraps `model.act` (an instance attribute deepcopy would share).
    uncached = copy.deepcopy(model) if args.ablations and spread else None
    timers = [ActTimer(model)]

    loops = {
        "vectorized (evaluate)": lambda: evaluate(model, spec, **common),
        "one env at a time (evaluate_sequential)": lambda: evaluate_sequential(model, spec, **common),
    }
    if uncached is not None:
        uncached.act = functools.partial(uncached.act, use_cache=False)
        timers.append(ActTimer(uncached))
        loops["vectorized, act without key/value cache (before)"] = lambda: evaluate(uncached, spec, **common)
    if args.ablations:
        before = all_positions(fresh_model(args.env, args.model, args.context)[0]) if not args.run else None
        if before is not None:
            before.load_state_dict(model.state_dict())
            if spread:  # the code before pruning had no cache either (and its forward takes no `cache`)
                before.act = functools.partial(before.act, use_cache=False)
            timers.append(ActTimer(before))
            loops["vectorized, last block at all positions (before)"] = lambda: evaluate(before, spec, **common)

    times: dict[str, list[float]] = {name: [] for name in loops}
    act_share: dict[str, list[float]] = {name: [] for name in loops}
    results: dict[str, dict[str, Any]] = {}
    loops["vectorized (evaluate)"]()  # warm-up (MuJoCo model compile, thread pools)
    for _ in range(args.repeats):
        for name, run in loops.items():
            for timer in timers:
                timer.reset()
            start = time.perf_counter()
            results[name] = run()[0]
            elapsed = time.perf_counter() - start
            times[name].append(elapsed)
            act_share[name].append(sum(timer.seconds for timer in timers) / elapsed)

    ref = results["vectorized (evaluate)"]
    env_steps = int(np.sum(ref["lengths"]))
    seq_time = median(times["one env at a time (evaluate_sequential)"])
    rows, out = [], []
    for name in loops:
        r = results[name]
        # Batch size changes matmul rounding, so actions agree to ~1e-6, not bitwise, and MuJoCo
        # can amplify that over an episode: report the largest per-episode return difference.
        diff = float(np.max(np.abs(np.asarray(r["returns"]) - np.asarray(ref["returns"]))))
        t = median(times[name])
        row = {"loop": name, "seconds": t, "speedup_vs_sequential": seq_time / t, "env_steps_per_s": env_steps / t,
               "time_in_model_act": median(act_share[name]), "return_mean": r["return_mean"],
               "length_mean": r["length_mean"], "max_abs_return_diff_vs_vectorized": diff}
        out.append(row)
        rows.append([name, t, seq_time / t, env_steps / t, f"{100 * row['time_in_model_act']:.0f}%" if name != "one env at a time (evaluate_sequential)" else "-",
                     r["return_mean"], r["length_mean"], f"{diff:.2g}"])

    print_header(f"Evaluation: {args.episodes} episodes of {args.env if not args.run else spec.env_id}", machine())
    print(f"model: {described}; target return {args.target:g}; {env_steps} env steps in all "
          f"(episode length {np.min(ref['lengths'])}..{np.max(ref['lengths'])}); {args.repeats} alternating repetitions, median\n")
    print_table(["loop", "seconds", "x vs one-at-a-time", "env steps/s", "time in model.act", "return mean", "length mean", "max Δ return vs vectorized"], rows)
    dump_json(args.json, {"benchmark": "evaluate", "command": " ".join(sys.argv), "machine": machine(), "config": vars(args),
                          "model": described, "env_steps": env_steps, "results": out})


if __name__ == "__main__":
    main()
