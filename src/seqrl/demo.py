"""`seqrl demo`: data, four action representations, evaluation and a plot, in minutes on a laptop CPU.

1. Builds the LunarLanderContinuous datasets with gymnasium's heuristic lander controller
   (the `lunarlander-*` collect recipes, at a small size) into the normal dataset store, or
   reuses them if they are already there.
2. Trains a small Decision Transformer with each action representation (continuous, tokenized,
   tokenized-spread, continuous-spread) on lunarlander-medium-expert, in chunks: after each
   chunk the model is evaluated, which gives the learning curve. Chunks are ordinary resumed
   runs (`train(resume=True)` continues bit-identically), so an interrupted demo picks up where
   it stopped, and a finished one is only read back.
3. Evaluates each final model over more episodes at the dataset's targets (its best return and
   half of it), prints a table of normalized scores next to the behaviour data's own scores,
   and writes `learning_curves.png` and `summary.json` into the demo directory.

Normalized score: 0 is the uniform random policy and 100 the heuristic expert, measured when the
datasets were collected (their stored reference returns).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from seqrl.families.dt.config import VARIANTS, TrainConfig
from seqrl.data.trajectories import TrajectoryDataset
from seqrl.runs import METRICS_FILE, read_jsonl, write_json_atomic

ENV_ID = "LunarLanderContinuous-v3"
RECIPES = ("lunarlander-random", "lunarlander-medium", "lunarlander-expert", "lunarlander-medium-expert")
TRAIN_ON = "lunarlander-medium-expert"
CURVE_FILE = "curve.json"
EVAL_FILE = "eval.json"
SUMMARY_FILE = "summary.json"
PLOT_FILE = "learning_curves.png"


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is: data, model, training and evaluation budgets."""

    transitions: int  # per dataset
    reference_episodes: int  # episodes of the random and expert policies for the reference returns
    dataset_suffix: str  # quick datasets get their own names, so a full demo never reuses them
    train: dict[str, Any]  # TrainConfig fields
    curve_steps: tuple[int, ...]  # steps at which to evaluate (the learning curve); the last is the end
    curve_episodes: int  # episodes per learning-curve point (first target only)
    final_episodes: int  # episodes per target for the final table
    max_episode_steps: int | None  # cap on evaluation episodes (None: the env's own 1000)


FULL = DemoSize(
    transitions=20_000,
    reference_episodes=20,
    dataset_suffix="",
    # Sized for 2 CPU cores: LunarLander's state is Markov, so a short context loses little, and
    # 32 windows of 10 steps keep a step at a few tens of milliseconds.
    train=dict(
        embed_dim=64, n_layers=2, n_heads=1, context_len=10, dropout=0.1, batch_size=32, steps=1500,
        learning_rate=1e-3, warmup_steps=100, num_bins=64, log_every=50, checkpoint_every=500,
    ),
    curve_steps=(100, 500, 1000, 1500),  # an early point shows where learning starts from
    curve_episodes=10,
    final_episodes=50,
    max_episode_steps=None,
)

QUICK = DemoSize(
    transitions=1500,
    reference_episodes=3,
    dataset_suffix="-quick",
    train=dict(
        embed_dim=16, n_layers=1, n_heads=1, context_len=5, dropout=0.1, batch_size=8, steps=10,
        learning_rate=1e-3, warmup_steps=5, num_bins=16, log_every=5, checkpoint_every=5,
    ),
    curve_steps=(5, 10),
    curve_episodes=2,
    final_episodes=2,
    max_episode_steps=30,
)


# --------------------------------------------------------------------------- data
def ensure_dataset(recipe: str, size: DemoSize, progress: bool = False) -> TrajectoryDataset:
    """The recipe's dataset from the store, collected and saved first if it is not there
    (`progress`: say so, and show the collection's progress)."""
    import sys

    from seqrl.collect.recipes import build_recipe, get_recipe
    from seqrl.data.sources import dataset_id_for, load_dataset, local_dataset_ids, save_dataset

    name = recipe + size.dataset_suffix
    dataset_id = dataset_id_for(name)
    if dataset_id not in local_dataset_ids():
        if progress:
            print(f"seqrl demo: collecting {name} ({size.transitions} transitions of LunarLanderContinuous, "
                  "from gymnasium's heuristic lander, noisy or not, or random actions)", file=sys.stderr, flush=True)
        dataset, save_args = build_recipe(recipe, size.transitions, reference_episodes=size.reference_episodes,
                                          progress=progress)
        dataset.metadata["name"] = name
        save_dataset(dataset, dataset_id, get_recipe(recipe).env_id, **save_args)
    return load_dataset(name)


def dataset_row(dataset: TrajectoryDataset) -> dict[str, Any]:
    from seqrl.data.scores import normalized_score, reference_returns

    low, high = reference_returns(dataset.metadata.get("env_id"), dataset.metadata)
    returns = dataset.episode_returns
    scores = normalized_score(returns, low, high)
    return {
        "dataset": dataset.name,
        "episodes": int(dataset.num_episodes),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "score_mean": float(scores.mean()),
        "score_std": float(scores.std()),
        "length_mean": float(dataset.episode_lengths.mean()),
        "length_std": float(dataset.episode_lengths.std()),
    }


# --------------------------------------------------------------------------- progress
# Training steps one evaluation episode is counted as before the demo has timed both on this
# machine: a rough prior, replaced by the measured ratio after the first chunk.
EVAL_EPISODE_IN_STEPS = 20.0


@dataclass
class DemoWork:
    """The demo's work in training-step units: evaluation episodes count as the training steps
    they take as long as, a ratio measured as the demo runs. A progress bar over training steps
    alone shows an ETA of half the real time: the evaluations are the other half."""

    train_steps: int  # left to do
    eval_episodes: int  # left to do
    weight: float = EVAL_EPISODE_IN_STEPS
    train_seconds: float = 0.0
    steps_timed: int = 0
    eval_seconds: float = 0.0
    episodes_timed: int = 0

    @classmethod
    def of(cls, size: "DemoSize", variants: int, targets: int = 2) -> "DemoWork":
        per_variant = size.curve_episodes * (len(size.curve_steps) - 1) + size.final_episodes * targets
        return cls(variants * size.curve_steps[-1], variants * per_variant)

    def units_left(self) -> int:
        return round(self.train_steps + self.eval_episodes * self.weight)

    def done(self, steps: int, train_s: float, episodes: int, eval_s: float) -> int:
        """Record one chunk (`steps` trained, `episodes` evaluated); its units at the current weight."""
        units = round(steps + episodes * self.weight)
        self.train_steps -= steps
        self.eval_episodes -= episodes
        self.train_seconds += train_s
        self.steps_timed += steps
        self.eval_seconds += eval_s
        self.episodes_timed += episodes
        if self.steps_timed and self.episodes_timed and self.train_seconds > 0:
            self.weight = (self.eval_seconds / self.episodes_timed) / (self.train_seconds / self.steps_timed)
        return units


# --------------------------------------------------------------------------- one variant
def run_variant(
    variant: str, dataset: TrajectoryDataset, size: DemoSize, run_dir: Path, device: str, progress: bool,
    tracker: Any = None, work: DemoWork | None = None,
) -> dict[str, Any]:
    """Train `variant` chunk by chunk with an evaluation after each; the final evaluation report.

    Everything already on disk (curve points, the final eval.json) is reused, not recomputed.
    `tracker` (a seqrl.progress.Progress over the demo's work, `work`'s units: training steps, and
    evaluation episodes weighted by what they cost) advances chunk by chunk.
    """
    from seqrl.checkpoint import checkpoint_path, load_checkpoint
    from seqrl.loading import load_run
    from seqrl.evaluation.evaluate import evaluate
    from seqrl.train import resolve_device, train

    cfg = TrainConfig(
        dataset=dataset.name, model=variant, run_dir=str(run_dir), device=device, progress=progress,
        precision="fp32", **size.train,
    )
    curve_path, eval_path = run_dir / CURVE_FILE, run_dir / EVAL_FILE
    curve: list[dict[str, Any]] = json.loads(curve_path.read_text()) if curve_path.exists() else []
    done = {point["step"] for point in curve}
    final_step = size.curve_steps[-1]
    # The demo's own bar counts evaluation episodes (DemoWork); a bar per evaluation would only flicker beside it.
    eval_kw = dict(context_len=cfg.context_len, seed=cfg.eval_seed, max_episode_steps=size.max_episode_steps, progress=False)

    def final_evaluation(model: Any, spec: Any, step: int) -> list[dict[str, Any]]:
        """Every target, more episodes; written to eval.json in `seqrl eval`'s layout."""
        results = evaluate(model, spec, episodes=size.final_episodes, **eval_kw)
        write_json_atomic(eval_path, {
            "run_dir": str(run_dir), "step": step, "model": variant, "dataset": dataset.name,
            "env_id": spec.env_id, "episodes": size.final_episodes, "seed": cfg.eval_seed,
            "max_episode_steps": size.max_episode_steps, "results": results,
        })
        return results

    previous = 0
    for step in size.curve_steps:
        chunk, previous = step - previous, step
        episodes = size.final_episodes * len(dataset_targets(dataset)) if step == final_step else size.curve_episodes
        if step in done or (checkpoint_path(run_dir).exists() and load_checkpoint(checkpoint_path(run_dir))["step"] > step):
            # Done in an earlier demo (or trained past this point by an interrupted one: the point is lost).
            if tracker is not None and work is not None:
                tracker.skip(round(chunk + episodes * work.weight))
                work.train_steps -= chunk
                work.eval_episodes -= episodes
            continue
        start = time.perf_counter()
        result = train(dataclasses.replace(cfg, steps=step, resume=True), dataset=dataset)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        if step == final_step:  # the curve's last point is the final evaluation's first target
            results = final_evaluation(result.model, result.spec, step)
        else:
            results = evaluate(
                result.model, result.spec, targets=result.spec.targets[:1], episodes=size.curve_episodes, **eval_kw
            )
        first = results[0]
        curve.append({
            "step": step, "target": first["target"], "episodes": first["episodes"],
            "return_mean": first["return_mean"], "score_mean": first["score_mean"],
            "train_seconds": train_s, "eval_seconds": time.perf_counter() - start,
        })
        curve.sort(key=lambda point: point["step"])
        write_json_atomic(curve_path, curve)
        if tracker is not None and work is not None:
            units = work.done(chunk, train_s, sum(r["episodes"] for r in results), curve[-1]["eval_seconds"])
            tracker.update(units, variant=variant, score=round(first["score_mean"], 1))
            tracker.set_total(tracker.n + work.units_left())
    if not eval_path.exists():
        # Only when an interrupted earlier demo trained to the end but did not evaluate.
        run = load_run(run_dir, resolve_device(device))
        final_evaluation(run.model, run.spec, run.step)
    report = json.loads(eval_path.read_text())
    report["curve"] = curve
    report["train_seconds"] = sum(point["train_seconds"] for point in curve)
    return report


def dataset_targets(dataset: TrajectoryDataset) -> tuple[float, ...]:
    """The target returns the demo evaluates at: the DT's presets for the dataset (its best return and half)."""
    from seqrl.models.spec import DataSpec

    return tuple(DataSpec.from_dataset(dataset, rtg_scale=1.0, targets=None).targets)


# --------------------------------------------------------------------------- outputs
def short_name(dataset: str) -> str:
    """'seqrl/lunarlander-medium-v0' (or its -quick twin) -> 'medium': every row is lunarlander."""
    name = dataset.split("/")[-1].rsplit("-v", 1)[0]
    return name.removeprefix("lunarlander-").removesuffix(QUICK.dataset_suffix)


def summary_table(summary: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=(
        f"Decision Transformer on {ENV_ID}, trained {summary['steps']} steps on "
        f"{short_name(summary['train_dataset'])} data; {summary['final_episodes']} episodes per target; "
        "normalized score: random 0, heuristic expert 100"
    ))
    for column, justify in (("policy", "left"), ("target", "right"), ("return", "right"),
                            ("score", "right"), ("length", "right"), ("train s", "right")):
        table.add_column(column, justify=justify, no_wrap=True)
    for name, report in summary["variants"].items():
        for result in report["results"]:
            table.add_row(
                f"DT {name}", f"{result['target']:.0f}",
                f"{result['return_mean']:.0f} ± {result['return_std']:.0f}",
                f"{result['score_mean']:.1f} ± {result['score_std']:.1f}",
                f"{result['length_mean']:.0f}", f"{report['train_seconds']:.0f}",
            )
    table.add_section()
    for row in summary["datasets"]:
        table.add_row(
            f"{short_name(row['dataset'])} data", "-", f"{row['return_mean']:.0f} ± {row['return_std']:.0f}",
            f"{row['score_mean']:.1f} ± {row['score_std']:.1f}", f"{row['length_mean']:.0f}", "-",
        )
    return table


def plot_learning_curves(summary: dict[str, Any], out: Path, runs: Path) -> Path:
    """Training loss and normalized score against steps, one line per representation."""
    from seqrl.figures import add_legend, new_figure, plain_log_ticks, save_figure

    fig, (loss_ax, score_ax) = new_figure(1, 2, figsize=(11, 4))
    for name, report in summary["variants"].items():
        records = [r for r in read_jsonl(runs / name / METRICS_FILE) if "loss" in r]
        loss_ax.plot([r["step"] for r in records], [r["loss"] for r in records], label=name)
        curve = report["curve"]
        score_ax.plot([p["step"] for p in curve], [p["score_mean"] for p in curve], marker="o", label=name)
    # The behaviour data's scores: dotted lines, named beside the axes on the right (inside they
    # sat on the curves and the axis), nudged apart where two are close.
    rows = sorted(summary["datasets"], key=lambda row: row["score_mean"])
    low, high = min(r["score_mean"] for r in rows), max(r["score_mean"] for r in rows)
    gap, placed = 0.06 * max(high - low, 1.0), []
    for row in rows:
        score_ax.axhline(row["score_mean"], color="grey", linestyle=":", linewidth=1)
        y = max([row["score_mean"]] + [p + gap for p in placed[-1:]])
        placed.append(y)
        score_ax.annotate(f"{short_name(row['dataset'])} data", (1.01, y), xycoords=("axes fraction", "data"),
                          fontsize=7, color="grey", va="center", ha="left", annotation_clip=False)
    loss_ax.set(xlabel="gradient step", ylabel="training loss", title="Action loss", yscale="log")
    target = next(iter(summary["variants"].values()))["curve"][0]["target"]
    score_ax.set(xlabel="gradient step", ylabel="normalized score (random 0, expert 100)",
                 title=f"{ENV_ID}, target return {target:.0f}")
    plain_log_ticks(loss_ax)
    add_legend(loss_ax)
    add_legend(score_ax)
    return save_figure(fig, out / PLOT_FILE, dpi=120)


# --------------------------------------------------------------------------- the command
def run_demo(out: str | Path | None = None, *, quick: bool = False, device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Run (or finish, or re-read) the demo in `out`; the summary it also writes to summary.json."""
    size = QUICK if quick else FULL
    out = Path(out) if out is not None else Path("runs") / ("demo-quick" if quick else "demo")
    runs = out / "runs"
    start = time.perf_counter()
    datasets = {recipe: ensure_dataset(recipe, size, progress) for recipe in RECIPES}
    data_seconds = time.perf_counter() - start
    train_data = datasets[TRAIN_ON]
    from seqrl.progress import Progress

    work = DemoWork.of(size, len(VARIANTS), targets=len(dataset_targets(train_data)))
    # Units: training steps, with evaluation episodes counted as the steps they take as long as.
    with Progress(work.units_left(), "demo: training and evaluating", unit="step", enabled=progress) as tracker:
        variants = {v: run_variant(v, train_data, size, runs / v, device, progress, tracker, work) for v in VARIANTS}
    summary = {
        "env_id": ENV_ID,
        "quick": quick,
        "train_dataset": train_data.name,
        "steps": size.train["steps"],
        "final_episodes": size.final_episodes,
        "config": size.train,
        "datasets": [dataset_row(d) for d in datasets.values()],
        "variants": variants,
        "data_seconds": data_seconds,
        "wall_seconds": time.perf_counter() - start,  # of this invocation (reused work is not counted)
    }
    summary["plot"] = str(plot_learning_curves(summary, out, runs))
    write_json_atomic(out / SUMMARY_FILE, summary)
    return summary


def demo_command(
    out: str | None = None, quick: bool = False, device: str = "auto", threads: int | None = 1, progress: bool = True
) -> None:
    """Build LunarLander datasets, train the four action representations, evaluate, plot (about 3 minutes on 2 idle CPU cores, 186 s measured in docs/bench-results/demo.txt; longer on a busy machine).

    Re-running reuses the datasets, finished runs and evaluations; an interrupted demo resumes.

    Args:
        out: Demo directory (default: runs/demo, or runs/demo-quick with --quick).
        quick: A tiny smoke version (seconds; its numbers mean nothing).
        device: cpu, cuda, cuda:N, or auto.
        threads: CPU threads for torch. One is fastest for the demo's small model, whose ops are
            too small to split, and keeps it fast on a busy machine; None: torch's default.
        progress: Show progress while training: bars on a terminal, otherwise a plain line every
            30 s ($SEQRL_PROGRESS_SECONDS).
    """
    from seqrl.console import make_console
    from seqrl.threads import torch_threads

    with torch_threads(threads):
        summary = run_demo(out, quick=quick, device=device, progress=progress)
    console = make_console()
    console.print(summary_table(summary))
    scores = [r["results"][0]["score_mean"] for r in summary["variants"].values()]
    # Plain prints: rich would wrap long paths mid-name.
    print(f"normalized score at the highest target: {min(scores):.1f} to {max(scores):.1f} "
          "(random policy 0, heuristic expert 100)")
    print(f"learning curves: {summary['plot']}")
    print(f"wall time: {summary['wall_seconds']:.0f} s (datasets {summary['data_seconds']:.0f} s)")
