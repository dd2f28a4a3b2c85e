"""The central claims at the converged budget (issue 30 §2): experiments/claims.yaml's scores and
effects, each a difference of means over seeds with a 95% bootstrap interval
(seqrl.experiments.effects), stated only where the interval excludes zero.

    python experiments/claims_tables.py runs/claims [--out docs/results/claims]

ROOT is the sweep's output (ROOT/EXPERIMENT/DATASET/ARM/sSEED/eval.json) or the copy of its run
files committed under docs/results/claims/runs, from which the committed tables regenerate byte
for byte. Writes OUT/results.json (each run's normalized score at every target) and OUT/table.md,
and prints the table. Experiments that have not run yet are left out of both.

The comparisons:
- C1: pooled tokenized − continuous actions on each medium dataset (c1-*);
- C4: the DT (continuous) − BC and − 10% BC on medium (c1-*) and mixed (c4-*-mixed) data, against
  BC at 20,000 updates (c4-bc-20k; the curves say where it plateaus) and at the DT's 3000 (c4-bc);
- C5 (issue 30's second half of C4; verdicts.md's label), achieved against target: each DT run's score at its highest target − at its lowest, paired
  by run (the same model evaluated twice), so the between-seed spread cancels;
- C3: transfer to hopper, from halfcheetah (c3-*) and from walker2d (c3w-*), with the agnostic
  spread codec and its action layers kept: embeddings only − all layers, and each against hopper from scratch with the target's
  updates alone (unmatched) and with the source's and the target's together (matched).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import run_tables  # experiments/, beside this script: the command line the table scripts share

from seqrl.experiments.effects import Effect, bootstrap_difference, bootstrap_paired_difference

TASKS = ("hopper", "halfcheetah", "walker2d")
DT, BC, BC10 = "continuous", "bc+all", "bc+top10"
SPREAD = "tokenized-spread"
FT_EMB, FT_ALL = f"{SPREAD}+ft-embeddings,rebuild=state", f"{SPREAD}+ft-all,rebuild=state"
SCRATCH, SCRATCH_MATCHED = f"{SPREAD}+unmatched", f"{SPREAD}+matched"
LABELS = {DT: "DT continuous", "tokenized": "DT pooled tokenized", BC: "BC", BC10: "10% BC",
          SPREAD: "spread source", FT_EMB: "transfer, embeddings only", FT_ALL: "transfer, all layers",
          SCRATCH: "from scratch, 3000 updates (unmatched)", SCRATCH_MATCHED: "from scratch, 6000 updates (matched)"}


def _target_key(target: float | None) -> str:
    return "none" if target is None else f"{target:.1f}"


def collect_results(root: Path) -> dict:
    """{experiment: {dataset: {arm: {seed: {"score": at the highest target, "targets": {target: score}}}}}}."""
    out: dict = {}
    for path in sorted(root.glob("*/*/*/s*/eval.json")):
        seed_dir = path.parent
        arm_dir, dataset_dir, experiment_dir = seed_dir.parent, seed_dir.parent.parent, seed_dir.parent.parent.parent
        results = json.loads(path.read_text())["results"]
        highest = max(results, key=lambda r: -np.inf if r["target"] is None else r["target"])
        runs = out.setdefault(experiment_dir.name, {}).setdefault(dataset_dir.name, {}).setdefault(arm_dir.name, {})
        runs[seed_dir.name[1:]] = {"score": highest["score_mean"],
                                   "targets": {_target_key(r["target"]): r["score_mean"] for r in results}}
    return out


def _seeds(runs: dict) -> list[dict]:
    return [runs[s] for s in sorted(runs, key=int)]


def _scores(results: dict, experiment: str, dataset: str, arm: str) -> list[float] | None:
    runs = results.get(experiment, {}).get(dataset, {}).get(arm)
    return [r["score"] for r in _seeds(runs)] if runs else None


def scores_table(results: dict) -> list[str]:
    lines = ["| experiment | dataset | arm | score at the highest target, mean ± std over seeds | per seed |"
             " at the lowest target |", "|---|---|---|---:|---|---:|"]
    for experiment, datasets in results.items():
        for dataset, arms in datasets.items():
            for arm, runs in arms.items():
                seeds = _seeds(runs)
                scores = [s["score"] for s in seeds]
                targets = sorted({t for s in seeds for t in s["targets"] if t != "none"}, key=float)
                lowest = ""
                if len(targets) > 1:
                    low = [s["targets"][targets[0]] for s in seeds]
                    lowest = f"{np.mean(low):.1f} ± {np.std(low):.1f} (target {float(targets[0]):.0f})"
                lines.append(f"| {experiment} | {dataset} | {LABELS.get(arm, arm)} | {np.mean(scores):.1f} ± "
                             f"{np.std(scores):.1f} | {', '.join(f'{x:.1f}' for x in scores)} | {lowest} |")
    return lines


def comparisons(results: dict) -> list[tuple[str, str, list[float], list[float], bool]]:
    """(claim, "DATASET: B − A", A's per-seed scores, B's, paired) for every comparison whose runs
    exist; paired comparisons are two evaluations of the same runs, in seed order."""
    out: list[tuple[str, str, list[float], list[float], bool]] = []

    def add(claim: str, what: str, a: list[float] | None, b: list[float] | None, paired: bool = False) -> None:
        if a and b:
            out.append((claim, what, a, b, paired))

    for task in TASKS:
        d = f"{task}-medium"
        add("C1", f"{d}: DT pooled tokenized − DT continuous",
            _scores(results, f"c1-{task}", d, DT), _scores(results, f"c1-{task}", d, "tokenized"))
    for task in TASKS:
        for data, experiment in (("medium", f"c1-{task}"), ("mixed", f"c4-{task}-mixed")):
            d = f"{task}-{data}"
            dt = _scores(results, experiment, d, DT)
            for bc_experiment, budget in (("c4-bc-20k", "BC at 20,000 updates"),
                                          ("c4-bc", "BC at the DT's 3000 updates")):
                add("C4", f"{d}: DT − BC ({budget})", _scores(results, bc_experiment, d, BC), dt)
                add("C4", f"{d}: DT − 10% BC ({budget})", _scores(results, bc_experiment, d, BC10), dt)
    for task in TASKS:
        for data, experiment in (("medium", f"c1-{task}"), ("mixed", f"c4-{task}-mixed")):
            d = f"{task}-{data}"
            runs = results.get(experiment, {}).get(d, {}).get(DT)
            if not runs:
                continue
            seeds = _seeds(runs)
            targets = sorted(seeds[0]["targets"], key=float)
            add("C5", f"{d}: DT at target {float(targets[-1]):.0f} − at {float(targets[0]):.0f} (paired by run)",
                [s["targets"][targets[0]] for s in seeds], [s["targets"][targets[-1]] for s in seeds], paired=True)
    d = "hopper-medium"
    scratch, matched = _scores(results, "c3-scratch", d, SCRATCH), _scores(results, "c3-scratch", d, SCRATCH_MATCHED)
    for source, experiment in (("halfcheetah", "c3-transfer"), ("walker2d", "c3w-transfer")):
        emb, every = _scores(results, experiment, d, FT_EMB), _scores(results, experiment, d, FT_ALL)
        add("C3", f"{source} → hopper, agnostic spread codec kept: embeddings only − all layers", every, emb)
        for name, arm in (("all layers", every), ("embeddings only", emb)):
            add("C3", f"{source} → hopper: {name} − from scratch, unmatched (3000 updates against 6000 in all)",
                scratch, arm)
            add("C3", f"{source} → hopper: {name} − from scratch, matched (6000 updates each)", matched, arm)
    return out


def effect(a: list[float], b: list[float], paired: bool) -> Effect:
    return bootstrap_paired_difference(a, b) if paired else bootstrap_difference(a, b)


def effects_table(results: dict) -> list[str]:
    lines = ["| claim | comparison (B − A) | B − A [95% bootstrap interval] | seeds (A, B) | verdict |",
             "|---|---|---:|---:|---|"]
    for claim, what, a, b, paired in comparisons(results):
        e = effect(a, b, paired)
        verdict = ("B higher" if e.difference > 0 else "B lower") if e.resolved else "not resolved"
        lines.append(f"| {claim} | {what} | {e.difference:+.1f} [{e.low:+.1f}, {e.high:+.1f}] | {e.seeds_a}, {e.seeds_b} "
                     f"| {verdict} |")
    return lines


def table(results: dict) -> str:
    return "\n".join(scores_table(results) + [""] + effects_table(results)) + "\n"


def main(argv: list[str] | None = None) -> None:
    run_tables.main(__doc__.splitlines()[0], "claims", collect_results, table, argv)


if __name__ == "__main__":
    main()
