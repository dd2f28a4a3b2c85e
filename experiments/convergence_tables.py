"""Where the baseline DT converges (issue 30, step 1): learning curves of an experiments/convergence.yaml
sweep, the evaluation score and the held-out loss against updates, and the plateau step of each.

    python experiments/convergence_tables.py /work/convergence-runs [--out docs/results/convergence]
    python experiments/convergence_tables.py docs/results/convergence/runs docs/results/tt_long/runs \
        --datasets hopper-medium --out docs/results/tt_long      # the TT's curve beside the DT's

ROOT (one or more) is the sweep's output (ROOT/EXPERIMENT/DATASET/MODEL/sSEED/metrics.jsonl) or the copy of the
runs' metrics committed under docs/results/convergence/runs, from which the committed table
regenerates byte for byte. Runs need not be finished: a curve is drawn as far as it goes.

The plateau of the score is the first evaluation step from which the mean over seeds stays within
`--tolerance` normalized points (default 5) of the mean over the curve's last quarter, at every later
evaluation: past it, more updates do not move the score by more than the tolerance. The held-out
loss's best step is where the mean over seeds of val_loss (the loss on a tenth of the episodes held
out of training) is lowest; after it the model fits its training episodes better and held-out ones
worse. Writes OUT/curves.json (mean and per-seed curves), OUT/table.md and OUT/curves-DATASET.png.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def read_curves(run_dir: Path) -> dict:
    """{"score": {step: normalized score at the highest target}, "val_loss": {step: value}} of one run."""
    score, val_loss = {}, {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "eval":
            scores = [v for k, v in record.items() if k.endswith("score_mean")]
            if scores:
                score[int(record["step"])] = float(max(scores))  # the highest target's (one is evaluated)
        if "val_loss" in record:
            val_loss[int(record["step"])] = float(record["val_loss"])
    return {"score": score, "val_loss": val_loss}


def collect(roots: Path | list[Path], include_unfinished: bool = False, datasets: list[str] | None = None,
            experiments: list[str] | None = None) -> dict:
    """{(experiment, dataset, model): {seed: curves}} of the finished runs with a curve (an eval.json
    beside metrics.jsonl, and evaluations or a held-out loss during training), or of every such run with include_unfinished (a mean is then cut to the shortest),
    under each root, of `datasets` and `experiments` only where given."""
    groups: dict = defaultdict(dict)
    for root in [roots] if isinstance(roots, Path) else roots:
        for path in sorted(root.glob("*/*/*/s*/metrics.jsonl")):
            seed_dir = path.parent
            if not include_unfinished and not (seed_dir / "eval.json").exists():
                continue
            key = (seed_dir.parents[2].name, seed_dir.parents[1].name, seed_dir.parents[0].name)
            if (datasets and key[1] not in datasets) or (experiments and key[0] not in experiments):
                continue
            curves = read_curves(seed_dir)
            if curves["score"] or curves["val_loss"]:  # a run evaluated only at its end has no curve
                groups[key][seed_dir.name[1:]] = curves
    return dict(groups)


def mean_curve(per_seed: list[dict[int, float]]) -> tuple[list[int], np.ndarray, int]:
    """Steps every seed has reached, and the mean over seeds there."""
    steps = sorted(set.intersection(*(set(c) for c in per_seed))) if per_seed else []
    values = np.array([[c[s] for s in steps] for c in per_seed]).mean(0) if steps else np.array([])
    return steps, values, len(per_seed)


def plateau_level(values: np.ndarray) -> float:
    """The mean of a curve's last quarter: the level it settles at, if it settles."""
    return float(values[-max(1, len(values) // 4):].mean())


def plateau_step(steps: list[int], values: np.ndarray, tolerance: float) -> int | None:
    """The first step from which every later value is within `tolerance` of the last quarter's mean;
    None where that is not yet borne out by at least two evaluations after it (a curve still rising)."""
    if len(steps) < 4:
        return None
    level = plateau_level(values)
    inside = np.abs(values - level) <= tolerance
    for i in range(len(steps) - 2):
        if inside[i:].all():
            return steps[i]
    return None


def summarise(groups: dict, tolerance: float) -> dict:
    out = {}
    for (experiment, dataset, model), seeds in sorted(groups.items()):
        ordered = [seeds[s] for s in sorted(seeds, key=int)]
        steps, score, n = mean_curve([c["score"] for c in ordered if c["score"]])
        loss_steps, loss, _ = mean_curve([c["val_loss"] for c in ordered if c["val_loss"]])
        out[f"{experiment}/{dataset}/{model}"] = {
            "seeds": sorted(seeds, key=int), "seeds_with_curves": n,
            "steps": steps, "score_mean": [round(float(v), 3) for v in score],
            "score_per_seed": {s: seeds[s]["score"] for s in sorted(seeds, key=int)},
            "last_step": steps[-1] if steps else None,
            "plateau_step": plateau_step(steps, score, tolerance),
            "plateau_level": round(plateau_level(score), 3) if len(score) else None,
            "best_val_loss_step": loss_steps[int(np.argmin(loss))] if len(loss) else None,
            "best_val_loss": round(float(loss.min()), 5) if len(loss) else None,
            "last_val_loss": round(float(loss[-1]), 5) if len(loss) else None,
        }
    return out


def table(summary: dict, tolerance: float) -> str:
    lines = [f"| experiment / dataset / model | seeds | updates so far | score plateau step (±{tolerance:g}) "
             "| plateau level | lowest held-out loss at | lowest / last held-out loss |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for name, row in summary.items():
        level = "" if row["plateau_level"] is None else f"{row['plateau_level']:.1f}"
        loss = ("" if row["best_val_loss"] is None else f"{row['best_val_loss']:.4f} / {row['last_val_loss']:.4f}")
        lines.append(f"| {name} | {row['seeds_with_curves']} | {row['last_step'] or ''} | "
                     f"{row['plateau_step'] or 'not yet'} | {level} | {row['best_val_loss_step'] or ''} | {loss} |")
    return "\n".join(lines) + "\n"


def plot(summary: dict, groups: dict, out: Path) -> list[Path]:
    from seqrl.figures import add_legend, new_figure, save_figure

    paths = []
    datasets = sorted({name.split("/")[1] for name in summary})
    for dataset in datasets:
        fig, axes = new_figure(1, 2, figsize=(10.0, 3.8))
        for name, row in summary.items():
            experiment, ds, model = name.split("/")
            if ds != dataset:
                continue
            seeds = groups[(experiment, ds, model)]
            (line,) = axes[0].plot(row["steps"], row["score_mean"],
                                   label=f"{experiment} {model}, mean of {row['seeds_with_curves']} seeds")
            for curve in (seeds[s]["score"] for s in sorted(seeds, key=int)):  # each seed, faint
                axes[0].plot(sorted(curve), [curve[k] for k in sorted(curve)], alpha=0.25, lw=0.8,
                             color=line.get_color())
            loss_steps, loss, _ = mean_curve([seeds[s]["val_loss"] for s in seeds if seeds[s]["val_loss"]])
            if loss_steps:
                axes[1].plot(loss_steps, loss, color=line.get_color(), label=f"{experiment} {model}")
        axes[0].set(xlabel="updates", ylabel="normalized score (highest target)", title=f"{dataset}: evaluation")
        axes[1].set(xlabel="updates", ylabel="held-out loss", title=f"{dataset}: held-out episodes")
        add_legend(axes[0], below=True)
        path = out / f"curves-{dataset}.png"
        save_figure(fig, path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", metavar="ROOT")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "results" / "convergence")
    parser.add_argument("--tolerance", type=float, default=5.0)
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--datasets", nargs="+", help="only these datasets' runs")
    parser.add_argument("--experiments", nargs="+", help="only these experiments' runs (a spec's top-level names)")
    parser.add_argument("--include-unfinished", action="store_true",
                        help="also runs without an eval.json (still training); means are cut to the shortest")
    args = parser.parse_args(argv)
    groups = collect(args.roots, args.include_unfinished, args.datasets, args.experiments)
    if not groups:
        raise SystemExit(f"no metrics.jsonl under {' or '.join(map(str, args.roots))}/EXPERIMENT/DATASET/MODEL/sSEED"
                         + (f" of {', '.join(args.datasets)}" if args.datasets else "")
                         + (f" in {', '.join(args.experiments)}" if args.experiments else ""))
    summary = summarise(groups, args.tolerance)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curves.json").write_text(json.dumps(summary, indent=1) + "\n")
    text = table(summary, args.tolerance)
    (args.out / "table.md").write_text(text)
    if not args.no_plot:
        plot(summary, groups, args.out)
    print(text, end="")


if __name__ == "__main__":
    main()
