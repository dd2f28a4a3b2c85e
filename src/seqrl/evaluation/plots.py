"""Figures of one evaluation (`seqrl eval --plot`), and the drawing helpers the sweep report's
plots share with them (seqrl.experiments.plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seqrl.figures import add_legend, new_figure, save_figure


def draw_target_curve(ax: Any, targets: Any, means: Any, stds: Any, label: str) -> None:
    """One policy's achieved return (mean ± std) against its target returns."""
    order = np.argsort(np.asarray(targets, np.float64))
    x = np.asarray(targets, np.float64)[order]
    y, e = np.asarray(means, np.float64)[order], np.asarray(stds, np.float64)[order]
    ax.plot(x, y, marker="o", label=label)
    ax.fill_between(x, y - e, y + e, alpha=0.2)


def finish_target_axes(ax: Any, targets: Any, title: str) -> None:
    """The achieved = target line over the plotted targets, labels, legend."""
    lo, hi = float(np.min(targets)), float(np.max(targets))
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=1, label="achieved = target")
    ax.set_xlabel("target return")
    ax.set_ylabel("achieved return")
    ax.set_title(title)
    add_legend(ax)


def plot_eval_targets(report: dict[str, Any], path: Path | str) -> Path:
    """`seqrl eval --plot`: one run's achieved return against its target returns (eval.json's report)."""
    results = [r for r in report["results"] if r["target"] is not None]
    path = Path(path)
    fig, ax = new_figure(figsize=(6.5, 4.5))
    targets = [r["target"] for r in results]
    draw_target_curve(ax, targets, [r["return_mean"] for r in results], [r["return_std"] for r in results],
                      f"{report.get('model', '?')} ({report['episodes']} episodes per target)")
    finish_target_axes(ax, targets, f"{report['dataset']}: achieved against target return (step {report['step']})")
    if report.get("ref_min_score") is not None and report.get("ref_max_score") is not None:
        lo, hi = report["ref_min_score"], report["ref_max_score"]
        score = ax.secondary_yaxis("right", functions=(lambda r: 100 * (r - lo) / (hi - lo),
                                                       lambda s: lo + s * (hi - lo) / 100))
        score.set_ylabel("normalized score")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    return path


def plot_maze_paths(report: dict[str, Any], observations: list[np.ndarray], maze_map: list[list[int]],
                    path: Path | str, max_episodes: int = 12) -> Path:
    """`seqrl eval --plot` for a run in a maze: the first `max_episodes` episodes' paths (the
    Trajectory Transformer paper's Figure 5), each from its start (circle) towards its goal
    (star, read from the observation's last two dimensions); solid paths reached the goal.

    PointMaze's layout: cell (row, col) of the map is the unit square centred at
    (col + 0.5 - cols / 2, rows / 2 - row - 0.5), row 0 at the top.
    """
    from matplotlib.patches import Rectangle

    from seqrl.figures import pyplot

    grid = np.asarray(maze_map)
    rows, cols = grid.shape
    path = Path(path)
    result = report["results"][0]
    successes = result.get("successes") or [False] * len(observations)
    fig, ax = new_figure(figsize=(6, 6))
    for r in range(rows):
        for c in range(cols):
            if grid[r, c] == 1:
                ax.add_patch(Rectangle((c - cols / 2, rows / 2 - r - 1), 1, 1, color="0.35"))
    colours = pyplot().get_cmap("tab10")
    for i, episode in enumerate(observations[:max_episodes]):
        colour = colours(i % 10)
        style = "-" if successes[i] else "--"
        ax.plot(episode[:, 0], episode[:, 1], style, color=colour, lw=1.5, alpha=0.9)
        ax.plot(*episode[0, :2], "o", color=colour, ms=7, mec="k")
        ax.plot(*episode[0, -2:], "*", color=colour, ms=14, mec="k")
    ax.set_xlim(-cols / 2, cols / 2)
    ax.set_ylim(-rows / 2, rows / 2)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    shown = min(len(observations), max_episodes)
    rate = result.get("success_rate")
    summary = "" if rate is None else f"; success {100 * rate:.0f}% of {result['episodes']}"
    ax.set_title(f"{report.get('model', '?')} on {report['dataset']} (step {report['step']})\n"
                 f"{shown} episodes: start o, goal *, solid = reached{summary}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    return path
