"""Key-to-Door table (docs/RESULTS.md): success rates of the DT, BC and 10% BC per dataset and seed,
from the eval.json files of an experiments/keydoor.yaml sweep.

    python experiments/keydoor_tables.py runs/keydoor [--out docs/results/keydoor]

Writes OUT/results.json (every run's success rate, return and length; means and standard
deviations over seeds) and OUT/table.md, and prints the table.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import run_tables  # experiments/, beside this script: the command line the table scripts share

ARMS = (("continuous+argmax", "DT, argmax (target 1.0)"), ("continuous+sample", "DT, sampled (target 1.0)"),
        ("bc+all", "BC"), ("bc+top10", "10% BC"))


def collect_results(root: Path) -> dict:
    """{dataset: {arm: {"seeds": {seed: {...}}, "success_mean", "success_std"}}} from
    ROOT/EXPERIMENT/DATASET/ARM/sSEED/eval.json (a sweep's layout; the DT's highest target)."""
    out: dict = {}
    for path in sorted(root.glob("*/*/*/s*/eval.json")):
        seed_dir, arm_dir, dataset_dir = path.parent, path.parent.parent, path.parent.parent.parent
        report = json.loads(path.read_text())
        result = max(report["results"], key=lambda r: -np.inf if r["target"] is None else r["target"])
        if result.get("success_rate") is None:
            raise SystemExit(f"{path}: no success rate (not a Key-to-Door evaluation?)")
        arm = out.setdefault(dataset_dir.name, {}).setdefault(arm_dir.name, {"seeds": {}})
        arm["seeds"][seed_dir.name[1:]] = {
            "success_rate": result["success_rate"], "return_mean": result["return_mean"],
            "length_mean": result["length_mean"], "episodes": result["episodes"], "target": result["target"],
        }
    for arms in out.values():
        for arm in arms.values():
            rates = [s["success_rate"] for s in arm["seeds"].values()]
            arm["success_mean"], arm["success_std"] = float(np.mean(rates)), float(np.std(rates))
    return out


def table(results: dict) -> str:
    lines = ["| dataset | method | success rate, mean ± std over seeds | per seed (0, 1, 2) | mean return |",
             "|---|---|---:|---|---:|"]
    for dataset, arms in results.items():
        for key, label in ARMS:
            if key not in arms:
                continue
            arm = arms[key]
            seeds = [arm["seeds"][s] for s in sorted(arm["seeds"], key=int)]
            per_seed = ", ".join(f"{100 * s['success_rate']:.0f}%" for s in seeds)
            ret = np.mean([s["return_mean"] for s in seeds])
            lines.append(f"| {dataset} | {label} | {100 * arm['success_mean']:.1f}% ± {100 * arm['success_std']:.1f} "
                         f"| {per_seed} | {ret:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    run_tables.main(__doc__.splitlines()[0], "keydoor", collect_results, table, argv)


if __name__ == "__main__":
    main()
