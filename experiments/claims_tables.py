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
- C6: language-model initialisation (c6-*, 128 × 3, 10,000 updates, evaluated every 500): the text-LM
  init and the text-LM init with alignment and co-training against the random init, by final score
  and by the mean of each run's learning curve (the area under it, which an arm that gets to the
  same level sooner wins), and where each arm's mean curve reaches the random arm's plateau
  (convergence_tables.py's rule: within 5 points of the last quarter's mean from then on).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import convergence_tables  # experiments/: the learning-curve reader and the plateau rule
import run_tables  # experiments/, beside this script: the command line the table scripts share

from seqrl.experiments.effects import Effect, bootstrap_difference, bootstrap_paired_difference

TASKS = ("hopper", "halfcheetah", "walker2d")
DT, BC, BC10 = "continuous", "bc+all", "bc+top10"
SPREAD = "tokenized-spread"
FT_EMB, FT_ALL = f"{SPREAD}+ft-embeddings,rebuild=state", f"{SPREAD}+ft-all,rebuild=state"
SCRATCH, SCRATCH_MATCHED = f"{SPREAD}+unmatched", f"{SPREAD}+matched"
C6_DATASETS = ("hopper-medium", "halfcheetah-medium")
C6_RANDOM, C6_TEXT, C6_ALIGN = ("c6-random", DT), ("c6-text", f"{DT}+plain"), ("c6-text", f"{DT}+align-cotrain")
C6_LABELS = {C6_RANDOM: "random init", C6_TEXT: "text-LM init",
             C6_ALIGN: "text-LM init + alignment + co-training"}
PLATEAU_TOLERANCE = 5.0  # normalized points, convergence_tables.py's default
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
        run = {"score": highest["score_mean"],
               "targets": {_target_key(r["target"]): r["score_mean"] for r in results}}
        if experiment_dir.name.startswith("c6-"):  # C6 is about the curve, not only where it ends
            curve = convergence_tables.read_curves(seed_dir)["score"]
            run["curve"] = {str(step): curve[step] for step in sorted(curve)}
        runs[seed_dir.name[1:]] = run
    return out


def _label(experiment: str, arm: str) -> str:
    return C6_LABELS.get((experiment, arm)) or LABELS.get(arm, arm)


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
                lines.append(f"| {experiment} | {dataset} | {_label(experiment, arm)} | {np.mean(scores):.1f} ± "
                             f"{np.std(scores):.1f} | {', '.join(f'{x:.1f}' for x in scores)} | {lowest} |")
    return lines


def _curve_means(results: dict, experiment: str, dataset: str, arm: str) -> list[float] | None:
    """Each run's mean score over its evaluations during training (the area under its curve)."""
    runs = results.get(experiment, {}).get(dataset, {}).get(arm)
    if not runs or not all(r.get("curve") for r in runs.values()):
        return None
    return [float(np.mean(list(r["curve"].values()))) for r in _seeds(runs)]


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
    for d in C6_DATASETS:
        for (a_exp, a_arm), (b_exp, b_arm) in ((C6_RANDOM, C6_TEXT), (C6_RANDOM, C6_ALIGN), (C6_TEXT, C6_ALIGN)):
            what = f"{C6_LABELS[b_exp, b_arm]} − {C6_LABELS[a_exp, a_arm]}"
            add("C6", f"{d}: {what}, final score (10,000 updates)",
                _scores(results, a_exp, d, a_arm), _scores(results, b_exp, d, b_arm))
            add("C6", f"{d}: {what}, mean score over the learning curve",
                _curve_means(results, a_exp, d, a_arm), _curve_means(results, b_exp, d, b_arm))
    return out


def c6_convergence_table(results: dict) -> list[str]:
    """Where each C6 arm's mean curve reaches its own plateau and the random arm's, from the runs'
    evaluations during training; empty before any C6 run has finished."""
    lines = []
    for d in C6_DATASETS:
        curves = {}
        for key in (C6_RANDOM, C6_TEXT, C6_ALIGN):
            runs = results.get(key[0], {}).get(d, {}).get(key[1])
            if runs and all(r.get("curve") for r in runs.values()):
                steps, values, _ = convergence_tables.mean_curve(
                    [{int(k): v for k, v in r["curve"].items()} for r in _seeds(runs)])
                curves[key] = (steps, values, len(runs))
        if not curves:
            continue
        if not lines:
            lines = ["| dataset | arm | seeds | evaluated to | own plateau step (±5) | plateau level "
                     "| first step within 5 of the random arm's plateau level |", "|---|---|---:|---:|---:|---:|---:|"]
        reference = convergence_tables.plateau_level(curves[C6_RANDOM][1]) if C6_RANDOM in curves else None
        for key, (steps, values, n) in curves.items():
            plateau = convergence_tables.plateau_step(steps, values, PLATEAU_TOLERANCE)
            level = convergence_tables.plateau_level(values)
            reached = "" if reference is None else next(
                (str(s) for s, v in zip(steps, values) if v >= reference - PLATEAU_TOLERANCE), "never")
            lines.append(f"| {d} | {C6_LABELS[key]} | {n} | {steps[-1]} | {plateau or 'not yet'} | {level:.1f} | {reached} |")
    return lines


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
    c6 = c6_convergence_table(results)
    return "\n".join(scores_table(results) + [""] + effects_table(results) + ([""] + c6 if c6 else [])) + "\n"


def main(argv: list[str] | None = None) -> None:
    run_tables.main(__doc__.splitlines()[0], "claims", collect_results, table, argv)


if __name__ == "__main__":
    main()
