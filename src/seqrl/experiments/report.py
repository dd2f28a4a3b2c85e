"""`seqrl report RUNS_DIR`: collect run directories into score tables (Markdown, CSV) and plots.

Runs are grouped by experiment x dataset x model x options; a group's seeds are averaged. For
sweep runs the group comes from the run's sweep.json (its experiment and label); for runs
trained by hand, from the config: the options are the fields that differ from the defaults
(training-only fields such as logging and devices aside).

Per run, the score of a target is the mean normalized score over its evaluation episodes
(eval.json's `score_mean`); a group's row shows the mean and the standard deviation of those
per-seed scores over seeds (population std, numpy's default, as `seqrl eval` uses per episode).
Returns are summarised the same way, for tasks without reference returns, and so is each run's
training loss at its last logged step (`final loss`; the action loss alone for runs with the
language-model objectives, see `Group.final_losses`).

Sweep runs that are not finished (sweep.json says `running`, `failed`, or a run killed
mid-training that still says `running`) are left out of tables and plots by default, with a note
naming them: a half-trained run's loss curve or a stale eval.json would otherwise pass for a
result. `--include-unfinished` keeps them, for a look at a sweep in progress.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import tyro  # noqa: F401 (resolves the command's string annotations)

from seqrl.errors import ConfigError

from seqrl.experiments.groups import (  # noqa: F401 (collect and Group re-exported: the report's API)
    CSV_COLUMNS, Group, RunRecord, collect, finetune_sources, format_target,
)

def summary_rows(groups: list[Group]) -> list[dict[str, Any]]:
    """One row per group x target: mean and std over seeds of score and return."""
    rows = []
    for group in groups:
        targets = group.targets()
        if not targets:
            continue
        for target in targets:
            scores, returns = group.scores(target, "score_mean"), group.scores(target, "return_mean")
            steps = sorted({(r.eval or {}).get("step") for r in group.runs if r.eval})
            losses = group.final_losses()
            seconds = [r.seconds for r in group.runs if r.seconds is not None]
            rows.append({
                "experiment": group.experiment,
                "dataset": group.dataset,
                "model": group.model,
                "options": group.label,
                "finetune_from": finetune_sources(group),
                "target": target,
                "seeds": len(returns),
                "score_mean": float(scores.mean()) if len(scores) else None,
                "score_std": float(scores.std()) if len(scores) else None,
                "return_mean": float(returns.mean()) if len(returns) else None,
                "return_std": float(returns.std()) if len(returns) else None,
                "step": "/".join(str(s) for s in steps),
                "final_loss_mean": float(losses.mean()) if len(losses) else None,
                "final_loss_std": float(losses.std()) if len(losses) else None,
                "seconds_mean": float(np.mean(seconds)) if seconds else None,
            })
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS})
    return out.getvalue()


def read_results_csv(path: str | Path) -> list[dict[str, str]]:
    """The rows of a results.csv that `seqrl report` wrote, those with a score (the table scripts
    under experiments/ read it back). A missing file or one without the report's columns is
    refused by name."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("experiment", "dataset", "model", "options", "target", "seeds", "score_mean",
                                   "score_std") if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(f"{path} is not a results.csv written by seqrl report: no column "
                                  f"{', '.join(missing)}")
            return [row for row in reader if row["score_mean"]]
    except OSError as exc:
        raise ConfigError(f"cannot read results CSV {path}: {exc.strerror or exc}") from None


def score_cell(row: dict[str, str] | None) -> str:
    """A results.csv row's normalized score as a table cell: mean ± std, its seed count when under
    3, "–" for no row."""
    if row is None:
        return "–"
    seeds = int(row["seeds"])
    text = f"{float(row['score_mean']):.1f} ± {float(row['score_std']):.1f}"
    return text if seeds >= 3 else f"{text} ({seeds} seed{'s' if seeds > 1 else ''})"


def _pm(mean: float | None, std: float | None, digits: int) -> str:
    return "–" if mean is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _pm_sig(mean: float | None, std: float | None) -> str:
    """Losses span orders of magnitude across tasks: 3 significant digits, not fixed decimals."""
    return "–" if mean is None else f"{mean:.3g} ± {std:.2g}"


def to_markdown(rows: list[dict[str, Any]], title: str = "Results") -> str:
    """One Markdown table per experiment, rows per dataset x model x options x target."""
    lines = [f"# {title}", "",
             "Normalized score (100 × (return − random) / (expert − random)): mean ± std over seeds "
             "of each seed's mean over its evaluation episodes.", ""]
    experiments = list(dict.fromkeys(r["experiment"] for r in rows))
    for experiment in experiments:
        lines += [f"## {experiment or 'runs'}", "",
                  "| dataset | model | options | target | seeds | score | return | final loss |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in rows:
            if r["experiment"] != experiment:
                continue
            options = r["options"] + (f" (from {r['finetune_from']})" if r["finetune_from"] else "")
            lines.append(f"| {r['dataset']} | {r['model']} | {options or '–'} | {format_target(r['target'])} | {r['seeds']} | "
                         f"{_pm(r['score_mean'], r['score_std'], 1)} | {_pm(r['return_mean'], r['return_std'], 1)} | "
                         f"{_pm_sig(r['final_loss_mean'], r['final_loss_std'])} |")
        lines.append("")
    if not rows:
        lines.append("No evaluated runs (no eval.json) found.")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- command
def write_report(root: Path | str, out: Path | str | None = None, plots: bool = True,
                 include_unfinished: bool = False, require_runs: bool = False,
                 effects_baseline: str | None = None) -> dict[str, Any]:
    """Write results.md, results.csv and the plots into `out` (default ROOT/report).

    Returns {"rows", "markdown", "files", "notes"}: notes say which unfinished runs were left out
    and which plots were skipped, and why. With `require_runs` (as `seqrl report` does), a root
    with no run to report raises CheckpointError and writes nothing. `effects_baseline`: also
    write effects.md, every model against that one with a 95% bootstrap interval
    (seqrl.experiments.effects).
    """
    root = Path(root)
    out = Path(out) if out else root / "report"
    left_out: list[RunRecord] = []
    groups = collect(root, include_unfinished=include_unfinished, left_out=left_out)
    if require_runs and not groups:
        from seqrl.errors import CheckpointError

        if left_out:
            raise CheckpointError(
                f"no finished runs under {root}: {len(left_out)} unfinished run(s) left out "
                "(--include-unfinished reports them); nothing written"
            )
        raise CheckpointError(
            f"no run directories under {root} (a run directory holds config.json, as `seqrl train` "
            "and `seqrl sweep` write it); nothing written"
        )
    rows = summary_rows(groups)
    markdown = to_markdown(rows, title=f"Results: {root}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(markdown)
    (out / "results.csv").write_text(to_csv(rows))
    files = [out / "results.md", out / "results.csv"]
    notes: list[str] = []
    if effects_baseline is not None:
        from seqrl.experiments.effects import effects, effects_markdown

        compared = effects(groups, effects_baseline)
        if not compared:
            notes.append(f"--effects {effects_baseline}: no group of that model beside another model with the same "
                         "experiment, dataset and options; no effects.md")
        else:
            (out / "effects.md").write_text(effects_markdown(compared))
            files.append(out / "effects.md")
    if left_out:
        names = ", ".join(f"{r.run_dir.relative_to(root)} ({r.status})" for r in left_out)
        notes.append(f"left out {len(left_out)} unfinished or unreadable run(s) (--include-unfinished keeps the "
                     f"unfinished ones): {names}")
    if not groups:
        notes.append(f"no finished run directories under {root}" if left_out else f"no run directories under {root}")
    if plots and groups:
        from seqrl.experiments.plots import write_plots

        written, skipped = write_plots(groups, out)
        files += written
        notes += skipped
    return {"rows": rows, "markdown": markdown, "files": files, "notes": notes}


def report_command(
    runs_dir: "tyro.conf.Positional[str]",
    out: str | None = None,
    plots: bool = True,
    include_unfinished: bool = False,
    effects: str | None = None,
) -> None:
    """Tables (Markdown, CSV) of normalized scores, mean ± std over seeds, and plots (PNG).

    Args:
        runs_dir: Directory holding run directories (a sweep's output root, or any folder of runs).
        out: Where to write results.md, results.csv and the plots (default: RUNS_DIR/report).
        plots: Also draw the plots (learning curves, bins, binning, transfer).
        include_unfinished: Also report sweep runs still running, interrupted or failed (their curves stop early, their eval.json may be stale).
        effects: A baseline model: also write effects.md, each other model's score minus the baseline's with a 95%
            bootstrap interval over seeds, "not resolved" where the interval holds zero.
    """
    from seqrl.console import make_console

    report = write_report(runs_dir, out, plots=plots, include_unfinished=include_unfinished, require_runs=True,
                          effects_baseline=effects)
    print(report["markdown"])  # raw Markdown, to paste into notes and papers
    console = make_console()
    for note in report["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    console.print("wrote " + ", ".join(str(f) for f in report["files"]), highlight=False)
