"""Convergence table of experiments/lm_init.yaml: steps and training time to reach within 2
normalized points of each arm's best, beside final scores (issue 13's measure).

    python experiments/lm_init_tables.py runs/lm_init [--plot docs/results/lm_init] > lm_init_tables.md

Reads every run's metrics.jsonl under the sweep's output root (its evaluations during training,
`eval_every`). For each arm (a run name without its seed: experiment, dataset, model, label):

- the curve is the mean over seeds of the normalized score at the dataset's highest target, at
  each evaluated step every seed of the arm reached;
- best: the curve's maximum; steps to best-2: the first evaluated step where the curve is within
  `--margin` (2) points of it;
- train s: training wall-clock to that step, from the logged steps_per_sec (evaluation time
  excluded, and so is set-up: tokenizing a co-training corpus, k-means), mean over seeds;
- final: mean ± std over seeds of the score at the last evaluated step;
- curve mean: the mean curve's average over its evaluated steps (the area under the learning
  curve per evaluation), which an arm that plateaus early and low cannot win;
- steps / train s to ref-2: the first evaluated step (and its training seconds) where the curve is
  within the margin of its *reference* arm's best: the randomly initialised arm on the same dataset
  with the same action representation (`--reference`, default random/continuous and
  spread/tokenized-spread+random); "-" where it never gets there. This is the paper's question,
  how soon an initialisation reaches what random initialisation reaches at all.

Runs without evaluations (the LM pretraining runs) are skipped, and so are unfinished runs (no
final eval.json yet), as in `seqrl report`, unless `--include-unfinished`. The table says nothing by itself
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


REFERENCES = ("random/continuous", "spread/tokenized-spread+random")


def _first_within(steps: list[int], curve: np.ndarray, level: float) -> int | None:
    """The first evaluated step whose mean score is at least `level`, or None."""
    hits = np.flatnonzero(curve >= level)
    return steps[int(hits[0])] if hits.size else None


def arm_curves(root: Path, include_unfinished: bool = False) -> dict[tuple[str, str], dict[str, Any]]:
    """{(arm, dataset): steps, per-seed scores (seeds, evals) and each seed's training seconds}."""
    groups: dict[str, list[tuple[dict[int, float], dict[int, float]]]] = {}
    for metrics in sorted(Path(root).rglob("metrics.jsonl")):
        run_dir = metrics.parent
        name = str(run_dir.relative_to(root))
        if not re.search(r"/s\d+$", name) or not (include_unfinished or (run_dir / "eval.json").exists()):
            continue
        curve = run_curve(run_dir)
        if curve is not None:
            groups.setdefault(name.rsplit("/", 1)[0], []).append(curve)
    curves = {}
    for arm, runs in sorted(groups.items()):
        steps = sorted(set.intersection(*(set(scores) for scores, _ in runs)))
        if not steps:
            continue
        experiment, dataset, model = arm.split("/", 2)
        curves[(f"{experiment}/{model}", dataset)] = {
            "steps": steps, "per_seed": np.array([[scores[s] for s in steps] for scores, _ in runs]),
            "seconds": [sec for _, sec in runs]}
    return curves


def arm_rows(root: Path, margin: float = 2.0, references: tuple[str, ...] = REFERENCES,
             include_unfinished: bool = False) -> list[dict[str, Any]]:
    curves = arm_curves(root, include_unfinished)
    rows = []
    for (arm, dataset), c in curves.items():
        steps, per_seed, seconds = c["steps"], c["per_seed"], c["seconds"]
        mean = per_seed.mean(axis=0)
        best = float(mean.max())
        reached = _first_within(steps, mean, best - margin)
        rows.append({
            "arm": arm, "dataset": dataset, "seeds": len(per_seed),
            "final_mean": float(per_seed[:, -1].mean()), "final_std": float(per_seed[:, -1].std()),
            "final_step": steps[-1], "best": best, "steps_to_best": reached, "curve_mean": float(mean.mean()),
            "train_seconds_to_best": float(np.mean([_seconds_at(sec, reached) for sec in seconds])),
        })
    for row in rows:
        base = row["arm"].split("/", 1)[1].split("+")[0]  # the action representation
        ref = next((r for r in references if r.split("/", 1)[1].split("+")[0] == base), None)
        ref_curve = curves.get((ref, row["dataset"])) if ref else None
        row["reference"] = ref if ref_curve is not None else None
        row["steps_to_reference"] = row["train_seconds_to_reference"] = None
        if ref_curve is not None:
            own = curves[(row["arm"], row["dataset"])]
            steps, mean, seconds = own["steps"], own["per_seed"].mean(axis=0), own["seconds"]
            step = _first_within(steps, mean, float(ref_curve["per_seed"].mean(axis=0).max()) - margin)
            if step is not None:
                row["steps_to_reference"] = step
                row["train_seconds_to_reference"] = float(np.mean([_seconds_at(sec, step) for sec in seconds]))
    return rows


def markdown(rows: list[dict[str, Any]], margin: float = 2.0) -> str:
    lines = [(f"| dataset | arm | seeds | final score | best (mean curve) | curve mean | steps to best-{margin:g} "
              f"| train s to best-{margin:g} | steps to ref-{margin:g} | train s to ref-{margin:g} |"),
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["arm"])):
        ref_steps = "-" if r["steps_to_reference"] is None else str(r["steps_to_reference"])
        ref_secs = "-" if r["train_seconds_to_reference"] is None else f"{r['train_seconds_to_reference']:.0f}"
        lines.append(f"| {r['dataset']} | {r['arm']} | {r['seeds']} | {r['final_mean']:.1f} ± {r['final_std']:.1f} "
                     f"(step {r['final_step']}) | {r['best']:.1f} | {r['curve_mean']:.1f} | {r['steps_to_best']} "
                     f"| {r['train_seconds_to_best']:.0f} | {ref_steps} | {ref_secs} |")
    refs = sorted({r["reference"] for r in rows if r["reference"]})
    note = f"\nref: the randomly initialised arm of the same dataset and action representation ({', '.join(refs)}).\n" if refs else ""
    return "\n".join(lines) + "\n" + note


def plot_arms(root: Path, out: Path, include_unfinished: bool = False) -> dict[str, list[str]]:
    """One figure per dataset, lm_init-<dataset>.png: every arm's mean score (± std over seeds)
    against step and against training seconds. Returns {dataset: the arms drawn}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, list[str]] = {}
    every = arm_curves(root, include_unfinished)
    for dataset in sorted({d for _, d in every}):
        curves = {arm: c for (arm, d), c in every.items() if d == dataset}
        fig, (by_step, by_time) = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
        for arm, c in sorted(curves.items()):
            mean, std = c["per_seed"].mean(axis=0), c["per_seed"].std(axis=0)
            secs = np.mean([[_seconds_at(sec, s) for s in c["steps"]] for sec in c["seconds"]], axis=0)
            for ax, x in ((by_step, c["steps"]), (by_time, secs)):
                (line,) = ax.plot(x, mean, marker="o", markersize=3, label=arm)
                ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.12)
        by_step.set(xlabel="step", ylabel="normalized score (highest target)", title=dataset)
        by_time.set(xlabel="training seconds (evaluation excluded)", title=f"{dataset}: against wall-clock")
        by_time.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
        fig.tight_layout()
        fig.savefig(out / f"lm_init-{dataset}.png", dpi=100)
        plt.close(fig)
        drawn[dataset] = sorted(curves)
    return drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the sweep's output root (runs/lm_init)")
    parser.add_argument("--margin", type=float, default=2.0, help="normalized points below the best (2)")
    parser.add_argument("--reference", action="append", default=None,
                        help=f"a randomly initialised arm to measure the others against, as EXPERIMENT/MODEL; "
                             f"one per action representation (default: {', '.join(REFERENCES)})")
    parser.add_argument("--plot", type=Path, default=None,
                        help="also write one figure per dataset, every arm's curve, into this folder")
    parser.add_argument("--include-unfinished", action="store_true",
                        help="also read runs still training (their evaluations so far)")
    args = parser.parse_args()
    if not args.root.is_dir():
        parser.error(f"{args.root} is not a directory (the sweep's output root)")
    for ref in args.reference or ():
        if "/" not in ref:
            parser.error(f"--reference {ref!r}: expected EXPERIMENT/MODEL, such as random/continuous")
    references = tuple(args.reference) if args.reference else REFERENCES
    rows = arm_rows(args.root, args.margin, references, args.include_unfinished)
    if not rows:
        parser.error(f"no finished, evaluated runs under {args.root} (--include-unfinished reads runs still training)")
    if args.plot is not None:
        plot_arms(args.root, args.plot, args.include_unfinished)
    print(markdown(rows, args.margin), end="")


if __name__ == "__main__":
    main()
