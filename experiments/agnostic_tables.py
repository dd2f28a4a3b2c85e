"""The environment-agnostic codec's tables of docs/RESULTS.md (issue 12), printed from the CSVs
`seqrl report` writes, so no number is copied by hand:

    seqrl report /work/agn-runs/agnostic --out docs/results/agnostic
    python experiments/agnostic_tables.py docs/results/agnostic/results.csv docs/results/results.csv \\
        [--halfcheetah-rerun docs/results/agnostic/halfcheetah-rerun/results.csv] > docs/results/agnostic/agnostic_tables.md

Scores are normalized, mean ± std over seeds, at each dataset's higher target return (the
paper's convention). "today's codec" is paper.yaml's rows (a per-feature spread head, the
whole action codec rebuilt on transfer); "agnostic" is agnostic.yaml's (one shared head, a
vocabulary for up to 6 action features, uniform bins over [-1, 1]; a transfer keeps the
action embedding, head and tokenizer and rebuilds only the state embedding). Rows whose runs
have not finished yet show "–". BC has no target: its row is its one evaluation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seqrl.errors import ConfigError
from seqrl.experiments.report import read_results_csv as read_rows
from seqrl.experiments.report import score_cell as cell

MODELS = ("tokenized-spread", "continuous-spread")
TRANSFERS = (("transfer-hopper-walker2d", "hopper-medium", "walker2d-medium"),
             ("transfer-halfcheetah-hopper", "halfcheetah-medium", "hopper-medium"))
TASKS = ("hopper", "halfcheetah", "walker2d")
MULTITASK = "+".join(f"{t}-medium" for t in TASKS)  # the multi-task run's dataset
LUNAR_SOURCES = (("transfer-multitask-lunarlander", "multi-task (3 MuJoCo tasks)"),
                 ("transfer-hopper-lunarlander", "single-task (hopper-medium)"))
BC_PRECISION = ("10x-updates", "10x-no-dropout", "10x-no-dropout-wide")
HALFCHEETAH_VARIANTS = ("small", "heads4", "wide", "shared-head", "3x-updates", "10x-updates", "wide-3x", "wide-shared-3x")


def _target(row: dict) -> float:
    return float(row["target"]) if row["target"] else float("-inf")  # BC and TT have none


def best_target_rows(path: Path) -> dict[tuple[str, str, str, str], dict]:
    """(experiment, dataset, model, train mode, variant or '') -> the row at the highest target.
    The "mode" is a fine-tune's trained layers; any other options label is a variant's."""
    out: dict[tuple[str, str, str, str], dict] = {}
    for r in read_rows(path):
        mode = next((m for m in ("embeddings", "all") if f"ft-{m}" in r["options"]), r["options"])
        key = (r["experiment"], r["dataset"], r["model"], mode)
        if key not in out or _target(r) > _target(out[key]):
            out[key] = r
    return out


def best_of_targets(path: Path) -> dict[tuple[str, str, str], dict]:
    """(experiment, dataset, model) -> the row at the target whose mean score is highest: a
    choice made after seeing the scores, so shown beside the highest target, never instead."""
    out: dict[tuple[str, str, str], dict] = {}
    for r in read_rows(path):
        key = (r["experiment"], r["dataset"], r["model"])
        if not r["options"] and (key not in out or float(r["score_mean"]) > float(out[key]["score_mean"])):
            out[key] = r
    return out


def loss_cell(row: dict | None) -> str:
    return "–" if row is None or not row.get("final_loss_mean") else f"{float(row['final_loss_mean']):.4f}"


def print_multitask(agnostic: dict, today: dict) -> None:
    print("\n### Multi-task pretraining, evaluated per task\n")
    print("| task | model | multi-task (agnostic codec) | single-task, agnostic codec (source) | single-task, today's codec (paper.yaml main) |")
    print("|---|---|---:|---:|---:|")
    for task in TASKS:
        dataset = f"{task}-medium"
        for model in MODELS:
            print(f"| {dataset} | {model} | {cell(agnostic.get(('multitask', f'{dataset}@{MULTITASK}', f'mt-{model}', '')))} | "
                  f"{cell(agnostic.get(('source', dataset, model, '')))} | {cell(today.get(('main', dataset, model, '')))} |")


def print_lunarlander(agnostic: dict) -> None:
    print("\n### Transfer to LunarLander (never seen), a new state embedding only\n")
    print("| model | trained | " + " | ".join(f"from {label}" for _, label in LUNAR_SOURCES) + " | from scratch |")
    print("|---|---|---:|---:|---:|")
    for model in MODELS:
        for mode in ("embeddings", "all"):
            print(f"| {model} | {mode} | " + " | ".join(cell(agnostic.get((e, "lunarlander-medium", model, mode)))
                                                      for e, _ in LUNAR_SOURCES)
                  + f" | {cell(agnostic.get(('lunarlander-scratch', 'lunarlander-medium', model, '')))} |")


def print_halfcheetah(agnostic: dict, today: dict, rerun: dict | None = None) -> None:
    """The variants' table; with `rerun` (a second sweep of the variants, on another machine or
    session: best_target_rows of its CSV) its columns come first, the first sweep's beside them,
    and the pooled DT of the rerun's `dt-bc-halfcheetah` (the same machine) under the variants."""
    print("\n### The halfcheetah spread failure (continuous-spread on halfcheetah-medium)\n")
    if rerun is None:
        print("| variant | score | final loss |")
        print("|---|---:|---:|")
    else:
        print("| variant | rerun: score | rerun: final loss | first runs: score | first runs: final loss |")
        print("|---|---:|---:|---:|---:|")
    for variant in HALFCHEETAH_VARIANTS:
        row = agnostic.get(("halfcheetah-spread", "halfcheetah-medium", "continuous-spread", variant))
        if rerun is None:
            print(f"| {variant} | {cell(row)} | {loss_cell(row)} |")
        else:
            again = rerun.get(("halfcheetah-spread", "halfcheetah-medium", "continuous-spread", variant))
            print(f"| {variant} | {cell(again)} | {loss_cell(again)} | {cell(row)} | {loss_cell(row)} |")
    blank = "" if rerun is None else " | |"
    if rerun is not None:
        pooled = ("dt-bc-halfcheetah", "halfcheetah-medium", "continuous", "")
        row, first = rerun.get(pooled), agnostic.get(pooled)
        print(f"| pooled DT (`continuous`, dt-bc-halfcheetah) | {cell(row)} | {loss_cell(row)} | {cell(first)} | "
              f"{loss_cell(first)} |")
    for model in ("continuous-spread", "tokenized", "continuous"):
        row = today.get(("main", "halfcheetah-medium", model, ""))
        print(f"| paper.yaml main, {model} | {cell(row)} | {loss_cell(row)} |{blank}")


def print_halfcheetah_data(agnostic: dict) -> None:
    print("\n### halfcheetah: the deterministic agent's data against the same agent with action noise 0.1\n")
    print("| model | halfcheetah-medium (PPO, deterministic) | halfcheetah-ppo_noise0p1 |")
    print("|---|---:|---:|")
    medium = {"continuous": ("dt-bc-halfcheetah", "continuous", ""), "bc": ("bc", "bc", "all"),
              "continuous-spread": ("halfcheetah-spread", "continuous-spread", "small")}
    for model, (experiment, name, variant) in medium.items():
        print(f"| {model} | {cell(agnostic.get((experiment, 'halfcheetah-medium', name, variant)))} | "
              f"{cell(agnostic.get(('halfcheetah-coverage', 'halfcheetah-ppo_noise0p1', model, '')))} |")
    print("\n| BC on halfcheetah-medium | score | final loss |")
    print("|---|---:|---:|")
    for variant in ("all", *BC_PRECISION):
        experiment = "bc" if variant == "all" else "halfcheetah-bc-precision"
        row = agnostic.get((experiment, "halfcheetah-medium", "bc", variant))
        print(f"| {'2000 updates, dropout 0.1' if variant == 'all' else variant} | {cell(row)} | {loss_cell(row)} |")


def print_dt_bc(agnostic: dict, best: dict) -> None:
    print("\n### The Decision Transformer against behaviour cloning\n")
    print("| dataset | DT, highest target | DT, best of 6 targets (target) | BC | 10% BC |")
    print("|---|---:|---:|---:|---:|")
    for task in TASKS:
        for dataset in (f"{task}-medium", f"{task}-mixed"):
            dt = agnostic.get((f"dt-bc-{task}", dataset, "continuous", ""))
            chosen = best.get((f"dt-bc-{task}", dataset, "continuous"))
            chosen_text = "–" if chosen is None else f"{cell(chosen)} ({float(chosen['target']):g})"
            print(f"| {dataset} | {cell(dt)} | {chosen_text} | {cell(agnostic.get(('bc', dataset, 'bc', 'all')))} | "
                  f"{cell(agnostic.get(('bc', dataset, 'bc', 'top10')))} |")


def print_achieved(path: Path) -> None:
    """The DT's mean achieved return at each of its targets (the numbers of the targets-*.png plots)."""
    by_dataset: dict[str, list[tuple[float, float]]] = {}
    for r in read_rows(path):
        if r["experiment"].startswith("dt-bc-") and not r["options"]:
            by_dataset.setdefault(r["dataset"], []).append((float(r["target"]), float(r["return_mean"])))
    print("\n### Achieved against target return (the DT of `dt-bc-*`; mean return over seeds)\n")
    print("| dataset | targets | achieved |")
    print("|---|---|---|")
    for task in TASKS:
        for dataset in (f"{task}-medium", f"{task}-mixed"):
            pairs = sorted(by_dataset.get(dataset, []))
            print(f"| {dataset} | {' / '.join(f'{t:g}' for t, _ in pairs) or '–'} | "
                  f"{' / '.join(f'{a:.0f}' for _, a in pairs) or '–'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agnostic_csv", type=Path)
    parser.add_argument("paper_csv", type=Path)
    parser.add_argument("--halfcheetah-rerun", type=Path, default=None, metavar="CSV",
                        help="results.csv of a second sweep of halfcheetah-spread (and dt-bc-halfcheetah's medium "
                             "runs): its columns beside the first sweep's in the halfcheetah table")
    args = parser.parse_args()
    try:
        agnostic, today = best_target_rows(args.agnostic_csv), best_target_rows(args.paper_csv)
        best = best_of_targets(args.agnostic_csv)
        rerun = best_target_rows(args.halfcheetah_rerun) if args.halfcheetah_rerun else None
    except ConfigError as exc:
        raise SystemExit(f"agnostic_tables.py: {exc}") from None
    print("### Sources (trained from scratch)\n")
    print("| dataset | model | today's codec (paper.yaml main) | agnostic codec (agnostic.yaml source) |")
    print("|---|---|---:|---:|")
    for dataset in ("hopper-medium", "halfcheetah-medium", "walker2d-medium"):
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
    print_multitask(agnostic, today)
    print_lunarlander(agnostic)
    print_halfcheetah(agnostic, today, rerun)
    print_halfcheetah_data(agnostic)
    print_dt_bc(agnostic, best)
    print_achieved(args.agnostic_csv)


if __name__ == "__main__":
    main()
