"""Discrete LunarLander tables (docs/RESULTS.md, issue 28 section 6): the DT (continuous and pooled
tokenized action representations) against BC and 10% BC on lunarlander-discrete-medium and -mixed,
from the eval.json files of an experiments/discrete.yaml sweep, with the effects as differences of
means over seeds and 95% bootstrap intervals (seqrl.experiments.effects).

    python experiments/discrete_tables.py runs/discrete [--out docs/results/discrete]

ROOT is a sweep's output (ROOT/EXPERIMENT/DATASET/ARM/sSEED/eval.json) or the copy of its run files
committed under docs/results/discrete/runs, from which the committed tables regenerate byte for byte.
Writes OUT/results.json (every run's normalized score at each target; means and standard deviations
over seeds) and OUT/table.md, and prints the table.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import run_tables  # experiments/, beside this script: the command line the table scripts share

from seqrl.experiments.effects import bootstrap_difference

ARMS = (("continuous", "DT, continuous"), ("tokenized", "DT, pooled tokenized"), ("bc+all", "BC"),
        ("bc+top10", "10% BC"))
# (baseline arm, other arm): each effect is other minus baseline
EFFECTS = (("bc+all", "continuous"), ("bc+top10", "continuous"), ("bc+all", "tokenized"), ("bc+top10", "tokenized"),
           ("continuous", "tokenized"))


def _label(arm: str) -> str:
    return dict(ARMS)[arm]


def collect_results(root: Path) -> dict:
    """{dataset: {arm: {"seeds": {seed: {target: {...}}}, "score_mean", "score_std"}}}: the score
    of an arm is its normalized score at the highest target (BC: its only evaluation)."""
    out: dict = {}
    for path in sorted(root.glob("*/*/*/s*/eval.json")):
        seed_dir, arm_dir, dataset_dir = path.parent, path.parent.parent, path.parent.parent.parent
        report = json.loads(path.read_text())
        per_target = {}
        for result in report["results"]:
            target = "none" if result["target"] is None else f"{result['target']:.1f}"
            per_target[target] = {key: result[key] for key in ("score_mean", "score_std", "return_mean",
                                                               "length_mean", "episodes")}
        highest = max(report["results"], key=lambda r: -np.inf if r["target"] is None else r["target"])
        arm = out.setdefault(dataset_dir.name, {}).setdefault(arm_dir.name, {"seeds": {}})
        arm["seeds"][seed_dir.name[1:]] = {"score": highest["score_mean"], "targets": per_target}
    for arms in out.values():
        for arm in arms.values():
            scores = [s["score"] for s in arm["seeds"].values()]
            arm["score_mean"], arm["score_std"] = float(np.mean(scores)), float(np.std(scores))
    return out


def _ordered(seeds: dict) -> list:
    return [seeds[s] for s in sorted(seeds, key=int)]


def scores_table(results: dict) -> list[str]:
    lines = ["| dataset | method | normalized score (highest target), mean ± std over seeds | per seed | "
             "at the lower target (DT) |", "|---|---|---:|---|---:|"]
    for dataset, arms in results.items():
        for key, label in ARMS:
            if key not in arms:
                continue
            arm = arms[key]
            seeds = _ordered(arm["seeds"])
            per_seed = ", ".join(f"{s['score']:.1f}" for s in seeds)
            lower = ""
            targets = sorted({t for s in seeds for t in s["targets"] if t != "none"}, key=float)
            if len(targets) > 1:
                low = [s["targets"][targets[0]]["score_mean"] for s in seeds if targets[0] in s["targets"]]
                lower = f"{np.mean(low):.1f} ± {np.std(low):.1f} (target {targets[0]})"
            lines.append(f"| {dataset} | {label} | {arm['score_mean']:.1f} ± {arm['score_std']:.1f} | {per_seed} "
                         f"| {lower} |")
    return lines


def effects_table(results: dict) -> list[str]:
    lines = ["| dataset | effect | difference of means [95% bootstrap CI] | seeds | verdict |", "|---|---|---:|---:|---|"]
    for dataset, arms in results.items():
        for base, other in EFFECTS:
            if base not in arms or other not in arms:
                continue
            a = [s["score"] for s in _ordered(arms[base]["seeds"])]
            b = [s["score"] for s in _ordered(arms[other]["seeds"])]
            effect = bootstrap_difference(a, b)
            verdict = (f"{_label(other)} {effect.verdict}" if effect.resolved else "not resolved")
            lines.append(f"| {dataset} | {_label(other)} − {_label(base)} | {effect.difference:+.1f} "
                         f"[{effect.low:+.1f}, {effect.high:+.1f}] | {effect.seeds_b} vs {effect.seeds_a} | {verdict} |")
    return lines


def table(results: dict) -> str:
    return "\n".join(scores_table(results) + [""] + effects_table(results)) + "\n"


def main(argv: list[str] | None = None) -> None:
    run_tables.main(__doc__.splitlines()[0], "discrete", collect_results, table, argv)


if __name__ == "__main__":
    main()
