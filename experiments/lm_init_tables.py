"""Convergence table of experiments/lm_init.yaml: steps and training time to reach within 2
normalized points of each arm's best, beside final scores (issue 13's measure).

    python experiments/lm_init_tables.py runs/lm_init > lm_init_tables.md

Reads every run's metrics.jsonl under the sweep's output root (its evaluations during training,
`eval_every`). For each arm (a run name without its seed: experiment, dataset, model, label):

- the curve is the mean over seeds of the normalized score at the dataset's highest target, at
  each evaluated step every seed of the arm reached;
- best: the curve's maximum; steps to best-2: the first evaluated step where the curve is within
  `--margin` (2) points of it;
- train s: training wall-clock to that step, from the logged steps_per_sec (evaluation time
  excluded, and so is set-up: tokenizing a co-training corpus, k-means), mean over seeds;
- final: mean ± std over seeds of the score at the last evaluated step.

Runs without evaluations (the LM pretraining runs) are skipped. The table says nothing by itself
about which arm is better: compare arms of one dataset, with their seed spread.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

SCORE = re.compile(r"^eval/target_(?P<target>[-0-9.e+]+)/score_mean$")


def _records(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line
    return out


def run_curve(run_dir: Path) -> tuple[dict[int, float], dict[int, float]] | None:
    """({eval step: score at the highest target}, {logged step: training seconds up to it}), or None."""
    records = _records(run_dir / "metrics.jsonl")
    evals = [r for r in records if r.get("kind") == "eval"]
    if not evals:
        return None
    targets = sorted({float(m["target"]) for r in evals for k in r if (m := SCORE.match(k))})
    if not targets:
        return None
    key = next(k for k in evals[0] if (m := SCORE.match(k)) and float(m["target"]) == targets[-1])
    scores = {int(r["step"]): float(r[key]) for r in evals if key in r}
    seconds, total, last = {0: 0.0}, 0.0, 0
    for r in records:
        if "steps_per_sec" in r:
            total += (int(r["step"]) - last) / max(float(r["steps_per_sec"]), 1e-9)
            last = int(r["step"])
            seconds[last] = total
    return scores, seconds


def _seconds_at(seconds: dict[int, float], step: int) -> float:
    """Training seconds at `step` (interpolated between logged steps)."""
    steps = sorted(seconds)
    return float(np.interp(step, steps, [seconds[s] for s in steps]))


def arm_rows(root: Path, margin: float = 2.0) -> list[dict[str, Any]]:
    groups: dict[str, list[tuple[dict[int, float], dict[int, float]]]] = {}
    for metrics in sorted(Path(root).rglob("metrics.jsonl")):
        run_dir = metrics.parent
        name = str(run_dir.relative_to(root))
        if not re.search(r"/s\d+$", name):
            continue
        curve = run_curve(run_dir)
        if curve is not None:
            groups.setdefault(name.rsplit("/", 1)[0], []).append(curve)
    rows = []
    for arm, runs in sorted(groups.items()):
        steps = sorted(set.intersection(*(set(scores) for scores, _ in runs)))
        if not steps:
            continue
        per_seed = np.array([[scores[s] for s in steps] for scores, _ in runs])  # (seeds, evals)
        mean = per_seed.mean(axis=0)
        best = float(mean.max())
        reached = steps[int(np.argmax(mean >= best - margin))]
        experiment, dataset, model = arm.split("/", 2)
        rows.append({
            "arm": f"{experiment}/{model}", "dataset": dataset, "seeds": len(runs),
            "final_mean": float(per_seed[:, -1].mean()), "final_std": float(per_seed[:, -1].std()),
            "final_step": steps[-1], "best": best, "steps_to_best": reached,
            "train_seconds_to_best": float(np.mean([_seconds_at(sec, reached) for _, sec in runs])),
        })
    return rows


def markdown(rows: list[dict[str, Any]], margin: float = 2.0) -> str:
    lines = [f"| dataset | arm | seeds | final score | best (mean curve) | steps to best-{margin:g} | train s to best-{margin:g} |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["arm"])):
        lines.append(f"| {r['dataset']} | {r['arm']} | {r['seeds']} | {r['final_mean']:.1f} ± {r['final_std']:.1f} "
                     f"(step {r['final_step']}) | {r['best']:.1f} | {r['steps_to_best']} | {r['train_seconds_to_best']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the sweep's output root (runs/lm_init)")
    parser.add_argument("--margin", type=float, default=2.0, help="normalized points below the best (2)")
    args = parser.parse_args()
    print(markdown(arm_rows(args.root, args.margin), args.margin), end="")


if __name__ == "__main__":
    main()
