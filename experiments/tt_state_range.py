"""Do a policy's closed-loop states leave the data's range? For each run, its episodes' observations
against each dimension's [min, max] over the run's dataset: the TT's lowest and highest bin edges,
past which every state is read as its first or last bin.

A policy that stays where its data went visits few states outside that box; one whose small
errors compound drifts out of it before it fails. Printed per run: the normalized score, the
episode length, the share of episodes with any dimension outside the box, the median step at which
that first happens, and the share of dimensions outside at the episode's last state.

    python experiments/tt_state_range.py RUN_DIR [RUN_DIR ...] [--episodes 10] [--seed 10000]
        [--planner horizon=1 beam_width=1 expansion=1 action_top_k=1]

TT runs plan with their own settings (`eval_horizon`, `eval_beam_width`), `--planner` on top;
other families act as `seqrl eval` has them (a DT at its highest target). The episodes use the
evaluation seeds (10000 on, as a sweep's final evaluation).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def range_exits(observations: list[np.ndarray], low: np.ndarray, high: np.ndarray) -> dict[str, float]:
    """Summary of episodes' (length + 1, obs_dim) observations against the box [low, high]."""
    first, last_outside, left = [], [], 0
    for episode in observations:
        outside = (episode < low) | (episode > high)  # (T + 1, obs_dim)
        steps = np.flatnonzero(outside.any(1))
        if len(steps):
            left += 1
            first.append(int(steps[0]))
        last_outside.append(float(outside[-1].mean()))
    return {"left": left / len(observations), "first_step_median": float(np.median(first)) if first else None,
            "last_state_outside": float(np.mean(last_outside))}


def parse_planner(items: list[str]) -> dict:
    settings = {}
    for item in items:
        key, _, value = item.partition("=")
        if not value:
            raise SystemExit(f"--planner takes KEY=VALUE, got {item!r}")
        try:
            settings[key.replace("-", "_")] = int(value)
        except ValueError:
            try:
                settings[key.replace("-", "_")] = float(value)
            except ValueError:
                settings[key.replace("-", "_")] = value
    return settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=10000)
    parser.add_argument("--planner", nargs="*", default=[], metavar="KEY=VALUE",
                        help="TT planner settings on top of the run's own")
    args = parser.parse_args(argv)
    import torch

    from seqrl.data.sources import load_dataset
    from seqrl.evaluation.rollout import evaluate
    from seqrl.loading import load_run

    torch.set_num_threads(1)
    planner = parse_planner(args.planner)
    print("| run | how it acts | score | episode length | episodes leaving the data's range | "
          "median first step outside | dims outside at the last state |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for run_dir in args.runs:
        run = load_run(run_dir, torch.device("cpu"))
        observations = load_dataset(run.config.dataset).observations
        low, high = observations.min(0), observations.max(0)
        is_tt = run.family == "tt"
        targets = None
        if run.family == "dt":
            targets = [max(run.spec.targets)] if getattr(run.spec, "targets", None) else None
        records: list = []
        result = evaluate(run.model, run.spec, config=run.config, episodes=args.episodes, seed=args.seed,
                          settings=planner if is_tt and planner else None, targets=targets, records=records,
                          progress=False)[-1]
        exits = range_exits(records[-1].observations, low, high)
        how = ", ".join(f"{k}={v}" for k, v in planner.items()) if is_tt and planner else (
            "own planner" if is_tt else run.family)
        first = "–" if exits["first_step_median"] is None else f"{exits['first_step_median']:.0f}"
        print(f"| {run_dir} | {how} | {result['score_mean']:.1f} ± {result['score_std']:.1f} | "
              f"{result['length_mean']:.0f} | {100 * exits['left']:.0f}% | {first} | "
              f"{100 * exits['last_state_outside']:.0f}% |")


if __name__ == "__main__":
    main()
