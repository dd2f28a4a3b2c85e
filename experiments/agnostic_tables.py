"""The environment-agnostic codec's tables of docs/RESULTS.md (issue 12), printed from the CSVs
`seqrl report` writes, so no number is copied by hand:

    seqrl report /work/agn-runs/agnostic --out docs/results/agnostic
    python experiments/agnostic_tables.py docs/results/agnostic/results.csv docs/results/results.csv \\
        > docs/results/agnostic/agnostic_tables.md

Scores are normalized, mean ± std over seeds, at each dataset's higher target return (the
paper's convention). "today's codec" is paper.yaml's rows (a per-feature spread head, the
whole action codec rebuilt on transfer); "agnostic" is agnostic.yaml's (one shared head, a
vocabulary for up to 6 action features, uniform bins over [-1, 1]; a transfer keeps the
action embedding, head and tokenizer and rebuilds only the state embedding). Rows whose runs
have not finished yet show "–".
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

MODELS = ("tokenized-spread", "continuous-spread")
TRANSFERS = (("transfer-hopper-walker2d", "hopper-medium", "walker2d-medium"),
             ("transfer-halfcheetah-hopper", "halfcheetah-medium", "hopper-medium"))


def best_target_rows(path: Path) -> dict[tuple[str, str, str, str], dict]:
    """(experiment, dataset, model, train mode or '') -> the row at the highest target."""
    out: dict[tuple[str, str, str, str], dict] = {}
    with path.open() as f:
        for r in csv.DictReader(f):
            if not r["score_mean"]:
                continue
            mode = next((m for m in ("embeddings", "all") if f"ft-{m}" in r["options"]), "")
            if not mode and r["options"]:
                continue  # an ablation or variant, not the plain row
            key = (r["experiment"], r["dataset"], r["model"], mode)
            if key not in out or float(r["target"]) > float(out[key]["target"]):
                out[key] = r
    return out


def cell(row: dict | None) -> str:
    if row is None:
        return "–"
    seeds = int(row["seeds"])
    text = f"{float(row['score_mean']):.1f} ± {float(row['score_std']):.1f}"
    return text if seeds >= 3 else f"{text} ({seeds} seed{'s' if seeds > 1 else ''})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agnostic_csv", type=Path)
    parser.add_argument("paper_csv", type=Path)
    args = parser.parse_args()
    agnostic, today = best_target_rows(args.agnostic_csv), best_target_rows(args.paper_csv)
    print("### Sources (trained from scratch)\n")
    print("| dataset | model | today's codec (paper.yaml main) | agnostic codec (agnostic.yaml source) |")
    print("|---|---|---:|---:|")
    for dataset in ("hopper-medium", "halfcheetah-medium"):
        for model in MODELS:
            print(f"| {dataset} | {model} | {cell(today.get(('main', dataset, model, '')))} | "
                  f"{cell(agnostic.get(('source', dataset, model, '')))} |")
    for experiment, source, target in TRANSFERS:
        print(f"\n### {source} → {target}\n")
        print("| model | trained | today's codec, codec rebuilt | agnostic codec, action layers kept | "
              f"from scratch on {target}, today's codec | from scratch on {target}, agnostic codec |")
        print("|---|---|---:|---:|---:|---:|")
        for model in MODELS:
            for mode in ("embeddings", "all"):
                print(f"| {model} | {mode} | {cell(today.get((experiment, target, model, mode)))} | "
                      f"{cell(agnostic.get((experiment, target, model, mode)))} | "
                      f"{cell(today.get(('main', target, model, '')))} | {cell(agnostic.get(('source', target, model, '')))} |")


if __name__ == "__main__":
    main()
