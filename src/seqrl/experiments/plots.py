"""The report's plots (PNG, matplotlib's Agg backend), each drawn only where its runs exist.

- `curves-<experiment>-<dataset>.png`: training loss against step, one line per model x options
  (mean over seeds, band: ± std), and evaluation score against step when runs evaluated
  during training (`eval_every`).
- `bins-<experiment>-<dataset>.png`: score against number of bins (log axis), one line per
  tokenized model, solid for quantile bins and dashed for uniform ones.
- `binning-<experiment>-<dataset>.png`: quantile against uniform bins, bars per model x bins.
- `transfer-<experiment>-<dataset>.png`: fine-tuned with only the embedding layers trainable
  against all layers, per model, beside training from scratch when the sweep has such runs.
- `targets-<experiment>-<dataset>.png`: achieved against target return, one line per model x
  options evaluated at 3 or more targets (the DT paper's "one model, a distribution of
  policies"), the line achieved = target, and unconditioned policies (BC, TT) as flat lines.

A plot whose runs are missing is skipped with a note saying why; one panel per target return.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from seqrl.evaluation.plots import draw_target_curve, finish_target_axes
from seqrl.figures import add_legend, new_figure, plain_log_ticks, save_figure as _save
from seqrl.experiments.groups import Group
from seqrl.families import family_of

NOT_APPLICABLE = "n/a: "  # prefix of a skip reason meaning "no runs of this kind here", not "runs lack data"
SILENT = "n/a silently"  # no runs of this kind, and no note either (an optional plot: targets)


def write_plots(groups: list[Group], out: Path) -> tuple[list[Path], list[str]]:
    """Draw every plot the groups allow; returns (files written, notes on plots skipped).

    Each plot kind is tried for every experiment x dataset. A note is made where a plot's runs
    exist but lack what it needs (no evaluation, a missing half of a pair), and once per kind
    when no experiment has runs of that kind at all.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display (also on headless workers)
    kinds = {"curves": plot_curves, "bins": plot_bins, "binning": plot_binning, "transfer": plot_transfer,
             "targets": plot_targets}
    written: list[Path] = []
    notes: list[str] = []
    unused: dict[str, str] = {}
    for experiment, dataset in dict.fromkeys((g.experiment, g.dataset) for g in groups):
        these = [g for g in groups if (g.experiment, g.dataset) == (experiment, dataset)]
        tag = (f"{experiment}-{dataset}" if experiment else dataset).replace("/", "_").replace(":", "_")
        for kind, draw in kinds.items():
            path = out / f"{kind}-{tag}.png"
            reason = draw(these, groups, path)
            if reason is None:
                written.append(path)
            elif reason == SILENT:
                continue
            elif reason.startswith(NOT_APPLICABLE):
                unused.setdefault(kind, reason.removeprefix(NOT_APPLICABLE))
            else:
                notes.append(f"{path.name} skipped: {reason}")
    for kind, reason in unused.items():
        if not any(p.name.startswith(f"{kind}-") for p in written):
            notes.append(f"no {kind} plot: {reason}")
    return written, notes


# ----------------------------------------------------------------------------- helpers
def _score_stats(group: Group, target: float) -> tuple[float, float] | None:
    scores = group.scores(target, "score_mean")
    if not len(scores):
        scores = group.scores(target, "return_mean")
    if not len(scores):
        return None
    return float(scores.mean()), float(scores.std())


def _metric(groups: list[Group]) -> str:
    """'score' when every group has normalized scores, else 'return' (tasks without references)."""
    for group in groups:
        for target in group.targets():
            if not len(group.scores(target, "score_mean")):
                return "return"
    return "score"


def natural_order(text: str) -> list[Any]:
    """Sort key that reads digit runs as numbers: num_bins=300 before num_bins=1000."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def _targets(groups: list[Group]) -> list[float]:
    return list(dict.fromkeys(t for g in groups for t in g.targets()))


def _panels(n: int, title: str) -> tuple[Any, list[Any]]:
    fig, axes = new_figure(1, n, figsize=(5.5 * n, 4), squeeze=False)
    fig.suptitle(title)
    return fig, list(axes[0])


def _mean_curve(runs: list[Any], key: str, eval_lines: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Steps, mean and std over seeds of metric `key`, at the steps every seed logged."""
    per_run = []
    for run in runs:
        points = {m["step"]: m[key] for m in run.metrics
                  if key in m and (m.get("kind") == "eval") == eval_lines and m[key] is not None}
        if points:
            per_run.append(points)
    if not per_run:
        return None
    steps = sorted(set.intersection(*(set(p) for p in per_run)))
    if not steps:
        return None
    values = np.array([[p[s] for s in steps] for p in per_run], np.float64)  # (seeds, steps)
    return np.asarray(steps), values.mean(0), values.std(0)


# ----------------------------------------------------------------------------- plots
def plot_curves(groups: list[Group], _all: list[Group], path: Path) -> str | None:
    """Loss (and eval score, when logged during training) against step, per model x options."""
    curves = [(g, _mean_curve(g.runs, "loss", eval_lines=False)) for g in groups]
    curves = sorted(((g, c) for g, c in curves if c is not None), key=lambda gc: natural_order(gc[0].name))
    if not curves:
        return "no training metrics (metrics.jsonl) in these runs"
    eval_keys = sorted({k for g in groups for r in g.runs for m in r.metrics if m.get("kind") == "eval"
                        for k in m if k.endswith("/score_mean")})
    fig, axes = _panels(1 + len(eval_keys), f"{groups[0].experiment or 'runs'}: {groups[0].dataset}")
    for group, (steps, mean, std) in curves:
        (line,) = axes[0].plot(steps, mean, label=group.name)
        axes[0].fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        held_out = _mean_curve(group.runs, "val_loss", eval_lines=False)  # --holdout-fraction runs
        if held_out is not None:
            axes[0].plot(held_out[0], held_out[1], linestyle="--", color=line.get_color(), label=f"{group.name} (held out)")
    axes[0].set(xlabel="step", ylabel="training loss (dashed: held-out episodes)", yscale="log")
    plain_log_ticks(axes[0])
    add_legend(axes[0])  # below the panel when it is long (seqrl.figures)
    for ax, key in zip(axes[1:], eval_keys):
        for group in groups:
            curve = _mean_curve(group.runs, key, eval_lines=True)
            if curve is not None:
                steps, mean, std = curve
                (line,) = ax.plot(steps, mean, marker="o", label=group.name)
                ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        target = key.split("/")[1].removeprefix("target_")
        ax.set(xlabel="step", ylabel="normalized score", title="planned (no target)" if target == "plan" else f"target {target}")
        add_legend(ax)
    _save(fig, path)
    return None


def plot_bins(groups: list[Group], _all: list[Group], path: Path) -> str | None:
    """Score against number of bins per tokenized model, quantile solid, uniform dashed."""
    lines: dict[tuple, list[Group]] = {}
    for g in groups:
        if family_of(g.config).binned(g.config) and g.finetune is None:
            c = g.config
            lines.setdefault((g.model, c.binning, c.head, c.token_offsets, c.action_index_embedding), []).append(g)
    lines = {k: v for k, v in lines.items() if len({g.config.num_bins for g in v}) >= 2}
    if not lines:
        return NOT_APPLICABLE + "no tokenized runs that differ only in their number of bins"
    lines = {k: [g for g in v if g.targets()] for k, v in lines.items()}
    lines = {k: v for k, v in lines.items() if len({g.config.num_bins for g in v}) >= 2}
    if not lines:
        return "runs with different numbers of bins exist, but fewer than two of them have an eval.json"
    metric = _metric([g for v in lines.values() for g in v])
    targets = _targets([g for v in lines.values() for g in v])
    fig, axes = _panels(len(targets), f"{groups[0].experiment}: {groups[0].dataset}: {metric} against bins")
    colors: dict[str, Any] = {}
    for ax, target in zip(axes, targets):
        for (model, binning, *_), members in sorted(lines.items(), key=lambda kv: str(kv[0])):
            points = sorted((g.config.num_bins, _score_stats(g, target)) for g in members)
            points = [(b, s) for b, s in points if s is not None]
            if not points:
                continue
            bins = [b for b, _ in points]
            mean = np.array([s[0] for _, s in points])
            std = np.array([s[1] for _, s in points])
            line = ax.errorbar(bins, mean, yerr=std, marker="o", capsize=3, linestyle="-" if binning == "quantile" else "--",
                               color=colors.get(model), label=f"{model} {binning}")
            colors.setdefault(model, line[0].get_color())
        all_bins = sorted({g.config.num_bins for v in lines.values() for g in v})
        ax.set_xscale("log")
        ax.set_xticks(all_bins, [str(b) for b in all_bins], minor=False)
        ax.minorticks_off()
        ax.set(xlabel="bins per action feature", ylabel=f"normalized {metric}" if metric == "score" else metric,
               title="planned (no target)" if target is None else f"target {target:g}")
        add_legend(ax)
    _save(fig, path)
    return None


def binning_bar_order(key: tuple) -> tuple:
    """Bars of the binning plot: by model, then number of bins as a number (100 before 1000)."""
    model, num_bins, *rest = key
    return (model, num_bins, str(rest))


def plot_binning(groups: list[Group], _all: list[Group], path: Path) -> str | None:
    """Quantile against uniform bins: paired bars per model x number of bins."""
    pairs: dict[tuple, dict[str, Group]] = {}
    for g in groups:
        if family_of(g.config).binned(g.config) and g.finetune is None:
            c = g.config
            pairs.setdefault((g.model, c.num_bins, c.head, c.token_offsets, c.action_index_embedding), {})[c.binning] = g
    if not any({"quantile", "uniform"} <= set(v) for v in pairs.values()):
        return NOT_APPLICABLE + "no quantile/uniform pair of otherwise equal tokenized runs"
    pairs = {k: v for k, v in pairs.items() if {"quantile", "uniform"} <= set(v) and all(g.targets() for g in v.values())}
    if not pairs:
        return "quantile/uniform pairs exist, but none has an eval.json on both sides"
    keys = sorted(pairs, key=binning_bar_order)
    targets = _targets([g for v in pairs.values() for g in v.values()])
    metric = _metric([g for v in pairs.values() for g in v.values()])
    fig, axes = _panels(len(targets), f"{groups[0].experiment}: {groups[0].dataset}: quantile against uniform bins")
    x = np.arange(len(keys))
    for ax, target in zip(axes, targets):
        for offset, binning in ((-0.2, "quantile"), (0.2, "uniform")):
            stats = [_score_stats(pairs[k][binning], target) or (np.nan, 0.0) for k in keys]
            ax.bar(x + offset, [s[0] for s in stats], 0.4, yerr=[s[1] for s in stats], capsize=3, label=binning)
        ax.set_xticks(x, [f"{k[0]}\n{k[1]} bins" for k in keys], fontsize="small", rotation=30)
        ax.set(ylabel=f"normalized {metric}" if metric == "score" else metric, title="planned (no target)" if target is None else f"target {target:g}")
        add_legend(ax, below=True)
    _save(fig, path)
    return None


def plot_transfer(groups: list[Group], all_groups: list[Group], path: Path) -> str | None:
    """Fine-tuned (embeddings only / all layers) against from-scratch training, per model."""
    tuned = [g for g in groups if g.finetune is not None]
    if not tuned:
        return NOT_APPLICABLE + "no fine-tuning runs"
    tuned = [g for g in tuned if g.targets()]
    if not tuned:
        return "the fine-tuning runs have no eval.json"
    models = list(dict.fromkeys(g.model for g in tuned))
    modes = ["scratch", "embeddings", "all"]
    bars: dict[tuple[str, str], Group] = {(g.model, g.finetune["train"]): g for g in tuned}
    for model in models:
        # From scratch on the same dataset: a run of any experiment with the same model, not fine-tuned,
        # and the same options apart from the fine-tuning mode.
        labels = {g.label.replace(f"ft-{g.finetune['train']}", "").strip(",") for g in tuned if g.model == model}
        scratch = [g for g in all_groups if g.dataset == groups[0].dataset and g.model == model and g.finetune is None
                   and g.label in labels and g.targets()]
        if scratch:
            bars[(model, "scratch")] = scratch[0]
    modes = [m for m in modes if any((model, m) in bars for model in models)]
    targets = _targets(list(bars.values()))
    metric = _metric(list(bars.values()))
    source = tuned[0].finetune["source"].split("/")[1] if "/" in tuned[0].finetune["source"] else tuned[0].finetune["source"]
    fig, axes = _panels(len(targets), f"{groups[0].experiment}: {source} → {groups[0].dataset}")
    x = np.arange(len(models))
    width = 0.8 / len(modes)
    for ax, target in zip(axes, targets):
        for i, mode in enumerate(modes):
            stats = [_score_stats(bars[(m, mode)], target) if (m, mode) in bars else None for m in models]
            stats = [s or (np.nan, 0.0) for s in stats]
            label = {"scratch": "from scratch", "embeddings": "fine-tune embeddings", "all": "fine-tune all layers"}[mode]
            ax.bar(x + (i - (len(modes) - 1) / 2) * width, [s[0] for s in stats], width, yerr=[s[1] for s in stats],
                   capsize=3, label=label)
        ax.set_xticks(x, models, fontsize="small")
        ax.set(ylabel=f"normalized {metric}" if metric == "score" else metric, title="planned (no target)" if target is None else f"target {target:g}")
        add_legend(ax, below=True)
    _save(fig, path)
    return None


MIN_TARGETS = 3  # a group is drawn in the targets plot when evaluated at this many target returns


def plot_targets(groups: list[Group], all_groups: list[Group], path: Path) -> str | None:
    """Achieved against target return for every group evaluated at MIN_TARGETS or more targets;
    unconditioned groups (BC, TT) on the same dataset, from any experiment, as flat lines."""
    conditioned = [g for g in groups if len([t for t in g.targets() if t is not None]) >= MIN_TARGETS]
    if not conditioned:
        return SILENT  # most sweeps evaluate at 2 targets: no note for a plot nobody asked for
    fig, ax = new_figure(figsize=(6.5, 4.5))
    every: list[float] = []
    for group in sorted(conditioned, key=lambda g: natural_order(g.name)):
        targets = [t for t in group.targets() if t is not None]
        stats = [(t, group.scores(t, "return_mean")) for t in targets]
        stats = [(t, v) for t, v in stats if len(v)]
        draw_target_curve(ax, [t for t, _ in stats], [v.mean() for _, v in stats], [v.std() for _, v in stats],
                          f"{group.name} ({len(group.runs)} seeds)")
        every += [t for t, _ in stats]
    flat_lines = 0
    for group in [g for g in all_groups if g.dataset == groups[0].dataset]:  # unconditioned: flat lines
        flat = group.scores(None, "return_mean") if None in group.targets() else np.zeros(0)
        if len(flat):
            # axhline does not advance the colour cycle: name each line's colour, after the curves'
            ax.axhline(float(flat.mean()), linestyle=":", color=f"C{(len(conditioned) + flat_lines) % 10}",
                       label=f"{group.name} (unconditioned)")
            flat_lines += 1
    finish_target_axes(ax, every, f"{groups[0].dataset}: achieved against target return")
    _save(fig, path)
    return None
