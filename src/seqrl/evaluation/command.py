"""`seqrl eval`: the command, apart from the evaluation it drives (seqrl.evaluation.evaluate), so
that parsing its flags and `seqrl eval --help` import no torch. A run whose family has settings
of its own (the TT's planner) gets them as flags: `family_eval_command`.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import tyro


def results_table(report: dict[str, Any], title: str | None = None) -> Any:
    """A rich Table of an `evaluate_run` report: one row per target."""
    from rich.table import Table

    table = Table(title=title or f"{report['run_dir']} ({report.get('model', '?')}, step {report['step']}, "
                                 f"{report['episodes']} episodes, {report['env_id']})")
    goals = any("success_rate" in r for r in report["results"])
    for column in ("target", "return", "score", "length") + (("success", "steps to goal") if goals else ()):
        table.add_column(column, justify="right")
    for r in report["results"]:
        score = "-" if r["score_mean"] is None else f"{r['score_mean']:.1f} ± {r['score_std']:.1f}"
        row = ["-" if r["target"] is None else f"{r['target']:g}", f"{r['return_mean']:.1f} ± {r['return_std']:.1f}",
               score, f"{r['length_mean']:.0f} ± {r['length_std']:.0f}"]
        if goals:
            steps = r.get("steps_to_goal_mean")
            row += [f"{100 * r['success_rate']:.0f}%" if "success_rate" in r else "-",
                    "-" if steps is None else f"{steps:.0f} ± {r['steps_to_goal_std']:.0f}"]
        table.add_row(*row)
    return table


def eval_command(
    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")],
    episodes: int = 100,
    targets: tuple[float, ...] | None = None,
    json: bool = False,
    seed: int | None = None,
    device: str = "auto",
    env: str | None = None,
    vectorization: Literal["sync", "async"] = "sync",
    video: str | None = None,
    threads: int | None = None,
    progress: bool = True,
    plot: str | None = None,
    task: str | None = None,
) -> None:
    """Evaluate a trained run (any family) in its environment; writes RUN_DIR/eval.json.

    A Decision Transformer is evaluated for each target return; a Trajectory Transformer plans
    with beam search (slow: it shows progress). A family with settings of its own takes them as
    flags after the run directory: `seqrl eval TT_RUN_DIR --help` lists the TT's planner flags.

    Args:
        run_dir: Run directory (or checkpoint file) to evaluate.
        episodes: Episodes per target, run together in a vector env.
        targets: Target returns (default: the run's, e.g. CORL's 3600 1800 for hopper).
        json: Print the report as JSON instead of a table.
        seed: Seed of the evaluation episodes (episode i uses seed + i; default: the run's eval_seed).
        device: cpu, cuda, cuda:N, or auto.
        env: Gymnasium environment id (default: the one recorded in the dataset).
        vectorization: Step the environments in this process (sync) or in subprocesses (async).
        video: Also record one episode (first target, first seed) to this .gif or .mp4 file.
        threads: CPU threads for torch (default: torch's, one per core; see seqrl.threads).
        progress: Report env steps while evaluating.
        plot: Also draw the achieved against the target return to this PNG (a DT run; pass 6 or
            more --targets to see "one model, a distribution of policies"), or, for a run that
            plans or acts without a target in a maze, the episodes' paths (the TT paper's Figure 5).
        task: A multi-task run's task to evaluate (default: every task, each under its targets).
    """
    _run_eval(run_dir, episodes=episodes, targets=targets, json=json, seed=seed, device=device, env=env,
              vectorization=vectorization, video=video, threads=threads, progress=progress, plot=plot, task=task)


def _run_eval(run_dir: str, *, episodes: int, targets: tuple[float, ...] | None, json: bool, seed: int | None,
              device: str, env: str | None, vectorization: str, video: str | None, threads: int | None,
              progress: bool, plot: str | None, task: str | None, settings: dict[str, Any] | None = None) -> None:
    import json as json_module

    from seqrl.threads import torch_threads

    from seqrl.evaluation.evaluate import EVAL_FILE, evaluate_run

    with torch_threads(threads):
        report = evaluate_run(
            run_dir, episodes=episodes, targets=targets, seed=seed, device=device, env_id=env,
            vectorization=vectorization, video=video, settings=settings, progress=progress and not json,
            plot=plot, task=task,
        )
    if json:
        print(json_module.dumps(report, indent=2))
        return
    from seqrl.console import make_console

    console = make_console()
    for one in (report["tasks"].values() if "tasks" in report else [report]):
        console.print(results_table(one))
    console.print(f"wrote {Path(run_dir) / EVAL_FILE}" + (f" and {video}" if video else "")
                  + (f" and {plot}" if plot else ""))


def family_eval_command(flags_class: type) -> Callable[..., None]:
    """`eval_command` with a family's own flags (`Family.eval_flags`, e.g. the TT's planner) added:
    what `seqrl eval RUN_DIR ...` runs for a run of that family."""
    generic = inspect.signature(eval_command)
    hints = typing.get_type_hints(eval_command, include_extras=True)
    params = [p.replace(annotation=hints[p.name]) for p in generic.parameters.values()]
    params.append(inspect.Parameter("settings", inspect.Parameter.KEYWORD_ONLY, default=flags_class(),
                                    annotation=tyro.conf.OmitArgPrefixes[flags_class]))
    signature = generic.replace(parameters=params)

    def command(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        flags = values.pop("settings")
        _run_eval(**values, settings=flags.overrides())

    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    command.__doc__ = (eval_command.__doc__ or "").rstrip() + (
        f"\n        settings: {(flags_class.__doc__ or '').strip().splitlines()[0]}\n")
    return command
