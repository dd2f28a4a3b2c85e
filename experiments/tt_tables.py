"""The Trajectory Transformer table of docs/RESULTS.md: the TT's rows beside the DT's, printed
from the CSVs that `seqrl report` writes, plus each TT run's evaluation time per episode from
its eval.json, so no number is copied by hand:

    seqrl report /work/tt-runs/tt --out docs/results/tt
    python experiments/tt_tables.py docs/results/tt/results.csv docs/results/results.csv \
        --runs /work/tt-runs > docs/results/tt/tt_tables.md

Scores are normalized, mean ± std over seeds; the DT's at each dataset's higher target return
(the paper's convention), the TT's under its one condition (planning for reward).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from seqrl.errors import ConfigError
from seqrl.experiments.report import read_results_csv
from seqrl.experiments.report import score_cell as cell

DT_MODELS = ("continuous", "tokenized", "tokenized-spread", "continuous-spread")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tt_csv", type=Path)
    parser.add_argument("dt_csv", type=Path)
    parser.add_argument("--runs", type=Path, default=None,
                        help="a folder holding TT sweep runs (every */tt/s*/ run under it: eval.json times, final losses)")
    parser.add_argument("--experiment", default="main")
    args = parser.parse_args()
    try:
        tt_rows, dt_rows = read_results_csv(args.tt_csv), read_results_csv(args.dt_csv)
    except ConfigError as exc:
        raise SystemExit(f"tt_tables.py: {exc}") from None
    tt = {(r["dataset"]): r for r in tt_rows if r["model"] == "tt" and r["experiment"] == args.experiment}
    dt: dict[tuple[str, str], dict] = {}
    for r in dt_rows:
        if r["experiment"] != "main" or r["options"]:
            continue
        key = (r["dataset"], r["model"])
        if key not in dt or float(r["target"]) > float(dt[key]["target"]):
            dt[key] = r
    datasets = sorted(tt)
    print("| dataset | TT (beam search) | " + " | ".join(f"DT {m}" for m in DT_MODELS) + " |")
    print("|---|" + "---:|" * (1 + len(DT_MODELS)))
    for d in datasets:
        print(f"| {d} | {cell(tt.get(d))} | " + " | ".join(cell(dt.get((d, m))) for m in DT_MODELS) + " |")
    if args.runs is not None:
        print("\n| experiment | dataset | seed | planner mode | TT score | episode length | evaluation s per episode | "
              "training + evaluation min | final action cross-entropy (nats) |")
        print("|---|---|---:|---|---:|---:|---:|---:|---:|")
        evals = [p for p in sorted(args.runs.glob("**/tt/s*/eval.json"))  # goal-reaching runs: tt_goal_tables.py
                 if json.loads((p.parent / "config.json").read_text()).get("goal", "none") == "none"]
        for path in evals:
            report = json.loads(path.read_text())
            run_dir = path.parent
            state = json.loads((run_dir / "sweep.json").read_text()) if (run_dir / "sweep.json").exists() else {}
            minutes = f"{state['seconds'] / 60:.0f}" if state.get("seconds") else "–"
            train_lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
            action = [x["loss/action"] for x in train_lines if "loss/action" in x]
            r = report["results"][0]
            print(f"| {run_dir.parents[2].name} | {report['dataset'].split('/')[-1].removesuffix('-v0')} | "
                  f"{run_dir.name[1:]} | {report['planner']['mode']} | {r['score_mean']:.1f} | {r['length_mean']:.0f} | "
                  f"{report['wall_time_per_episode_s']:.1f} | {minutes} | {action[-1]:.2f} |")
        planners = {json.dumps({k: v for k, v in json.loads(p.read_text())["planner"].items() if k != "mode"},
                               sort_keys=True) for p in evals}
        for planner in planners:
            print(f"\nplanner (besides its mode): {planner}")

if __name__ == "__main__":
    main()
