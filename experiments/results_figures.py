"""Final-score bar charts of docs/RESULTS.md's main tables, from committed data only:

    python experiments/results_figures.py [--out docs/results/figures]

Each bar is a group's mean normalized score over seeds (success rate for Key-to-Door), its error
bar one standard deviation over seeds (population std, as `seqrl report` writes it). Where the
per-seed scores are committed (Key-to-Door's runs) each seed is drawn as a dot; elsewhere only the
mean ± std of `seqrl report`'s results.csv is committed, and that is what is drawn. Scores are at
each dataset's highest target return.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from seqrl.experiments.report import read_results_csv
from seqrl.figures import add_legend, new_figure, save_figure

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


def _highest(path: Path) -> dict[tuple[str, str, str, str], tuple[float, float]]:
    best: dict[tuple[str, str, str, str], dict] = {}
    for row in read_results_csv(path):
        key = (row["experiment"], row["dataset"], row["model"], row["options"])
        if key not in best or (row["target"] and float(row["target"]) > float(best[key]["target"])):
            best[key] = row
    return {k: (float(r["score_mean"]), float(r["score_std"])) for k, r in best.items()}


def bars(ax, groups: list[str], series: dict[str, list[tuple[float, float] | None]],
         seeds: dict[str, list[list[float] | None]] | None = None, ylabel: str = "normalized score") -> None:
    """Grouped bars: one group per x position, one bar per series, error bars of one std."""
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for i, (label, values) in enumerate(series.items()):
        pos = x - 0.4 + width * (i + 0.5)
        means = [np.nan if v is None else v[0] for v in values]
        stds = [0.0 if v is None else v[1] for v in values]
        ax.bar(pos, means, width, yerr=stds, capsize=2, label=label, alpha=0.85)
        for p, per_seed in zip(pos, (seeds or {}).get(label, [None] * len(groups))):
            if per_seed:
                ax.scatter([p] * len(per_seed), per_seed, s=8, color="black", zorder=3)
    ax.set_xticks(x, groups, fontsize="small")
    ax.set_ylabel(ylabel)
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.grid(axis="y", alpha=0.3)


def main_table(out: Path) -> Path:
    s = _highest(RESULTS / "results.csv")
    tasks = ["hopper-medium", "halfcheetah-medium", "walker2d-medium"]
    models = ["continuous", "tokenized", "tokenized-spread", "continuous-spread"]
    fig, ax = new_figure(figsize=(7, 3.6))
    bars(ax, tasks, {m: [s.get(("main", t, m, "")) for t in tasks] for m in models})
    ax.set_title("paper.yaml main: 2000 updates, width 64 × 2 layers, 3 seeds")
    add_legend(ax, below=True)
    return save_figure(fig, out / "final-main.png")


def transfer(out: Path) -> Path:
    s = _highest(RESULTS / "results.csv")
    fig, axes = new_figure(1, 2, figsize=(9, 3.6), sharey=True)
    models = ["continuous", "tokenized", "tokenized-spread"]
    for ax, (exp, d) in zip(axes, [("transfer-hopper-walker2d", "walker2d-medium"),
                                   ("transfer-halfcheetah-hopper", "hopper-medium")]):
        bars(ax, models, {"ft-embeddings": [s.get((exp, d, m, "ft-embeddings")) for m in models],
                          "ft-all": [s.get((exp, d, m, "ft-all")) for m in models],
                          "from scratch (half the updates)": [s.get(("main", d, m, "")) for m in models]})
        ax.set_title(exp, fontsize="medium")
        add_legend(ax, below=True)
    return save_figure(fig, out / "final-transfer.png")


def dt_bc(out: Path) -> Path:
    s = _highest(RESULTS / "agnostic" / "results.csv")
    datasets = [f"{t}-{d}" for t in ("hopper", "halfcheetah", "walker2d") for d in ("medium", "mixed")]
    fig, ax = new_figure(figsize=(9, 3.6))
    bars(ax, [d.replace("-", "\n", 1) for d in datasets], {
        "DT (highest target)": [s.get((f"dt-bc-{d.split('-')[0]}", d, "continuous", "")) for d in datasets],
        "BC": [s.get(("bc", d, "bc", "all")) for d in datasets],
        "10% BC": [s.get(("bc", d, "bc", "top10")) for d in datasets]})
    ax.set_title("agnostic.yaml dt-bc-* and bc: 2000 updates, 3 seeds")
    add_legend(ax, below=True)
    return save_figure(fig, out / "final-dt-bc.png")


def halfcheetah_spread(out: Path) -> Path:
    s = _highest(RESULTS / "agnostic" / "halfcheetah-rerun" / "results.csv")
    variants = ["small", "heads4", "shared-head", "3x-updates", "wide", "10x-updates", "wide-shared-3x", "wide-3x"]
    fig, ax = new_figure(figsize=(9, 3.6))
    bars(ax, variants + ["pooled DT"], {"continuous-spread variant / pooled continuous DT": [
        *(s.get(("halfcheetah-spread", "halfcheetah-medium", "continuous-spread", v)) for v in variants),
        s.get(("dt-bc-halfcheetah", "halfcheetah-medium", "continuous", ""))]})
    ax.set_title("halfcheetah-medium, continuous-spread variants and the pooled DT, one machine, 3 seeds")
    ax.tick_params(axis="x", labelsize="x-small")
    return save_figure(fig, out / "final-halfcheetah-spread.png")


def lm_init(out: Path) -> Path:
    s = _highest(RESULTS / "lm_init" / "results.csv")
    tasks = ["hopper-medium", "halfcheetah-medium", "walker2d-medium"]
    arms = {"random": ("random", ""), "text": ("text", "plain"), "text + align + co-train": ("text", "align-cotrain"),
            "text, frozen trunk": ("text", "frozen"), "synthetic": ("synthetic", "plain")}
    fig, ax = new_figure(figsize=(8, 3.6))
    bars(ax, tasks, {label: [s.get((e, t, "continuous", o)) for t in tasks] for label, (e, o) in arms.items()})
    ax.set_title("lm_init.yaml: 1500 updates, width 128 × 3 layers, 3 seeds")
    add_legend(ax, below=True)
    return save_figure(fig, out / "final-lm-init.png")


def tt(out: Path) -> Path:
    dt, tt_ = _highest(RESULTS / "results.csv"), _highest(RESULTS / "tt" / "results.csv")
    imitation = _highest(RESULTS / "tt_imitation" / "results.csv")
    tasks = ["hopper-medium", "halfcheetah-medium", "walker2d-medium"]
    fig, axes = new_figure(1, 2, figsize=(9, 3.6), width_ratios=[3, 2])
    bars(axes[0], tasks, {"TT, reward beam search": [tt_.get(("main", t, "tt", "")) for t in tasks],
                          "DT continuous": [dt.get(("main", t, "continuous", "")) for t in tasks]})
    axes[0].set_title("tt.yaml main (before the TT fixes) and paper.yaml main", fontsize="medium")
    add_legend(axes[0], below=True)
    experts = ["hopper-expert", "walker2d-expert"]
    bars(axes[1], experts, {"TT, likelihood beam search": [imitation.get(("expert", d, "tt", "")) for d in experts],
                            "BC": [imitation.get(("expert", d, "bc", "")) for d in experts]})
    axes[1].set_title("tt_imitation.yaml", fontsize="medium")
    add_legend(axes[1], below=True)
    return save_figure(fig, out / "final-tt.png")


def keydoor(out: Path) -> Path:
    results = json.loads((RESULTS / "keydoor" / "results.json").read_text())
    arms = [("continuous+argmax", "DT, argmax"), ("continuous+sample", "DT, sampled"), ("bc+all", "BC"),
            ("bc+top10", "10% BC")]
    datasets = list(results)
    fig, ax = new_figure(figsize=(7, 3.6))
    series = {label: [(100 * results[d][a]["success_mean"], 100 * results[d][a]["success_std"]) for d in datasets]
              for a, label in arms}
    seeds = {label: [[100 * v["success_rate"] for v in results[d][a]["seeds"].values()] for d in datasets]
             for a, label in arms}
    bars(ax, datasets, series, seeds, ylabel="success rate (%)")
    ax.set_title("Key-to-Door (DoorKey-5x5): 1000 updates, 3 seeds (dots)")
    add_legend(ax, below=True)
    return save_figure(fig, out / "final-keydoor.png")


def claims(out: Path) -> Path | None:
    """claims.yaml (the central claims at the converged budget, 5 seeds as dots): C1 and C4 on the
    left, by dataset; C3's transfer arms on the right."""
    path = RESULTS / "claims" / "results.json"
    if not path.exists():
        return None
    results = json.loads(path.read_text())

    def arm(experiment: str, dataset: str, name: str) -> list[float] | None:
        runs = results.get(experiment, {}).get(dataset, {}).get(name)
        return [runs[s]["score"] for s in sorted(runs, key=int)] if runs else None

    def series(rows: dict[str, list[list[float] | None]]) -> tuple[dict, dict]:
        summary = {k: [None if v is None else (float(np.mean(v)), float(np.std(v))) for v in vs] for k, vs in rows.items()}
        return summary, rows

    datasets = [f"{t}-{d}" for t in ("hopper", "halfcheetah", "walker2d") for d in ("medium", "mixed")]
    dt = {d: ("c1-" if d.endswith("medium") else "c4-") + d.split("-")[0] + ("" if d.endswith("medium") else "-mixed")
          for d in datasets}
    left = {"DT continuous": [arm(dt[d], d, "continuous") for d in datasets],
            "DT pooled tokenized": [arm(dt[d], d, "tokenized") for d in datasets],
            "BC (20,000 updates)": [arm("c4-bc-20k", d, "bc+all") for d in datasets],
            "10% BC (20,000 updates)": [arm("c4-bc-20k", d, "bc+top10") for d in datasets]}
    spread = "tokenized-spread"
    transfers = [(source, train) for source in ("c3", "c3w") for train in ("embeddings", "all")]
    right = {"hopper-medium, tokenized-spread": [
        *(arm(f"{source}-transfer", "hopper-medium", f"{spread}+ft-{train},rebuild=state") for source, train in transfers),
        arm("c3-scratch", "hopper-medium", f"{spread}+unmatched"), arm("c3-scratch", "hopper-medium", f"{spread}+matched")]}
    fig, axes = new_figure(1, 2, figsize=(11, 3.8), width_ratios=[3, 1.6])
    bars(axes[0], [d.replace("-", "\n", 1) for d in datasets], *series(left))
    axes[0].set_title("claims.yaml C1, C4: the DT at 3000 updates, 64 × 2, 5 seeds (dots)", fontsize="medium")
    add_legend(axes[0], below=True)
    bars(axes[1], ["from hc.\nemb.", "from hc.\nall", "from w.\nemb.", "from w.\nall", "scratch\n3000", "scratch\n6000"],
         *series(right))
    axes[1].set_title("C3: halfcheetah (hc.), walker2d (w.) → hopper", fontsize="medium")
    return save_figure(fig, out / "final-claims.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "figures")
    args = parser.parse_args()
    for figure in (main_table, transfer, dt_bc, halfcheetah_spread, lm_init, tt, keydoor, claims):
        path = figure(args.out)
        if path is None:
            continue
        path = path.resolve()
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
