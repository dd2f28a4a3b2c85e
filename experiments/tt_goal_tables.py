"""The goal-reaching table of docs/RESULTS.md, printed from each run's eval.json (so no number
is copied by hand): success rate and steps to the goal per run, and per arm mean ± std over
seeds, for every finished run of an `experiments/tt_goal.yaml` sweep folder:

    python experiments/tt_goal_tables.py /work/tt-runs/tt_goal > docs/results/tt_goal/tt_goal_tables.md

An arm is a run's path without its seed (`goal/pointmaze-fourrooms/tt+episode-end`). Steps to
the goal are averaged over the successful episodes of a run; a run with none has no value.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def fmt(values: list[float], digits: int = 1) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (1 seed)"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="the sweep's output folder")
    args = parser.parse_args()
    arms: dict[str, list[dict]] = defaultdict(list)
    print("| run | episodes | success rate (%) | steps to goal (successes) | eval s per episode |")
    print("|---|---:|---:|---:|---:|")
    for path in sorted(args.runs.glob("**/s*/eval.json")):
        report = json.loads(path.read_text())
        result = report["results"][0]
        if "success_rate" not in result:
            continue
        name = str(path.parent.relative_to(args.runs))
        steps = result["steps_to_goal_mean"]
        print(f"| {name} | {result['episodes']} | {100 * result['success_rate']:.0f} | "
              f"{'–' if steps is None else f'{steps:.0f}'} | {report['wall_time_per_episode_s']:.1f} |")
        arms[str(path.parent.parent.relative_to(args.runs))].append(result)
    print("\n| arm | seeds | success rate (%) | steps to goal |")
    print("|---|---:|---:|---:|")
    for arm, results in sorted(arms.items()):
        rates = [100 * r["success_rate"] for r in results]
        steps = [r["steps_to_goal_mean"] for r in results if r["steps_to_goal_mean"] is not None]
        print(f"| {arm} | {len(results)} | {fmt(rates)} | {fmt(steps, 0)} |")


if __name__ == "__main__":
    main()
