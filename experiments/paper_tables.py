"""The pivot tables of docs/RESULTS.md, printed from the CSV that `seqrl report` writes.

`seqrl report` lists one row per experiment x dataset x model x options x target. RESULTS.md
arranges the same numbers the way the paper's questions read (models against tasks, bins
against binning, embeddings-only against all layers); this script does the arranging, so that
every number there comes from a committed command rather than from copying by hand:

    seqrl report /work/paper-runs --out docs/results
    python experiments/paper_tables.py docs/results/results.csv > docs/results/paper_tables.md

Scores are normalized, mean ± std over seeds, at each dataset's higher target return (the
paper's convention; both targets are in results.md). A cell with fewer than 3 seeds says how
many it has; a missing cell is "–".
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from seqrl.errors import ConfigError
from seqrl.experiments.report import read_results_csv
from seqrl.experiments.report import score_cell as cell

MODELS = ("continuous", "tokenized", "tokenized-spread", "continuous-spread")
BINNED = ("tokenized", "tokenized-spread")
ABLATIONS = (("no-offset", "no offsets (shared range)"), ("action-index", "shared range + action-index"))


def load(path: Path) -> dict[tuple[str, str, str, str], dict]:
    """{(experiment, dataset, model, options): row at the dataset's highest target}."""
    best: dict[tuple[str, str, str, str], dict] = {}
    for row in read_results_csv(path):
        key = (row["experiment"], row["dataset"], row["model"], row["options"])
        if key not in best or float(row["target"]) > float(best[key]["target"]):
            best[key] = row
    return best


def loss_cell(row: dict | None) -> str:
    if row is None or not row.get("final_loss_mean"):
        return "–"
    return f"{float(row['final_loss_mean']):.4f} ± {float(row['final_loss_std']):.4f}"


def loss_gap(quantile: dict | None, uniform: dict | None) -> str:
    if not (quantile and uniform and quantile.get("final_loss_mean") and uniform.get("final_loss_mean")):
        return "–"
    q, u = float(quantile["final_loss_mean"]), float(uniform["final_loss_mean"])
    return f"{100 * (u - q) / u:.1f}"


def run_times(rows: dict) -> str:
    """Minutes per run (train and evaluate; sweep.json's `seconds`), mean over seeds, per model."""
    body = []
    for experiment in dict.fromkeys(k[0] for k in sorted(rows)):
        for d in datasets_of(rows, experiment):
            cells = []
            for m in MODELS:
                secs = [float(r["seconds_mean"]) for k, r in rows.items()
                        if k[:3] == (experiment, d, m) and r.get("seconds_mean")]
                cells.append(f"{min(secs) / 60:.1f}–{max(secs) / 60:.1f}" if len(secs) > 1
                             else f"{secs[0] / 60:.1f}" if secs else "–")
            body.append([f"{experiment}: {d}"] + cells)
    # Every group once (the CSV repeats a group per target): its mean seconds times its seeds.
    groups = {k: r for k, r in rows.items() if r.get("seconds_mean")}
    runs = sum(int(r["seeds"]) for r in groups.values())
    hours = sum(float(r["seconds_mean"]) * int(r["seeds"]) for r in groups.values()) / 3600
    total = (f"\n\nIn all: {runs} evaluated runs, {hours:.1f} worker-hours "
             f"({hours / 2:.1f} h of wall-clock with 2 workers).")
    return ("## Minutes per run (mean over seeds; a range over the experiment's option groups)\n\n"
            + table(["experiment: dataset"] + list(MODELS), body) + total)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def datasets_of(rows: dict, experiment: str) -> list[str]:
    return sorted({k[1] for k in rows if k[0] == experiment})


def target_of(rows: dict, experiment: str, dataset: str) -> str:
    targets = {float(r["target"]) for k, r in rows.items() if k[:2] == (experiment, dataset)}
    return ", ".join(f"{t:g}" for t in sorted(targets))


def main_table(rows: dict) -> str:
    datasets = datasets_of(rows, "main")
    header = ["model"] + [f"{d} (target {target_of(rows, 'main', d)})" for d in datasets]
    body = [[m] + [cell(rows.get(("main", d, m, ""))) for d in datasets] for m in MODELS]
    return "## Training comparison (`main`)\n\n" + table(header, body)


def ablation_tables(rows: dict) -> str:
    parts = ["## Ablations"]
    for d in datasets_of(rows, "ablations"):
        header = ["model"] + [label for _, label in ABLATIONS] + ["with offsets (`main`)"]
        body = [[m] + [cell(rows.get(("ablations", d, m, opt))) for opt, _ in ABLATIONS]
                + [cell(rows.get(("main", d, m, "")))] for m in BINNED]
        parts.append(f"### {d} (target {target_of(rows, 'ablations', d)})\n\n" + table(header, body))
    return "\n\n".join(parts)


def transfer_tables(rows: dict) -> str:
    parts = ["## Transfer"]
    for experiment in sorted({k[0] for k in rows if k[0].startswith("transfer")}):
        for d in datasets_of(rows, experiment):
            models = [m for m in MODELS if any(k[:3] == (experiment, d, m) for k in rows)]
            header = ["model", "ft-embeddings", "ft-all", f"from scratch on {d} (`main`)"]
            body = [[m, cell(rows.get((experiment, d, m, "ft-embeddings"))), cell(rows.get((experiment, d, m, "ft-all"))),
                     cell(rows.get(("main", d, m, "")))] for m in models]
            parts.append(f"### {experiment} (target {target_of(rows, experiment, d)})\n\n" + table(header, body))
    return "\n\n".join(parts)


def bins_tables(rows: dict) -> str:
    parts = ["## Bins and binning"]
    for d in datasets_of(rows, "bins"):
        by_setting: dict[tuple[str, int, str], dict] = {}
        for (experiment, dataset, model, options), row in rows.items():
            match = re.fullmatch(r"num_bins=(\d+),binning=(\w+)", options)
            if (experiment, dataset) == ("bins", d) and match:
                by_setting[(model, int(match[1]), match[2])] = row
        models = [m for m in BINNED if any(k[0] == m for k in by_setting)]
        bins = sorted({k[1] for k in by_setting})
        header = ["bins"] + [f"{m} {b}" for m in models for b in ("quantile", "uniform")]
        body = [[str(n)] + [cell(by_setting.get((m, n, b))) for m in models for b in ("quantile", "uniform")]
                for n in bins]
        # The binning claim in one number per column: the mean over bin counts of the mean scores.
        means = []
        for m in models:
            for b in ("quantile", "uniform"):
                scores = [float(by_setting[(m, n, b)]["score_mean"]) for n in bins if (m, n, b) in by_setting]
                means.append(f"{sum(scores) / len(scores):.1f}" if len(scores) == len(bins) else "–")
        body.append(["mean over bins"] + means)
        parts.append(f"### {d} (target {target_of(rows, 'bins', d)})\n\n" + table(header, body))
        losses = [[str(n)] + [loss_cell(by_setting.get((m, n, b))) for m in models for b in ("quantile", "uniform")]
                  for n in bins]
        parts.append(f"### {d}: training loss at the last step\n\n" + table(header, losses))
        gaps = [[str(n)] + [loss_gap(by_setting.get((m, n, "quantile")), by_setting.get((m, n, "uniform"))) for m in models]
                for n in bins]
        parts.append(f"### {d}: quantile's final loss below uniform's, % of uniform's\n\n"
                     + table(["bins"] + list(models), gaps))
    return "\n\n".join(parts)


def budget_tables(rows: dict) -> str:
    """Experiments named budget-*: the same runs as `main` with more updates, beside `main`'s."""
    parts = []
    for experiment in sorted({k[0] for k in rows if k[0].startswith("budget")}):
        for d in datasets_of(rows, experiment):
            models = [m for m in MODELS if (experiment, d, m, "") in rows]
            header = ["model", "score", "final loss", "score in `main`", "final loss in `main`"]
            body = [[m, cell(rows[(experiment, d, m, "")]), loss_cell(rows[(experiment, d, m, "")]),
                     cell(rows.get(("main", d, m, ""))), loss_cell(rows.get(("main", d, m, "")))] for m in models]
            parts.append(f"## {experiment}: {d} (target {target_of(rows, experiment, d)})\n\n" + table(header, body))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="results.csv written by seqrl report")
    args = parser.parse_args()
    try:
        rows = load(args.csv)
    except ConfigError as exc:
        raise SystemExit(f"paper_tables.py: {exc}") from None
    print("# The paper's tables\n")
    print(f"From `{args.csv}` by `experiments/paper_tables.py`: normalized score, mean ± std over seeds, "
          "at each dataset's higher target.\n")
    tables = [main_table(rows), ablation_tables(rows), transfer_tables(rows), bins_tables(rows), budget_tables(rows),
              run_times(rows)]
    print("\n\n".join(t for t in tables if t))


if __name__ == "__main__":
    main()
